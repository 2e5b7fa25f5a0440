"""Raw sandbox rows (JSON dicts) to common-model records, with a clear reason when a row is malformed."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable, Collection
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from functools import cache
from typing import Any

from crm_adapters import codec, model
from crm_adapters.errors import MalformedRecord, quarantines
from crm_adapters.model import SYNCED_TYPES, Crm, Entity, Record

# ISO 4217 codes the sandbox accepts (a real CRM has a currency table; this is ours).
CURRENCIES = frozenset(
    [
        "USD",
        "EUR",
        "GBP",
        "CHF",
        "CAD",
        "AUD",
        "NZD",
        "JPY",
        "CNY",
        "HKD",
        "SGD",
        "INR",
        "SEK",
        "NOK",
        "DKK",
        "PLN",
        "CZK",
        "HUF",
        "BRL",
        "MXN",
        "ZAR",
        "AED",
        "SAR",
        "ILS",
        "KRW",
        "TRY",
    ]
)
_DATE_FIELDS = {"close_date", "closed_at"}
_DATETIME_FIELDS = {"created_at", "entered_at", "exited_at", "occurred_at", "start_at", "end_at"}


def to_us(at: datetime) -> int:
    """Microseconds since the epoch: exact, sortable modified times."""
    if at.tzinfo is None:
        raise ValueError("modified time must be timezone-aware")
    delta = at - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    return datetime.fromtimestamp(us // 1_000_000, tz=UTC).replace(microsecond=us % 1_000_000)


@quarantines("sandbox row")
def record_from_row(entity: Entity, data: str | dict[str, Any], *, modified_us: int, deleted: bool,
                    stage_ids: Collection[str]) -> Record:  # fmt: skip
    """Map one raw row; raises MalformedRecord saying what is wrong."""
    raw = json.loads(data) if isinstance(data, str) else data
    if not isinstance(raw, dict):
        raise MalformedRecord(f"row is not an object: {type(raw).__name__}")
    rid = raw.get("remote_id")
    if rid is None or not str(rid).strip():
        raise MalformedRecord("missing id")
    if entity is Entity.DEAL:
        _check_deal(raw, stage_ids)
    _check_dates(raw)
    cls = SYNCED_TYPES[entity]
    try:
        kwargs = {name: (dec(raw[name]) if raw[name] is not None else None)
                  for name, dec in _decoders(cls) if name in raw}  # fmt: skip
        kwargs.update(crm=Crm.SANDBOX, remote_updated_at=from_us(modified_us), deleted=deleted)
        return cls(**kwargs)  # type: ignore[no-any-return]
    except (ValueError, TypeError, KeyError, InvalidOperation) as exc:
        raise MalformedRecord(f"invalid {entity.value}: {exc}") from exc


@cache
def _decoders(cls: type[Any]) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    """Per-field decoders built once per record type (codec's generic path is ~10x slower per row)."""
    hints = typing.get_type_hints(cls, vars(model))
    skip = {"crm", "remote_updated_at", "deleted"}
    return tuple((f.name, codec.field_decoder(hints[f.name])) for f in dataclasses.fields(cls) if f.name not in skip)


def _check_deal(raw: dict[str, Any], stage_ids: Collection[str]) -> None:
    stage = raw.get("stage_id")
    if stage_ids and stage not in stage_ids:
        raise MalformedRecord(f"unknown stage {stage!r}")
    amount = raw.get("amount")
    if amount is not None:
        try:
            value = Decimal(str(amount))
        except InvalidOperation:
            raise MalformedRecord(f"amount is not a number: {amount!r}") from None
        if not value.is_finite():
            raise MalformedRecord(f"amount is not a finite number: {amount!r}")
    currency = raw.get("currency", "USD")
    if currency not in CURRENCIES:
        raise MalformedRecord(f"unknown currency {currency!r}")


def _check_dates(raw: dict[str, Any]) -> None:
    for name in _DATE_FIELDS | _DATETIME_FIELDS:
        value = raw.get(name)
        if value is None:
            continue
        try:
            parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            parsed = None
        if parsed is None:
            raise MalformedRecord(f"bad date in {name}: {value!r}")
        if name in _DATETIME_FIELDS and parsed.tzinfo is None:
            raise MalformedRecord(f"date without time zone in {name}: {value!r}")


def row_of(record: Record) -> str:
    """The raw JSON the sandbox keeps for a record (system fields live in their own columns)."""
    data = {
        name: None if (value := getattr(record, name)) is None else enc(value)
        for name, enc in _encoders(type(record))
    }
    return _DUMPS(data)


_DUMPS = json.JSONEncoder(separators=(",", ":"), sort_keys=True, default=str).encode


@cache
def _encoders(cls: type[Any]) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    """Per-field JSON encoders built once per record type (the inverse of `_decoders`)."""
    hints = typing.get_type_hints(cls, vars(model))
    skip = {"crm", "remote_updated_at", "deleted"}
    return tuple((f.name, _encoder(hints[f.name])) for f in dataclasses.fields(cls) if f.name not in skip)


def _encoder(hint: Any) -> Callable[[Any], Any]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _encoder(inner[0]) if len(inner) == 1 else _plain
    if origin is tuple:
        item = _encoder(args[0])
        return lambda v: [item(x) for x in v]
    if isinstance(hint, type):
        if issubclass(hint, Enum):
            return lambda v: v.value
        if hint in (datetime, date):
            return lambda v: v.isoformat()
        if hint is Decimal:
            return str
        if dataclasses.is_dataclass(hint):
            return codec.record_to_dict  # type: ignore[return-value]
    return _plain


def _plain(value: Any) -> Any:
    """Free-form values (custom fields): JSON types pass, anything else goes through the codec."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, typing.Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return codec.record_to_dict(value) if dataclasses.is_dataclass(value) else str(value)
