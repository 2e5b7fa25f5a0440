"""The outbox: every CRM write is a row first, then applied through the adapter in batches.

A row's idempotency key comes from the decision key, so recording the same decision twice
adds nothing, and the adapter finds the task or note it already made for a key; a job
killed mid-apply re-applies its pending rows and the CRM still ends with one of each.
Each kind of row has a sender (jobs.state.senders); all around a send lives here, for every kind:
attempts, retries, the daily budget's stop, a dead grant, rows given up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from connector.store import Store
from connector.store.tables import DecisionRecord, OutboxItem, OutboxStatus, Proposal, WriteStatus, new_id
from crm_adapters.errors import CrmAuthError, CrmBudgetExhausted, CrmError
from crm_adapters.port import CrmPort
from jobs.state.senders import SENDERS, UNCHANGED, WAIT, Outcome, Sender

logger = logging.getLogger(__name__)

BATCH = 100
CHUNK = 500  # ids per IN (...): under every database's bound-parameter limit
MAX_ATTEMPTS = 5
WAITING = (OutboxStatus.PENDING, OutboxStatus.FAILED)  # not sent yet, and still to be sent by a later run
RECONNECT = "waiting for the CRM connection to be renewed (reconnect the app in the admin page)"


@dataclass
class OutboxReport:
    sent: int = 0
    unchanged: int = 0
    failed: int = 0  # not sent this run and retried later (including a batch the daily budget turned away)
    dead: int = 0
    api_calls: int = 0
    stopped: str = ""  # non-empty: the CRM's daily API budget ran out; the rest waits for the next run


def enqueue(
    session: Session, installation_id: str, key: str, kind: str, payload: dict[str, Any], decision_id: str | None = None
) -> OutboxItem | None:
    """Add a write unless one with this key exists (then None: it is queued or done already)."""
    existing = session.execute(
        select(OutboxItem.id).where(OutboxItem.installation_id == installation_id, OutboxItem.idempotency_key == key)
    ).first()
    if existing is not None:
        return None
    item = OutboxItem(installation_id=installation_id, idempotency_key=key, kind=kind, payload=payload,
                      decision_id=decision_id, status=OutboxStatus.PENDING, attempts=0)
    session.add(item)
    return item


def enqueue_many(session: Session, installation_id: str, items: Sequence[Queued]) -> int:
    """enqueue() for a whole loop run: one query for the keys already queued, one bulk insert (in `at` order)."""
    fresh: dict[str, Queued] = {}
    for item in items:
        fresh.setdefault(item.key, item)
    keys = list(fresh)
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        for known in session.execute(select(OutboxItem.idempotency_key).where(
                OutboxItem.installation_id == installation_id, OutboxItem.idempotency_key.in_(chunk))).scalars():
            fresh.pop(known, None)
    rows = [{"id": new_id(), "installation_id": installation_id, "idempotency_key": q.key, "kind": q.kind,
             "payload": q.payload, "decision_id": q.decision_id, "status": OutboxStatus.PENDING, "attempts": 0, "error": "",
             "created_at": q.at} for q in fresh.values()]
    if rows:
        session.execute(insert(OutboxItem), rows)
    return len(rows)


@dataclass(frozen=True)
class Queued:
    """A write waiting to be queued by enqueue_many; `at` keeps the order it was decided in."""

    key: str
    kind: str
    payload: dict[str, Any]
    decision_id: str | None
    at: datetime


def apply(store: Store, installation_id: str, crm: CrmPort, *, progress: Callable[[int, int], None] | None = None) -> OutboxReport:
    """Send every pending (or retryable failed) write, kind by kind in the senders' order, in batches."""
    report = OutboxReport()
    with store.session() as session:
        report.dead += give_up_exhausted(session, installation_id)
        ids = session.execute(
            select(OutboxItem.id, OutboxItem.kind).where(
                OutboxItem.installation_id == installation_id, OutboxItem.status.in_(WAITING),
                OutboxItem.attempts < MAX_ATTEMPTS,
            ).order_by(OutboxItem.created_at, OutboxItem.id)
        ).all()
    total, done = len(ids), 0
    for kind, sender in SENDERS.items():
        chosen = [row.id for row in ids if row.kind == kind]
        for start in range(0, len(chosen), BATCH):
            if report.stopped:
                return report
            _apply_batch(store, crm, sender, chosen[start : start + BATCH], report)
            done += len(chosen[start : start + BATCH])
            if progress:
                progress(done, total)
    return report


