"""Verdicts given outside the CRM (admin page, cards) close the CRM task their proposal opened.

record_verdict queues one "task_close" outbox row per proposal (key task_close:<proposal id>,
so a second verdict call adds nothing). jobs.engine.outbox.apply does not send this kind; the engine
calls `apply` here right after it, when the proposal's task exists (it may have been created
by that very outbox run). A closed task is never read back as a second verdict: read_back
only looks at pending proposals, and this proposal is settled already.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.store import Store
from connector.store.tables import OutboxItem, OutboxKind, OutboxStatus, Proposal, ProposalStatus
from crm_adapters.errors import CrmAuthError, CrmBudgetExhausted, CrmError
from crm_adapters.model import TaskStatus
from crm_adapters.port import CrmPort
from crm_adapters.writes import TaskClosure, WriteResult
from jobs.engine import outbox

logger = logging.getLogger(__name__)

KIND = OutboxKind.TASK_CLOSE
APPROVED_NOTE = "approved in salesloop"


def key_for(proposal_id: str) -> str:
    return outbox.key(KIND, proposal_id)


def queue(session: Session, row: Proposal) -> OutboxItem | None:
    """Queue closing the task of a proposal just settled outside the CRM; None when already queued."""
    if row.status not in (ProposalStatus.APPROVED, ProposalStatus.REJECTED):
        raise ValueError(f"proposal {row.id} is {row.status}: only a settled proposal closes its task")
    approved = row.status == ProposalStatus.APPROVED
    comment = (row.reason or APPROVED_NOTE) if approved else (row.reason or "")
    return outbox.enqueue(session, row.installation_id, key_for(row.id), KIND, {
        "proposal_id": row.id, "status": (TaskStatus.COMPLETED if approved else TaskStatus.REJECTED).value,
        "comment": comment[:1000],
    })


def apply(store: Store, installation_id: str, crm: CrmPort) -> outbox.OutboxReport:
    """Close the tasks of every queued closure whose task exists; the others wait for their task."""
    report = outbox.OutboxReport()
    with store.session() as session:
        ready = _ready(session, installation_id)
    for start in range(0, len(ready), outbox.BATCH):
        if report.stopped:
            break
        _send(store, crm, ready[start : start + outbox.BATCH], report)
    return report


def _ready(session: Session, installation_id: str) -> list[tuple[str, TaskClosure]]:
    """(outbox id, closure) for rows whose task is known; rows whose task can never exist become dead."""
    items = session.execute(select(OutboxItem).where(
        OutboxItem.installation_id == installation_id, OutboxItem.kind == KIND,
        OutboxItem.status.in_((OutboxStatus.PENDING, OutboxStatus.FAILED)), OutboxItem.attempts < outbox.MAX_ATTEMPTS,
    ).order_by(OutboxItem.created_at, OutboxItem.id)).scalars()
    ready = []
    for item in items:
        proposal = session.get(Proposal, item.payload.get("proposal_id"))
        if proposal is not None and proposal.task_remote_id:
            ready.append((item.id, TaskClosure(proposal.task_remote_id, TaskStatus(item.payload["status"]),
                                               str(item.payload.get("comment") or ""))))
        elif proposal is None or _task_dead(session, proposal):
            item.status, item.error = OutboxStatus.DEAD, "the proposal's CRM task was never created: nothing to close"
    return ready


def _task_dead(session: Session, proposal: Proposal) -> bool:
    """The outbox row that was to create this proposal's task gave up (so no task will ever exist)."""
    keys = (outbox.key("approval", proposal.fingerprint, proposal.id[:8]), outbox.key("review", proposal.fingerprint))
    statuses = session.execute(select(OutboxItem.status).where(
        OutboxItem.installation_id == proposal.installation_id, OutboxItem.kind == OutboxKind.TASK,
        OutboxItem.idempotency_key.in_(keys),
    )).scalars().all()
    return bool(statuses) and all(s == OutboxStatus.DEAD for s in statuses)


def _send(store: Store, crm: CrmPort, batch: Sequence[tuple[str, TaskClosure]], report: outbox.OutboxReport) -> None:
    try:
        result = crm.close_tasks([closure for _, closure in batch])
    except CrmAuthError:
        raise
    except CrmError as exc:
        daily = isinstance(exc, CrmBudgetExhausted)
        if daily:
            report.stopped = exc.stop_note()
        verdict = ("failed" if exc.retryable or daily else "dead", f"{type(exc).__name__}: {str(exc)[:300]}")
        _mark(store, batch, lambda _rid: verdict, report, count=not daily)
        logger.warning("closing %d CRM tasks failed: %s", len(batch), type(exc).__name__)
        return
    report.api_calls += result.api_calls
    _mark(store, batch, _outcome(result), report)


def _outcome(result: WriteResult) -> Any:
    failed = {f.key: f for f in result.failed}
    done = set(result.written) | set(result.unchanged)

    def status(remote_id: str) -> tuple[str, str]:
        if remote_id in failed:
            return ("failed" if failed[remote_id].retryable else "dead", failed[remote_id].reason[:500])
        if remote_id in done:
            return ("unchanged" if remote_id not in result.written else "sent", "")
        return ("failed", "the CRM reported nothing for this task")

    return status


def _mark(store: Store, batch: Sequence[tuple[str, TaskClosure]], outcome: Any, report: outbox.OutboxReport, *,
          count: bool = True) -> None:
    """Store each row's result; `count` False gives the attempt back (the daily budget turned the batch away)."""
    with store.session() as session:
        for item_id, closure in batch:
            item = session.get(OutboxItem, item_id)
            if item is None:
                continue
            status, error = outcome(closure.remote_id)
            item.attempts += 1 if count else 0
            item.status = OutboxStatus.SENT if status == "unchanged" else status
            if item.status == OutboxStatus.FAILED and item.attempts >= outbox.MAX_ATTEMPTS:
                item.status = OutboxStatus.DEAD
            item.remote_id, item.error = closure.remote_id, error
            report.sent += item.status == "sent" and status == "sent"
            report.unchanged += status == "unchanged"
            report.failed += item.status == "failed"
            report.dead += item.status == "dead"
