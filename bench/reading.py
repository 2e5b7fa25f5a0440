"""Reading text at sync: the sync's seconds and reading throughput before vs after the fast reading path.

For each tenant size (the sandbox's default world, SQLite store), every step runs in a fresh child process:
- sync: a first sync of the whole sandbox CRM (activities read as each page is stored), with the code as it was
  ("before": commit BEFORE, from `git archive`, reading in one process) and as it is ("after": reading in forked
  workers while the next page is fetched);
- read: the chain's pass over unread activities (the same synced store, its readings deleted): before (one
  process), after in one process without the memo of recurring turns (the token-list rewrite alone), after in one
  process, and after with the workers. Activities per second of wall time, store reads and writes included.
Every "after" store must hold byte-identical readings to "before" (column "differ": must be 0).

Run: .venv/bin/python bench/reading.py [--deals 2000,5000]   (last line is JSON; times are noisy on a shared machine)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "43c262e"  # the last commit before the fast reading path (token lists, memo, workers)
SEED = 7
console = Console(width=150)


def _child(step: str, root: str, home: str, variant: str) -> None:
    """One timed step in this process, importing the code under `root` (before or after)."""
    sys.path.insert(0, root)
    os.environ.update(SALESLOOP_HOME=home)
    os.environ.pop("REDIS_URL", None)
    from sqlalchemy import delete, select

    from connector.store import Store
    from connector.store.tables import ActivityReadingRow, Installation
    from crm_adapters.sandbox import SandboxCrm
    from jobs import reading

    store = Store.connect(f"sqlite:///{home}/store.db")
    with store.session() as s:
        installation = s.execute(select(Installation)).scalar_one()
        iid, tenant = installation.id, installation.tenant_id
    started, cpu = time.perf_counter(), _cpu()
    if step == "sync":
        from jobs.sync import sync_installation

        report = sync_installation(store, iid, SandboxCrm.open(f"sqlite:///{home}/crm.db", tenant))
        read = report.read
    else:
        with store.session() as s:
            s.execute(delete(ActivityReadingRow))
        started, cpu = time.perf_counter(), _cpu()
        if variant == "before":
            read = reading.read_pending(store, iid).read
        else:
            from jobs.nlp.reading import Reader

            workers = 1 if variant.startswith("one") else None
            read = reading.read_pending(store, iid, reader=Reader(memo=variant != "one-no-memo"), workers=workers).read
    seconds, cpu = time.perf_counter() - started, _cpu() - cpu
    with store.session() as s:
        rows = {a: json.dumps(r) for a, r in s.execute(select(ActivityReadingRow.activity_id, ActivityReadingRow.reading))}
    Path(home, f"readings-{step}-{variant}.json").write_text(json.dumps(rows))
    print(json.dumps({"seconds": round(seconds, 2), "cpu": round(cpu, 2), "read": read}))


def _cpu() -> float:
    """CPU seconds of this process and its joined children (the reading workers): load-independent work."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _run(step: str, root: Path, home: str, variant: str) -> dict[str, Any]:
    """One child step; the code at BEFORE sees the store stamped at its own newest migration (the later ones add only
    indexes it does not need), and the stamp is put back for the code after."""
    store = Path(home, "store.db")
    restore = _stamp(store, _newest_migration(root)) if root != ROOT else None
    try:
        return _step(step, root, home, variant)
    finally:
        if restore is not None:
            _stamp(store, restore)


def _newest_migration(root: Path) -> str:
    """The head revision of the migrations under `root` (each file names its revision; the chain is linear)."""
    revisions = {}
    for path in (root / "connector" / "store" / "migrations" / "versions").glob("*.py"):
        found = dict(re.findall(r"^(revision|down_revision) = '?([^'\n]*)'?$", path.read_text(), re.M))
        revisions[found["revision"]] = found.get("down_revision")
    parents = set(revisions.values())
    return next(r for r in revisions if r not in parents)