def _apply_batch(store: Store, crm: CrmPort, sender: Sender, ids: Sequence[str], report: OutboxReport) -> None:
    items = _take(store, sender, ids, report)
    if not items:
        return
    try:
        outcome, calls = sender.send(crm, items)
    except CrmAuthError as exc:  # the grant died: the writes wait for the reconnect, the engine marks needs_reauth
        _defer(store, items, exc, report, reason=RECONNECT)
        raise
    except CrmBudgetExhausted as exc:  # as sync does: end cleanly, RQ retries cannot help today
        _defer(store, items, exc, report)
        report.stopped = exc.stop_note()
        logger.warning("outbox of %s stopped: daily API budget exhausted", items[0].installation_id)
        return
    except CrmError as exc:
        _mark_failed(store, items, exc, report)
        if exc.retryable:
            raise
        return
    report.api_calls += calls
    _mark_sent(store, items, outcome, report)


def _take(store: Store, sender: Sender, ids: Sequence[str], report: OutboxReport) -> list[OutboxItem]:
    """The batch's rows that go now, each with one attempt spent before the CRM is called (a job killed mid-send
    still counts it); rows that must wait are left as they are, rows that never can go become dead."""
    taken = []
    with store.session() as session:
        for item in session.execute(select(OutboxItem).where(OutboxItem.id.in_(ids))).scalars():
            why_not = sender.prepare(session, item)
            if why_not == WAIT:
                continue
            if why_not is not None:
                item.status, item.error = OutboxStatus.DEAD, why_not
                report.dead += 1
                _follow_up(session, item)
                continue
            item.attempts += 1
            taken.append(item)
    return taken


def _mark_sent(store: Store, items: Sequence[OutboxItem], outcome: Outcome, report: OutboxReport) -> None:
    with store.session() as session:
        held = _load_rows(session, items)  # noqa: F841 (held: see _load_rows)
        for detached in items:
            item = session.get(OutboxItem, detached.id)
            if item is None:
                continue
            status, remote_id, error = outcome[item.idempotency_key]
            item.attempts = detached.attempts
            item.status = OutboxStatus.SENT if status == UNCHANGED else status
            if status == OutboxStatus.FAILED and item.attempts >= MAX_ATTEMPTS:
                item.status = OutboxStatus.DEAD
            item.remote_id = remote_id
            item.error = error
            _count(report, status, item.status)
            _follow_up(session, item)


def _count(report: OutboxReport, status: str, final: str) -> None:
    if final == OutboxStatus.DEAD:
        report.dead += 1
    elif status == UNCHANGED:
        report.unchanged += 1
    elif final == OutboxStatus.SENT:
        report.sent += 1
    else:
        report.failed += 1


def _load_rows(session: Session, items: Sequence[OutboxItem], *, follow_ups: bool = True) -> list[object]:
    """A batch's rows, and the decisions and proposals their results tie back to, loaded in a few queries: the
    per-row `session.get`s that follow then find them without one query (and one autoflush) each, which cost two
    thirds of a first run's write-back. The caller holds the list: the session's identity map keeps only weak
    references, so rows nobody holds are gone again before they are asked for."""
    held: list[object] = []
    for start in range(0, len(items), CHUNK):
        held += session.execute(select(OutboxItem).where(OutboxItem.id.in_([i.id for i in items[start:start + CHUNK]]))).scalars()
    if not follow_ups:
        return held
    decisions = sorted({i.decision_id for i in items if i.decision_id})
    proposals = sorted({str(i.payload["proposal_id"]) for i in items if (i.payload or {}).get("proposal_id")})
    for table, ids in ((DecisionRecord, decisions), (Proposal, proposals)):
        for start in range(0, len(ids), CHUNK):
            held += session.execute(select(table).where(table.id.in_(ids[start:start + CHUNK]))).scalars()
    return held


