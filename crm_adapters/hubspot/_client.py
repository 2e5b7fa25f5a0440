"""The SDK client for one portal: tokens refreshed ahead of expiry, the shared budget, retries.

hubspot-api-client builds a new ApiClient (and a new connection pool) on every attribute access
(`client.crm.deals.basic_api`), so API objects are cached per access token and rebuilt when
the token changes. Every request goes through `call`: the limiter first, then the SDK; a 401
refreshes once (the token source serialises refreshes across workers); 429 and 5xx back off and
retry; everything else is translated by _errors and raised `from` the SDK exception.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from hubspot import HubSpot
from urllib3.util.retry import Retry

from crm_adapters.auth import Tokens, TokenSource
from crm_adapters.errors import CrmAuthError, CrmRateLimited, CrmUnavailable
from crm_adapters.hubspot import _errors
from crm_adapters.hubspot.limiter import API, Limiter, LocalLimiter

logger = logging.getLogger(__name__)
T = TypeVar("T")
Apis = Callable[[str], Any]


# urllib3's default Retry(3) silently repeats a 429 that carries Retry-After 3 more times (sleeping inside
# the call, unseen by the limiter and stats): 4x the requests in a storm. Statuses are ours to retry.
SDK_RETRY = Retry(total=3, status=0, respect_retry_after_header=False)


@dataclass
class CallStats:
    """What the adapter spent: HTTP requests sent, 429s received, retries, refreshes, waits."""

    calls: int = 0
    rate_limited: int = 0
    retries: int = 0
    refreshes: int = 0
    waited_s: float = 0.0
    by_op: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "rate_limited": self.rate_limited, "retries": self.retries,
                "refreshes": self.refreshes, "waited_s": round(self.waited_s, 2), "by_op": dict(self.by_op)}


class HubSpotClient:
    """SDK access for one portal with refresh, limits and retries around every call."""

    def __init__(self, tokens: TokenSource, *, host: str, limiter: Limiter | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 sleep: Callable[[float], None] = time.sleep, refresh_margin: timedelta = timedelta(minutes=5),
                 max_retries: int = 6, max_backoff_s: float = 10.0, max_refused_wait_s: float = 60.0) -> None:
        self._tokens = tokens
        self._host = host.rstrip("/")
        self.limiter: Limiter = limiter or LocalLimiter()
        self._clock, self._sleep = clock, sleep
        self._margin, self._max_retries, self._max_backoff = refresh_margin, max_retries, max_backoff_s
        self._max_refused_wait = max_refused_wait_s  # a 423/477 asking for longer ends the call instead
        self._apis: dict[str, Any] = {}
        self._api_token: str | None = None
        self.stats = CallStats()

    # ---- tokens and SDK objects ------------------------------------------------------------------
    def _fresh(self) -> Tokens:
        """The current tokens, refreshed first when they expire within the margin (HubSpot: 30 min)."""
        tokens = self._tokens.current()
        if tokens.expires_at is not None and tokens.expires_at - self._clock() <= self._margin:
            logger.info("hubspot access token expires at %s: refreshing ahead", tokens.expires_at.isoformat())
            tokens = self._refresh(tokens)
        return tokens

    def _refresh(self, stale: Tokens) -> Tokens:
        self.stats.refreshes += 1
        return self._tokens.refreshed(stale)

    def _api(self, tokens: Tokens) -> Apis:
        if tokens.access_token != self._api_token:
            self._apis.clear()
            self._api_token = tokens.access_token
        sdk = HubSpot(access_token=tokens.access_token, host=self._host, base_url=self._host, retry=SDK_RETRY)

        def get(path: str) -> Any:
            if path not in self._apis:
                self._apis[path] = functools.reduce(getattr, path.split("."), sdk)
            return self._apis[path]

        return get

    # ---- the call --------------------------------------------------------------------------------
    def call(self, op: str, fn: Callable[[Apis], T], *, bucket: str = API, idempotent: bool = True) -> T:
        """Run one SDK request `fn(api)`; `idempotent=False` (creates) never retries a 5xx blindly."""
        tokens = self._fresh()
        refreshed = False
        attempt = 0
        while True:
            self.stats.waited_s += self.limiter.acquire(bucket)
            self.stats.calls += 1
            self.stats.by_op[op] += 1
            try:
                return fn(self._api(tokens))
            except Exception as exc:  # noqa: BLE001 - every SDK package has its own ApiException
                status = _errors.status_of(exc)
                error = _errors.translate(exc)
                if status == 401 and not refreshed:
                    tokens, refreshed = self._refresh(tokens), True
                    continue
                if isinstance(error, CrmAuthError):
                    raise CrmAuthError("HubSpot refused a freshly refreshed token") from exc
                delay = self._backoff(op, error, attempt, idempotent)
                if delay is None:
                    raise error from exc
                attempt += 1
                self.stats.retries += 1
                self._sleep(delay)
                self.stats.waited_s += delay

    def _backoff(self, op: str, error: Exception, attempt: int, idempotent: bool) -> float | None:
        """Seconds to wait before retrying, or None to give up (non-retryable or out of attempts)."""
        if isinstance(error, CrmRateLimited):
            self.stats.rate_limited += 1
            if error.daily or attempt >= self._max_retries:
                return None
            delay = error.retry_after if error.retry_after is not None else self._exponential(attempt)
            self.limiter.pause(delay)  # every worker of this portal backs off, not only this one
            logger.info("hubspot %s rate limited (429), attempt %d: backing off %.2fs", op, attempt + 1, delay)
            return delay
        if isinstance(error, _errors.HubSpotRefused):  # not done by HubSpot: safe to resend, creates too
            if attempt >= self._max_retries or error.retry_after > self._max_refused_wait:
                return None  # a long migration: the job is retried later (error.retry_after says when)
            delay = error.retry_after + random.uniform(0, error.retry_after / 4)  # noqa: S311 - jitter
            logger.info("hubspot %s refused for now (%s): waiting %.2fs", op, error, delay)
            return delay
        if isinstance(error, CrmUnavailable) and idempotent and attempt < min(self._max_retries, 4):
            delay = self._exponential(attempt)
            logger.warning("hubspot %s unavailable (%s), retrying in %.2fs", op, error, delay)
            return delay
        return None

    def _exponential(self, attempt: int) -> float:
        base = min(self._max_backoff, 0.25 * 2**attempt)
        return base / 2 + random.uniform(0, base / 2)  # noqa: S311 - jitter, not crypto
