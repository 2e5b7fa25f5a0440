"""Common-model records to JSON-ready dicts and back, for the store and the sandbox CRM; and `jsonable`,
the one JSON encoding of any other value the app stores (decision payloads, reasons, proposal evidence)."""

from __future__ import annotations

import dataclasses
import gc
import json
import types
import typing
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
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


def record_from_dict(cls: type[Any], data: dict[str, Any], strings: dict[Any, Any] | None = None) -> Any:
    """Rebuild a record of type `cls` from `record_to_dict`'s output. With `strings` (one dict over a whole
    snapshot) its ids, codes and templated texts share one object per distinct value, its dates one datetime per
    distinct text, and an empty `custom` one mapping: a tenant repeats each deal's id in every activity, role and
    stage change of it, a sequence's emails repeat their subject and body, and an activity's update time is
    mostly its own time. Shared values are immutable, so the records are equal either way."""
    decoders = _decoders(cls)
    kwargs = {name: value if value is None or (decode := decoders[name]) is None else decode(value)
              for name, value in data.items() if name in decoders}
    if strings is not None:
        for name in _sharable(cls):
            value = kwargs.get(name)
            if type(value) is str:
                kwargs[name] = strings.setdefault(value, value)
            elif type(value) is tuple:
                shared = tuple(strings.setdefault(v, v) for v in value)
                kwargs[name] = strings.setdefault(shared, shared)  # an activity's contacts repeat in the next one
        for name in _dated(cls):
            text = data.get(name)
            if type(text) is str:  # keyed apart from the strings: a text field may hold the same characters
                kwargs[name] = strings.setdefault((datetime, text), kwargs[name])
        if "custom" in kwargs:
            kwargs["custom"] = _shared_custom(kwargs["custom"], strings)
    return cls(**kwargs)


def _shared_custom(custom: Mapping[str, Any], strings: dict[Any, Any]) -> Mapping[str, Any]:
    """One mapping per distinct custom fields of plain values (a sequence's emails repeat theirs): read through
    `Record.custom`'s read-only type only, so sharing changes nothing; the rest as they are."""
    if not custom:
        return NO_CUSTOM
    if not all(type(v) in _EXACT for v in custom.values()):  # lists, mappings, floats (-0.0 == 0.0): kept as they are
        return custom
    key = (dict, *((k, type(v), v) for k, v in custom.items()))  # typed: 1 == True, and a key must not mix them
    return strings.setdefault(key, custom)  # type: ignore[no-any-return]


_EXACT = frozenset({str, int, bool, type(None)})


NO_CUSTOM: Mapping[str, Any] = types.MappingProxyType({})  # read-only, so every record without custom fields shares it
_UNIQUE_TEXT = frozenset({"name", "transcript", "email", "first_name", "last_name", "title", "next_step"})
"""A person's texts that seldom repeat within a tenant: a shared copy would save little and the memo would hold
one entry per record while the snapshot loads."""


@cache
def _sharable(cls: type[Any]) -> tuple[str, ...]:
    """The fields of ids, codes and texts that repeat: plain strings (or tuples of them) but not `_UNIQUE_TEXT`."""
    plain = {str, str | None, tuple[str, ...]}
    return tuple(name for name, hint in _hints(cls).items() if hint in plain and name not in _UNIQUE_TEXT)


@contextmanager
def gc_paused() -> Iterator[None]:
    """While millions of acyclic records are built (a snapshot, its readings, a simulated tenant): the cyclic GC
    only burns time then, and more the more is built (each full collection walks every object so far: a third of
    loading a snapshot at 20,000 deals). Garbage is still freed as it is dropped; a cycle waits for the next pass."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@cache
def _dated(cls: type[Any]) -> tuple[str, ...]:
    """The fields holding a datetime."""
    return tuple(name for name, hint in _hints(cls).items() if hint in (datetime, datetime | None))


def entity_from_dict(entity: Entity, data: dict[str, Any], strings: dict[Any, Any] | None = None) -> Record:
    return record_from_dict(model.SYNCED_TYPES[entity], data, strings)  # type: ignore[no-any-return]


def pipeline_from_dict(data: dict[str, Any]) -> Pipeline:
    return record_from_dict(Pipeline, data)  # type: ignore[no-any-return]


@cache
def _hints(cls: type[Any]) -> dict[str, Any]:
    return typing.get_type_hints(cls, vars(model))


@cache
def _decoders(cls: type[Any]) -> dict[str, Any]:
    """Each field's decoder, None where the JSON value is already the field's value (strings, numbers)."""
    return {name: None if (decode := field_decoder(hint)) is _identity else decode for name, hint in _hints(cls).items()}


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


def _identity(value: Any) -> Any:
    return value


def _enum_decoder(enum: type[Enum]) -> Any:
    """An enum member by its value from a dict (calling the enum costs ~10x more); the enum itself judges the rest."""
    members = {m.value: m for m in enum}

    def decode(value: Any) -> Any:
        try:
            return members[value]
        except (KeyError, TypeError):
            return enum(value)

    return decode


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
        return one if one is _identity else lambda v: None if v is None else one(v)
    if origin is tuple:
        item = field_decoder(args[0])
        return tuple if item is _identity else lambda v: tuple(item(x) for x in v)
    if isinstance(hint, type):
        if issubclass(hint, Enum):
            return _enum_decoder(hint)
        if hint is datetime:
            return datetime.fromisoformat
        if hint is date:
            return date.fromisoformat
        if hint is Decimal:
            return Decimal
        if dataclasses.is_dataclass(hint):
            return lambda v: record_from_dict(hint, v)
    return _identity
