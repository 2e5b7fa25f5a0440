"""Generated bad input against every HTTP endpoint and every mapper: 10,000 cases each, no 5xx, no crash, no batch lost.

The same targets and oracles as tests/property (which run a few dozen examples each): hypothesis generates
requests and CRM records (NUL characters, lone surrogates, non-ASCII digits, huge and non-finite numbers,
JSON of the wrong shape, valid signatures over all of it) and each case is judged: 5xx (or a refusal with
no message), crash (an exception escaped), lost (a webhook answered 200 but an event is not stored, or a
mapped page is not all in the store). The store is a private PostgreSQL schema when a server is reachable
(DATABASE_URL or the local one .ci/services starts), else a SQLite file. Targets (the slow ones in two
shards) run in FUZZ_PROCESSES processes (4), in chunks of 500 cases with their own seeds; after FUZZ_BUDGET_S
(540 s) no new chunk starts, and a target cut short says how many cases it ran. The last line is one JSON object.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASES = int(os.environ.get("FUZZ_CASES", "10000"))
BUDGET_S = float(os.environ.get("FUZZ_BUDGET_S", "540"))  # the bench rule: every bench runs in under 10 minutes
PROCESSES = int(os.environ.get("FUZZ_PROCESSES", "4"))  # cases wait on PostgreSQL: more processes than cores
CHUNK = 500  # cases per hypothesis run (each with its own seed); the time budget is checked between chunks
DEFAULT_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DATABASE_URL = os.environ.get("DATABASE_URL", "") or DEFAULT_DB  # read once: the sandbox demo's set-up changes it
# Slowest first (measured ms per case: sandbox mappers 33, HubSpot mappers 25, webhooks 21, the rest 8-15), and
# the slow ones in two shards of half the cases each, so the processes finish together.
TARGETS = ["sandbox mappers", "HubSpot mappers", "webhooks", "admin pages and forms", "Salesforce mappers",
           "HubSpot card", "sandbox pages", "OAuth callbacks and installs", "Salesforce Canvas card"]
SHARDS = {"sandbox mappers": 2, "HubSpot mappers": 2, "webhooks": 2}


def _store(workdir: Path) -> tuple[Any, str, Any]:
    """(store, what it is, cleanup): a private PostgreSQL schema, else a SQLite file."""
    from sqlalchemy import create_engine, text

    from connector.store import Store
    from connector.store.db import migrate, normalise_url

    base = normalise_url(DATABASE_URL)
    try:
        admin = create_engine(base)
        schema = f"fuzz_{uuid.uuid4().hex[:10]}"
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:  # no PostgreSQL here: the embedded default
        kind = "SQLite" if base.startswith("sqlite") else f"SQLite ({type(exc).__name__[:12]})"
        return Store.connect(f"sqlite:///{workdir / 'store.db'}"), kind, lambda: None
    # Commits that do not wait for the disk: what is judged is what the store accepts and keeps, which a
    # crash-safe commit does not change, and an fsync per case was most of a case's time.
    engine = create_engine(base, connect_args={"options": f"-csearch_path={schema} -csynchronous_commit=off"})
    migrate(engine)

    def drop() -> None:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))

    return Store(engine), "PostgreSQL", drop


def _sandbox_client(workdir: Path) -> tuple[Any, str]:
    from rich.console import Console

    from connector.sandbox_serve import demo_app, open_demo
    from connector.settings import Settings
    from jobs.tools.demo import run_demo
    from tests.property.http_targets import csrf_of

    os.environ.update(SALESLOOP_HOME=str(workdir), DATABASE_URL=f"sqlite:///{workdir / 'demo.db'}",
                      SALESLOOP_LOOP_WORKERS="1")
    os.environ.pop("REDIS_URL", None)
    result = run_demo(scenario_path=None, deals=60, seed=3, console=Console(quiet=True))
    settings, store, crm = open_demo(result["installation_id"], Settings.from_env())
    client = demo_app(settings, store, crm, result["installation_id"]).test_client()
    return client, csrf_of(client.get("/sandbox/tasks").get_data(as_text=True))


def _case_runner(name: str, workdir: Path) -> tuple[Any, Any, str, Any]:
    """(strategy, run(case) -> outcome, store kind, cleanup) for one target."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import StaticPool

    from tests.property import http_targets as h
    from tests.property import mapper_targets as m

    if name == "sandbox pages":
        client, csrf = _sandbox_client(workdir)
        return h.sandbox_cases, lambda c: h.sandbox_case(client, csrf, c), "SQLite (the demo's)", lambda: None
    store, kind, cleanup = _store(workdir)
    if name in h.TARGETS:
        strategy, case = h.TARGETS[name]
        rig = h.make_rig(store)
        return strategy, lambda c: case(rig, c), kind, cleanup
    installation_id = m.installation(store, "fuzz")
    if name == "HubSpot mappers":
        return m.hubspot_cases, lambda c: m.hubspot_case(store, installation_id, c), kind, cleanup
    if name == "Salesforce mappers":
        return m.salesforce_cases, lambda c: m.salesforce_case(store, installation_id, c), kind, cleanup
    # The sandbox CRM (the system the rows come from, not the store under test) in memory: a file cost two
    # fsyncs per row put.
    engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    return m.sandbox_cases, lambda c: m.sandbox_case(store, installation_id, engine, c), kind, cleanup


