"""Check FHIR JSON with two independent model sets: fhir.resources (R4B, pydantic) and
fhirclient (R4 4.0.1). Both refuse unknown elements, wrong types and missing required ones."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhirclient.models.fhirelementfactory import FHIRElementFactory


def check_resource(resource: dict[str, Any]) -> None:
    """Raise when either model set refuses ``resource`` (contained and entries included)."""
    kind = resource["resourceType"]
    get_fhir_model_class(kind).model_validate(resource)
    FHIRElementFactory.instantiate(kind, resource)
    for entry in resource.get("entry") or []:  # a Bundle: each resource on its own too
        if "resource" in entry:
            check_resource(entry["resource"])
