"""`salesloop demo`: the whole loop on the embedded sandbox CRM, with nothing else installed.

Simulate a sales org, load it into the sandbox CRM, install the app into it, sync through
the port into the store, run every registered loop, write the results back into the
sandbox, and print what happened. With REDIS_URL set, the chain runs as an RQ job on a
worker (a burst worker is started if none is running).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from connector.settings import Settings
from connector.store import Store
from connector.store import installations as inst
from connector.store.tables import Installation
from crm_adapters.errors import ConfigError
from jobs.adapters import SANDBOX_URL_KEY
from jobs.engine import chain as engine
from jobs.rq import tasks
from jobs.tools.demo_report import per_stage_win_rates, render, store_figures

logger = logging.getLogger(__name__)

TENANT = "demo-org"
CLOCK_KEY = "clock"  # installation.settings: a sandbox tenant runs on its simulated time


@click.command("demo")
@click.option("--scenario", "scenario_path", default=None, help="Scenario TOML (default: ~12 months, ~5k deals).")
@click.option("--deals", type=int, default=None, help="Scale the scenario to about this many deals.")
@click.option("--seed", type=int, default=7, show_default=True, help="Simulation seed: same seed, same org.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
def demo(scenario_path: str | None, deals: int | None, seed: int, as_json: bool) -> None:
    """Run every loop on a simulated org in the embedded sandbox CRM and show what it did."""
    console = Console(stderr=as_json, quiet=as_json)
    try:
        result = run_demo(scenario_path=scenario_path, deals=deals, seed=seed, console=console)
    except (ValueError, LookupError, OSError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(result, default=str))
    else:
        render(Console(), result)


def run_demo(*, scenario_path: str | None, deals: int | None, seed: int, console: Console) -> dict[str, Any]:
    """Build, install, run; returns every figure the summary shows."""
    from crm_adapters.sandbox import load_scenario, simulate

    started = time.monotonic()
    settings = Settings.from_env()
    home = Path(os.environ.get("SALESLOOP_HOME", "var")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    store = Store.connect(settings.database_url)
    timings: dict[str, float] = {}

    with console.status("simulating the sales org..."):
        scenario = load_scenario(scenario_path)
        if deals is not None:
            if deals < 10:
                raise ValueError(f"--deals must be at least 10, got {deals}")
            scenario = scenario.scaled(deals)
        org = simulate(scenario, seed=seed)
    timings["simulate"] = time.monotonic() - started

    mark = time.monotonic()
    with console.status("loading it into the sandbox CRM..."):
        crm_file = home / "sandbox-crm.db"
        for leftover in (crm_file, crm_file.with_name(crm_file.name + "-wal"), crm_file.with_name(crm_file.name + "-shm")):
            leftover.unlink(missing_ok=True)  # a fresh org each time: no tasks or fields left from the last demo
        crm_url = f"sqlite:///{crm_file}"
        crm = _sandbox(crm_url)
        crm.load(org)
    timings["sandbox_crm"] = time.monotonic() - mark
    installation_id = _install(store, crm_url, org.now)

    mark = time.monotonic()
    if settings.redis_url:
        summary = _through_rq(settings, installation_id, console)
    else:
        summary = _in_process(store, settings, installation_id, crm, org.now, console, org.counts())
    timings["chain"] = time.monotonic() - mark

    with store.session() as session:
        figures = store_figures(session, installation_id)
        stages = per_stage_win_rates(session, installation_id)
    timings["total"] = time.monotonic() - started
    return {
        "installation_id": installation_id, "tenant_id": TENANT, "seed": seed, "simulated_now": org.now.isoformat(),
        "mode": "rq" if settings.redis_url else "in-process", "crm_records": org.counts(), "chain": summary,
        "store": figures, "stage_win_rates": stages, "seconds": {k: round(v, 2) for k, v in timings.items()},
    }


def _sandbox(url: str) -> Any:
    try:
        from crm_adapters.sandbox import SandboxCrm
    except ImportError as exc:  # the sandbox CRM ships with crm_adapters.sandbox
        raise LookupError("this build has no sandbox CRM (crm_adapters.sandbox.SandboxCrm)") from exc
    return SandboxCrm.open(url, TENANT)


def _install(store: Store, crm_url: str, clock: datetime) -> str:
    """Install the app into the sandbox org, replacing a previous demo's installation."""
    with store.session() as session:
        old = inst.find(session, "sandbox", TENANT)
        if old is not None:
            session.delete(old)
    with store.session() as session:
        row = Installation(crm="sandbox", tenant_id=TENANT, name="Demo org (sandbox)", status="active",
                           settings={SANDBOX_URL_KEY: crm_url, CLOCK_KEY: clock.isoformat(), "time_zone": "UTC"})
        session.add(row)
        session.flush()
        inst.audit(session, row.id, "system:demo", "installed", {"crm": "sandbox", "tenant_id": TENANT})
        return row.id


def _in_process(
    store: Store, settings: Settings, installation_id: str, crm: Any, now: datetime, console: Console, counts: dict[str, int],
) -> dict[str, Any]:
    columns = (SpinnerColumn(), TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        bars: dict[str, Any] = {}
        expected = {"user": counts.get("users"), "account": counts.get("accounts"), "contact": counts.get("contacts"),
                    "deal": counts.get("deals"), "deal_contact_role": counts.get("roles"),
                    "stage_change": counts.get("stage_changes"), "activity": counts.get("activities")}

        def on_sync(entity: str, done: int, total: int | None) -> None:
            if entity not in bars:
                bars[entity] = progress.add_task(f"sync {entity}", total=total or expected.get(entity))
            progress.update(bars[entity], completed=done, total=max(done, total or expected.get(entity) or done))

        current: dict[str, Any] = {}

        def on_step(name: str) -> None:
            if "step" in current:
                progress.update(current["step"], completed=1)
            if name != "sync":
                current["step"] = progress.add_task(name, total=1)

        options = engine.Options(progress=on_sync, on_step=on_step, job_id="demo")
        report = engine.run_chain(store, installation_id, settings=settings, now=now, crm=crm, options=options)
        if "step" in current:
            progress.update(current["step"], completed=1)
    return tasks.summary(report)


def _through_rq(settings: Settings, installation_id: str, console: Console) -> dict[str, Any]:
    """Enqueue the chain and wait for a worker (start a burst worker when none is listening)."""
    from redis import Redis
    from rq import Worker

    from jobs.rq import queues

    conn = Redis.from_url(settings.redis_url or "")
    job = queues.enqueue("chain", installation_id, connection=conn)
    helper = None
    if not Worker.all(connection=conn):
        helper = subprocess.Popen([sys.executable, "-m", "connector.cli", "worker", "--burst"])
    with console.status(f"job {job.id} on the '{queues.DEFAULT}' queue..."):
        while (status := job.get_status(refresh=True)) not in ("finished", "failed", "canceled", "stopped"):
            time.sleep(0.5)
    if helper is not None:
        helper.wait(timeout=60)
    if status != "finished":
        raise LookupError(f"the demo job ended {status}; see `rq info` and the worker's log")
    return dict(job.return_value() or {})
