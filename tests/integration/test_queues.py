"""RQ wiring on a real Redis: deterministic ids, cancelling, the tenant lock, the morning dispatcher, cron."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rq import Queue

from connector.store import Store
from connector.store.tables import Installation
from jobs import queues
from jobs.rq import tasks
from jobs.rq.locks import TenantBusy, holder, tenant_lock


@pytest.fixture
def env_store(tmp_path: Path, redis_url: str, redis_conn, monkeypatch: pytest.MonkeyPatch) -> Store:  # type: ignore[no-untyped-def]
    """A store the task layer finds through the environment, as a worker process would."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("TESTING", "1")
    tasks._context.cache_clear()
    yield Store.connect(url)
    tasks._context.cache_clear()


def test_same_work_for_the_same_tenant_is_enqueued_once(redis_conn) -> None:  # type: ignore[no-untyped-def]
    first = queues.enqueue("sync", "inst1", connection=redis_conn)
    again = queues.enqueue("sync", "inst1", connection=redis_conn)
    other = queues.enqueue("sync", "inst2", connection=redis_conn)
    assert first.id == again.id == "salesloop-sync-inst1" and other.id != first.id
    assert Queue("default", connection=redis_conn).count == 2
    assert first.retries_left == 3 and first.timeout == 30 * 60


def test_kinds_go_to_queues_by_priority(redis_conn) -> None:  # type: ignore[no-untyped-def]
    assert queues.enqueue_writeback("i1", connection=redis_conn).origin == "interactive"
    assert queues.enqueue_incremental_sync("i1", entities=["deal"], connection=redis_conn).origin == "default"
    assert queues.enqueue_backfill("i1", connection=redis_conn).origin == "bulk"
    assert queues.QUEUE_ORDER == ("interactive", "default", "bulk")


def test_uninstall_cancels_only_that_tenants_waiting_jobs(redis_conn) -> None:  # type: ignore[no-untyped-def]
    for kind in ("sync", "learn", "writeback"):
        queues.enqueue(kind, "gone", connection=redis_conn)
    kept = queues.enqueue("sync", "stays", connection=redis_conn)
    assert queues.stop_installation_jobs("gone", connection=redis_conn) == 3
    assert kept.get_status(refresh=True) == "queued"
    assert queues.enqueue("sync", "gone", connection=redis_conn).get_status() == "queued"  # a cancelled id can be reused


def test_tenant_lock_is_exclusive_and_frees_itself_when_its_holder_dies(redis_conn) -> None:  # type: ignore[no-untyped-def]
    entered = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with tenant_lock(redis_conn, "t1", ttl=0.6):
            entered.set()
            release.wait(5)

    thread = threading.Thread(target=hold)
    thread.start()
    entered.wait(5)
    time.sleep(0.8)  # longer than the TTL: the heartbeat keeps it
    with pytest.raises(TenantBusy), tenant_lock(redis_conn, "t1", ttl=0.6, wait=0.3):
        pass
    with tenant_lock(redis_conn, "t2", ttl=0.6, wait=0.3):  # other tenants are not blocked
        assert holder(redis_conn, "t2")
    release.set()
    thread.join()
    assert holder(redis_conn, "t1") is None
    redis_conn.set("salesloop:tenant-lock:t3", "a-dead-worker", px=300)  # a holder that died: no heartbeat
    with tenant_lock(redis_conn, "t3", ttl=0.6, wait=2):
        assert holder(redis_conn, "t3") != "a-dead-worker"


def test_morning_list_is_due_at_seven_in_each_tenants_time_zone(env_store: Store, redis_conn) -> None:  # type: ignore[no-untyped-def]
    with env_store.session() as s:
        s.add(Installation(id="berlin", crm="sandbox", tenant_id="b", settings={"time_zone": "Europe/Berlin"}))
        s.add(Installation(id="utc", crm="sandbox", tenant_id="u", settings={}))
        s.add(Installation(id="tokyo", crm="sandbox", tenant_id="t", settings={"time_zone": "Asia/Tokyo"}))
        s.add(Installation(id="gone", crm="sandbox", tenant_id="g", status="uninstalled", settings={"time_zone": "Europe/Berlin"}))
    at = datetime(2026, 6, 1, 5, 10, tzinfo=UTC)  # 07:10 in Berlin (CEST), 14:10 in Tokyo
    assert tasks.dispatch_morning(7, now=at) == 1
    assert tasks.dispatch_morning(7, now=at) == 1  # same day: the same job id, not a second job
    ids = Queue("default", connection=redis_conn).get_job_ids()
    assert ids == ["salesloop-morning-berlin-20260601"]
    assert tasks.dispatch("sync") == 3


def test_cron_schedule_registers_every_recurring_job(redis_conn) -> None:  # type: ignore[no-untyped-def]
    from jobs.rq.schedules import build_scheduler

    jobs = {job.name: job for job in build_scheduler(redis_conn).get_jobs()}
    assert jobs["salesloop.dispatch.sync"].interval == 300
    assert jobs["salesloop.dispatch_morning"].cron == "*/15 * * * *"
    assert jobs["salesloop.dispatch.learn"].cron == "30 2 * * *"
    assert jobs["salesloop.dispatch.weekly"].cron == "0 5 * * 1"
    assert jobs["salesloop.recover_abandoned"].interval == 60
    assert jobs["salesloop.run_token_heartbeat"].cron == "15 3 * * *"
    assert jobs["salesloop.run_purge"].cron == "45 3 * * *"
