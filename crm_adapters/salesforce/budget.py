"""A per-tenant Salesforce API budget shared by every worker (Redis), or per process without Redis.

Salesforce's daily allocation is per org and rolling over 24 h, and the customer's other integrations
share it: we read `Sforce-Limit-Info: api-usage=n/m` on every response and stop a run before it
spends more than `run_share` of the allocation, or before the org as a whole passes `total_share`.
There is no Retry-After for the daily cap, so the error says "come back in an hour".
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from crm_adapters.errors import CrmBudgetExhausted

logger = logging.getLogger(__name__)

_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")
DAY_S = 24 * 3600


@dataclass(frozen=True, slots=True)
class Usage:
    used: int
    limit: int


def parse_limit_info(header: str | None) -> Usage | None:
    """`api-usage=18/5000; per-app-api-usage=...` -> Usage(18, 5000); None when absent or garbled."""
    match = _USAGE.search(header or "")
    return Usage(int(match.group(1)), int(match.group(2))) if match else None


class _Counters(Protocol):
    def incr_run(self, key: str) -> int: ...
    def run_count(self, key: str) -> int: ...
    def set_usage(self, key: str, usage: Usage) -> None: ...
    def usage(self, key: str) -> Usage | None: ...


class _MemoryCounters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, int] = {}
        self._usage: dict[str, Usage] = {}

    def incr_run(self, key: str) -> int:
        with self._lock:
            self._runs[key] = self._runs.get(key, 0) + 1
            return self._runs[key]

    def run_count(self, key: str) -> int:
        return self._runs.get(key, 0)

    def set_usage(self, key: str, usage: Usage) -> None:
        self._usage[key] = usage

    def usage(self, key: str) -> Usage | None:
        return self._usage.get(key)


class _RedisCounters:
    def __init__(self, redis: Any) -> None:
        self._r = redis

    def incr_run(self, key: str) -> int:
        pipe = self._r.pipeline()
        pipe.incr(key)
        pipe.expire(key, DAY_S)
        return int(pipe.execute()[0])

    def run_count(self, key: str) -> int:
        return int(self._r.get(key) or 0)

    def set_usage(self, key: str, usage: Usage) -> None:
        self._r.set(key, f"{usage.used}/{usage.limit}", ex=DAY_S)

    def usage(self, key: str) -> Usage | None:
        raw = self._r.get(key)
        return parse_limit_info(f"api-usage={raw.decode() if isinstance(raw, bytes) else raw}") if raw else None


class ApiBudget:
    """Stop a run at `run_share` of the daily allocation and everyone at `total_share` of it."""

    def __init__(self, tenant_id: str, *, redis: Any = None, run_id: str | None = None, run_share: float = 0.25,
                 total_share: float = 0.80, assumed_limit: int | None = None) -> None:
        if not 0 < run_share <= total_share <= 1:
            raise ValueError(f"need 0 < run_share <= total_share <= 1, got {run_share}, {total_share}")
        self.tenant_id = tenant_id
        self.run_id = run_id or uuid.uuid4().hex
        self.run_share, self.total_share = run_share, total_share
        self._counters: _Counters = _RedisCounters(redis) if redis is not None else _MemoryCounters()
        self._assumed_limit = assumed_limit
        self.calls = 0  # calls this process made through this budget (for reports and benchmarks)

    @property
    def _usage_key(self) -> str:
        return f"salesloop:sfbudget:{self.tenant_id}:usage"

    @property
    def _run_key(self) -> str:
        return f"salesloop:sfbudget:{self.tenant_id}:run:{self.run_id}"

    def usage(self) -> Usage | None:
        return self._counters.usage(self._usage_key)

    def run_calls(self) -> int:
        return self._counters.run_count(self._run_key)

    def check(self) -> None:
        """Raise CrmBudgetExhausted if the next call would go over either share."""
        usage = self.usage()
        limit = usage.limit if usage else self._assumed_limit
        if not limit:
            return  # the first response tells us the allocation
        if self.run_calls() >= self.run_share * limit:
            raise CrmBudgetExhausted(f"run budget spent: {self.run_calls()} calls >= {self.run_share:.0%} of {limit}",
                                     retry_after=3600.0)
        if usage and usage.used >= self.total_share * limit:
            raise CrmBudgetExhausted(f"org API usage {usage.used}/{limit} >= {self.total_share:.0%}; pausing",
                                     retry_after=3600.0)

    def record(self, header: str | None) -> None:
        """Count one call and remember the org's usage from its Sforce-Limit-Info header."""
        self.calls += 1
        self._counters.incr_run(self._run_key)
        usage = parse_limit_info(header)
        if usage is not None:
            self._counters.set_usage(self._usage_key, usage)

    def response_hook(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        """A requests response hook: every response through the session is counted, SDK-internal ones too."""
        if "/services/data/" in getattr(response, "url", ""):
            self.record(response.headers.get("Sforce-Limit-Info"))
        return response