def _follow_up(session: Session, item: OutboxItem) -> None:
    """Tie the result back: decision write status, and a proposal's task id once the task exists."""
    if item.decision_id:
        decision = session.get(DecisionRecord, item.decision_id)
        if decision is not None and decision.write_status in (WriteStatus.PENDING, WriteStatus.FAILED, WriteStatus.NONE):
            decision.write_status = {OutboxStatus.SENT: WriteStatus.WRITTEN, OutboxStatus.DEAD: WriteStatus.FAILED}.get(
                item.status, item.status)
    proposal_id = item.payload.get("proposal_id")
    if proposal_id and item.status == OutboxStatus.SENT:
        proposal = session.get(Proposal, proposal_id)
        if proposal is not None and not proposal.task_remote_id:
            proposal.task_remote_id = item.remote_id


def _mark_failed(store: Store, items: Sequence[OutboxItem], exc: CrmError, report: OutboxReport) -> None:
    reason = f"{type(exc).__name__}: {str(exc)[:300]}"
    logger.warning("outbox batch of %d failed: %s", len(items), type(exc).__name__)
    with store.session() as session:
        held = _load_rows(session, items, follow_ups=False)  # noqa: F841 (held: see _load_rows)
        for detached in items:
            item = session.get(OutboxItem, detached.id)
            if item is None:
                continue
            item.attempts = detached.attempts
            item.status = OutboxStatus.DEAD if not exc.retryable or item.attempts >= MAX_ATTEMPTS else OutboxStatus.FAILED
            item.error = reason
            report.dead += item.status == OutboxStatus.DEAD
            report.failed += item.status == OutboxStatus.FAILED


def _defer(store: Store, items: Sequence[OutboxItem], exc: CrmError, report: OutboxReport, reason: str = "") -> None:
    """The budget (or a dead grant) turned the batch away: give the attempt back, so a long quota outage or
    a reconnect that takes days never counts towards MAX_ATTEMPTS; status stays as it was (pending or failed)."""
    reason = reason or f"deferred, {type(exc).__name__}: {str(exc)[:300]}"
    with store.session() as session:
        held = _load_rows(session, items, follow_ups=False)  # noqa: F841 (held: see _load_rows)
        for detached in items:
            item = session.get(OutboxItem, detached.id)
            if item is None:
                continue
            item.attempts = max(0, detached.attempts - 1)
            item.error = reason
            report.failed += 1


def give_up_exhausted(session: Session, installation_id: str) -> int:
    """Rows at the attempt limit that were never marked (the job sending them was killed each time)
    become `dead` with their reason: shown on the admin status page with a Retry button, never stuck."""
    rows = session.execute(select(OutboxItem).where(
        OutboxItem.installation_id == installation_id, OutboxItem.status.in_(WAITING), OutboxItem.attempts >= MAX_ATTEMPTS,
    )).scalars().all()
    for item in rows:
        last = item.error or "the job sending it stopped each time before the CRM answered"
        item.status, item.error = OutboxStatus.DEAD, f"gave up after {item.attempts} attempts: {last}"[:500]
        _follow_up(session, item)
    return len(rows)


def waiting(session: Session, installation_id: str) -> dict[str, int]:
    """Writes not sent yet (pending or to retry) and writes given up (dead): what a run must not call done."""
    rows = session.execute(select(OutboxItem.status, func.count()).where(
        OutboxItem.installation_id == installation_id, OutboxItem.status.in_((*WAITING, OutboxStatus.DEAD)),
    ).group_by(OutboxItem.status)).all()
    counts = {status: int(n) for status, n in rows}
    return {"waiting": sum(counts.get(s, 0) for s in WAITING), "given_up": counts.get(OutboxStatus.DEAD, 0)}
