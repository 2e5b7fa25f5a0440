"""Verdicts given outside the CRM (admin page, cards) close the CRM task their proposal opened.

record_verdict queues one "task_close" outbox row per proposal (key task_close:<proposal id>, so a second
verdict call adds nothing). The outbox sends it after the tasks of the same run, once the proposal's task
exists (jobs.state.senders). A closed task is never read back as a second verdict: read_back only looks at
pending proposals, and this proposal is settled already.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from connector.store.tables import OutboxItem, OutboxKind, Proposal, ProposalStatus
from crm_adapters.model import TaskStatus
from jobs.state import outbox, outbox_keys

APPROVED_NOTE = "approved in salesloop"


def queue(session: Session, row: Proposal) -> OutboxItem | None:
    """Queue closing the task of a proposal just settled outside the CRM; None when already queued."""
    if row.status not in (ProposalStatus.APPROVED, ProposalStatus.REJECTED):
        raise ValueError(f"proposal {row.id} is {row.status}: only a settled proposal closes its task")
    approved = row.status == ProposalStatus.APPROVED
    comment = (row.reason or APPROVED_NOTE) if approved else (row.reason or "")
    return outbox.enqueue(session, row.installation_id, outbox_keys.task_close(row.id), OutboxKind.TASK_CLOSE, {
        "proposal_id": row.id, "status": (TaskStatus.COMPLETED if approved else TaskStatus.REJECTED).value,
        "comment": comment[:1000],
    })