def run_target(name: str, shard: int = 0, cases: int = CASES, deadline: float = float("inf")) -> dict[str, Any]:
    """Generate `cases` cases for one target (shard: the seeds it uses) and tally the outcomes, never stopping at
    the first bad one; cut short, between chunks, when the wall clock passes `deadline` (time.time())."""
    from hypothesis import HealthCheck, Phase, given, seed, settings

    from tests.property.http_targets import judge

    logging.disable(logging.CRITICAL)  # quarantines and refusals log by design; the tally is the output
    workdir = Path(tempfile.mkdtemp(prefix="fuzz-"))
    strategy, run, kind, cleanup = _case_runner(name, workdir)
    tally: Counter[str] = Counter()
    examples: dict[str, str] = {}

    def one(case: Any) -> None:
        outcome = judge(lambda: run(case))
        tally[outcome] += 1
        if outcome != "ok":
            examples.setdefault(outcome, repr(case)[:300])

    started, cpu = time.monotonic(), time.process_time()
    try:
        for chunk in range(-(-cases // CHUNK)):
            if time.time() > deadline:
                break
            wanted = min(CHUNK, cases - sum(tally.values()))
            fuzz = seed(shard * 1_000_003 + chunk)(settings(
                max_examples=wanted, deadline=None, database=None, phases=[Phase.generate],
                suppress_health_check=list(HealthCheck))(given(case=strategy)(one)))
            fuzz()
    finally:
        cleanup()
    return {"target": name, "store": kind, "cases": sum(tally.values()), "5xx": tally["5xx"],
            "crashes": tally["crash"], "lost": tally["lost"], "seconds": round(time.monotonic() - started, 1),
            "cpu_s": round(time.process_time() - cpu, 1), "examples": examples}


def _unit(args: tuple[str, int, int, float]) -> dict[str, Any]:
    return run_target(*args)


def main() -> None:
    started = time.time()
    deadline = started + BUDGET_S
    units = [(name, shard, CASES // SHARDS.get(name, 1) + (shard < CASES % SHARDS.get(name, 1)), deadline)
             for name in TARGETS for shard in range(SHARDS.get(name, 1))]
    merged: dict[str, dict[str, Any]] = {}
    with ProcessPoolExecutor(max_workers=PROCESSES) as pool:
        for unit, part in zip(units, pool.map(_unit, units), strict=True):  # the pool runs them as processes free up
            row = merged.setdefault(part["target"], {**part, "cases": 0, "5xx": 0, "crashes": 0, "lost": 0,
                                                     "seconds": 0.0, "cpu_s": 0.0, "examples": {}})
            for key in ("cases", "5xx", "crashes", "lost", "seconds", "cpu_s"):
                row[key] += part[key]
            row["examples"] = {**part["examples"], **row["examples"]}
            print(f"done: {part['target']} (shard {unit[1]}): {part['cases']} cases, "
                  f"{part['5xx']} 5xx, {part['crashes']} crashes, {part['lost']} lost in {part['seconds']} s", flush=True)
    rows = [merged[name] for name in TARGETS]
    load = os.getloadavg()[0]
    print(f"{PROCESSES} processes on {os.cpu_count()} cores, load average {load:.1f} at the end; "
          f"wall time {time.time() - started:.0f} s (budget {BUDGET_S:.0f} s); seconds are per process, summed; "
          "CPU ms per case is this process's own (PostgreSQL's backend is extra), the figure load does not change")
    print(f"{'target':<30} {'store':<20} {'cases':>7} {'5xx':>5} {'crashes':>8} {'lost':>5} {'seconds':>8} {'CPU ms/case':>11}")
    for r in rows:
        short = "" if r["cases"] >= CASES else f"  (cut short by the time budget: {r['cases']} of {CASES})"
        per_case = round(r["cpu_s"] * 1000 / max(r["cases"], 1), 1)
        print(f"{r['target']:<30} {r['store']:<20} {r['cases']:>7} {r['5xx']:>5} {r['crashes']:>8} {r['lost']:>5} "
              f"{round(r['seconds'], 1):>8} {per_case:>11}{short}")
        for outcome, example in r["examples"].items():
            print(f"    first {outcome}: {example}")
    totals = {k: sum(r[k] for r in rows) for k in ("cases", "5xx", "crashes", "lost")}
    print(f"{'all':<30} {'':<20} {totals['cases']:>7} {totals['5xx']:>5} {totals['crashes']:>8} {totals['lost']:>5}")
    print(json.dumps({"bench": "fuzz", "cases_per_target": CASES, **totals,
                      "every_target_complete": all(r["cases"] >= CASES for r in rows),
                      "wall_s": round(time.time() - started), "processes": PROCESSES, "load_average": round(load, 1),
                      "targets": [{k: (round(v, 1) if k in ("seconds", "cpu_s") else v) for k, v in r.items() if k != "examples"}
                                  for r in rows]}))


if __name__ == "__main__":
    main()
