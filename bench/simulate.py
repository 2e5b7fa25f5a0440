"""Simulator throughput and peak memory at 10k and 100k deals (plus sandbox CRM load/read at 10k).

Each size runs in a fresh process so its peak RSS is its own. Last line: one JSON object.
Run: .venv/bin/python bench/simulate.py [--scenario NAME]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SIZES = (10_000, 100_000)


def _run(deals: int, with_crm: bool, scenario: str | None = None) -> dict[str, Any]:
    from crm_adapters.model import Entity
    from crm_adapters.sandbox import SandboxCrm, load_scenario, simulate

    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start, cpu = time.perf_counter(), time.process_time()
    org = simulate(load_scenario(scenario).scaled(deals), seed=1)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    counts = org.counts()
    out: dict[str, Any] = {
        "deals": counts["deals"], "activities": counts["activities"], "records": sum(counts.values()),
        "seconds": round(seconds, 2), "cpu_s": round(cpu, 2), "deals_per_s": round(counts["deals"] / seconds),
        "deals_per_cpu_s": round(counts["deals"] / cpu), "records_per_s": round(sum(counts.values()) / seconds),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "import_rss_mb": round(base_kb / 1024, 1),
    }  # fmt: skip
    if with_crm:
        with tempfile.TemporaryDirectory() as tmp:
            crm = SandboxCrm.open(f"sqlite:///{tmp}/bench.db")
            t, c = time.perf_counter(), time.process_time()
            crm.load(org)
            out["crm_load_s"], out["crm_load_cpu_s"] = (
                round(time.perf_counter() - t, 2),
                round(time.process_time() - c, 2),
            )
            t, c = time.perf_counter(), time.process_time()
            read = sum(len(b.records) for e in Entity for b in crm.read_changes(e, since=None))
            out["crm_read_s"], out["crm_read_cpu_s"] = (
                round(time.perf_counter() - t, 2),
                round(time.process_time() - c, 2),
            )
            out["crm_read_per_s"] = round(read / out["crm_read_s"])
            crm.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=None, help="scenario TOML or name (default: the simulator's default org)")
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    results = {}
    for deals in SIZES:
        with ctx.Pool(1) as pool:
            results[deals] = pool.apply(_run, (deals, deals == SIZES[0], args.scenario))
    print(f"{'target':>8} {'deals':>8} {'records':>10} {'wall s':>8} {'CPU s':>7} {'deals/s':>8} {'deals/CPU s':>11} "
          f"{'records/s':>10} {'peak RSS MB':>12}")  # fmt: skip
    for deals, r in results.items():
        print(f"{deals:>8} {r['deals']:>8} {r['records']:>10} {r['seconds']:>8} {r['cpu_s']:>7} {r['deals_per_s']:>8} "
              f"{r['deals_per_cpu_s']:>11} {r['records_per_s']:>10} {r['peak_rss_mb']:>12}")  # fmt: skip
    small = results[SIZES[0]]
    print(f"sandbox CRM at {small['deals']} deals: load {small['crm_load_s']} s ({small['crm_load_cpu_s']} CPU), "
          f"full read {small['crm_read_s']} s ({small['crm_read_cpu_s']} CPU) "
          f"({small['crm_read_per_s']} records/s)")  # fmt: skip
    print(json.dumps({f"sim_{k // 1000}k": v for k, v in results.items()}))


if __name__ == "__main__":
    main()
