"""Per-portal request budgets: HubSpot's 110 requests per rolling 10 s, and search at 5/s.

The budget belongs to the HubSpot account, not to a process, so with RQ workers on several
machines the window lives in Redis (`RedisLimiter`: a sliding log in a sorted set, updated by one
Lua script on Redis' own clock). The embedded default runs jobs in-process and uses
`LocalLimiter`, the same algorithm in memory. After a 429, `pause` makes every worker of the
portal wait, not only the one that was refused.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

API = "api"
SEARCH = "search"


class Limiter(Protocol):
    def acquire(self, bucket: str) -> float:
        """Block until one request of `bucket` (api | search) fits the window; returns seconds waited."""
        ...

    def pause(self, seconds: float) -> None:
        """Stop every request of this portal for `seconds` (after a 429)."""
        ...


MARGIN_S = 0.25  # a request reaches HubSpot a little after we count it; the window is held that much longer


class LocalLimiter:
    """The in-process limiter for the embedded default (one process, no Redis)."""

    def __init__(self, *, per_window: int = 110, window_s: float = 10.0, search_per_s: int = 4,
                 sleep: Callable[[float], None] = time.sleep, monotonic: Callable[[], float] = time.monotonic,
                 margin_s: float = MARGIN_S) -> None:
        self._limits = {API: (per_window, window_s + margin_s), SEARCH: (search_per_s, 1.0 + margin_s)}
        self._log: dict[str, deque[float]] = {API: deque(), SEARCH: deque()}
        self._paused_until = 0.0
        self._lock = threading.Lock()
        self._sleep, self._now = sleep, monotonic

    def _wait(self, bucket: str) -> float:
        limit, window = self._limits[bucket]
        now = self._now()
        with self._lock:
            if self._paused_until > now:
                return self._paused_until - now
            log = self._log[bucket]
            while log and log[0] <= now - window:
                log.popleft()
            if len(log) < limit:
                log.append(now)
                return 0.0
            return log[0] + window - now + 0.001

    def acquire(self, bucket: str) -> float:
        waited = 0.0
        while (delay := self._wait(bucket)) > 0:
            self._sleep(delay)
            waited += delay
        return waited

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, self._now() + seconds)


_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
if paused > now then return paused - now end
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tonumber(oldest[2]) + window - now + 1
"""

_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = now + tonumber(ARGV[1])
if until_ms > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], until_ms, 'PX', tonumber(ARGV[1]))
end
return until_ms
"""


class RedisLimiter:
    """The limiter shared by every worker of a portal, on one Redis."""

    def __init__(self, redis: Any, portal_id: str, *, per_window: int = 110, window_s: float = 10.0,
                 search_per_s: int = 4, sleep: Callable[[float], None] = time.sleep, prefix: str = "salesloop",
                 margin_s: float = MARGIN_S) -> None:
        self._redis = redis
        margin = int(margin_s * 1000)
        self._limits = {API: (per_window, int(window_s * 1000) + margin), SEARCH: (search_per_s, 1000 + margin)}
        self._keys = {b: f"{prefix}:hubspot:{portal_id}:rate:{b}" for b in (API, SEARCH)}
        self._pause_key = f"{prefix}:hubspot:{portal_id}:paused"
        self._acquire = redis.register_script(_ACQUIRE)
        self._pause = redis.register_script(_PAUSE)
        self._sleep = sleep

    def acquire(self, bucket: str) -> float:
        limit, window_ms = self._limits[bucket]
        waited = 0.0
        while True:
            delay_ms = int(self._acquire(keys=[self._keys[bucket], self._pause_key],
                                         args=[limit, window_ms, uuid.uuid4().hex]))
            if delay_ms <= 0:
                return waited
            self._sleep(delay_ms / 1000)
            waited += delay_ms / 1000

    def pause(self, seconds: float) -> None:
        self._pause(keys=[self._pause_key], args=[max(1, int(seconds * 1000))])
