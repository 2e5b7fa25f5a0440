"""Installations (tenants) and their encrypted tokens, with compare-and-set on token_version."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from connector.store.crypto import TokenCipher
from connector.store.tables import AuditEntry, Installation, InstallationStatus


def find(session: Session, crm: str, tenant_id: str) -> Installation | None:
    stmt = select(Installation).where(Installation.crm == crm, Installation.tenant_id == tenant_id)
    return session.execute(stmt).scalar_one_or_none()


def get(session: Session, installation_id: str) -> Installation:
    installation = session.get(Installation, installation_id)
    if installation is None:
        raise LookupError(f"no installation {installation_id}")
    return installation


def upsert(
    session: Session,
    cipher: TokenCipher,
    *,
    crm: str,
    tenant_id: str,
    tokens: dict[str, Any],
    expires_at: datetime | None = None,
    **fields: Any,
) -> Installation:
    """Install or reinstall: the same CRM org maps to the same tenant, with fresh tokens."""
    installation = find(session, crm, tenant_id)
    if installation is None:
        installation = Installation(crm=crm, tenant_id=tenant_id, token_version=0, settings={})
        session.add(installation)
        session.flush()
    for name, value in fields.items():
        setattr(installation, name, value)
    installation.status = InstallationStatus.ACTIVE
    installation.status_reason = ""
    installation.uninstalled_at = None
    installation.tokens = cipher.encrypt(tokens, installation_id=installation.id)
    installation.token_version = (installation.token_version or 0) + 1
    installation.access_expires_at = expires_at
    installation.last_refresh_at = datetime.now(UTC)
    audit(session, installation.id, "system", "installed", {"crm": crm, "tenant_id": tenant_id})
    return installation


def read_tokens(installation: Installation, cipher: TokenCipher) -> dict[str, Any]:
    if installation.tokens is None:
        raise LookupError(f"installation {installation.id} has no tokens")
    return cipher.decrypt(installation.tokens, installation_id=installation.id)


def swap_tokens(
    session: Session,
    cipher: TokenCipher,
    installation_id: str,
    *,
    expected_version: int,
    tokens: dict[str, Any],
    expires_at: datetime | None,
    instance_url: str | None = None,
) -> bool:
    """Store refreshed tokens only if nobody else did since `expected_version` (compare-and-set)."""
    values: dict[str, Any] = {
        "tokens": cipher.encrypt(tokens, installation_id=installation_id),
        "token_version": expected_version + 1,
        "access_expires_at": expires_at,
        "last_refresh_at": datetime.now(UTC),
    }
    if instance_url:
        values["instance_url"] = instance_url
    stmt = (
        update(Installation)
        .where(Installation.id == installation_id, Installation.token_version == expected_version)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(session.execute(stmt).rowcount)


def set_status(session: Session, installation_id: str, status: InstallationStatus, reason: str = "") -> None:
    installation = get(session, installation_id)
    installation.status = status
    installation.status_reason = reason
    if status is InstallationStatus.UNINSTALLED:
        installation.uninstalled_at = datetime.now(UTC)
        installation.tokens = None
    audit(session, installation_id, "system", f"status:{status}", {"reason": reason})


def audit(session: Session, installation_id: str | None, actor: str, action: str, detail: dict[str, Any]) -> None:
    session.add(AuditEntry(installation_id=installation_id, actor=actor, action=action, detail=detail))
