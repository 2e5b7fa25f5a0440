"""Scale: a whole chain (sync, learn, decide, record, write back) on the sandbox CRM as the tenant grows.

For each size, in a fresh child process: the first run on a fresh tenant, a rerun with nothing changed, then
a rerun after 1% of the open deals were edited (reruns as "Run the loops now": learning only when due); wall time and peak memory summed over the child and its forked loop workers (sampled
from /proc every 0.2 s), both resident (RSS: a page shared copy-on-write after the fork counts once per process,
so it overstates) and proportional (PSS: a page shared by n processes counts 1/n, so the sum is the real
footprint); and the first run step by step (the chain's Options.on_step). The store is SQLite, and PostgreSQL too when
DATABASE_URL names one (each size in a fresh schema of it, dropped afterwards, as SQLite gets a fresh file).

Across tenants: how many tenants of each size one worker serves per hour, when each gets a nightly whole run (costed
as the first run: an upper bound, it syncs only what changed) and --reruns-per-day on-demand reruns (the 1%-edited
rerun's time): 3600 s / (first run + reruns x rerun), as tenant-days per worker-hour.

Run: .venv/bin/python bench/scale.py [--deals 2000,5000] [--first-only] [--stores sqlite,postgresql] [--reruns-per-day 10]
(last line is JSON; times are noisy on a shared machine)
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connector.admin import charts  # noqa: E402

SEED = 7
CHANGED = 0.01  # share of open deals edited before the rerun
console = Console()


def _tree(root: int) -> tuple[set[int], dict[int, int]]:
    """A process and all its descendants, and each one's resident memory (bytes), read from /proc."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            parents[int(entry)], rss[int(entry)] = int(fields[1]), int(fields[21]) * page
        except (OSError, ValueError, IndexError):
            continue
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [p for p, parent in parents.items() if parent == pid and p not in tree]
        tree.update(children)
        frontier.extend(children)
    return tree, rss


def _pss_bytes(pid: int) -> int:
    """Proportional set size: each page shared by n processes counts 1/n (copy-on-write pages after a fork
    count once over the tree, where RSS counts them once per process)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _memory_tree_mb(root: int) -> tuple[float, float]:
    """(RSS, PSS) of a process and all its descendants, summed, in MB."""
    tree, rss = _tree(root)
    return sum(rss.get(p, 0) for p in tree) / 2**20, sum(_pss_bytes(p) for p in tree) / 2**20


def _measure(args: list[str], env: dict[str, str]) -> tuple[dict[str, Any], list[tuple[float, float, float]]]:
    """Run the child, sampling its process tree's memory; returns its JSON and the (time, RSS MB, PSS MB) samples."""
    child = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    samples: list[tuple[float, float, float]] = []

    def sample() -> None:
        while child.poll() is None:
            samples.append((time.time(), *_memory_tree_mb(child.pid)))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = child.communicate()
    sampler.join()
    if child.returncode != 0:
        raise RuntimeError(f"scale child {args} failed with exit code {child.returncode}")
    return json.loads(out.strip().splitlines()[-1]), samples


def _peak(samples: list[tuple[float, float, float]], start: float, end: float, column: int = 1) -> float:
    """The highest sample between start and end: column 1 is RSS summed, 2 is PSS summed."""
    return max((sample[column] for sample in samples if start <= sample[0] <= end), default=0.0)


