"""What happens to an installation around its lifetime: first backfill, incremental syncs, uninstall, purge.

Enqueueing goes through the engine's helpers in jobs.queues; in the embedded default (no
Redis) the request is recorded in the audit log, where the in-process runner and the admin
page see it. Uninstall revokes the tokens at the CRM, stops the tenant's jobs and marks it
uninstalled; its data stays for the configured retention and is then purged by a cron hook.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select

from connector.settings import Settings
from connector.store import Store
from connector.store import installations as inst
from connector.store.crypto import TokenCipher
from connector.store.installations import InstallationStatus
from connector.store.tables import AuditEntry, Installation, OAuthState
from jobs.tokens import stop_jobs

logger = logging.getLogger(__name__)

Revoker = Callable[[Installation, Mapping[str, Any]], None]
"""revoke(installation, decrypted tokens): tell the CRM to forget our grant."""


def redis_for(settings: Settings) -> Any:
    """The queue's Redis, or None in the embedded mode (jobs run in-process)."""
    if settings.embedded:
        return None
    from jobs import queues

    return queues.connect(settings.redis_url)


def request_backfill(settings: Settings, store: Store, installation_id: str) -> str:
    """Start the first full sync; returns 'enqueued' or 'recorded' (embedded mode)."""
    redis = redis_for(settings)
    if redis is not None:
        from jobs import queues

        queues.enqueue_backfill(installation_id, connection=redis)
        return "enqueued"
    _record(store, installation_id, "sync_requested", {"kind": "backfill"})
    return "recorded"


def request_sync(settings: Settings, store: Store, installation_id: str, objects: Mapping[str, Sequence[str]]) -> str:
    """An incremental sync of the objects a webhook named ({entity: [remote ids]})."""
    redis = redis_for(settings)
    detail = {"kind": "incremental", "objects": {k: sorted(set(v))[:500] for k, v in objects.items()}}
    if redis is not None:
        from jobs import queues

        queues.enqueue_incremental_sync(installation_id, entities=sorted(objects), connection=redis)
        return "enqueued"
    _record(store, installation_id, "sync_requested", detail)
    return "recorded"


def _record(store: Store, installation_id: str, action: str, detail: dict[str, Any]) -> None:
    with store.session() as session:
        inst.audit(session, installation_id, "system", action, detail)


def uninstall(store: Store, cipher: TokenCipher, installation_id: str, revoke: Revoker, *, actor: str,
              redis: Any = None) -> None:
    """Revoke the grant (best effort: a grant already gone is fine), stop jobs, mark uninstalled."""
    with store.session() as session:
        row = inst.get(session, installation_id)
        tokens = inst.read_tokens(row, cipher) if row.tokens is not None else {}
    if tokens:
        try:
            revoke(row, tokens)
        except Exception as exc:  # the CRM may already have dropped the grant; uninstall anyway
            logger.warning("revoke failed for %s: %s", installation_id, type(exc).__name__)
    stop_jobs(installation_id, redis)
    with store.session() as session:
        inst.set_status(session, installation_id, InstallationStatus.UNINSTALLED, f"disconnected by {actor}")
        inst.audit(session, installation_id, actor, "uninstalled", {"revoked": bool(tokens)})
    logger.info("installation %s uninstalled by %s", installation_id, actor)


def purge_expired(store: Store, *, retention_days: int, now: datetime | None = None) -> list[str]:
    """Delete every tenant uninstalled more than `retention_days` ago, with all its rows (cron hook)."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=retention_days)
    with store.session() as session:
        rows = session.execute(
            select(Installation).where(Installation.status == InstallationStatus.UNINSTALLED)
        ).scalars().all()
        expired = [r for r in rows if r.uninstalled_at and _aware(r.uninstalled_at) < cutoff]
        for row in expired:
            session.add(AuditEntry(installation_id=None, actor="system", action="tenant_purged",
                                   detail={"crm": row.crm, "tenant_id": row.tenant_id}))
        ids = [r.id for r in expired]
        if ids:
            _delete_tenant_rows(session, ids)
        session.execute(delete(OAuthState).where(OAuthState.created_at < now - timedelta(days=1)))
    for iid in ids:
        logger.info("purged tenant data of installation %s", iid)
    return ids


def _delete_tenant_rows(session: Any, ids: list[str]) -> None:
    """Children first (SQLite without FK enforcement on old files must not keep orphans)."""
    from connector.store import tables

    for table in reversed(tables.Base.metadata.sorted_tables):
        if "installation_id" in table.c and table.name != "installations":
            session.execute(table.delete().where(table.c.installation_id.in_(ids)))
    session.execute(delete(Installation).where(Installation.id.in_(ids)))


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
