"""The outbox: every CRM write is a row first, then applied through the adapter in batches.

A row's idempotency key comes from the decision key, so recording the same decision twice
adds nothing, and the adapter finds the task or note it already made for a key; a job
killed mid-apply re-applies its pending rows and the CRM still ends with one of each.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from connector.store import Store
from connector.store.tables import DecisionRecord, OutboxItem, Proposal, new_id
from crm_adapters.errors import CrmAuthError, CrmBudgetExhausted, CrmError
from crm_adapters.model import Entity
from crm_adapters.port import CrmPort
from crm_adapters.writes import AppField, FieldUpdate, NoteDraft, TaskDraft

logger = logging.getLogger(__name__)

BATCH = 100
MAX_ATTEMPTS = 5
WAITING = ("pending", "failed")  # not sent yet, and still to be sent by a later run
RECONNECT = "waiting for the CRM connection to be renewed (reconnect the app in the admin page)"


@dataclass
class OutboxReport:
    sent: int = 0
    unchanged: int = 0
    failed: int = 0  # not sent this run and retried later (including a batch the daily budget turned away)
    dead: int = 0
    api_calls: int = 0
    stopped: str = ""  # non-empty: the CRM's daily API budget ran out; the rest waits for the next run


KEY_LENGTH = 200  # OutboxItem.idempotency_key's column


def key(prefix: str, *parts: str) -> str:
    """Every outbox idempotency key, built here only: '<prefix>:<part>...' (no prefix: a decision's own key),
    cut to the column. Rebuild a key from what was stored (a proposal's fingerprint, not its source)."""
    return ":".join((prefix, *parts) if prefix else parts)[:KEY_LENGTH]


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
                      decision_id=decision_id, status="pending", attempts=0)
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
             "payload": q.payload, "decision_id": q.decision_id, "status": "pending", "attempts": 0, "error": "",
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
    """Send every pending (or retryable failed) write, kind by kind, in batches."""
    report = OutboxReport()
    with store.session() as session:
        report.dead += give_up_exhausted(session, installation_id)
        ids = session.execute(
            select(OutboxItem.id, OutboxItem.kind).where(
                OutboxItem.installation_id == installation_id, OutboxItem.status.in_(("pending", "failed")),
                OutboxItem.attempts < MAX_ATTEMPTS,
            ).order_by(OutboxItem.created_at, OutboxItem.id)
        ).all()
    total, done = len(ids), 0
    for kind in ("field", "task", "note"):
        chosen = [row.id for row in ids if row.kind == kind]
        for start in range(0, len(chosen), BATCH):
            if report.stopped:
                return report
            _apply_batch(store, installation_id, crm, kind, chosen[start : start + BATCH], report)
            done += len(chosen[start : start + BATCH])
            if progress:
                progress(done, total)
    return report


def _apply_batch(store: Store, installation_id: str, crm: CrmPort, kind: str, ids: Sequence[str], report: OutboxReport) -> None:
    with store.session() as session:
        items = list(session.execute(select(OutboxItem).where(OutboxItem.id.in_(ids))).scalars())
        for item in items:
            item.attempts += 1
    try:
        outcome, calls = _send(crm, kind, items)
    except CrmAuthError as exc:  # the grant died: the writes wait for the reconnect, the engine marks needs_reauth
        _defer(store, items, exc, report, reason=RECONNECT)
        raise
    except CrmError as exc:
        if isinstance(exc, CrmBudgetExhausted):  # as sync does: end cleanly, RQ retries cannot help today
            _defer(store, items, exc, report)
            report.stopped = exc.stop_note()
            logger.warning("outbox of %s stopped: daily API budget exhausted", installation_id)
            return
        _mark_failed(store, items, exc, report)
        if exc.retryable:
            raise
        return
    report.api_calls += calls
    _mark_sent(store, items, outcome, report)


Outcome = dict[str, tuple[str, str | None, str]]


def _send(crm: CrmPort, kind: str, items: Sequence[OutboxItem]) -> tuple[Outcome, int]:
    """Send one batch; per item key -> (status, remote id, error), and the API calls it took."""
    if kind == "field":
        updates = [_field_update(item.payload) for item in items]
        result = crm.write_fields(updates)
        failed = {f.key: f for f in result.failed}
        out: Outcome = {}
        for item, update in zip(items, updates, strict=True):
            failure = failed.get(update.remote_id)
            if failure is None:
                status = "unchanged" if update.remote_id in result.unchanged and update.remote_id not in result.written else "sent"
                out[item.idempotency_key] = (status, update.remote_id, "")
            else:
                out[item.idempotency_key] = ("failed" if failure.retryable else "dead", None, failure.reason[:500])
        return out, result.api_calls
    if kind == "task":
        refs = crm.create_tasks([_task_draft(item) for item in items])
    else:
        refs = crm.create_notes([NoteDraft(item.idempotency_key, item.payload["body"], item.payload["deal_id"]) for item in items])
    made = {ref.idempotency_key: ref for ref in refs}
    return {
        item.idempotency_key: ("sent", made[item.idempotency_key].remote_id, "") if item.idempotency_key in made
        else ("failed", None, "the CRM returned no object for this key")
        for item in items
    }, 1


def _field_update(payload: dict[str, Any]) -> FieldUpdate:
    return FieldUpdate(Entity(payload["entity"]), payload["remote_id"], {AppField(k): v for k, v in payload["values"].items()})


def _task_draft(item: OutboxItem) -> TaskDraft:
    p = item.payload
    return TaskDraft(
        idempotency_key=item.idempotency_key, subject=p["subject"], body=p.get("body", ""), owner_id=p.get("owner_id"),
        due_at=datetime.fromisoformat(p["due_at"]), deal_id=p.get("deal_id"), account_id=p.get("account_id"),
        priority=str(p.get("priority") or "normal"),
    )


def _mark_sent(store: Store, items: Sequence[OutboxItem], outcome: Outcome, report: OutboxReport) -> None:
    with store.session() as session:
        for detached in items:
            item = session.get(OutboxItem, detached.id)
            if item is None:
                continue
            status, remote_id, error = outcome[item.idempotency_key]
            item.attempts = detached.attempts
            item.status = "sent" if status == "unchanged" else status
            if status == "failed" and item.attempts >= MAX_ATTEMPTS:
                item.status = "dead"
            item.remote_id = remote_id
            item.error = error
            _count(report, status, item.status)
            _follow_up(session, item)


def _count(report: OutboxReport, status: str, final: str) -> None:
    if final == "dead":
        report.dead += 1
    elif status == "unchanged":
        report.unchanged += 1
    elif final == "sent":
        report.sent += 1
    else:
        report.failed += 1


def _follow_up(session: Session, item: OutboxItem) -> None:
    """Tie the result back: decision write status, and a proposal's task id once the task exists."""
    if item.decision_id:
        decision = session.get(DecisionRecord, item.decision_id)
        if decision is not None and decision.write_status in ("pending", "failed", ""):
            decision.write_status = {"sent": "written", "dead": "failed"}.get(item.status, item.status)
    proposal_id = item.payload.get("proposal_id")
    if proposal_id and item.status == "sent":
        proposal = session.get(Proposal, proposal_id)
        if proposal is not None and not proposal.task_remote_id:
            proposal.task_remote_id = item.remote_id


def _mark_failed(store: Store, items: Sequence[OutboxItem], exc: CrmError, report: OutboxReport) -> None:
    reason = f"{type(exc).__name__}: {str(exc)[:300]}"
    logger.warning("outbox batch of %d failed: %s", len(items), type(exc).__name__)
    with store.session() as session:
        for detached in items:
            item = session.get(OutboxItem, detached.id)
            if item is None:
                continue
            item.attempts = detached.attempts
            item.status = "dead" if not exc.retryable or item.attempts >= MAX_ATTEMPTS else "failed"
            item.error = reason
            report.dead += item.status == "dead"
            report.failed += item.status == "failed"


def _defer(store: Store, items: Sequence[OutboxItem], exc: CrmError, report: OutboxReport, reason: str = "") -> None:
    """The budget (or a dead grant) turned the batch away: give the attempt back, so a long quota outage or
    a reconnect that takes days never counts towards MAX_ATTEMPTS; status stays as it was (pending or failed)."""
    reason = reason or f"deferred, {type(exc).__name__}: {str(exc)[:300]}"
    with store.session() as session:
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
        item.status, item.error = "dead", f"gave up after {item.attempts} attempts: {last}"[:500]
        _follow_up(session, item)
    return len(rows)


def waiting(session: Session, installation_id: str) -> dict[str, int]:
    """Writes not sent yet (pending or to retry) and writes given up (dead): what a run must not call done."""
    from sqlalchemy import func

    rows = session.execute(select(OutboxItem.status, func.count()).where(
        OutboxItem.installation_id == installation_id, OutboxItem.status.in_((*WAITING, "dead")),
    ).group_by(OutboxItem.status)).all()
    counts = {status: int(n) for status, n in rows}
    return {"waiting": counts.get("pending", 0) + counts.get("failed", 0), "given_up": counts.get("dead", 0)}
