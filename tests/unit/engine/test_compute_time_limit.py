"""A job's time limit ends the job even while a loop runs in the work-horse; a loop's own bug does not."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest
from rq.timeouts import JobTimeoutException, UnixSignalDeathPenalty

from crm_adapters.snapshot import Snapshot
from jobs.engine.compute import compute_all
from jobs.loops.base import Learned, LoopDefinition


def _loop(name: str, learn: Any) -> LoopDefinition[Any]:
    return LoopDefinition(name=name, learn=learn, decide=lambda snapshot, state, now: [])


def _slow(snapshot: Snapshot, state: Any, now: datetime) -> Learned[Any]:
    time.sleep(5)
    return Learned(state={})


def _buggy(snapshot: Snapshot, state: Any, now: datetime) -> Learned[Any]:
    raise KeyError("a loop's bug")


@pytest.mark.parametrize("workers", [1, 2])
def test_the_time_limit_raised_inside_a_loop_ends_the_run(workers: int) -> None:
    loops = {"slow": _loop("slow", _slow), "other": _loop("other", _slow)}
    started = time.monotonic()
    with pytest.raises(JobTimeoutException), UnixSignalDeathPenalty(1, JobTimeoutException, job_id="j"):
        compute_all(loops, Snapshot(), {}, datetime(2026, 1, 1), learn=True, decide=True, workers=workers)
    assert time.monotonic() - started < 4.5  # not after the loops ran to their end


def test_a_loops_bug_is_recorded_on_that_loop_and_the_others_run() -> None:
    loops = {"buggy": _loop("buggy", _buggy), "fine": _loop("fine", lambda s, st, now: Learned(state={"ok": 1}))}
    out = compute_all(loops, Snapshot(), {}, datetime(2026, 1, 1), learn=True, decide=True, workers=1)
    assert out["buggy"].error.startswith("KeyError") and out["fine"].learned is not None
