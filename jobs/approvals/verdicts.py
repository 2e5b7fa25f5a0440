"""A manager's verdict given on the admin page or a card instead of the CRM task (same effect as completing it).

The proposal's CRM task is then closed with that verdict too (jobs.approvals.closures), so it does not stay open.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from connector.store.tables import Proposal, ProposalStatus
from jobs.approvals import closures as task_closures
from jobs.approvals.proposals import settle
from jobs.loops.registry import all_loops


def record_verdict(
    session: Session, installation_id: str, proposal_id: str, *, approved: bool, by: str, reason: str = "",
    now: datetime | None = None,
) -> str | None:
    """Approve or reject a pending proposal of this tenant; returns the version it activated, if any."""
    row = session.get(Proposal, proposal_id)
    if row is None or row.installation_id != installation_id:
        raise LookupError(f"no proposal {proposal_id} for this installation")
    if row.status != ProposalStatus.PENDING:
        raise ValueError(f"proposal {proposal_id} is already {row.status}")
    activated = settle(session, row, approved=approved, by=by, reason=reason, loops=all_loops(), now=now or datetime.now(UTC))
    task_closures.queue(session, row)
    return activated
