"""Common-model records to JSON-ready dicts and back, for the store and the sandbox CRM; and `jsonable`,
the one JSON encoding of any other value the app stores (decision payloads, reasons, proposal evidence)."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from functools import cache
from typing import Any

from crm_adapters import model
from crm_adapters.model import Entity, Pipeline, Record, Stage


def record_to_dict(record: Record | Stage) -> dict[str, Any]:
    """A JSON-ready dict of a record (dates ISO, Decimals as strings, enums by value)."""
    return {f.name: _encode(getattr(record, f.name)) for f in dataclasses.fields(record)}


def jsonable(value: Any) -> Any:
    """A JSON-ready copy of any value, by one set of rules: enums by value, dates ISO, Decimals as strings,
    tuples and sets as lists, dataclasses as dicts, anything else as its str()."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    encoded = _encode(value)
    if encoded is not value:
        return encoded
    if isinstance(value, set | frozenset):
        return list(value)
    return str(value)


def record_from_dict(cls: type[Any], data: dict[str, Any]) -> Any:
    """Rebuild a record of type `cls` from `record_to_dict`'s output."""
    hints = _hints(cls)
    kwargs = {name: _decode(hints[name], value) for name, value in data.items() if name in hints}
    return cls(**kwargs)


def entity_from_dict(entity: Entity, data: dict[str, Any]) -> Record:
    return record_from_dict(model.SYNCED_TYPES[entity], data)  # type: ignore[no-any-return]


def pipeline_from_dict(data: dict[str, Any]) -> Pipeline:
    return record_from_dict(Pipeline, data)  # type: ignore[no-any-return]


@cache
def _hints(cls: type[Any]) -> dict[str, Any]:
    return typing.get_type_hints(cls, vars(model))


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _encode(value: Any) -> Any:
    if type(value) in _PLAIN:  # the common case first: isinstance against typing.Mapping is slow
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return record_to_dict(value)  # type: ignore[arg-type]
    if isinstance(value, dict | typing.Mapping):
        return {k: _encode(v) for k, v in value.items()}
    return value


def _decode(hint: Any, value: Any) -> Any:
    return None if value is None else field_decoder(hint)(value)


def _identity(value: Any) -> Any:
    return value


@cache
def field_decoder(hint: Any) -> Any:
    """One decoding function per type hint, worked out once (snapshots decode ~10^5 records)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1:
            return _identity
        one = field_decoder(inner[0])
        return lambda v: None if v is None else one(v)
    if origin is tuple:
        item = field_decoder(args[0])
        return lambda v: tuple(item(x) for x in v)
    if isinstance(hint, type):
        if issubclass(hint, Enum):
            return hint
        if hint is datetime:
            return datetime.fromisoformat
        if hint is date:
            return date.fromisoformat
        if hint is Decimal:
            return Decimal
        if dataclasses.is_dataclass(hint):
            return lambda v: record_from_dict(hint, v)
    return _identity
