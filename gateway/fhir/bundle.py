"""The entries of a provided transaction Bundle and how references between them resolve.

Standard: FHIR R4 bundle.html §2.36.4 "Resolving references in Bundles" (a reference matches
an entry's ``fullUrl``, absolute or made absolute against the base; ``urn:uuid:`` references
match ``urn:uuid:`` fullUrls; ``#id`` names a contained resource of the referring resource) and
http.html §3.1.0.11 "transaction"; MHD ITI-65 §2:3.65.4.1.2 (the Binary a DocumentReference
points at shall be in the Bundle).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.fhir.wire import FhirError

MAX_ENTRIES = 10_000


@dataclass(slots=True, kw_only=True)
class Entry:
    """One Bundle.entry: position, fullUrl, the resource and its request method and url."""

    index: int
    full_url: str | None
    resource: dict[str, Any]
    method: str
    url: str

    @property
    def kind(self) -> str:
        return str(self.resource.get("resourceType"))

    @property
    def where(self) -> str:
        return f"Bundle.entry[{self.index}].resource"


def read_entries(bundle: dict[str, Any]) -> list[Entry]:
    """The entries of a transaction Bundle, checked for the structure a transaction needs.

    Raises: FhirError 400 (not a Bundle, not a transaction, an entry without resource or
    request, two entries with one fullUrl).
    """
    if bundle.get("resourceType") != "Bundle":
        raise FhirError.of(
            400, f"expected a Bundle, got {bundle.get('resourceType')!r}", expression="Bundle"
        )
    if bundle.get("type") != "transaction":
        raise FhirError.of(
            400,
            f"Bundle.type is {bundle.get('type')!r}: ITI-65 takes a 'transaction' Bundle",
            expression="Bundle.type",
        )
    raw = bundle.get("entry")
    if not isinstance(raw, list) or not raw:
        raise FhirError.of(400, "the Bundle has no entry", expression="Bundle.entry")
    if len(raw) > MAX_ENTRIES:
        raise FhirError.of(
            400, f"the Bundle has more than {MAX_ENTRIES} entries", code="too-costly"
        )
    entries = [_entry(n, item) for n, item in enumerate(raw)]
    seen: set[str] = set()
    for entry in entries:
        if entry.full_url is not None:
            if entry.full_url in seen:
                raise FhirError.of(
                    400,
                    f"two entries have fullUrl {entry.full_url}",
                    expression=f"Bundle.entry[{entry.index}].fullUrl",
                )
            seen.add(entry.full_url)
    return entries


def _entry(index: int, item: Any) -> Entry:
    where = f"Bundle.entry[{index}]"
    if not isinstance(item, dict):
        raise FhirError.of(400, f"{where} is not an object", expression=where)
    resource, request = item.get("resource"), item.get("request")
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        raise FhirError.of(400, f"{where} has no resource", expression=f"{where}.resource")
    if not isinstance(request, dict) or not isinstance(request.get("method"), str):
        raise FhirError.of(
            400,
            f"{where} has no request.method (a transaction entry needs one)",
            expression=f"{where}.request",
        )
    full_url = item.get("fullUrl")
    return Entry(
        index=index,
        full_url=full_url if isinstance(full_url, str) and full_url else None,
        resource=resource,
        method=request["method"].upper(),
        url=str(request.get("url") or ""),
    )


class Resolver:
    """Resolves references of provided resources to entries of the Bundle or contained ones.

    ``base`` is this server's FHIR base: ``Type/id`` and ``{base}/Type/id`` name an entry with
    that fullUrl or that type and id; references that are not in the Bundle resolve to None.
    """

    def __init__(self, entries: list[Entry], base: str) -> None:
        self.base = base.rstrip("/")
        self._by_url = {e.full_url: e for e in entries if e.full_url}
        self._by_id = {
            f"{e.kind}/{e.resource['id']}": e
            for e in entries
            if isinstance(e.resource.get("id"), str)
        }

    def entry(self, reference: Any) -> Entry | None:
        """The Bundle entry a Reference (or reference string) names, or None."""
        text = _reference_text(reference)
        if not text:
            return None
        if text in self._by_url:
            return self._by_url[text]
        relative = self.relative(text)
        if relative is None:
            return None
        return self._by_url.get(f"{self.base}/{relative}") or self._by_id.get(relative)

    def relative(self, text: str) -> str | None:
        """``Type/id`` of a reference to this server (relative or under ``base``), else None."""
        if text.startswith(self.base + "/"):
            text = text[len(self.base) + 1 :]
        elif "://" in text or text.startswith("urn:"):
            return None
        parts = text.split("/")
        if len(parts) == 4 and parts[2] == "_history":
            parts = parts[:2]
        return "/".join(parts) if len(parts) == 2 and all(parts) else None

    def for_resource(self, holder: dict[str, Any]) -> Any:
        """A ``people.Resolve`` for references made by ``holder``: ``#id`` is one of its
        contained resources, anything else an entry of the Bundle."""
        contained = {
            f"#{r['id']}": r
            for r in holder.get("contained") or []
            if isinstance(r, dict) and isinstance(r.get("id"), str)
        }

        def resolve(reference: Any, _where: str) -> dict[str, Any] | None:
            text = _reference_text(reference)
            if text in contained:
                return contained[text]
            found = self.entry(reference)
            return found.resource if found is not None else None

        return resolve


def _reference_text(reference: Any) -> str:
    if isinstance(reference, dict):
        reference = reference.get("reference")
    return reference.strip() if isinstance(reference, str) else ""
