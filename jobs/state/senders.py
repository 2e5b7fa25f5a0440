"""A sender per kind of outbox row: how a batch of one kind reaches the CRM, and what came of each row.

The outbox (jobs.state.outbox) owns everything around a send: attempts, retries, the daily budget, a dead
grant, rows given up. A sender only says whether a row can go now (`prepare`) and sends a batch (`send`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.store.tables import OutboxItem, OutboxKind, OutboxStatus, Proposal
from crm_adapters.model import Entity, TaskStatus
from crm_adapters.port import CrmPort
from crm_adapters.writes import AppField, FieldUpdate, NoteDraft, TaskClosure, TaskDraft, WriteResult
from jobs.state import outbox_keys

Outcome = dict[str, tuple[str, str | None, str]]  # per row key: (status, remote id, error); status may be UNCHANGED
UNCHANGED = "unchanged"  # an outcome only: the CRM already held the value (the row is stored as sent)
WAIT = "wait"  # prepare's answer for a row that cannot go yet (it is not tried, so no attempt is spent)


def _ready(_session: Session, _item: OutboxItem) -> str | None:
    return None


@dataclass(frozen=True)
class Sender:
    """`send`: one batch of rows of the kind -> (outcome per row key, API calls). `prepare`, before a row is
    tried: None when it can go now (it may fill in what the send needs), WAIT, or why it never can."""

    send: Callable[[CrmPort, Sequence[OutboxItem]], tuple[Outcome, int]]
    prepare: Callable[[Session, OutboxItem], str | None] = _ready


def _send_fields(crm: CrmPort, items: Sequence[OutboxItem]) -> tuple[Outcome, int]:
    updates = [FieldUpdate(Entity(i.payload["entity"]), i.payload["remote_id"],
                           {AppField(k): v for k, v in i.payload["values"].items()}) for i in items]
    result = crm.write_fields(updates)
    return _by_remote_id(result, {item.idempotency_key: u.remote_id for item, u in zip(items, updates, strict=True)},
                         missing=None), result.api_calls


def _send_tasks(crm: CrmPort, items: Sequence[OutboxItem]) -> tuple[Outcome, int]:
    return _made(items, crm.create_tasks([_task_draft(item) for item in items])), 1


def _send_notes(crm: CrmPort, items: Sequence[OutboxItem]) -> tuple[Outcome, int]:
    notes = [NoteDraft(item.idempotency_key, item.payload["body"], item.payload["deal_id"]) for item in items]
    return _made(items, crm.create_notes(notes)), 1


def _send_closures(crm: CrmPort, items: Sequence[OutboxItem]) -> tuple[Outcome, int]:
    closures = [TaskClosure(str(item.remote_id), TaskStatus(item.payload["status"]), str(item.payload.get("comment") or ""))
                for item in items]
    result = crm.close_tasks(closures)
    return _by_remote_id(result, {item.idempotency_key: str(item.remote_id) for item in items},
                         missing="the CRM reported nothing for this task"), result.api_calls


def _prepare_closure(session: Session, item: OutboxItem) -> str | None:
    """A closure goes once its proposal's task exists (its id becomes the row's remote id); it waits while the
    task is still queued, and never goes when the proposal or the task creating it is gone."""
    proposal = session.get(Proposal, item.payload.get("proposal_id"))
    if proposal is not None and proposal.task_remote_id:
        item.remote_id = proposal.task_remote_id
        return None
    if proposal is None or _task_dead(session, proposal):
        return "the proposal's CRM task was never created: nothing to close"
    return WAIT


def _task_dead(session: Session, proposal: Proposal) -> bool:
    """The outbox row that was to create this proposal's task gave up (so no task will ever exist)."""
    keys = (outbox_keys.approval_task(proposal.fingerprint, proposal.id), outbox_keys.review_task(proposal.fingerprint))
    statuses = session.execute(select(OutboxItem.status).where(
        OutboxItem.installation_id == proposal.installation_id, OutboxItem.kind == OutboxKind.TASK,
        OutboxItem.idempotency_key.in_(keys),
    )).scalars().all()
    return bool(statuses) and all(s == OutboxStatus.DEAD for s in statuses)


def _by_remote_id(result: WriteResult, remote_ids: dict[str, str], *, missing: str | None) -> Outcome:
    """Each row's outcome from a write result that names records by remote id; a record it does not name failed
    with `missing`, or (None: the write reports failures and skips only) was sent."""
    failed = {f.key: f for f in result.failed}
    written, unchanged = set(result.written), set(result.unchanged)
    out: Outcome = {}
    for row_key, remote_id in remote_ids.items():
        failure = failed.get(remote_id)
        if failure is not None:
            out[row_key] = (OutboxStatus.FAILED if failure.retryable else OutboxStatus.DEAD, None, failure.reason[:500])
        elif remote_id in unchanged and remote_id not in written:
            out[row_key] = (UNCHANGED, remote_id, "")
        elif remote_id in written or missing is None:
            out[row_key] = (OutboxStatus.SENT, remote_id, "")
        else:
            out[row_key] = (OutboxStatus.FAILED, None, missing)
    return out


def _made(items: Sequence[OutboxItem], refs: Sequence[Any]) -> Outcome:
    """Each row's outcome from the objects the CRM made (named by the row's key)."""
    made = {ref.idempotency_key: ref for ref in refs}
    return {
        item.idempotency_key: (OutboxStatus.SENT, made[item.idempotency_key].remote_id, "") if item.idempotency_key in made
        else (OutboxStatus.FAILED, None, "the CRM returned no object for this key")
        for item in items
    }


def _task_draft(item: OutboxItem) -> TaskDraft:
    p = item.payload
    return TaskDraft(
        idempotency_key=item.idempotency_key, subject=p["subject"], body=p.get("body", ""), owner_id=p.get("owner_id"),
        due_at=datetime.fromisoformat(p["due_at"]), deal_id=p.get("deal_id"), account_id=p.get("account_id"),
        priority=str(p.get("priority") or "normal"),
    )


SENDERS: dict[OutboxKind, Sender] = {  # in the order the outbox sends them: a closure after the task it closes
    OutboxKind.FIELD: Sender(_send_fields),
    OutboxKind.TASK: Sender(_send_tasks),
    OutboxKind.NOTE: Sender(_send_notes),
    OutboxKind.TASK_CLOSE: Sender(_send_closures, _prepare_closure),
}
