"""Real RQ workers (separate processes) on a real Redis, with the sandbox CRM file as the CRM.

A work-horse killed with SIGKILL mid-write is retried, and the CRM ends with exactly one run's
writes; three workers over many tenants never run one tenant's chain twice at once. Both on
SQLite and on PostgreSQL, where a connection that crossed RQ's fork broke every job after the first.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from rq.job import Job
from sqlalchemy import select, text

from connector.settings import Settings
from connector.store import Store, readings
from connector.store.tables import AuditEntry, Installation, LoopRun, OutboxItem
from crm_adapters.model import Entity
from crm_adapters.sandbox import SandboxCrm, load_scenario, simulate
from jobs import queues
from jobs.engine.chain import Options, run_chain
from jobs.loops.registry import all_loops
from jobs.nlp.reading import Reader
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture(scope="module")
def org():  # type: ignore[no-untyped-def]
    return simulate(load_scenario(None).scaled(80), seed=11)


@pytest.fixture(params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path: Path, redis_url: str, redis_conn: Redis) -> dict[str, Any]:
    crm_url = f"sqlite:///{tmp_path / 'crm.db'}"
    if request.param == "sqlite":
        store_url = f"sqlite:///{tmp_path / 'store.db'}"
        return {"store": Store.connect(store_url), "store_url": store_url, "crm_url": crm_url,
                "redis_url": redis_url, "conn": redis_conn, "tmp": tmp_path, "app": None}
    store = request.getfixturevalue("store")  # the session's private PostgreSQL schema, emptied
    require(store.engine.dialect.name == "postgresql", "PostgreSQL: set DATABASE_URL=postgresql://... (make test does)")
    schema = request.getfixturevalue("_pg_schema")
    app = f"salesloop-{schema}"  # names the workers' sessions, so the test can find them in pg_stat_activity
    store_url = f"{os.environ['DATABASE_URL']}?options=-csearch_path%3D{schema}&application_name={app}"
    return {"store": store, "store_url": store_url, "crm_url": crm_url, "redis_url": redis_url, "conn": redis_conn,
            "tmp": tmp_path, "app": app}


def install(world: dict[str, Any], org: Any, tenant: str, loops: dict[str, bool] | None = None) -> str:
    crm = SandboxCrm.open(world["crm_url"], tenant)
    crm.load(org)
    crm.close()
    settings = {"sandbox_url": world["crm_url"], "clock": org.now.isoformat(), "quality": {"sample_rate": 0.2, "seed": "fixed"}}
    if loops is not None:
        settings["loops"] = {name: {"enabled": on} for name, on in loops.items()}
    with world["store"].session() as s:
        row = Installation(crm="sandbox", tenant_id=tenant, settings=settings)
        s.add(row)
        s.flush()
        return row.id


@pytest.fixture
def start_workers(world: dict[str, Any]) -> Iterator[Any]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(n: int, **env: str) -> list[subprocess.Popen[bytes]]:
        full = {**os.environ, "DATABASE_URL": world["store_url"], "REDIS_URL": world["redis_url"], "TESTING": "1",
                "SALESLOOP_LOCK_TTL": "5", "SALESLOOP_LOOP_WORKERS": "1", "PYTHONPATH": str(ROOT), **env}
        for i in range(n):
            log = open(world["tmp"] / f"worker{len(procs)}.log", "wb")  # noqa: SIM115 - closed with the process
            procs.append(subprocess.Popen([sys.executable, "-m", "tests.integration.worker_main", "--name", f"w{len(procs)}-{i}"],
                                          cwd=ROOT, env=full, stdout=log, stderr=subprocess.STDOUT))
        return procs

    yield start
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def crm_writes(crm_url: str, tenant: str, deal_ids: list[str], account_ids: list[str]) -> tuple[list[str], dict[str, Any]]:
    crm = SandboxCrm.open(crm_url, tenant)
    try:
        keys = sorted(t["idempotency_key"] for t in crm.list_tasks())
        fields = {d: crm.app_field_values(Entity.DEAL, d) for d in deal_ids}
        fields.update({f"account:{a}": crm.app_field_values(Entity.ACCOUNT, a) for a in account_ids})
        return keys, {d: v for d, v in fields.items() if v}
    finally:
        crm.close()


def test_a_worker_killed_mid_write_is_rerun_and_the_crm_ends_with_one_runs_writes(world, org, start_workers) -> None:  # type: ignore[no-untyped-def]
    chosen = ("deal_risk", "icp")
    loops = {name: name in chosen for name in all_loops()}
    reference = install(world, org, "reference", loops)
    run_chain(world["store"], reference, settings=Settings(testing=True), now=org.now,
              options=Options(loops={n: all_loops()[n] for n in chosen}, workers=1))
    deal_ids, account_ids = [d.remote_id for d in org.deals], [a.remote_id for a in org.accounts]
    want_keys, want_fields = crm_writes(world["crm_url"], "reference", deal_ids, account_ids)
    assert want_keys and want_fields

    victim = install(world, org, "victim", loops)
    start_workers(1, SALESLOOP_TEST_SLOW_WRITES="0.4")
    conn: Redis = world["conn"]
    job = queues.enqueue("chain", victim, connection=conn)
    wait_for(lambda: conn.get("test:horse_pid") is not None and _sent(world["store"], victim) > 0, 120, "the first writes")
    os.kill(int(conn.get("test:horse_pid")), signal.SIGKILL)  # type: ignore[arg-type]
    if world["app"]:  # the killed job's transaction ended with its process: no sibling holds it open
        wait_for(lambda: _idle_in_transaction(world) == 0, 30, "the killed job's transaction to end")
    wait_for(lambda: Job.fetch(job.id, connection=conn).get_status(refresh=True) == "finished", 180, "the retried job")
    fetched = Job.fetch(job.id, connection=conn)
    assert fetched.retries_left is not None and fetched.retries_left < len(queues.KINDS["chain"].retry)

    got_keys, got_fields = crm_writes(world["crm_url"], "victim", deal_ids, account_ids)
    assert got_keys == want_keys  # every task once: none lost, none twice
    assert got_fields == want_fields
    with world["store"].session() as s:
        statuses = set(s.execute(select(OutboxItem.status).where(OutboxItem.installation_id == victim)).scalars())
    assert statuses == {"sent"}


def _idle_in_transaction(world: dict[str, Any]) -> int:
    with world["store"].engine.connect() as c:
        return int(c.execute(text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :app"
                                  " AND state LIKE 'idle in transaction%'"), {"app": world["app"]}).scalar_one())


def test_one_worker_runs_job_after_job(world, org, start_workers) -> None:  # type: ignore[no-untyped-def]
    """Every work-horse opens its own connection: the third job of one worker runs as the first did."""
    only_probe = {name: False for name in all_loops()}
    tenants = [install(world, org, f"tenant{i}", {**only_probe, "probe": True}) for i in range(2)]
    conn: Redis = world["conn"]
    jobs = [queues.enqueue(kind, t, connection=conn, suffix=f"r{n}")
            for n, kind in enumerate(("sync", "chain", "writeback", "learn")) for t in tenants]
    start_workers(1, SALESLOOP_TEST_PROBE="0.05")
    wait_for(lambda: all(Job.fetch(j.id, connection=conn).get_status(refresh=True) in ("finished", "failed") for j in jobs),
             240, "every job")
    fetched = [Job.fetch(j.id, connection=conn) for j in jobs]
    assert [j.get_status() for j in fetched] == ["finished"] * len(jobs)
    assert {j.worker_name for j in fetched} == {"w0-0"}
    assert all(j.retries_left == len(queues.KINDS[j.meta["kind"]].retry) for j in fetched)  # none needed a retry
    assert {j.return_value()["status"] for j in fetched} == {"done"}


def _sent(store: Store, installation_id: str) -> int:
    with store.session() as s:
        return len(s.execute(select(OutboxItem.id).where(OutboxItem.installation_id == installation_id,
                                                         OutboxItem.status == "sent")).all())


def test_three_workers_never_run_one_tenants_chain_twice_at_once(world, org, start_workers) -> None:  # type: ignore[no-untyped-def]
    only_probe = {name: False for name in all_loops()}
    tenants = [install(world, org, f"tenant{i}", {**only_probe, "probe": True}) for i in range(6)]
    conn: Redis = world["conn"]
    jobs = [queues.enqueue("writeback" if n % 2 else "sync", t, connection=conn, suffix=f"r{n}")
            for t in tenants for n in range(3)]
    jobs += [queues.enqueue("learn", t, connection=conn) for t in tenants]
    start_workers(3, SALESLOOP_TEST_PROBE="0.3")
    wait_for(lambda: all(Job.fetch(j.id, connection=conn).get_status(refresh=True) == "finished" for j in jobs), 240,
             "every job")
    with world["store"].session() as s:
        runs = s.execute(select(LoopRun.installation_id, LoopRun.job_id, LoopRun.started_at, LoopRun.finished_at)
                         .where(LoopRun.loop == "probe")).all()
    assert len(runs) == len(tenants)  # the learn jobs ran the probe loop
    spans = _chain_spans(world["store"], jobs)
    by_tenant: dict[str, list[tuple[float, float]]] = {}
    for tenant, start, end in spans:
        by_tenant.setdefault(tenant, []).append((start, end))
    for tenant, intervals in by_tenant.items():
        intervals.sort()
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(intervals, intervals[1:], strict=False)), tenant
    overlaps = sum(1 for i, a in enumerate(spans) for b in spans[i + 1:] if a[0] != b[0] and a[1] < b[2] and b[1] < a[2])
    assert overlaps > 0  # different tenants did run at the same time
    workers = {Job.fetch(j.id, connection=conn).worker_name for j in jobs}
    assert len(workers) >= 2


def _chain_spans(store: Store, jobs: list[Job]) -> list[tuple[str, float, float]]:
    """(installation id, started, ended) of every chain, from the engine's audit entries (inside the lock)."""
    ids = {j.id for j in jobs}
    with store.session() as s:
        rows = s.execute(select(AuditEntry.installation_id, AuditEntry.action, AuditEntry.at, AuditEntry.detail)
                         .where(AuditEntry.action.in_(("chain:started", "chain:done")))).all()
    marks: dict[str, dict[str, Any]] = {}
    for installation_id, action, at, detail in rows:
        if detail.get("job_id") in ids:
            entry = marks.setdefault(detail["job_id"], {"tenant": installation_id})
            entry[action] = at.timestamp()
    assert len(marks) == len(ids) and all("chain:done" in m for m in marks.values())
    return [(m["tenant"], m["chain:started"], m["chain:done"]) for m in marks.values()]


