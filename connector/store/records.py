"""The per-tenant snapshot of the common model: upsert batches, cursors, quarantine, load."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Text, bindparam, cast, func, select
from sqlalchemy.orm import Session

from connector.store.bulk import upsert
from connector.store.clean import db_text, json_safe, key_problem, short_key
from connector.store.db import json_loads
from connector.store.tables import CrmRecord, QuarantinedRecord, SyncCursor
from crm_adapters.codec import entity_from_dict, gc_paused, pipeline_from_dict, record_to_dict
from crm_adapters.model import Entity, Pipeline, Record
from crm_adapters.port import Quarantined
from crm_adapters.snapshot import Snapshot

PIPELINE = "pipeline"


def _payload(record: Record) -> tuple[dict, str]:  # type: ignore[type-arg]
    """The record as stored JSON and its hash; values a database refuses are cleaned first (rare path)."""
    payload = record_to_dict(record)
    try:
        text = json.dumps(payload, sort_keys=True, allow_nan=False)
        clean = "\\u0000" not in text and "\\ud" not in text  # no NUL, no surrogate (a valid pair is kept)
    except (ValueError, TypeError):  # NaN, Infinity or a value JSON has no form for
        clean = False
    if not clean:
        payload = json_safe(payload)
        text = json.dumps(payload, sort_keys=True)
    return payload, hashlib.sha1(text.encode()).hexdigest()


def storable(records: Iterable[Record]) -> tuple[list[Record], list[Quarantined]]:
    """Records the store can key, one per id (the last one of a page wins), and the rest with why."""
    kept: dict[str, Record] = {}
    refused: list[Quarantined] = []
    for record in records:
        if isinstance(record.remote_id, int) and not isinstance(record.remote_id, bool):
            record = dataclasses.replace(record, remote_id=str(record.remote_id))  # a JSON number as an id
        problem = key_problem(record.remote_id)
        if problem is None:
            kept.pop(record.remote_id, None)  # re-insert: the later version of a duplicate keeps page order
            kept[record.remote_id] = record
        else:
            refused.append(Quarantined(remote_id=short_key(record.remote_id), reason=f"not stored: {problem}",
                                       raw=record_to_dict(record)))
    return list(kept.values()), refused


def upsert_checked(session: Session, installation_id: str, entity: Entity | str,
                   records: Iterable[Record]) -> tuple[int, int]:
    """Insert or replace records; ids the store cannot hold are quarantined instead. (changed, quarantined)."""
    kept, refused = storable(records)
    if refused:
        quarantine(session, installation_id, entity, refused)
    return _upsert(session, installation_id, str(entity), kept), len(refused)


def upsert_records(session: Session, installation_id: str, entity: Entity | str, records: Iterable[Record]) -> int:
    """Insert or replace records; returns how many rows changed (same payload: no write)."""
    return upsert_checked(session, installation_id, entity, records)[0]


def _upsert(session: Session, installation_id: str, entity: str, records: list[Record]) -> int:
    rows = []
    now = datetime.now(UTC)
    for record in records:
        payload, digest = _payload(record)
        rows.append({"installation_id": installation_id, "entity": entity, "remote_id": record.remote_id,
                     "payload": payload, "payload_hash": digest, "remote_updated_at": record.remote_updated_at,
                     "deleted": record.deleted, "synced_at": now})
    if not rows:
        return 0
    return len(upsert(session, CrmRecord, rows, key=_KEY, on_conflict=_replace_changed).all())


_KEY = ("installation_id", "entity", "remote_id")


def _replace_changed(stmt: Any) -> Any:
    """A stored record is replaced only when its payload changed; the ids written come back."""
    excluded = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=list(_KEY),
        set_={
            "payload": excluded.payload,
            "payload_hash": excluded.payload_hash,
            "remote_updated_at": excluded.remote_updated_at,
            "deleted": excluded.deleted,
            "synced_at": excluded.synced_at,
        },
        where=CrmRecord.payload_hash != excluded.payload_hash,
    ).returning(CrmRecord.remote_id)


def save_pipelines(session: Session, installation_id: str, pipelines: Iterable[Pipeline]) -> int:
    return upsert_records(session, installation_id, PIPELINE, pipelines)


def quarantine(session: Session, installation_id: str, entity: Entity | str, items: Iterable[Quarantined]) -> int:
    """Keep raw records that could not be mapped or stored, whatever they contain (cleaned to be storable)."""
    count = 0
    for item in items:
        raw = item.raw if isinstance(item.raw, Mapping) else {"_value": item.raw}
        session.add(
            QuarantinedRecord(
                installation_id=installation_id,
                entity=str(entity),
                remote_id=short_key(item.remote_id),
                reason=db_text(str(item.reason))[:2000],
                raw=json_safe(raw),
            )
        )
        count += 1
    return count


def get_cursor(session: Session, installation_id: str, entity: Entity) -> SyncCursor | None:
    return session.get(SyncCursor, (installation_id, str(entity)))


def save_cursor(session: Session, installation_id: str, entity: Entity, cursor: str | None, *, synced: int) -> None:
    row = get_cursor(session, installation_id, entity)
    if row is None:
        row = SyncCursor(installation_id=installation_id, entity=str(entity), records_synced=0)
        session.add(row)
    row.cursor = cursor
    row.records_synced = (row.records_synced or 0) + synced
    row.last_run_at = datetime.now(UTC)
    row.last_error = ""


def count_records(session: Session, installation_id: str, entity: Entity | str) -> int:
    stmt = select(func.count()).where(
        CrmRecord.installation_id == installation_id, CrmRecord.entity == str(entity), CrmRecord.deleted.is_(False)
    )
    return int(session.execute(stmt).scalar_one())


def live_ids(session: Session, installation_id: str, entity: Entity | str) -> list[str]:
    """Remote ids of the tenant's live records of one entity (a CRM's reconcile compares against them)."""
    stmt = select(CrmRecord.remote_id).where(
        CrmRecord.installation_id == installation_id, CrmRecord.entity == str(entity), CrmRecord.deleted.is_(False)
    )
    return list(session.execute(stmt).scalars())


def load_records(session: Session, installation_id: str, entity: Entity) -> list[Record]:
    """One entity's live records (read as load_snapshot reads them), in id order."""
    return sorted((entity_from_dict(entity, payload) for payload in live_payloads(session, installation_id, entity)),
                  key=_remote_id)