def _child(deals: int, store_url: str, home: str, first_only: bool = False) -> None:
    """One tenant: simulate, load the sandbox, install, first chain, edit 1% of open deals, rerun."""
    os.environ.update(SALESLOOP_HOME=home, DATABASE_URL=store_url)
    os.environ.pop("REDIS_URL", None)
    from connector.settings import Settings
    from connector.store import Store
    from connector.store.tables import Installation
    from crm_adapters.sandbox import SandboxCrm, load_scenario, simulate
    from jobs.engine.chain import Options, run_chain

    org = simulate(load_scenario(None).scaled(deals), seed=SEED)
    crm_url = f"sqlite:///{Path(home) / 'sandbox-crm.db'}"
    tenant = f"scale-{deals}-{os.getpid()}"
    crm = SandboxCrm.open(crm_url, tenant)
    crm.load(org)
    # what the bench needs of the simulated world, then the world itself dropped: a worker never holds it, and it
    # would count in the chain's memory (about 100 MB at 5,000 deals, 400 MB at 20,000)
    now, counts, open_deals = org.now, org.counts(), sorted(d.remote_id for d in org.snapshot().open_deals())
    del org
    gc.collect()
    store = Store.connect(store_url)
    with store.session() as s:
        row = Installation(crm="sandbox", tenant_id=tenant, status="active",
                           settings={"sandbox_url": crm_url, "clock": now.isoformat(), "time_zone": "UTC"})
        s.add(row)
        s.flush()
        iid = row.id
    settings, times = Settings.from_env(), {}
    steps: list[tuple[str, float]] = []
    first = Options(on_step=lambda name: steps.append((name, time.time())))
    reports = []
    times["first"] = _timed(lambda: reports.append(run_chain(store, iid, settings=settings, now=now, crm=crm, options=first)))
    times["first_steps"] = steps
    times["first_loop_seconds"] = {name: round(r.seconds, 1) for name, r in reports[0].loops.items()}
    if first_only:
        print(json.dumps({"records": sum(counts.values()), "open_deals": len(open_deals), "edited": 0, **times}))
        return
    on_demand = Options(learn_when_due=True)
    times["same"] = _timed(lambda: run_chain(store, iid, settings=settings, now=now + timedelta(minutes=30), crm=crm,
                                             options=on_demand))
    edited = open_deals[:: max(1, round(1 / CHANGED))]
    for deal_id in edited:
        crm.edit_deal(deal_id, next_step=f"follow up ({deal_id})", close_date=now.date() + timedelta(days=45))
    times["rerun"] = _timed(lambda: run_chain(store, iid, settings=settings, now=now + timedelta(hours=1), crm=crm,
                                              options=on_demand))
    stale = _stale_scores(store, iid, crm, now + timedelta(hours=1))
    print(json.dumps({"records": sum(counts.values()), "open_deals": len(open_deals), "edited": len(edited),
                      "stale_scores": stale["stale"], "moved_by_the_clock": stale["moved_by_the_clock"], **times}))


def _stale_scores(store: Any, installation_id: str, crm: Any, now: Any) -> dict[str, int]:
    """Open deals whose risk score in the CRM is not what the active model gives their records as they are now, at
    the moment the CRM says they were scored ("stale": must be 0); and those whose score moved since only because
    time passed (the clock, not a record: the next scheduled run rescores them)."""
    from datetime import datetime

    from connector.store.records import load_snapshot
    from crm_adapters.model import Entity
    from jobs.loops.deal_risk.loop import decide
    from jobs.loops.deal_risk.state import DealRiskState
    from jobs.loops.decision import ActionKind
    from jobs.state import versions

    with store.session() as s:
        state = versions.state_of(versions.active(s, installation_id, "deal_risk"), DealRiskState)
        snapshot = load_snapshot(s, installation_id)
    if state is None:
        return {"stale": 0, "moved_by_the_clock": 0}

    def scores(at: datetime) -> dict[str, Any]:
        return {d.target_id: d.payload["risk_score"] for d in decide(snapshot, state, at) if d.kind is ActionKind.UPDATE_FIELD}

    current = scores(now)
    held = {deal_id: crm.app_field_values(Entity.DEAL, deal_id) for deal_id in current}
    at = {t: scores(datetime.fromisoformat(t)) for t in {v.get("scored_at") for v in held.values()} if t}
    stale = {d for d, v in held.items() if v.get("risk_score") is None or v["risk_score"] != at[v["scored_at"]].get(d)}
    return {"stale": len(stale), "moved_by_the_clock": sum(d not in stale and v["risk_score"] != current[d] for d, v in held.items())}


def _timed(run: Any) -> list[float]:
    start = time.time()
    run()
    return [start, time.time()]


