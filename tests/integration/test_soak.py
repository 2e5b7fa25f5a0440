"""The production-shape soak, shortened: gunicorn, three workers and cron on a private PostgreSQL
cluster and Redis, the sandbox and both CRM fakes, through a grant revoked mid write-back, a
SIGKILLed work-horse, a Redis restart and a PostgreSQL restart (bench/soak.py runs every round)."""

from __future__ import annotations

import glob
import shutil

import pytest

from tests.conftest import require

pytestmark = [pytest.mark.slow, pytest.mark.redis]


def test_no_write_is_lost_or_duplicated_through_kills_and_restarts() -> None:
    require(bool(glob.glob("/usr/lib/postgresql/*/bin/initdb")), "PostgreSQL server binaries (apt-get install postgresql)")
    require(shutil.which("redis-server") is not None, "redis-server (apt-get install redis-server)")
    from bench.soak import run

    fig = run(deals=30, seed=5, rounds=4)
    assert fig["faults_injected"] == 4 and fig["chains_run"] >= 10
    assert fig["writes"] > 0
    assert (fig["writes_lost"], fig["writes_duplicated"], fig["jobs_stuck"]) == (0, 0, 0), fig
    assert fig["status_agrees"], fig
    assert fig["webhooks_accepted"] == fig["webhooks_sent"] > 0
