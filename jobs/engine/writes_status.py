"""What `salesloop status` shows: per installation, the writes sent, waiting and given up."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from connector.store import Store
from connector.store.tables import Installation, OutboxItem, OutboxStatus
from jobs.state import outbox


def installations_status(store: Store, *, limit: int = 20) -> list[dict[str, Any]]:
    """One entry per installation; `given_up` lists the newest `limit` writes a person must retry."""
    with store.session() as session:
        installs = session.execute(select(Installation).order_by(Installation.created_at)).scalars().all()
        return [_one(session, row, limit) for row in installs]


def _one(session: Any, row: Installation, limit: int) -> dict[str, Any]:
    counts = outbox.waiting(session, row.id)
    sent = session.execute(select(func.count()).where(
        OutboxItem.installation_id == row.id, OutboxItem.status == OutboxStatus.SENT)).scalar_one()
    dead = session.execute(select(OutboxItem).where(OutboxItem.installation_id == row.id, OutboxItem.status == OutboxStatus.DEAD)
                           .order_by(OutboxItem.updated_at.desc()).limit(limit)).scalars().all()
    return {
        "installation_id": row.id, "crm": row.crm, "tenant_id": row.tenant_id, "status": row.status,
        "writes": {"sent": int(sent), **counts},
        "given_up": [{"id": d.id, "kind": d.kind, "key": d.idempotency_key, "reason": d.error} for d in dead],
    }
