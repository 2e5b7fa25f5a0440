"""The token store as adapters see it: refresh once per installation, whatever the number of workers.

HubSpot access tokens live 30 minutes, so they are refreshed ahead of the stored expiry;
Salesforce sends no expiry, so there the adapter calls `refreshed()` after a 401. Either
way the refresh runs under a per-installation lock in Redis (a process-local lock in the
embedded mode) and the new tokens are stored with compare-and-set on token_version: a
worker that loses the race re-reads the winner's tokens instead of refreshing again, which
matters doubly for Salesforce, where rotation makes the old refresh token die on first use.
A dead grant (CrmAuthError) marks the installation needs_reauth (or uninstalled) once; every
later call fails fast without touching the CRM, so a revoked org causes no retry storm.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from connector.store import Store
from connector.store import installations as inst
from connector.store.crypto import TokenCipher
from connector.store.installations import InstallationStatus
from connector.store.tables import Installation
from crm_adapters.auth import Refresher, Tokens
from crm_adapters.errors import CrmAuthError, CrmUnavailable
from jobs import queues

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
LOCK_PREFIX = "salesloop:token-refresh:"
HEARTBEAT_IDLE = timedelta(days=25)  # Salesforce's idle refresh-token TTL is 30 days

_local_locks: dict[str, threading.Lock] = {}
_local_guard = threading.Lock()
# Release the lock only if we still own it (it may have expired and been taken by another worker).
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back naive; they were stored as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class StoreTokenSource:
    """crm_adapters.auth.TokenSource over the store, shared safely by every worker process."""

    def __init__(
        self,
        store: Store,
        cipher: TokenCipher,
        installation_id: str,
        refresher: Refresher,
        *,
        redis: Any = None,
        refresh_margin: timedelta = timedelta(minutes=5),
        lock_ttl: float = 30.0,
        lock_wait: float = 45.0,
        clock: Clock = _utcnow,
    ) -> None:
        self._store, self._cipher, self._id = store, cipher, installation_id
        self._refresher, self._redis = refresher, redis
        self._margin, self._lock_ttl, self._lock_wait, self._clock = refresh_margin, lock_ttl, lock_wait, clock

    def current(self) -> Tokens:
        """The stored tokens, refreshed first when the known expiry is within the margin."""
        tokens = self._load()
        if tokens.expires_at is not None and tokens.expires_at - self._margin <= self._clock():
            return self.refreshed(tokens)
        return tokens

    def refreshed(self, stale: Tokens) -> Tokens:
        """Fresh tokens after `stale` was refused or expired; exactly one worker calls the CRM."""
        with self._lock():
            latest = self._load()
            if latest.version > stale.version:
                logger.info("tokens for %s already refreshed by another worker (v%s)", self._id, latest.version)
                return latest
            return self._refresh(latest)

    def _refresh(self, latest: Tokens) -> Tokens:
        try:
            new = self._refresher(latest)
        except CrmAuthError as exc:
            self._mark_dead(exc, latest.version)
            raise
        new = replace(new, refresh_token=new.refresh_token or latest.refresh_token,
                      instance_url=new.instance_url or latest.instance_url)
        payload = {"access_token": new.access_token, "refresh_token": new.refresh_token}
        with self._store.session() as session:
            stored = inst.swap_tokens(
                session, self._cipher, self._id, expected_version=latest.version, tokens=payload,
                expires_at=new.expires_at, instance_url=new.instance_url,
            )
        if not stored:  # the lock expired under a very slow refresh and someone else won
            logger.warning("token compare-and-set lost for %s; using the stored tokens", self._id)
            return self._load()
        logger.info("refreshed tokens for %s (v%s)", self._id, latest.version + 1)
        return replace(new, version=latest.version + 1)

    def _load(self) -> Tokens:
        """The stored tokens; an installation that is not active refuses without calling the CRM."""
        with self._store.session() as session:
            row = inst.get(session, self._id)
            if row.status != InstallationStatus.ACTIVE or row.tokens is None:
                raise CrmAuthError(
                    f"installation {self._id} is {row.status}: reconnect it",
                    uninstalled=row.status == InstallationStatus.UNINSTALLED,
                )
            data = inst.read_tokens(row, self._cipher)
            return Tokens(
                access_token=data["access_token"], refresh_token=data.get("refresh_token"),
                expires_at=_aware(row.access_expires_at), instance_url=row.instance_url, version=row.token_version,
            )

    def _mark_dead(self, exc: CrmAuthError, version: int) -> None:
        """Mark the refused grant dead and stop its waiting jobs, unless the admin reconnected meanwhile.

        Jobs are stopped before the status is visible, so the backfill of a reconnect (which follows
        the visible status) is never cancelled; the status changes only while the refused tokens
        (`version`) are still the stored ones, so fresh tokens keep the installation active.
        """
        status = InstallationStatus.UNINSTALLED if exc.uninstalled else InstallationStatus.NEEDS_REAUTH
        if self._reconnected(version):
            return
        stop_jobs(self._id, self._redis)
        with self._store.session() as session:
            row = session.get(Installation, self._id, with_for_update=True)
            if row is None or row.token_version != version:
                return
            logger.warning("refresh refused for %s: marking %s", self._id, status)
            inst.set_status(session, self._id, status, f"token refresh refused: {str(exc)[:200]}")

    def _reconnected(self, version: int) -> bool:
        with self._store.session() as session:
            newer = inst.get(session, self._id).token_version != version
        if newer:
            logger.info("refresh refused for %s, but it was reconnected meanwhile", self._id)
        return newer

    @contextmanager
    def _lock(self) -> Iterator[None]:
        if self._redis is None:
            with _local_lock(self._id):
                yield
            return
        key, owner = LOCK_PREFIX + self._id, uuid.uuid4().hex
        deadline = time.monotonic() + self._lock_wait
        while not self._redis.set(key, owner, nx=True, px=int(self._lock_ttl * 1000)):
            if time.monotonic() > deadline:
                raise CrmUnavailable(f"token refresh lock for {self._id} is busy")
            time.sleep(0.05)
        try:
            yield
        finally:
            self._redis.eval(_RELEASE, 1, key, owner)


@contextmanager
def _local_lock(installation_id: str) -> Iterator[None]:
    with _local_guard:
        lock = _local_locks.setdefault(installation_id, threading.Lock())
    with lock:
        yield


def stop_jobs(installation_id: str, redis: Any = None) -> int:
    """Cancel the installation's waiting jobs; without Redis (embedded) jobs run inline and check the status."""
    if redis is None:
        return 0

    return queues.stop_installation_jobs(installation_id, connection=redis)


def heartbeat_idle(
    store: Store,
    cipher: TokenCipher,
    refresher_for: Callable[[Installation], Refresher],
    *,
    redis: Any = None,
    now: datetime | None = None,
    idle: timedelta = HEARTBEAT_IDLE,
    crm: str = "salesforce",
) -> list[str]:
    """Refresh every active installation idle longer than `idle`, so the CRM's idle TTL never kills it."""
    now = now or _utcnow()
    with store.session() as session:
        rows = session.execute(
            select(Installation).where(Installation.crm == crm, Installation.status == InstallationStatus.ACTIVE)
        ).scalars().all()
        due = [r for r in rows if (_aware(r.last_refresh_at) or datetime.min.replace(tzinfo=UTC)) < now - idle]
    refreshed: list[str] = []
    for row in due:
        source = StoreTokenSource(store, cipher, row.id, refresher_for(row), redis=redis)
        try:
            source.refreshed(source.current())
            refreshed.append(row.id)
        except CrmAuthError:
            logger.warning("heartbeat: installation %s needs reauth", row.id)
    return refreshed