def _stamp(store: Path, revision: str) -> str:
    """Set the store's migration stamp; returns the one it had."""
    with closing(sqlite3.connect(store)) as db, db:  # closed, so no WAL of it outlives the call
        (was,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
        db.execute("UPDATE alembic_version SET version_num = ?", (revision,))
    return str(was)


def _step(step: str, root: Path, home: str, variant: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", step, str(root), home, variant], capture_output=True,
                         text=True, cwd=root, env={k: v for k, v in os.environ.items() if k != "REDIS_URL"})
    if out.returncode:
        raise RuntimeError(f"{step} {variant} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _differ(home: str, a: str, b: str) -> int:
    left = json.loads(Path(home, f"readings-{a}.json").read_text())
    right = json.loads(Path(home, f"readings-{b}.json").read_text())
    return sum(left.get(k) != right.get(k) for k in set(left) | set(right))


def _prepare(deals: int, home: str) -> int:
    """The sandbox CRM file and an empty store with its installation; returns the number of activities."""
    sys.path.insert(0, str(ROOT))
    from connector.store import Store
    from connector.store.tables import Installation
    from crm_adapters.sandbox import SandboxCrm, load_scenario, simulate

    org = simulate(load_scenario(None).scaled(deals), seed=SEED)
    tenant = f"reading-{deals}"
    SandboxCrm.open(f"sqlite:///{home}/crm.db", tenant).load(org)
    store = Store.connect(f"sqlite:///{home}/store.db")
    with store.session() as s:
        s.add(Installation(crm="sandbox", tenant_id=tenant, status="active",
                           settings={"sandbox_url": f"sqlite:///{home}/crm.db", "clock": org.now.isoformat(), "time_zone": "UTC"}))
    store.engine.dispose()
    return org.counts()["activities"]


def _before_tree(into: Path) -> Path | None:
    """The code at BEFORE, unpacked (None when this is not a git checkout)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", BEFORE], capture_output=True)
    if archive.returncode:
        return None
    into.mkdir()
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def _size(deals: int, before: Path | None, scratch: str) -> dict[str, Any]:
    home = str(Path(scratch) / str(deals))
    os.mkdir(home)
    activities = _prepare(deals, home)
    empty = Path(scratch, f"empty-{deals}.db")
    shutil.copy(Path(home, "store.db"), empty)
    row: dict[str, Any] = {"deals": deals, "activities": activities, "load": os.getloadavg()[0]}
    runs: list[tuple[str, str, Path]] = [("sync", "after", ROOT)]
    if before is not None:
        runs.insert(0, ("sync", "before", before))
    for step, variant, root in runs:
        for stale in ("store.db-wal", "store.db-shm"):  # a WAL left beside a replaced file would corrupt it
            Path(home, stale).unlink(missing_ok=True)
        shutil.copy(empty, Path(home, "store.db"))
        row[f"sync_{variant}"] = _run(step, root, home, variant)
    reads = [("one-no-memo", ROOT), ("one", ROOT), ("workers", ROOT)]
    if before is not None:
        reads.insert(0, ("before", before))
    for variant, root in reads:  # on the store the last sync left (records and all)
        row[f"read_{variant}"] = _run("read", root, home, variant)
    if before is not None:
        row["differ"] = {f"{s}-{v}": _differ(home, "sync-before", f"{s}-{v}")
                         for s, v in [("sync", "after"), ("read", "before"), ("read", "one-no-memo"), ("read", "one"),
                                      ("read", "workers")]}
    row["load_after"] = os.getloadavg()[0]
    return row


def _table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Reading text at sync (SQLite; activities/s of wall time, store included)")
    for column in ("deals", "activities", "step", "seconds", "activities/s", "x before", "CPU s", "differ", "load (1 min)"):
        table.add_column(column, justify="right" if column not in ("step",) else "left")
    for row in rows:
        steps = [("sync before (1 process)", "sync_before", "sync-before"), ("sync after (workers)", "sync_after", "sync-after"),
                 ("read before (1 process)", "read_before", "read-before"),
                 ("read after, 1 process, no memo", "read_one-no-memo", "read-one-no-memo"),
                 ("read after, 1 process", "read_one", "read-one"), ("read after, workers", "read_workers", "read-workers")]
        for label, key, differ_key in steps:
            if key not in row:
                continue
            base = row.get("sync_before" if key.startswith("sync") else "read_before")
            seconds = row[key]["seconds"]
            table.add_row(str(row["deals"]), str(row["activities"]), label, f"{seconds:.1f}",
                          f"{row[key]['read'] / seconds:.0f}" if seconds else "-",
                          f"{base['seconds'] / seconds:.1f}" if base and seconds else "-", f"{row[key]['cpu']:.1f}",
                          str(row.get("differ", {}).get(differ_key, "-")), f"{row['load']:.1f} -> {row['load_after']:.1f}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", default="2000,5000", help="comma-separated tenant sizes in deals")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="salesloop-reading-") as scratch:
        before = _before_tree(Path(scratch) / "before")
        if before is None:
            console.print(f"[yellow]not a git checkout: no 'before' rows (commit {BEFORE})[/yellow]")
        for deals in (int(n) for n in args.deals.split(",")):
            rows.append(_size(deals, before, scratch))
            console.print(_table(rows[-1:]))
    console.print(_table(rows))
    print(json.dumps({"bench": "reading", "before": BEFORE, "cores": os.cpu_count(), "sizes": rows}))


if __name__ == "__main__":
    main()
