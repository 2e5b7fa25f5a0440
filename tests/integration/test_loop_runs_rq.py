"""“Run the loops now” with Redis: the chain is the tenant's RQ job, its status read back until it ends."""

from __future__ import annotations

from typing import Any

import pytest

from connector.loop_runs import WRITE_BACK, RqRunner
from connector.settings import Settings
from jobs import queues
from tests.integration.test_workers import install, org, start_workers, wait_for, world  # noqa: F401 - fixtures

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def test_a_run_is_queued_then_reported_to_its_end_by_the_workers_job(world, org, start_workers) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    iid = install(world, org, "pressed")
    runner = RqRunner(world["store"], Settings(testing=True, redis_url=world["redis_url"]))
    assert runner.status(iid).state == "idle"
    first = runner.start(iid)
    assert first.state == "queued" and "worker" in first.step and not first.to_json()["finished"]
    assert runner.start(iid).run_id == first.run_id == queues.job_id("chain", iid)  # pressed twice: one job
    start_workers(1)
    seen: list[Any] = []
    wait_for(lambda: seen.append(runner.status(iid)) or seen[-1].to_json()["finished"], 240, "the chain job")
    done = seen[-1]
    assert done.state == "done" and done.percent == 100 and done.message.startswith("Loops ran")
    assert all(a.percent <= b.percent for a, b in zip(seen, seen[1:], strict=False))  # the bar never goes back
    percent, step = runner._progress(iid, done.run_id, None)  # the job's loop runs, all recorded
    assert percent == WRITE_BACK and step == "Writing back into the CRM"