def test_a_work_horse_reads_a_syncs_text_in_forked_reading_workers_and_runs_the_next_jobs(world, org, start_workers) -> None:  # type: ignore[no-untyped-def]
    """Two reading processes (pages of 500 activities go to them) inside RQ's forked work-horse: every activity
    gets its reading, and the horse's next jobs run on their own connections (none crossed a fork)."""
    only_probe = {name: False for name in all_loops()}
    tenants = [install(world, org, f"reader{i}", {**only_probe, "probe": True}) for i in range(2)]
    conn: Redis = world["conn"]
    jobs = [queues.enqueue(kind, t, connection=conn, suffix=f"r{n}") for n, kind in enumerate(("sync", "chain")) for t in tenants]
    start_workers(1, SALESLOOP_TEST_PROBE="0.05", SALESLOOP_LOOP_WORKERS="2")
    wait_for(lambda: all(Job.fetch(j.id, connection=conn).get_status(refresh=True) in ("finished", "failed") for j in jobs),
             240, "every job")
    fetched = [Job.fetch(j.id, connection=conn) for j in jobs]
    assert [j.get_status() for j in fetched] == ["finished"] * len(jobs)
    assert all(j.retries_left == len(queues.KINDS[j.meta["kind"]].retry) for j in fetched)
    version = Reader().version
    with world["store"].session() as s:
        for tenant in tenants:
            current = dict(readings.current(s, tenant, version))
            assert len(current) == len(org.activities) > 2 * 500  # more than two pages: read by the workers
