"""A per-tenant lock in Redis, so two workers never run the same tenant's chain at once.

The lock has a short TTL that a heartbeat thread keeps extending while the job runs; a
worker killed with SIGKILL stops extending it, so the lock frees itself within one TTL and
the retried job can take it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from redis import Redis

logger = logging.getLogger(__name__)

PREFIX = "salesloop:tenant-lock:"
_EXTEND = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


class TenantBusy(RuntimeError):
    """Another worker holds this tenant's lock; the job is retried later."""


@contextmanager
def tenant_lock(conn: Redis, installation_id: str, *, ttl: float = 30.0, wait: float = 60.0) -> Iterator[str]:
    """Hold the tenant's lock for the block; wait up to `wait` seconds for it, then raise TenantBusy."""
    key, token = PREFIX + installation_id, uuid.uuid4().hex
    deadline = time.monotonic() + wait
    while not conn.set(key, token, nx=True, px=int(ttl * 1000)):
        if time.monotonic() >= deadline:
            raise TenantBusy(f"installation {installation_id} is being processed by another worker")
        time.sleep(min(0.2, ttl / 10))
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(conn, key, token, ttl, stop), daemon=True)
    beat.start()
    try:
        yield token
    finally:
        stop.set()
        beat.join(timeout=ttl)
        conn.eval(_RELEASE, 1, key, token)


def _heartbeat(conn: Redis, key: str, token: str, ttl: float, stop: threading.Event) -> None:
    while not stop.wait(ttl / 3):
        try:
            if not conn.eval(_EXTEND, 1, key, token, int(ttl * 1000)):
                logger.warning("tenant lock %s was lost", key)
                return
        except Exception:  # a Redis blip: keep trying until the job ends
            logger.warning("could not extend tenant lock %s", key, exc_info=True)


def holder(conn: Redis, installation_id: str) -> str | None:
    value = conn.get(PREFIX + installation_id)
    return value.decode() if isinstance(value, bytes) else value
