"""Installation upkeep the cron runs: the Salesforce idle-token heartbeat and the purge after uninstall.

`refresher_for` is the one place that knows how each CRM refreshes a token; `token_source_for`
gives adapters the store-backed, Redis-locked TokenSource.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from connector.settings import Settings
from connector.store import Store
from connector.store.crypto import TokenCipher
from connector.store.db import SchemaError
from connector.store.installations import InstallationStatus
from connector.store.tables import AuditEntry, Base, Installation, OAuthState
from crm_adapters.auth import Refresher
from crm_adapters.errors import ConfigError
from crm_adapters.hubspot import oauth as hs
from crm_adapters.salesforce import oauth as sf
from jobs import queues
from jobs.tokens import StoreTokenSource, heartbeat_idle

logger = logging.getLogger(__name__)


def refresher_for(installation: Installation, settings: Settings) -> Refresher:
    """How this installation's CRM refreshes a token (the adapters' oauth modules)."""
    if installation.crm == "hubspot":
        return hs.make_refresher(hs.OAuthApp(settings.hubspot_client_id, settings.hubspot_client_secret,
                                             api_host=settings.hubspot_base_url))
    if installation.crm == "salesforce":
        host = installation.login_host or settings.salesforce_login_url
        return sf.make_refresher(host, client_id=settings.salesforce_client_id,
                                 client_secret=settings.salesforce_client_secret)
    raise ConfigError(f"installation {installation.id}: no token refresh for crm {installation.crm!r}")


def token_source_for(installation: Installation, *, store: Store, settings: Settings, redis: Any = None) -> StoreTokenSource:
    """The TokenSource an adapter gets: stored, encrypted, refreshed once across every worker."""
    cipher = TokenCipher.from_key_text(settings.token_encryption_key)
    return StoreTokenSource(store, cipher, installation.id, refresher_for(installation, settings), redis=redis)


def purge_expired(store: Store, *, retention_days: int, now: datetime | None = None) -> list[str]:
    """Delete every tenant uninstalled more than `retention_days` ago, with all its rows."""
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


def _delete_tenant_rows(session: Session, ids: list[str]) -> None:
    """Children first, so nothing is left behind even where the database does not cascade."""
    for table in reversed(Base.metadata.sorted_tables):
        if "installation_id" in table.c and table.name != "installations":
            session.execute(table.delete().where(table.c.installation_id.in_(ids)))
    session.execute(delete(Installation).where(Installation.id.in_(ids)))


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def run_token_heartbeat() -> list[str]:
    """Cron entry (daily): refresh Salesforce orgs idle for 25 days, before the 30-day idle TTL kills them."""
    settings, store, redis = _runtime()
    cipher = TokenCipher.from_key_text(settings.token_encryption_key)
    return heartbeat_idle(store, cipher, lambda row: refresher_for(row, settings), redis=redis)


def run_purge() -> list[str]:
    """Cron entry (daily): purge tenants whose retention after uninstall ran out."""
    settings, store, _ = _runtime()
    return purge_expired(store, retention_days=settings.data_retention_days)


def _runtime() -> tuple[Settings, Store, Any]:
    settings = Settings.from_env()
    redis = None
    if not settings.embedded:
        redis = queues.connect(settings.redis_url)
    return settings, Store.connect(settings.store_url, upgrade=False), redis


def _commands() -> list[Any]:
    """`salesloop purge` and `salesloop token-heartbeat`, for cron hosts without rq's scheduler."""

    def _run(job: Any, what: str, as_json: bool) -> None:
        try:
            ids = job()
        except (SchemaError, ConfigError) as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(json.dumps({what: ids, "count": len(ids)}) if as_json else f"{what}: {len(ids)} installation(s)")

    @click.command("purge")
    @click.option("--json", "as_json", is_flag=True, help="print the purged installation ids as JSON")
    def purge(as_json: bool) -> None:
        """Delete the data of tenants uninstalled longer than DATA_RETENTION_DAYS ago."""
        _run(run_purge, "purged", as_json)

    @click.command("token-heartbeat")
    @click.option("--json", "as_json", is_flag=True, help="print the refreshed installation ids as JSON")
    def heartbeat(as_json: bool) -> None:
        """Refresh Salesforce tokens idle for 25 days (the ECA idle TTL is 30)."""
        _run(run_token_heartbeat, "refreshed", as_json)

    return [purge, heartbeat]
