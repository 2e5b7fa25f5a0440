"""Stored NLP readings of activities: which need reading, saving a batch, loading the current ones.

A reading is current when it was read with the reader's taxonomy version from the activity as it is
now (its text_hash is the activity row's payload_hash); anything else is read again.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from connector.store.bulk import probe_each, upsert
from connector.store.tables import ActivityReadingRow, CrmRecord
from crm_adapters.model import Entity

_ACTIVITY = str(Entity.ACTIVITY)


def unread(session: Session, installation_id: str, version: str, *, ids: Sequence[str] | None = None,
           after: str = "", limit: int = 500) -> list[tuple[str, dict[str, Any], str]]:
    """Live activities with no current reading, by id (after `after`, or among `ids`): (id, payload, hash)."""
    reading = ActivityReadingRow
    stmt = (
        select(CrmRecord.remote_id, CrmRecord.payload, CrmRecord.payload_hash)
        .outerjoin(reading, and_(reading.installation_id == CrmRecord.installation_id,
                                 reading.activity_id == CrmRecord.remote_id))
        .where(CrmRecord.installation_id == installation_id, CrmRecord.entity == _ACTIVITY,
               CrmRecord.deleted.is_(False),
               or_(reading.activity_id.is_(None), reading.taxonomy_version != version,
                   reading.text_hash != CrmRecord.payload_hash))
    )
    if ids is not None and session.get_bind().dialect.name == "postgresql":
        among = stmt
        stmt = probe_each(ids, lambda key: among.where(CrmRecord.remote_id == key))
    elif ids is not None:
        stmt = stmt.where(CrmRecord.remote_id.in_(list(ids)))
    else:
        stmt = stmt.where(CrmRecord.remote_id > after).order_by(CrmRecord.remote_id).limit(limit)
    return [(r, p, h) for r, p, h in session.execute(stmt).all()]


def save(session: Session, installation_id: str, version: str, rows: Sequence[tuple[str, str, dict[str, Any]]]) -> int:
    """Insert or replace readings (activity id, text hash, reading JSON) in one statement."""
    if not rows:
        return 0
    now = datetime.now(UTC)
    values = [{"installation_id": installation_id, "activity_id": a, "taxonomy_version": version, "text_hash": h,
               "reading": r, "read_at": now} for a, h, r in rows]
    upsert(session, ActivityReadingRow, values, key=("installation_id", "activity_id"), on_conflict=_replace)
    return len(values)


def _replace(stmt: Any) -> Any:
    return stmt.on_conflict_do_update(
        index_elements=["installation_id", "activity_id"],
        set_={k: stmt.excluded[k] for k in ("taxonomy_version", "text_hash", "reading", "read_at")},
    )


def current(session: Session, installation_id: str, version: str, *, chunk: int = 5000, ids: Sequence[str] | None = None,
            ) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every current reading of the tenant's live activities (or of those of `ids`): (activity id, reading JSON), streamed."""
    if ids is not None:
        for start in range(0, len(ids), 500):
            yield from _current(session, installation_id, version, chunk=chunk, among=list(ids[start:start + 500]))
        return
    yield from _current(session, installation_id, version, chunk=chunk)


def _current(session: Session, installation_id: str, version: str, *, chunk: int, among: list[str] | None = None,
             ) -> Iterator[tuple[str, dict[str, Any]]]:
    reading = ActivityReadingRow
    stmt = (
        select(reading.activity_id, reading.reading)
        .join(CrmRecord, and_(CrmRecord.installation_id == reading.installation_id, CrmRecord.entity == _ACTIVITY,
                              CrmRecord.remote_id == reading.activity_id))
        .where(reading.installation_id == installation_id, reading.taxonomy_version == version,
               reading.text_hash == CrmRecord.payload_hash, CrmRecord.deleted.is_(False))
        .execution_options(yield_per=chunk)
    )
    if among is not None:
        stmt = stmt.where(reading.activity_id.in_(among))
    yield from ((str(activity_id), data) for activity_id, data in session.execute(stmt))
