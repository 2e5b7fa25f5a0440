"""Generated bad input against every HTTP endpoint and every mapper: 10,000 cases each, no 5xx, no crash, no batch lost.

The same targets and oracles as tests/property (which run a few dozen examples each): hypothesis generates
requests and CRM records (NUL characters, lone surrogates, non-ASCII digits, huge and non-finite numbers,
JSON of the wrong shape, valid signatures over all of it) and each case is judged: 5xx (or a refusal with
no message), crash (an exception escaped), lost (a webhook answered 200 but an event is not stored, or a
mapped page is not all in the store). The store is a private PostgreSQL schema when a server is reachable
(DATABASE_URL or the local one .ci/services starts), else a SQLite file. Targets run in two processes.
The last line is one JSON object.
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
DEFAULT_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DATABASE_URL = os.environ.get("DATABASE_URL", "") or DEFAULT_DB  # read once: the sandbox demo's set-up changes it
TARGETS = ["Salesforce Canvas card", "OAuth callbacks and installs", "sandbox pages", "admin pages and forms",
           "Salesforce mappers", "webhooks", "HubSpot card", "HubSpot mappers", "sandbox mappers"]  # quick ones first


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


def run_target(name: str) -> dict[str, Any]:
    """Generate CASES cases for one target and tally the outcomes (never stops at the first bad one)."""
    from hypothesis import HealthCheck, Phase, given, settings

    from tests.property.http_targets import judge

    logging.disable(logging.CRITICAL)  # quarantines and refusals log by design; the tally is the output
    workdir = Path(tempfile.mkdtemp(prefix="fuzz-"))
    strategy, run, kind, cleanup = _case_runner(name, workdir)
    tally: Counter[str] = Counter()
    examples: dict[str, str] = {}

    @settings(max_examples=CASES, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def fuzz(case: Any) -> None:
        outcome = judge(lambda: run(case))
        tally[outcome] += 1
        if outcome != "ok":
            examples.setdefault(outcome, repr(case)[:300])

    started = time.monotonic()
    try:
        fuzz()
    finally:
        cleanup()
    return {"target": name, "store": kind, "cases": sum(tally.values()), "5xx": tally["5xx"],
            "crashes": tally["crash"], "lost": tally["lost"], "seconds": round(time.monotonic() - started, 1),
            "examples": examples}


def main() -> None:
    rows = []
    with ProcessPoolExecutor(max_workers=2) as pool:
        for row in pool.map(run_target, TARGETS):
            print(f"done: {row['target']}: {row['cases']} cases, {row['5xx']} 5xx, {row['crashes']} crashes, "
                  f"{row['lost']} lost in {row['seconds']} s", flush=True)
            rows.append(row)
    print(f"{'target':<30} {'store':<20} {'cases':>7} {'5xx':>5} {'crashes':>8} {'lost':>5} {'seconds':>8}")
    for r in rows:
        print(f"{r['target']:<30} {r['store']:<20} {r['cases']:>7} {r['5xx']:>5} {r['crashes']:>8} {r['lost']:>5} "
              f"{r['seconds']:>8}")
        for outcome, example in r["examples"].items():
            print(f"    first {outcome}: {example}")
    totals = {k: sum(r[k] for r in rows) for k in ("cases", "5xx", "crashes", "lost")}
    print(f"{'all':<30} {'':<20} {totals['cases']:>7} {totals['5xx']:>5} {totals['crashes']:>8} {totals['lost']:>5}")
    print(json.dumps({"bench": "fuzz", "cases_per_target": CASES, **totals,
                      "targets": [{k: v for k, v in r.items() if k != "examples"} for r in rows]}))


if __name__ == "__main__":
    main()
