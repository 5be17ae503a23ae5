"""FHIR JSON on the wire: safe parsing, the error every handler raises, OperationOutcome.

Parsing (FHIR R4 §2.6.2 "JSON representation"): the body is read up to a byte limit before any
parsing; it must be UTF-8 JSON whose top level is an object; duplicate keys, ``NaN`` and
``Infinity`` are refused (not JSON per RFC 8259 §4 and §6, and FHIR's JSON forbids duplicate
properties); nesting deeper than :data:`MAX_DEPTH` is refused (the standard library parser is
recursive: a body of a million ``[`` would otherwise exhaust the stack).

Errors (FHIR R4 §3.1.0 "RESTful API", http.html; OperationOutcome §2.40): a handler raises
:class:`FhirError` with the HTTP status, the issue type (valueset ``issue-type``) and, when the
XDS side refused, the XDS error code of ITI TF-3 Table 4.2.4.1-2 in ``issue.details``; the
application answers it as an ``OperationOutcome``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import ERROR_CODES

FHIR_JSON = "application/fhir+json"
JSON_MEDIA_TYPES = frozenset({FHIR_JSON, "application/json", "json", "application/json+fhir"})
XML_MEDIA_TYPES = frozenset({"application/fhir+xml", "application/xml", "xml", "text/xml"})
MAX_DEPTH = 64  # an MHD Bundle nests about 12 levels (Bundle.entry.resource.contained...)

_XDS_MEANINGS = {code: meaning for code, _severity, meaning in ERROR_CODES}


@dataclass(frozen=True, slots=True, kw_only=True)
class Issue:
    """One OperationOutcome.issue: severity, issue-type code, text, XDS code, where."""

    severity: str = "error"  # fatal | error | warning | information
    code: str = "invalid"  # http://hl7.org/fhir/issue-type
    diagnostics: str = ""
    xds_code: str | None = None
    expression: str | None = None  # FHIRPath of the element in error, or the XDS location

    def as_json(self) -> dict[str, Any]:
        issue: dict[str, Any] = {"severity": self.severity, "code": self.code}
        if self.xds_code:
            coding: dict[str, Any] = {"code": self.xds_code}
            meaning = _XDS_MEANINGS.get(self.xds_code)
            if meaning:
                coding["display"] = meaning
            issue["details"] = {"coding": [coding], "text": self.diagnostics or self.xds_code}
        if self.diagnostics:
            issue["diagnostics"] = self.diagnostics
        if self.expression:
            issue["expression"] = [self.expression]
        return issue


@dataclass(slots=True)
class FhirError(Exception):
    """A request answered with an HTTP error status and an OperationOutcome."""

    status: int
    issues: list[Issue] = field(default_factory=list)
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        status: int,
        message: str,
        *,
        code: str = "invalid",
        xds_code: str | None = None,
        expression: str | None = None,
    ) -> FhirError:
        """A one-issue error."""
        issue = Issue(code=code, diagnostics=message, xds_code=xds_code, expression=expression)
        return cls(status, [issue])

    def __str__(self) -> str:
        return "; ".join(i.diagnostics or i.code for i in self.issues) or str(self.status)

    @property
    def xds_codes(self) -> tuple[str, ...]:
        return tuple(i.xds_code for i in self.issues if i.xds_code)


@dataclass(slots=True, kw_only=True)
class Answer:
    """What a handler returns: status, headers and the body (chunks); ``close`` releases what
    the body holds (temporary files) once it is sent."""

    status: int
    headers: list[tuple[str, str]]
    body: Iterable[bytes]
    close: Callable[[], None] | None = None


def json_answer(
    resource: dict[str, Any], status: int = 200, extra: Sequence[tuple[str, str]] = ()
) -> Answer:
    """A FHIR JSON answer (``application/fhir+json; charset=utf-8``)."""
    data = dump_json(resource)
    headers = [
        ("Content-Type", f"{FHIR_JSON}; charset=utf-8"),
        ("Content-Length", str(len(data))),
        *extra,
    ]
    return Answer(status=status, headers=headers, body=[data])


def operation_outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    """An OperationOutcome resource holding ``issues`` (FHIR R4 §2.40)."""
    items = [issue.as_json() for issue in issues]
    if not items:
        items = [{"severity": "information", "code": "informational"}]
    return {"resourceType": "OperationOutcome", "issue": items}


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _unique_keys(pairs: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"property {key!r} appears twice in one object")
        result[key] = value
    return result


def parse_json(data: bytes, *, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """Parse a FHIR JSON body: UTF-8, one object, unique keys, finite numbers, bounded depth.

    Standard: RFC 8259; FHIR R4 §2.6.2 (JSON representation of resources).
    Raises: FhirError 400 (issue type ``structure``) saying what is wrong.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FhirError.of(400, f"the body is not UTF-8: {exc}", code="structure") from exc
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise FhirError.of(400, "the JSON body is nested too deeply", code="structure") from exc
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise FhirError.of(400, f"the body is not valid JSON: {exc}", code="structure") from exc
    if not isinstance(value, dict):
        raise FhirError.of(400, "the body is not a JSON object (a FHIR resource)", code="structure")
    _check_depth(value, max_depth)
    return value


def _check_depth(value: Any, max_depth: int) -> None:
    """Refuse structures nested deeper than ``max_depth`` (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            raise FhirError.of(
                400, f"the JSON body is nested deeper than {max_depth} levels", code="structure"
            )
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


def dump_json(resource: dict[str, Any]) -> bytes:
    """Serialise a resource: compact UTF-8 JSON (FHIR R4 §2.6.2)."""
    return json.dumps(resource, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def media_type(value: str | None) -> str:
    """The bare media type of a header value: ``application/fhir+json; charset=x`` -> ..."""
    return (value or "").split(";", 1)[0].strip().lower()


def wants_json(format_param: str | None, accept: str | None) -> bool:
    """Whether the client accepts the JSON answer this server gives.

    ``_format`` wins over ``Accept`` (FHIR R4 http.html §3.1.0.1.9 "Content Types and
    encodings"); XML is not served. An absent or wildcard Accept takes JSON.
    Standard: ITI TF-2 Appendix Z.6 (populating the expected response format).
    """
    if format_param:
        return media_type(format_param) in JSON_MEDIA_TYPES
    if not accept:
        return True
    ranges = [media_type(part) for part in accept.split(",")]
    acceptable = JSON_MEDIA_TYPES | {"*/*", "application/*"}
    return any(r in acceptable for r in ranges) or not any(r in XML_MEDIA_TYPES for r in ranges)
