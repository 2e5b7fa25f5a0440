"""Every outbox idempotency key, built here only, so a key written in one module is found again in another."""

from __future__ import annotations

from connector.store.tables import OutboxKind

KEY_LENGTH = 200  # OutboxItem.idempotency_key's column


def key(prefix: str, *parts: str) -> str:
    """'<prefix>:<part>...' (no prefix: a decision's own key), cut to the column. Rebuild a key from what was
    stored (a proposal's fingerprint, not its source)."""
    return ":".join((prefix, *parts) if prefix else parts)[:KEY_LENGTH]


def approval_task(fingerprint: str, proposal_id: str) -> str:
    """The task asking a manager to approve a proposal (one per proposal, so a re-proposal asks again)."""
    return key("approval", fingerprint, proposal_id[:8])


def review_task(fingerprint: str) -> str:
    """The task asking a manager to review a drift pause (one per fingerprint)."""
    return key("review", fingerprint)


def task_close(proposal_id: str) -> str:
    """Closing a proposal's CRM task with a verdict given outside the CRM (one per proposal)."""
    return key(OutboxKind.TASK_CLOSE, proposal_id)
