"""An ITI-18 request's parameters checked and typed.

The request arrives as a :class:`gateway.metadata.query.AdhocQuery` (read from the
``query:AdhocQueryRequest`` by ``gateway.metadata.query.parse_query_request``); :func:`bind`
checks its slots against the query's parameter table (``table.py``) and returns :class:`Params`
with typed values, or raises every problem at once.

Rules (ITI TF-2 rev. 19.0):

- returnType is ``LeafClass`` or ``ObjectRef`` (§3.18.4.1.2.1);
- the values of one slot (several Value elements, or a list in one Value) are OR-ed; repeated
  slots of a code parameter are AND-ed (§3.18.4.1.2.3.5); other repeated slots add values;
- a single-valued parameter with more than one value: XDSStoredQueryParamNumber; a required
  parameter missing: XDSStoredQueryMissingParam; both or neither of an "R*" pair (entryUUID or
  uniqueId): XDSStoredQueryParamNumber / XDSStoredQueryMissingParam (§3.18.4.1.2.3.7,
  §3.18.4.1.3; codes of ITI TF-3 Table 4.2.4.1-2);
- a malformed value (unquoted string, bad code, bad DTM, bad UUID or CX) is XDSRegistryError:
  an error, never an empty result (NIST 11897/classcode_scheme_mismatch and old_scheme);
- a parameter the query does not define is ignored (ebRS 3.0 §6.3.2.1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import (
    XDSError,
    XDSErrorList,
    XDSRegistryError,
    XDSStoredQueryMissingParam,
    XDSStoredQueryParamNumber,
    XDSUnknownStoredQuery,
)
from gateway.metadata import datatypes
from gateway.metadata.query import AdhocQuery
from gateway.metadata.query_values import Item, ValueFormatError, parse_value
from gateway.registry.queries import table
from gateway.registry.queries.table import Kind, Param, QuerySpec


def spec_for(query_id: str) -> QuerySpec:
    """The stored query with this id.

    Standard: ITI TF-2 §3.18.4.1.2.4. Raises: XDSUnknownStoredQuery.
    """
    spec = table.BY_ID.get(query_id)
    if spec is None:
        raise XDSUnknownStoredQuery(f"stored query id {query_id!r} is not known to this registry")
    return spec


@dataclass(slots=True)
class Params:
    """Typed parameter values of one query; absent parameters are missing from ``values``.

    A single-valued parameter holds its value, a multiple one a list, an AND/OR one a list of
    OR-lists (one per slot).
    """

    values: dict[str, Any] = field(default_factory=dict)

    def one(self, name: str) -> Any:
        """The value of a single-valued parameter, ``None`` when absent."""
        return self.values.get(name)

    def many(self, name: str) -> list[Any] | None:
        """The values of a multiple parameter (OR), ``None`` when absent."""
        return self.values.get(name)

    def groups(self, name: str) -> list[list[Any]] | None:
        """The OR-lists of an AND/OR parameter, one per slot, ``None`` when absent."""
        return self.values.get(name)


def bind(spec: QuerySpec, query: AdhocQuery) -> Params:
    """Check the slots of ``query`` against the table of ``spec``; return typed values.

    Standard: ITI TF-2 §3.18.4.1.2.3.5, §3.18.4.1.2.3.7, §3.18.4.1.3.
    Raises: XDSErrorList of XDSStoredQueryMissingParam, XDSStoredQueryParamNumber,
    XDSRegistryError (every problem of the request, not only the first).
    """
    sent: dict[str, list[Sequence[str]]] = {}
    for name, texts in query.slots:
        if spec.param(name) is not None and texts:  # an empty ValueList sends no value
            sent.setdefault(name, []).append(texts)
    params = Params()
    errors: list[XDSError] = []
    for param in spec.params:
        slots = sent.get(param.name)
        if not slots:
            if param.required:
                errors.append(
                    XDSStoredQueryMissingParam(
                        f"{spec.name}: required parameter {param.name} "
                        f"is missing (ITI TF-2 {spec.section})"
                    )
                )
            continue
        try:
            params.values[param.name] = _bind_param(param, slots)
        except XDSError as error:
            errors.append(error)
    errors.extend(_check_one_of(spec, sent))
    if errors:
        raise XDSErrorList(errors)
    return params


def _check_one_of(spec: QuerySpec, sent: dict[str, list[Sequence[str]]]) -> list[XDSError]:
    errors: list[XDSError] = []
    for group in spec.one_of:
        present = [name for name in group if name in sent]
        names = " or ".join(group)
        if not present:
            errors.append(
                XDSStoredQueryMissingParam(
                    f"{spec.name}: one of {names} is required (ITI TF-2 {spec.section})"
                )
            )
        elif len(present) > 1:
            errors.append(
                XDSStoredQueryParamNumber(
                    f"{spec.name}: only one of {names} may be given (ITI TF-2 {spec.section})"
                )
            )
    return errors


def _bind_param(param: Param, slots: list[Sequence[str]]) -> Any:
    """Parse, count and convert the slots of one parameter."""
    parsed: list[list[Item]] = []
    for texts in slots:
        items: list[Item] = []
        for text in texts:
            try:
                items.extend(parse_value(text).items)
            except ValueFormatError as exc:
                raise XDSRegistryError(
                    f"{param.name}: malformed value {text!r}: {exc} (ITI TF-2 §3.18.4.1.2.3.5)"
                ) from exc
        parsed.append(items)
    if not param.multiple:
        count = sum(len(items) for items in parsed)
        if count != 1:
            raise XDSStoredQueryParamNumber(
                f"{param.name} takes a single value but {count} were given"
            )
        return _convert(param, parsed[0][0])
    converted = [[_convert(param, item) for item in items] for items in parsed]
    if param.and_or:
        return converted
    return [value for values in converted for value in values]


def _convert(param: Param, item: Item) -> Any:
    """Check one item against the kind of its parameter and return its typed value."""
    if param.kind is Kind.DTM:
        return _dtm(param, item)
    if not item.quoted:
        raise XDSRegistryError(
            f"{param.name}: {item.text!r} must be a quoted string (ITI TF-2 §3.18.4.1.2.3.5)"
        )
    if not item.text:
        raise XDSRegistryError(f"{param.name}: empty string value")
    try:
        return _CONVERTERS[param.kind](item.text)
    except datatypes.DataTypeError as exc:
        raise XDSRegistryError(f"{param.name}: {exc}") from exc


def _dtm(param: Param, item: Item) -> str:
    # Times are numbers (§3.18.4.1.2.3.3); a quoted time is read too, as its meaning is unambiguous.
    try:
        datatypes.parse_dtm(item.text)
    except datatypes.DataTypeError as exc:
        raise XDSRegistryError(f"{param.name}: {exc} (ITI TF-2 §3.18.4.1.2.3.3)") from exc
    return item.text


def _uuid(text: str) -> str:
    if not datatypes.is_uuid_urn(text):
        raise datatypes.DataTypeError(f"{text!r} is not a urn:uuid: identifier")
    return text


def _patient(text: str) -> str:
    datatypes.parse_cx(text)
    return text


_CONVERTERS: dict[Kind, Callable[[str], Any]] = {
    Kind.STRING: str,
    Kind.PATTERN: str,
    Kind.UUID: _uuid,
    Kind.PATIENT: _patient,
    Kind.CODE: datatypes.parse_code_param,
}
