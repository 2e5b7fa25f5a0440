"""`salesloop demo`: the whole loop on the embedded sandbox CRM, with nothing else installed.

Simulate a sales org, load it into the sandbox CRM, install the app into it, sync through
the port into the store, run every registered loop, write the results back into the
sandbox, and print what happened. With REDIS_URL set, the chain runs as an RQ job on a
worker (a burst worker is started if none is running).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from redis import Redis
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rq import Worker

from connector.settings import Settings
from connector.store import Store
from connector.store import installations as inst
from connector.store.installation_settings import InstallationSettings
from connector.store.tables import Installation, InstallationStatus
from crm_adapters.errors import ConfigError
from jobs import queues
from jobs.engine import chain as engine
from jobs.rq import tasks
from jobs.tools.demo_render import RECORDS, render, step_words
from jobs.tools.demo_report import attention_figures, per_stage_win_rates, store_figures

logger = logging.getLogger(__name__)

TENANT = "demo-org"
PORT = 8765  # `salesloop demo --serve`: where the pages are


@click.command("demo")
@click.option("--scenario", "scenario_path", default=None,
              help="A scenario: a built-in name (default, no-signal) or a TOML file (default: ~12 months, ~5k deals).")
@click.option("--deals", type=int, default=None, help="Scale the scenario to about this many deals.")
@click.option("--seed", type=int, default=7, show_default=True, help="Simulation seed: same seed, same org.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@click.option("--serving-port", type=int, default=None, hidden=True)  # set by --serve: the summary names the port it will use
def demo(scenario_path: str | None, deals: int | None, seed: int, as_json: bool, serving_port: int | None = None) -> None:
    """Run every loop on a simulated org in the embedded sandbox CRM and show what it did."""
    console = Console(stderr=as_json, quiet=as_json)
    try:
        result = run_demo(scenario_path=scenario_path, deals=deals, seed=seed, console=console)
    except (ValueError, LookupError, OSError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(result, default=str))
    else:
        render(Console(), result, port=serving_port or PORT, serving=serving_port is not None)


def run_demo(*, scenario_path: str | None, deals: int | None, seed: int, console: Console) -> dict[str, Any]:
    """Build, install, run; returns every figure the summary shows."""
    # the sandbox is optional in a build (see _sandbox): loaded when the demo runs
    from crm_adapters.sandbox import load_scenario, simulate

    started = time.monotonic()
    settings = Settings.from_env()
    home = Path(settings.home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    store = Store.connect(settings.store_url)
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

    figures = _figures(store, installation_id, crm)
    timings["total"] = time.monotonic() - started
    return {
        "installation_id": installation_id, "tenant_id": TENANT, "seed": seed, "simulated_now": org.now.isoformat(),
        "mode": "rq" if settings.redis_url else "in-process", "crm_records": org.counts(), "chain": summary,
        "org_name": "Demo org (sandbox)", **figures, "seconds": {k: round(v, 2) for k, v in timings.items()},
    }


def _figures(store: Store, installation_id: str, crm: Any) -> dict[str, Any]:
    """What the summary reads back: the store's figures, win rates by stage, and what was asked of people."""
    names = {u.remote_id: u.name for u in crm.read_users()}
    with store.session() as session:
        settings = dict(inst.get(session, installation_id).settings or {})
        return {"store": store_figures(session, installation_id), "stage_win_rates": per_stage_win_rates(session, installation_id),
                "tasks_per_person": attention_figures(session, installation_id, settings, crm.list_tasks(), names)}


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
        row = Installation(crm="sandbox", tenant_id=TENANT, name="Demo org (sandbox)", status=InstallationStatus.ACTIVE,
                           settings=InstallationSettings(sandbox_url=crm_url, clock=clock.isoformat(), time_zone="UTC").to_json())
        session.add(row)
        session.flush()
        inst.audit(session, row.id, "system:demo", "installed", {"crm": "sandbox", "tenant_id": TENANT})
        return row.id


def _in_process(
    store: Store, settings: Settings, installation_id: str, crm: Any, now: datetime, console: Console, counts: dict[str, int],
) -> dict[str, Any]:
    columns = (SpinnerColumn(), TextColumn("{task.description:<40}"), BarColumn(),
               TextColumn("{task.completed:>7,.0f} of {task.total:,.0f}"), TimeElapsedColumn())  # counts with separators
    with Progress(*columns, console=console, transient=False) as progress:
        bars: dict[str, Any] = {}
        expected = {"user": counts.get("users"), "account": counts.get("accounts"), "contact": counts.get("contacts"),
                    "deal": counts.get("deals"), "deal_contact_role": counts.get("roles"),
                    "stage_change": counts.get("stage_changes"), "activity": counts.get("activities")}

        def on_sync(entity: str, done: int, total: int | None) -> None:
            if entity not in bars:
                bars[entity] = progress.add_task(f"Reading {RECORDS.get(entity, entity).lower()}", total=total or expected.get(entity))
            progress.update(bars[entity], completed=done, total=max(done, total or expected.get(entity) or done))

        current: dict[str, Any] = {}

        def on_step(name: str) -> None:
            if "step" in current:
                progress.update(current["step"], completed=1)
            if name != "sync":
                current["step"] = progress.add_task(step_words(name), total=1)

        options = engine.Options(progress=on_sync, on_step=on_step, job_id="demo")
        report = engine.run_chain(store, installation_id, settings=settings, now=now, crm=crm, options=options)
        if "step" in current:
            progress.update(current["step"], completed=1)
    return tasks.summary(report)


def _through_rq(settings: Settings, installation_id: str, console: Console) -> dict[str, Any]:
    """Enqueue the chain and wait for a worker (start a burst worker when none is listening)."""
    conn = Redis.from_url(settings.redis_url or "")
    job = queues.enqueue("chain", installation_id, connection=conn)
    helper = None
    if not Worker.all(connection=conn):
        helper = subprocess.Popen([sys.executable, "-m", "connector.cli", "worker", "--burst"])
    with console.status(f"job {job.id} on the '{queues.DEFAULT}' queue..."):
        while (status := job.get_status(refresh=True)) not in ("finished", "failed", "canceled", "stopped"):
            time.sleep(0.5)
    if helper is not None:
        _stop_helper(helper)
    if status != "finished":
        raise LookupError(f"the demo job ended {status}; see `rq info` and the worker's log")
    return dict(job.return_value() or {})


def _stop_helper(helper: subprocess.Popen[bytes]) -> None:
    """The job is done, so the result is known: give our burst worker a minute to exit, then stop it (it is ours)."""
    try:
        helper.wait(timeout=60)
    except subprocess.TimeoutExpired:
        logger.warning("the demo's burst worker did not exit after its job; stopping it")
        helper.terminate()
        helper.wait(timeout=30)
