"""How the registry stores its objects: the model as JSON (the ``body`` column) and sortable times.

``to_json`` writes every field of a ``gateway.metadata.model`` object whose value differs from the
field's default (so a body stays small at a million documents and a field added to the model later
reads back as its default); ``from_json`` rebuilds the exact object, extra slots, authors, codes,
``xml:lang``/``charset`` of names included (NIST test 12379: extra metadata is returned as stored).

The body keeps what was registered. What changes afterwards lives in columns that win over the
body: ``status`` (availabilityStatus, ITI TF-3 §4.2.3.2; RPLC deprecates) and, for Folders,
``last_update_time`` (ITI TF-3 §4.2.3.4 lastUpdateTime). :func:`from_row` applies them.

Times: :func:`normalise_dtm` turns an XDS DTM of any precision into 14 digits, missing parts
padded with their lowest value (``2004`` -> ``20040101000000``), so that string comparison is time
order (stored-query ranges, ITI TF-2 §3.18.4.1.2.3.7: From inclusive, To exclusive).

Standards: ITI TF-3 §4.2.3 (attributes), Table 4.2.3.1.7-2 "DTM".
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

from gateway.metadata.datatypes import Code, format_dtm, parse_dtm
from gateway.metadata.model import (
    Association,
    Author,
    DocumentEntry,
    Folder,
    ObjectRef,
    RegistryObject,
    SubmissionSet,
)

__all__ = ["KINDS", "from_json", "from_row", "kind_of", "normalise_dtm", "to_json"]

# kind (the model class name, also used in logs and notes) -> model class
KINDS: MappingProxyType[str, type] = MappingProxyType(
    {cls.__name__: cls for cls in (DocumentEntry, SubmissionSet, Folder, Association, ObjectRef)}
)

_CODE, _CODES, _AUTHORS = "code", "codes", "authors"


def _field_shapes(cls: type) -> MappingProxyType[str, str | None]:
    """Which fields need more than ``json`` gives: a Code, a list of Codes, a list of Authors."""
    hints = typing.get_type_hints(cls)
    shapes: dict[str, str | None] = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        args = typing.get_args(hint)
        if hint == Code | None:
            shapes[f.name] = _CODE
        elif typing.get_origin(hint) is list and args == (Code,):
            shapes[f.name] = _CODES
        elif typing.get_origin(hint) is list and args == (Author,):
            shapes[f.name] = _AUTHORS
        else:
            shapes[f.name] = None
    return MappingProxyType(shapes)


def _defaults(cls: type) -> MappingProxyType[str, Any]:
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            values[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            values[f.name] = f.default_factory()
    return MappingProxyType(values)


# Computed once from the model's annotations; immutable.
_SHAPES = MappingProxyType({cls: _field_shapes(cls) for cls in (*KINDS.values(), Author)})
_DEFAULTS = MappingProxyType({cls: _defaults(cls) for cls in (*KINDS.values(), Author)})
_MISSING = object()


def kind_of(obj: RegistryObject) -> str:
    """The kind name of a model object (``"DocumentEntry"`` ...)."""
    return type(obj).__name__


def _code_to_dict(code: Code) -> dict[str, str]:
    return {
        k: v
        for k, v in (
            ("code", code.code),
            ("scheme", code.scheme),
            ("display_name", code.display_name),
            ("lang", code.lang),
            ("charset", code.charset),
        )
        if v is not None
    }


def _code_from_dict(value: Mapping[str, Any]) -> Code:
    try:
        return Code(**value)  # the keys _code_to_dict writes are Code's field names
    except TypeError:  # a key of a newer model, or a missing one: read field by field
        return Code(
            value["code"],
            value["scheme"],
            value.get("display_name"),
            value.get("lang"),
            value.get("charset"),
        )


def _encode(obj: Any) -> dict[str, Any]:
    cls = type(obj)
    shapes, defaults = _SHAPES[cls], _DEFAULTS[cls]
    out: dict[str, Any] = {}
    for name, shape in shapes.items():
        value = getattr(obj, name)
        if defaults.get(name, _MISSING) == value:
            continue
        if shape == _CODE and value is not None:
            value = _code_to_dict(value)
        elif shape == _CODES:
            value = [_code_to_dict(c) for c in value]
        elif shape == _AUTHORS:
            value = [_encode(a) for a in value]
        elif isinstance(value, str):
            value = str(value)  # vocabulary Terms are str subclasses; store the plain value
        out[name] = value
    return out


# Per class: its field names, and the fields whose JSON needs converting (codes, authors).
_FIELDS = MappingProxyType({cls: frozenset(shapes) for cls, shapes in _SHAPES.items()})
_CONVERTED = MappingProxyType(
    {
        cls: tuple((name, shape) for name, shape in shapes.items() if shape is not None)
        for cls, shapes in _SHAPES.items()
    }
)


def _decode(cls: type, data: Mapping[str, Any]) -> Any:
    fields = _FIELDS[cls]
    if data.keys() <= fields:
        values = dict(data)
    else:  # written by a newer model: ignore what this one does not know rather than refuse
        values = {name: value for name, value in data.items() if name in fields}
    for name, shape in _CONVERTED[cls]:
        value = values.get(name)
        if value is None:
            continue
        if shape == _CODE:
            values[name] = _code_from_dict(value)
        elif shape == _CODES:
            values[name] = [_code_from_dict(c) for c in value]
        else:  # _AUTHORS
            values[name] = [_decode(Author, a) for a in value]
    return cls(**values)


def to_json(obj: RegistryObject) -> str:
    """Serialise a model object for the ``body`` column (compact JSON, UTF-8 text).

    Fields equal to their dataclass default are left out; everything else is kept, so
    :func:`from_json` returns an equal object.
    """
    if type(obj) not in _SHAPES:
        raise TypeError(f"not a registry model object: {type(obj).__name__}")
    return json.dumps(_encode(obj), ensure_ascii=False, separators=(",", ":"))


def from_json(kind: str, text: str) -> RegistryObject:
    """Rebuild the model object of ``kind`` (a key of :data:`KINDS`) from its ``body`` JSON.

    The object is as registered: apply the status/lastUpdateTime columns with :func:`from_row`.
    Raises: KeyError for an unknown kind, ValueError for a body that is not JSON.
    """
    cls = KINDS[kind]
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{kind} body is not a JSON object")
    return typing.cast(RegistryObject, _decode(cls, data))


def from_row(kind: str, row: Mapping[str, Any]) -> RegistryObject:
    """Rebuild an object from a table row: ``body`` plus the columns that override it.

    ``row`` is a mapping (e.g. ``Row._mapping``) with ``body`` and, where the table has them,
    ``status`` (availabilityStatus) and ``last_update_time`` (Folder). Standard: ITI TF-3
    §4.2.3.2 availabilityStatus, §4.2.3.4 Folder.lastUpdateTime (set by the registry).
    """
    obj = from_json(kind, row["body"])
    status = row.get("status")
    if status is not None and not isinstance(obj, ObjectRef):
        obj.availability_status = status
    if isinstance(obj, Folder) and row.get("last_update_time") is not None:
        obj.last_update_time = row["last_update_time"]
    return obj


def normalise_dtm(value: str) -> str:
    """Return a DTM (``YYYY[MM[DD[hh[mm[ss]]]]]``, UTC) as 14 digits, padding what is missing
    with its lowest value: ``"200412"`` -> ``"20041201000000"``.

    Standard: ITI TF-3 Table 4.2.3.1.7-2 "DTM"; ITI TF-2 §3.18.4.1.2.3.7 (time ranges).
    Raises: DataTypeError (a ValueError) for anything that is not a valid DTM.
    """
    value = value.strip()
    # Fast path (every stored time and query bound goes through here): a well-formed DTM of
    # years 1000-9999 is its own padding once the calendar accepts it; anything else takes
    # the reference path, which also words the error.
    if _DTM_DIGITS.fullmatch(value) and value[0] != "0":
        padded = value + _DTM_PAD[len(value) - 4 :]
        try:
            datetime(
                int(padded[0:4]),
                int(padded[4:6]),
                int(padded[6:8]),
                int(padded[8:10]),
                int(padded[10:12]),
                int(padded[12:14]),
            )
        except ValueError:
            pass
        else:
            return padded
    return format_dtm(parse_dtm(value))


_DTM_DIGITS = re.compile(r"[0-9]{4}(?:[0-9]{2}){0,5}")
_DTM_PAD = "0101000000"
