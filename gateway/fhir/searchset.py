"""Search result Bundles: ``searchset`` with ``total``, paging links and ``search.mode``.

Standard: FHIR R4 bundle.html (type searchset, ``total`` = the number of matches), http.html
§3.1.0.9 "search" and search.html §3.1.1.6 "Paging" (``self``, ``first``, ``previous``,
``next``, ``last`` links; the server defines the link URLs); ITI TF-2x Appendix Z.1 (resource
bundles). Pages are cut from the whole, sorted result of the stored query (``_count`` per page,
``_offset`` the first match of the page): the links repeat the search, so a page is exact as
long as the registry's content does not change in between.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from gateway.fhir.search import Params
from gateway.fhir.wire import FhirError, Issue

MAX_COUNT = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class Page:
    """Which matches one answer holds."""

    offset: int
    count: int

    @classmethod
    def of(cls, params: Params, default_count: int) -> Page:
        """``_count`` (default ``default_count``, at most :data:`MAX_COUNT`) and ``_offset``.

        Raises: FhirError 400 for a value that is not a non-negative integer.
        """
        return cls(
            offset=_integer(params, "_offset", 0),
            count=min(_integer(params, "_count", default_count), MAX_COUNT),
        )

    def cut(self, items: Sequence[Any]) -> Sequence[Any]:
        return items[self.offset : self.offset + self.count]


def _integer(params: Params, name: str, default: int) -> int:
    value = params.one(name)
    if value is None:
        return default
    if not value.isdigit():
        raise FhirError.of(400, f"{name} must be a non-negative integer", expression=name)
    return int(value)


def _link(url: str, params: Params, offset: int, count: int) -> str:
    kept = [(k, v) for k, v in params.items if k not in ("_offset", "_count")]
    return f"{url}?{urlencode([*kept, ('_count', str(count)), ('_offset', str(offset))])}"


def searchset(
    url: str,
    params: Params,
    page: Page,
    total: int,
    resources: Sequence[tuple[str, dict[str, Any]]],
    warnings: Sequence[Issue] = (),
) -> dict[str, Any]:
    """A searchset Bundle of ``resources`` (fullUrl, resource), the page ``page`` of ``total``
    matches of the search at ``url``; ``warnings`` as an OperationOutcome entry (ITI-67
    §2:3.67.4.2.2: warnings go into the Bundle)."""
    links = [{"relation": "self", "url": _link(url, params, page.offset, page.count)}]
    if page.count:
        last = max(0, (total - 1) // page.count * page.count)
        links.append({"relation": "first", "url": _link(url, params, 0, page.count)})
        if page.offset > 0:
            previous = max(0, page.offset - page.count)
            links.append({"relation": "previous", "url": _link(url, params, previous, page.count)})
        if page.offset + page.count < total:
            after = page.offset + page.count
            links.append({"relation": "next", "url": _link(url, params, after, page.count)})
        links.append({"relation": "last", "url": _link(url, params, last, page.count)})
    entries: list[dict[str, Any]] = [
        {"fullUrl": full_url, "resource": resource, "search": {"mode": "match"}}
        for full_url, resource in resources
    ]
    if warnings:
        entries.append(
            {
                "resource": {
                    "resourceType": "OperationOutcome",
                    "issue": [w.as_json() for w in warnings],
                },
                "search": {"mode": "outcome"},
            }
        )
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": total}
    bundle["link"] = links
    if entries:  # FHIR JSON has no empty arrays (R4 §2.6.2)
        bundle["entry"] = entries
    return bundle
