"""A real `salesloop worker` process for the integration tests, with two test-only hooks set by env.

SALESLOOP_TEST_PROBE=1 adds a `probe` loop to the registry that takes a moment to decide (so overlapping
runs of one tenant would show); SALESLOOP_TEST_SLOW_WRITES=<seconds> slows each CRM write
call and publishes the work-horse's pid in Redis, so a test can SIGKILL it mid-write.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime
from typing import Any

from crm_adapters.snapshot import Snapshot
from jobs.loops import registry
from jobs.loops.base import Learned, LoopDefinition


def _probe_learn(snapshot: Snapshot, state: Any, now: datetime) -> Learned:
    return Learned({"deals": len(snapshot.deals)}, {"n": len(snapshot.deals)})


def _probe_decide(snapshot: Snapshot, state: Any, now: datetime) -> list[Any]:
    time.sleep(float(os.environ.get("SALESLOOP_TEST_PROBE", "0.4")))
    return []


class SlowWrites:
    """Wraps an adapter: every write call waits, and the process announces its pid first."""

    def __init__(self, inner: Any, delay: float) -> None:
        self._inner, self._delay = inner, delay

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _announce(self) -> None:
        from redis import Redis

        Redis.from_url(os.environ["REDIS_URL"]).set("test:horse_pid", os.getpid())
        time.sleep(self._delay)

    def write_fields(self, updates: Any) -> Any:
        self._announce()
        return self._inner.write_fields(updates)

    def create_tasks(self, tasks: Any) -> Any:
        self._announce()
        return self._inner.create_tasks(tasks)

    def create_notes(self, notes: Any) -> Any:
        self._announce()
        return self._inner.create_notes(notes)


def install_hooks() -> None:
    if os.environ.get("SALESLOOP_TEST_PROBE"):
        registry.LOOPS = {**registry.LOOPS, "probe": LoopDefinition("probe", _probe_learn, _probe_decide)}
    delay = os.environ.get("SALESLOOP_TEST_SLOW_WRITES")
    if delay:
        import jobs.engine.chain
        from jobs.state import outbox

        outbox.BATCH = 5
        real = jobs.engine.chain.adapter_for
        jobs.engine.chain.adapter_for = lambda *a, **kw: SlowWrites(real(*a, **kw), float(delay))  # type: ignore[assignment]


if __name__ == "__main__":
    install_hooks()
    from connector.cli import main

    main(["worker", *sys.argv[1:]])