def load_snapshot(session: Session, installation_id: str, *, chunk: int = 2000) -> Snapshot:
    """The tenant's live records as the loops see them, each entity in id order (the same snapshot on SQLite and
    PostgreSQL). Rows are read through the driver, not as ORM entities (2-3x faster), streamed and decoded one at a
    time (a whole entity's JSON dicts held at once cost more than the records and fragment the heap for the rest of
    the run), and equal ids and codes share one string object."""
    records: list[Record] = []
    strings: dict[Any, Any] = {}  # ids and texts, id tuples, (datetime, text) and custom-field keys: codec.record_from_dict
    with gc_paused():  # acyclic records only: the collector's full passes made loading grow faster than the tenant
        for entity in Entity:
            decoded = [entity_from_dict(entity, payload, strings) for payload in live_payloads(session, installation_id, entity, chunk)]
            decoded.sort(key=_remote_id)
            records.extend(decoded)
        pipelines = sorted((pipeline_from_dict(p) for p in live_payloads(session, installation_id, PIPELINE, chunk)), key=_remote_id)
        return Snapshot.of(records, pipelines)


_LIVE_PAYLOADS = select(cast(CrmRecord.__table__.c.payload, Text)).where(
    CrmRecord.__table__.c.installation_id == bindparam("installation_id"), CrmRecord.__table__.c.entity == bindparam("entity"),
    CrmRecord.__table__.c.deleted.is_(False))


def live_payloads(session: Session, installation_id: str, entity: Entity | str, chunk: int = 2000) -> Iterator[dict[str, Any]]:
    """The payloads of one entity's live records, streamed (`chunk` rows per fetch; a server-side cursor on
    PostgreSQL) as the driver's text, each decoded by the store's JSON reader: no ORM rows, no per-row processors."""
    rows = session.connection().execute(_LIVE_PAYLOADS, {"installation_id": installation_id, "entity": str(entity)},
                                        execution_options={"stream_results": True, "yield_per": chunk})
    return (json_loads(text) for text in rows.scalars())


def _remote_id(record: Record | Pipeline) -> str:
    return record.remote_id


def purge_record(session: Session, installation_id: str, entity: Entity, remote_id: str) -> None:
    """Forget one record entirely (privacy deletion)."""
    row = session.get(CrmRecord, (installation_id, str(entity), remote_id))
    if row is not None:
        session.delete(row)
