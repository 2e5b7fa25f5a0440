"""Sync one installation through the CRM port into the store, resumably.

Each batch is stored in its own transaction together with the cursor that follows it,
so a crash loses at most the batch in flight and the next run resumes there. Records
that could not be mapped are quarantined (kept with their reason) and the sync goes on.
A daily API budget running out ends the run cleanly; per-window limits reach RQ's Retry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.store import Store
from connector.store.clean import short_key
from connector.store.records import count_records, get_cursor, quarantine, save_pipelines, upsert_checked
from connector.store.tables import SyncCursor
from crm_adapters.codec import gc_paused
from crm_adapters.errors import CrmBudgetExhausted, CrmRateLimited
from crm_adapters.model import Entity
from crm_adapters.port import Batch, CrmPort, Cursor, Quarantined
from jobs.reading import Readers

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int | None], None]
"""progress(entity, synced so far in this run, estimated total or None)."""

INCREMENTAL_ENTITIES = tuple(e for e in Entity if e is not Entity.USER)  # users: read_users(), whole each time


@dataclass
class SyncReport:
    """What one sync run did, per entity, and why it stopped early if it did."""

    synced: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)
    quarantined: int = 0
    read: int = 0  # activities whose text NLP read (jobs/reading.py)
    batches: int = 0
    stopped: str = ""  # non-empty: the run ended early (daily API budget), cursors saved
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.synced.values())


def sync_installation(
    store: Store,
    installation_id: str,
    crm: CrmPort,
    *,
    progress: Progress | None = None,
    entities: tuple[Entity, ...] = INCREMENTAL_ENTITIES,
) -> SyncReport:
    """Pipelines, users, then every entity in sync order from its stored cursor."""
    started = time.monotonic()
    report = SyncReport()
    try:
        _sync_reference(store, installation_id, crm, report, progress)
        for entity in entities:
            _sync_entity(store, installation_id, crm, entity, report, progress)
    except CrmBudgetExhausted as exc:
        report.stopped = exc.stop_note()
        logger.warning("sync of %s stopped: daily API budget exhausted; cursors saved", installation_id)
    report.seconds = time.monotonic() - started
    return report


def _sync_reference(store: Store, installation_id: str, crm: CrmPort, report: SyncReport, progress: Progress | None) -> None:
    """Pipelines and users are small and read whole: stage semantics and roles must be current."""
    pipelines = crm.read_pipelines()
    users = crm.read_users()
    unmapped = tuple(getattr(crm, "quarantined_users", ()))  # owners the adapter could not map
    with store.session() as session:
        changed = save_pipelines(session, installation_id, pipelines)
        more, refused = upsert_checked(session, installation_id, Entity.USER, users)
        changed += more
        _quarantine(session, installation_id, Entity.USER, unmapped)
        _save_progress(session, installation_id, Entity.USER, None, len(users), len(users), reset=True)
    report.quarantined += refused + len(unmapped)
    report.synced["pipeline"] = len(pipelines)
    report.synced[Entity.USER.value] = len(users)
    report.changed["reference"] = changed
    if progress:
        progress(Entity.USER.value, len(users), len(users))


def _sync_entity(
    store: Store, installation_id: str, crm: CrmPort, entity: Entity, report: SyncReport, progress: Progress | None
) -> None:
    with store.session() as session:
        row = get_cursor(session, installation_id, entity)
        since = Cursor(row.cursor) if row is not None and row.cursor else None
    estimate = _estimate(store, installation_id, crm, entity, since)
    synced = 0
    if progress:
        progress(entity.value, 0, estimate)
    try:
        synced = _read_batches(store, installation_id, crm, entity, since, estimate, report, progress)
    except CrmRateLimited as exc:
        with store.session() as session:
            row = get_cursor(session, installation_id, entity)
            if row is not None:
                row.last_error = f"rate limited: {exc}"[:300]
        raise
    report.synced[entity.value] = synced


def _read_batches(
    store: Store, installation_id: str, crm: CrmPort, entity: Entity, since: Cursor | None,
    estimate: int | None, report: SyncReport, progress: Progress | None,
) -> int:
    synced = 0
    with Readers(store, installation_id) as readers:  # reads a batch while the next page is fetched
        for batch in crm.read_changes(entity, since=since):
            synced += len(batch.records)
            with gc_paused():  # a batch's objects die with it: one young collection after it, not dozens during it
                changed, refused = store_batch(store, installation_id, entity, batch,
                                                since is None and synced == len(batch.records), estimate)
                if entity is Entity.ACTIVITY and changed:  # text is read once, as it is stored (jobs/reading.py)
                    readers.submit_ids([r.remote_id for r in batch.records])
            report.batches += 1
            report.quarantined += len(batch.quarantined) + refused
            report.changed[entity.value] = report.changed.get(entity.value, 0) + changed
            if progress:
                progress(entity.value, synced, max(estimate, synced) if estimate is not None else None)
    report.read += readers.saved
    return synced


def store_batch(
    store: Store, installation_id: str, entity: Entity, batch: Batch, first_of_backfill: bool, estimate: int | None
) -> tuple[int, int]:
    """One transaction: records, quarantined raws and the cursor that follows them. Records the store cannot
    key (ids too long, NUL characters) are quarantined too: one bad record never fails its batch."""
    with store.session() as session:
        changed, refused = upsert_checked(session, installation_id, entity, batch.records)
        _quarantine(session, installation_id, entity, batch.quarantined)
        cursor = batch.cursor.value if batch.cursor is not None else None
        _save_progress(session, installation_id, entity, cursor, len(batch.records), estimate, reset=first_of_backfill)
    return changed, refused


def _quarantine(session: Session, installation_id: str, entity: Entity, items: tuple[Quarantined, ...]) -> None:
    if not items:
        return
    quarantine(session, installation_id, entity, items)
    for item in items:
        keys = sorted(map(str, item.raw))[:20] if isinstance(item.raw, Mapping) else []
        logger.warning("quarantined %s %s: %s (raw keys: %s)", entity.value, short_key(item.remote_id),
                       str(item.reason)[:300], ",".join(k[:40] for k in keys))


def _save_progress(
    session: Session, installation_id: str, entity: Entity, cursor: str | None, synced: int, estimate: int | None, *, reset: bool
) -> None:
    """Cursor plus progress (records_synced of estimated_total) for the CLI bar and the admin page."""
    row = get_cursor(session, installation_id, entity)
    if row is None:
        row = SyncCursor(installation_id=installation_id, entity=entity.value, records_synced=0)
        session.add(row)
    if cursor is not None or entity is Entity.USER:
        row.cursor = cursor
    row.records_synced = synced if reset else (row.records_synced or 0) + synced
    if estimate is not None:
        row.estimated_total = max(estimate, row.records_synced)
    row.last_run_at = datetime.now(UTC)
    row.last_error = ""


def _estimate(store: Store, installation_id: str, crm: CrmPort, entity: Entity, since: Cursor | None) -> int | None:
    """How many records this run will likely read: the adapter's count if it has one, else the store's."""
    counter = getattr(crm, "estimate", None)
    if callable(counter):
        try:
            value = counter(entity, since=since)
            return int(value) if value is not None else None
        except Exception:  # an estimate is a nicety; never fail a sync for it
            logger.info("no estimate for %s", entity.value, exc_info=True)
    if since is not None:
        return None
    with store.session() as session:
        known = count_records(session, installation_id, entity)
    return known or None


def sync_status(store: Store, installation_id: str) -> list[dict[str, object]]:
    """Per-entity progress for the admin page: cursor age, synced of estimate, last error."""
    with store.session() as session:
        rows = session.execute(select(SyncCursor).where(SyncCursor.installation_id == installation_id)).scalars()
        return [
            {
                "entity": row.entity,
                "records_synced": row.records_synced,
                "estimated_total": row.estimated_total,
                "last_run_at": row.last_run_at.isoformat() if row.last_run_at else None,
                "last_error": row.last_error,
            }
            for row in rows
        ]