def _exponent(rows: list[dict[str, Any]], key: str) -> float | None:
    """log(figure ratio) / log(size ratio) between the smallest and largest size: 1 = linear, 2 = quadratic."""
    if len(rows) < 2 or not rows[0][key] or rows[0]["deals"] == rows[-1]["deals"]:
        return None
    return round(math.log(rows[-1][key] / rows[0][key]) / math.log(rows[-1]["deals"] / rows[0]["deals"]), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", default="2000,5000", help="comma-separated tenant sizes in deals")
    parser.add_argument("--first-only", action="store_true", help="only the first run (large tenants: the reruns take long)")
    parser.add_argument("--stores", default="sqlite,postgresql",
                        help="which stores (PostgreSQL only when DATABASE_URL names one)")
    parser.add_argument("--reruns-per-day", type=int, default=10, help="on-demand reruns per tenant a day, for the tenants per worker-hour")
    parser.add_argument("--plot", metavar="DIR", help="also draw the growth (first run's minutes, peak memory) as SVG files in DIR")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(int(args.child[0]), args.child[1], args.child[2], first_only=args.first_only)
        return
    sizes = [int(n) for n in args.deals.split(",")]
    chosen = args.stores.lower().split(",")
    postgres = os.environ.get("DATABASE_URL", "") if os.environ.get("DATABASE_URL", "").startswith("postgres") else ""
    stores = ({"SQLite": ""} if "sqlite" in chosen else {}) | ({"PostgreSQL": postgres} if postgres and "postgresql" in chosen else {})
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    results: dict[str, list[dict[str, Any]]] = {}
    for name, url in stores.items():
        for deals in sizes:
            with tempfile.TemporaryDirectory(prefix="salesloop-scale-") as home, _fresh_store(url, home, deals) as store_url:
                child_args = ["--child", str(deals), store_url, home]
                figures, samples = _measure(child_args + (["--first-only"] if args.first_only else []), env)
            row = {"deals": deals, "records": figures["records"], "edited_deals": figures["edited"],
                   "stale_scores": figures.get("stale_scores"), "moved_by_the_clock": figures.get("moved_by_the_clock"),
                   "load_average_1min": round(os.getloadavg()[0], 1)}
            for phase in ("first",) if args.first_only else ("first", "same", "rerun"):
                start, end = figures[phase]
                row[f"{phase}_s"] = round(end - start, 1)
                row[f"{phase}_peak_mb"] = round(_peak(samples, start, end))
                row[f"{phase}_peak_pss_mb"] = round(_peak(samples, start, end, column=2))
            row["tenants_per_worker_hour"] = _tenants_per_worker_hour(row, args.reruns_per_day)
            row["first_phases"] = _phases(figures["first_steps"], figures["first"][1], samples)
            row["first_loop_seconds"] = figures["first_loop_seconds"]
            results.setdefault(name, []).append(row)
            _show_phases(f"{name}, {deals:,} deals: the first run step by step", row["first_phases"])
            console.print(f"{name} {deals:,} deals: { {k: v for k, v in row.items() if k != 'first_phases'} }")
            console.print(f"learn and decide per loop (seconds, in forked workers): {row['first_loop_seconds']}")
    _show(results)
    _show_tenants(results, args.reruns_per_day)
    keys = ("first_s", "first_peak_mb", "first_peak_pss_mb") + (() if args.first_only else (
        "same_s", "rerun_s", "rerun_peak_mb", "rerun_peak_pss_mb"))
    growth = {name: {k: _exponent(rows, k) for k in keys} for name, rows in results.items()}
    if args.plot:
        for path in _plot(results, Path(args.plot)):
            console.print(f"drawn: {path}")
    print(json.dumps({"load_average_1min": round(os.getloadavg()[0], 1), "reruns_per_day": args.reruns_per_day,
                      "results": results, "growth_exponent": growth}))


def _plot(results: dict[str, list[dict[str, Any]]], folder: Path) -> list[Path]:
    """The growth a person would rather look at: the first run's minutes and its peak memory (PSS, GB) per tenant
    size, one line per store, sizes on a log scale."""
    folder.mkdir(parents=True, exist_ok=True)
    size = lambda x: f"{10 ** x / 1000:,.0f}k"  # noqa: E731
    charts_out = []
    for name, title, key, unit, scale in (
            ("scale-time.svg", "First run: minutes by tenant size", "first_s", "minutes", 1 / 60),
            ("scale-memory.svg", "First run: peak memory (PSS, all processes) by tenant size", "first_peak_pss_mb", "GB", 1 / 1024)):
        series = [charts.Series(store, [(math.log10(r["deals"]), r[key] * scale) for r in rows])
                  for store, rows in results.items()]
        path = folder / name
        top = max((y for s in series for _, y in s.points), default=1.0)
        path.write_text(charts.line_chart(title, series, "deals in the tenant (log scale)", unit, x_format=size,
                                          y_range=(0.0, top * 1.1)))
        charts_out.append(path)
    return charts_out


@contextmanager
def _fresh_store(url: str, home: str, deals: int) -> Iterator[str]:
    """The store URL of one tenant size: a SQLite file in `home`, or a fresh schema of the PostgreSQL database
    (the tenant alone in it, as in its SQLite file), dropped afterwards."""
    if not url:
        yield f"sqlite:///{home}/store.db"
        return
    from sqlalchemy import create_engine, text

    from connector.store.db import normalise_url

    schema = f"scale_{os.getpid()}_{deals}"
    admin = create_engine(normalise_url(url))
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    parts = urlsplit(normalise_url(url))
    query = "&".join(p for p in (parts.query, urlencode({"options": f"-csearch_path={schema}"})) if p)
    try:
        yield urlunsplit(parts._replace(query=query))
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _tenants_per_worker_hour(row: dict[str, Any], reruns_per_day: int) -> float | None:
    """Tenant-days one worker serves per hour of its time: a nightly whole run (costed as the first run, an upper
    bound: a nightly run syncs only what changed) and `reruns_per_day` on-demand reruns (the 1%-edited rerun)."""
    if "rerun_s" not in row:
        return None
    return round(3600 / (row["first_s"] + reruns_per_day * row["rerun_s"]), 1)


def _show_tenants(results: dict[str, list[dict[str, Any]]], reruns_per_day: int) -> None:
    rows = [(name, r) for name, rs in results.items() for r in rs if r.get("tenants_per_worker_hour")]
    if not rows:
        return
    table = Table(title=f"Across tenants: one worker (a chain and its 2 forked loop processes), a nightly whole run "
                        f"and {reruns_per_day} on-demand reruns per tenant a day")
    for col in ("store", "deals", "worker time per tenant a day", "tenants per worker-hour", "tenants per worker, all day"):
        table.add_column(col, justify="right")
    for name, r in rows:
        per_day = r["first_s"] + reruns_per_day * r["rerun_s"]
        table.add_row(name, f"{r['deals']:,}", f"{per_day:,.0f} s", f"{r['tenants_per_worker_hour']:,.1f}",
                      f"{r['tenants_per_worker_hour'] * 24:,.0f}")
    console.print(table)


def _phases(steps: list[tuple[str, float]], end: float, samples: list[tuple[float, float, float]]) -> list[dict[str, Any]]:
    """Each step the chain announced (Options.on_step), from its start to the next one's: seconds and peak memory."""
    bounds = [*steps, ("", end)]
    return [{"step": name, "seconds": round(bounds[i + 1][1] - start, 1),
             "peak_rss_mb": round(_peak(samples, start, bounds[i + 1][1])),
             "peak_pss_mb": round(_peak(samples, start, bounds[i + 1][1], column=2))}
            for i, (name, start) in enumerate(steps)]


def _show_phases(title: str, phases: list[dict[str, Any]]) -> None:
    table = Table(title=title)
    for col in ("step", "seconds", "peak RSS (summed)", "peak PSS (summed)"):
        table.add_column(col, justify="right")
    for p in phases:
        table.add_row(p["step"], f"{p['seconds']:.1f}", *(f"{p[k]:,} MB" if p[k] else "– (too short to sample)"
                                                          for k in ("peak_rss_mb", "peak_pss_mb")))
    console.print(table)


def _show(results: dict[str, list[dict[str, Any]]]) -> None:
    table = Table(title="One chain on the sandbox CRM (wall time; peak memory summed over the chain's processes: "
                        "resident (RSS), and proportional (PSS: pages shared after the fork counted once))")
    for col in ("store", "deals", "records", "first run", "peak RSS", "peak PSS", "rerun, nothing changed",
                "rerun, 1% edited", "peak RSS ", "peak PSS "):
        table.add_column(col, justify="right")
    for name, rows in results.items():
        for r in rows:
            reruns = [f"{r['same_s']:.0f} s", f"{r['rerun_s']:.0f} s", f"{r['rerun_peak_mb']:,} MB",
                      f"{r['rerun_peak_pss_mb']:,} MB"] if "same_s" in r else ["-"] * 4
            table.add_row(name, f"{r['deals']:,}", f"{r['records']:,}", f"{r['first_s']:.0f} s", f"{r['first_peak_mb']:,} MB",
                          f"{r['first_peak_pss_mb']:,} MB", *reruns)
    console.print(table)


if __name__ == "__main__":
    main()
