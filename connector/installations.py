"""What happens to an installation around its lifetime: first backfill, incremental syncs, uninstall, purge.

Enqueueing goes through the engine's helpers in jobs.queues; in the embedded default (no
Redis) the request is recorded in the audit log, where the in-process runner and the admin
page see it. Uninstall revokes the tokens at the CRM, stops the tenant's jobs and marks it
uninstalled; its data stays for the configured retention and is then purged by a cron hook.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from connector.settings import Settings
from connector.store import Store
from connector.store import installations as inst
from connector.store.crypto import TokenCipher
from connector.store.installations import InstallationStatus
from connector.store.tables import Installation
from jobs import queues
from jobs.lifecycle import purge_expired
from jobs.tokens import stop_jobs

__all__ = ["purge_expired", "redis_for", "request_backfill", "request_sync", "uninstall"]

logger = logging.getLogger(__name__)

Revoker = Callable[[Installation, Mapping[str, Any]], None]
"""revoke(installation, decrypted tokens): tell the CRM to forget our grant."""


def redis_for(settings: Settings) -> Any:
    """The queue's Redis, or None in the embedded mode (jobs run in-process)."""
    if settings.embedded:
        return None

    return queues.connect(settings.redis_url)


def request_backfill(settings: Settings, store: Store, installation_id: str) -> str:
    """Start the first full sync; returns 'enqueued' or 'recorded' (embedded mode)."""
    redis = redis_for(settings)
    if redis is not None:

        queues.enqueue_backfill(installation_id, connection=redis)
        return "enqueued"
    _record(store, installation_id, "sync_requested", {"kind": "backfill"})
    return "recorded"


def request_sync(settings: Settings, store: Store, installation_id: str, objects: Mapping[str, Sequence[str]]) -> str:
    """An incremental sync of the objects a webhook named ({entity: [remote ids]})."""
    redis = redis_for(settings)
    detail = {"kind": "incremental", "objects": {k: sorted(set(v))[:500] for k, v in objects.items()}}
    if redis is not None:

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
