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
from connector.store.tables import CardData, CrmRecord, Installation, Proposal
from crm_adapters.model import Entity, User, UserRole
from jobs.approvals.verdicts import record_verdict
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
    """The card: this deal's sections and, for a manager, only the approvals about this deal or its owner."""
    card = session.get(CardData, (installation_id, deal_id))
    proposals: list[dict[str, Any]] = []
    others = 0
    if manager:
        rows = list(session.execute(
            select(Proposal).where(Proposal.installation_id == installation_id, Proposal.status == "pending")
            .order_by(Proposal.created_at.desc())
        ).scalars())
        owner = _deal_owner(session, installation_id, deal_id)
        mine = [p for p in rows if about_deal(p.evidence or {}, deal_id, owner)]
        others = len(rows) - len(mine)
        proposals = [{"id": p.id, "title": p.title, "loop": p.loop, "diff": p.diff,
                      "created_at": p.created_at.isoformat() if p.created_at else ""} for p in mine[:10]]
    return card_view(card.payload if card else None, deal_id=deal_id,
                     updated_at=card.updated_at.isoformat() if card and card.updated_at else None,
                     proposals=proposals, viewer_is_manager=manager, other_approvals=others)


def about_deal(evidence: dict[str, Any], deal_id: str, owner_id: str | None) -> bool:
    """A proposal concerns this deal when its decision targets the deal, lists it, or targets (or is owned by) its owner."""
    decision = evidence.get("decision") or {}
    payload = decision.get("payload") or {}
    if decision.get("target") == "deal" and str(decision.get("target_id")) == deal_id:
        return True
    if deal_id in {str(d) for d in payload.get("deal_ids") or ()} or str(payload.get("deal_id") or "") == deal_id:
        return True
    return bool(owner_id) and (
        (decision.get("target") == "user" and str(decision.get("target_id")) == owner_id)
        or str(payload.get("owner_id") or "") == owner_id)


def _deal_owner(session: Session, installation_id: str, deal_id: str) -> str | None:
    payload = session.execute(select(CrmRecord.payload).where(
        CrmRecord.installation_id == installation_id, CrmRecord.entity == Entity.DEAL.value,
        CrmRecord.remote_id == deal_id)).scalar()
    return str(payload.get("owner_id")) if isinstance(payload, dict) and payload.get("owner_id") else None


def decide(session: Session, installation_id: str, proposal_id: str, *, approved: bool, by: str, reason: str = "") -> dict[str, Any]:
    """Approve or reject once; the same verdict again is a no-op success, the opposite one a conflict."""

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
