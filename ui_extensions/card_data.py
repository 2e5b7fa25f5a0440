"""What the card endpoints read and change in the store, always scoped to one installation.

Cards never call a CRM: the loops precompute each deal's sections into CardData, and this
module joins them with the tenant's pending proposals. Approvals go through jobs.approvals.verdicts
(the same path as the admin page) and are idempotent, because HubSpot retries a fetch once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.errors import ApiError
from connector.store import installations as inst
from connector.store.records import load_records
from connector.store.tables import CardData, Installation, Proposal
from crm_adapters.model import Entity, User, UserRole
from ui_extensions.cards import card_view


def active_installation(session: Session, crm: str, tenant_id: str) -> Installation:
    row = inst.find(session, crm, tenant_id)
    if row is None or row.status != "active":
        raise ApiError(404, "not_installed", f"salesloop is not installed (or was disconnected) for this {crm} account")
    return row


def is_manager(session: Session, installation_id: str, user_id: str, email: str | None = None) -> bool:
    """The viewer is a manager in the synced users (by CRM user id, owner id or email)."""
    if not user_id and not email:
        return False
    for user in load_records(session, installation_id, Entity.USER):
        assert isinstance(user, User)
        ids = {user.remote_id, str(user.custom.get("user_id") or ""), str(user.custom.get("userId") or "")}
        if (user_id and user_id in ids) or (email and user.email and user.email.lower() == email.lower()):
            return user.role is UserRole.MANAGER
    return False


def load_view(session: Session, installation_id: str, deal_id: str, *, manager: bool) -> dict[str, Any]:
    card = session.get(CardData, (installation_id, deal_id))
    proposals: list[dict[str, Any]] = []
    if manager:
        rows = session.execute(
            select(Proposal).where(Proposal.installation_id == installation_id, Proposal.status == "pending")
            .order_by(Proposal.created_at.desc()).limit(10)
        ).scalars()
        proposals = [{"id": p.id, "title": p.title, "loop": p.loop, "diff": p.diff,
                      "created_at": p.created_at.isoformat() if p.created_at else ""} for p in rows]
    return card_view(card.payload if card else None, deal_id=deal_id,
                     updated_at=card.updated_at.isoformat() if card and card.updated_at else None,
                     proposals=proposals, viewer_is_manager=manager)


def decide(session: Session, installation_id: str, proposal_id: str, *, approved: bool, by: str, reason: str = "") -> dict[str, Any]:
    """Approve or reject once; the same verdict again is a no-op success, the opposite one a conflict."""
    from jobs.approvals.verdicts import record_verdict

    row = session.get(Proposal, proposal_id)
    if row is None or row.installation_id != installation_id:
        raise ApiError(404, "not_found", "no such proposal for this account")
    wanted = "approved" if approved else "rejected"
    if row.status == wanted:
        return {"proposal_id": proposal_id, "status": wanted, "repeated": True}
    if row.status != "pending":
        raise ApiError(409, "already_decided", f"this proposal was already {row.status}")
    activated = record_verdict(session, installation_id, proposal_id, approved=approved, by=by, reason=reason)
    return {"proposal_id": proposal_id, "status": wanted, "activated": activated, "repeated": False}
