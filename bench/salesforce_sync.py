"""Salesforce adapter: API calls and wall time for backfill, idle incremental sync and score write-back.

Runs against the fake Salesforce over HTTPS on 127.0.0.1 (simple-salesforce and requests for real, the
org in memory). No arguments; prints a table; the last line is one JSON object of the figures.
The 100k-opportunity org is measured when the 10k run says it fits the time budget, else extrapolated
(and labelled so). Write-back of 10k scores: the adapter (read in 2,000-row pages, PATCH sObject
Collections of 200, only changed values) against per-record `sf.Opportunity.update` calls.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simple_salesforce import Salesforce  # noqa: E402

from crm_adapters.model import Entity  # noqa: E402
from crm_adapters.salesforce._mapping import APP_FIELD_NAMES  # noqa: E402
from crm_adapters.salesforce.budget import ApiBudget  # noqa: E402
from crm_adapters.writes import AppField, FieldUpdate  # noqa: E402
from tests.fakes.salesforce.fixtures import DEFAULT_STAGES, adapter_for, add_default_stages  # noqa: E402
from tests.fakes.salesforce.org import FakeOrg  # noqa: E402
from tests.fakes.salesforce.server import FakeSalesforce, running_fake  # noqa: E402

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
HISTORY_PER_DEAL = 3
TASKS_PER_DEAL, EVENTS_PER_DEAL = 2, 1
TIME_BUDGET_S = 420  # leave room under the 10-minute rule


class Clock:
    def __init__(self) -> None:
        self.at = NOW - timedelta(days=30)

    def __call__(self) -> datetime:
        return self.at


def build_org(n: int, clock: Clock) -> FakeOrg:
    """n opportunities on 1 account each 10, with HISTORY_PER_DEAL history rows, tasks and events."""
    org = FakeOrg(clock=clock, api_max=10_000_000)
    add_default_stages(org)
    stages = [s[0] for s in DEFAULT_STAGES[:HISTORY_PER_DEAL]]
    users = [org.insert("User", {"Name": f"Rep {i}", "Title": "Account Executive", "IsActive": True}) for i in range(20)]
    for i in range(n):
        clock.at = NOW - timedelta(days=30, seconds=-i)
        if i % 10 == 0:
            account = org.insert("Account", {"Name": f"Account {i}", "NumberOfEmployees": 100 + i})
        owner = users[i % len(users)]
        opp = org.insert("Opportunity", {"Name": f"Deal {i}", "StageName": stages[-1], "AccountId": account,
                                         "Amount": float(1000 + i), "CloseDate": "2026-09-30", "OwnerId": owner})
        for stage in stages:
            org.insert("OpportunityHistory", {"OpportunityId": opp, "StageName": stage})
        for t in range(TASKS_PER_DEAL):
            org.insert("Task", {"WhatId": opp, "Subject": f"Call {t}", "TaskSubtype": "Call", "Status": "Completed",
                                "CompletedDateTime": org.now(), "OwnerId": owner})
        for _ in range(EVENTS_PER_DEAL):
            org.insert("Event", {"WhatId": opp, "Subject": "Meeting", "StartDateTime": org.now(), "OwnerId": owner})
    clock.at = NOW
    return org


def sync_all(fake: FakeSalesforce, cursors: dict[Entity, Any]) -> tuple[int, int, float]:
    """One sync of every entity from `cursors` (None: backfill); returns (records, api calls, seconds)."""
    budget = ApiBudget(fake.org.org_id, run_share=1.0, total_share=1.0)
    adapter = adapter_for(fake, budget=budget)
    start, records = time.perf_counter(), 0
    for entity in Entity:
        for batch in adapter.read_changes(entity, since=cursors.get(entity)):
            records += len(batch.records)
            cursors[entity] = batch.cursor or cursors.get(entity)
    return records, budget.calls, time.perf_counter() - start


def sync_scenario(fake: FakeSalesforce, n: int) -> dict[str, Any]:
    clock = Clock()
    t0 = time.perf_counter()
    org = fake.reset(build_org(n, clock))
    seed_s = time.perf_counter() - t0
    cursors: dict[Entity, Any] = {}
    back_records, back_calls, back_s = sync_all(fake, cursors)
    clock.at = NOW + timedelta(hours=1)
    idle_records, idle_calls, idle_s = sync_all(fake, cursors)
    rows = n * (1 + HISTORY_PER_DEAL + TASKS_PER_DEAL + EVENTS_PER_DEAL) + n // 10 + 21
    return {"opportunities": n, "rows": rows, "rest_page_minimum": rest_minimum(n), "seed_s": round(seed_s, 1), "backfill_calls": back_calls,
            "backfill_s": round(back_s, 2), "backfill_records": back_records, "bulk_jobs": len(org.bulk_jobs),
            "idle_calls": idle_calls, "idle_s": round(idle_s, 2), "idle_records": idle_records, "measured": True}


def rest_minimum(n: int) -> int:
    """REST query pages to read every row once (2,000 a page, at least one per object), for comparison."""
    per_object = [21, n // 10, 0, n, 0, n * HISTORY_PER_DEAL, n * TASKS_PER_DEAL, n * EVENTS_PER_DEAL]
    return sum(max(1, math.ceil(rows / 2000)) for rows in per_object)


def extrapolate(small: dict[str, Any], n: int) -> dict[str, Any]:
    """Scale a measured run: wall time linearly; calls by the bulk page arithmetic (labelled as such)."""
    k = n / small["opportunities"]
    return {"opportunities": n, "rows": small["rows"] * k, "rest_page_minimum": rest_minimum(n), "seed_s": None,
            "backfill_calls": small["backfill_calls"],  # bulk result pages are 50k rows: same job count
            "backfill_s": round(small["backfill_s"] * k, 1), "backfill_records": small["backfill_records"] * k,
            "bulk_jobs": small["bulk_jobs"], "idle_calls": small["idle_calls"], "idle_s": small["idle_s"],
            "idle_records": 0, "measured": False}


def writeback(fake: FakeSalesforce, n: int) -> dict[str, Any]:
    clock = Clock()
    fake.reset(FakeOrg(clock=clock, api_max=10_000_000))
    add_default_stages(fake.org)
    ids = [fake.org.insert("Opportunity", {"Name": f"D{i}", "StageName": "Prospecting"}) for i in range(n)]
    clock.at = NOW
    budget = ApiBudget(fake.org.org_id, run_share=1.0, total_share=1.0)
    adapter = adapter_for(fake, budget=budget)
    adapter.ensure_app_fields()
    updates = [FieldUpdate(Entity.DEAL, rid, {AppField.RISK_SCORE: float(i % 100)}) for i, rid in enumerate(ids)]
    calls0, t0 = budget.calls, time.perf_counter()
    result = adapter.write_fields(updates)
    batched = {"calls": budget.calls - calls0, "s": round(time.perf_counter() - t0, 2), "written": len(result.written)}
    calls0, t0 = budget.calls, time.perf_counter()
    repeat = adapter.write_fields(updates)
    unchanged = {"calls": budget.calls - calls0, "s": round(time.perf_counter() - t0, 2), "written": len(repeat.written)}
    field = APP_FIELD_NAMES[AppField.RISK_SCORE]
    sf = Salesforce(instance_url=fake.url, session_id=fake.issue_token(), version="66.0", session=fake.session())
    used0, t0 = fake.org.api_used, time.perf_counter()
    for i, rid in enumerate(ids):
        sf.Opportunity.update(rid, {field: float((i + 1) % 100)})
    naive = {"calls": fake.org.api_used - used0, "s": round(time.perf_counter() - t0, 2), "written": n}
    minimum = math.ceil(n / 2000) + math.ceil(n / 200)
    return {"deals": n, "minimum_calls": minimum, "adapter": batched, "adapter_repeat": unchanged, "per_record": naive}


def main() -> None:
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    with running_fake(Path(tempfile.mkdtemp(prefix="bench-sf-"))) as fake:
        small = sync_scenario(fake, 10_000)
        results.append(small)
        projected = (small["seed_s"] + small["backfill_s"] + small["idle_s"]) * 10
        if time.perf_counter() - started + projected < TIME_BUDGET_S:
            results.append(sync_scenario(fake, 100_000))
        else:
            results.append(extrapolate(small, 100_000))
        wb = writeback(fake, 10_000)
    print(f"{'opps':>8} {'rows':>9} {'REST pages min':>14} {'backfill calls':>14} {'backfill s':>10} {'bulk jobs':>9} "
          f"{'idle calls':>10} {'idle s':>7} {'idle recs':>9}  note")
    for r in results:
        note = "measured" if r["measured"] else "EXTRAPOLATED from 10k (time scaled x10; calls from bulk paging)"
        print(f"{r['opportunities']:>8} {int(r['rows']):>9} {r['rest_page_minimum']:>14} {r['backfill_calls']:>14} {r['backfill_s']:>10} "
              f"{r['bulk_jobs']:>9} {r['idle_calls']:>10} {r['idle_s']:>7} {r['idle_records']:>9}  {note}")
    print()
    print(f"write-back of {wb['deals']} scores: page-size minimum {wb['minimum_calls']} calls "
          f"(ceil(n/2000) reads + ceil(n/200) collections)")
    print(f"{'method':<34} {'api calls':>9} {'seconds':>8} {'written':>8}")
    for name, key in (("adapter (collections, changed only)", "adapter"), ("adapter, repeat (nothing changed)", "adapter_repeat"),
                      ("sf.Opportunity.update per record", "per_record")):
        print(f"{name:<34} {wb[key]['calls']:>9} {wb[key]['s']:>8} {wb[key]['written']:>8}")
    figures = {"sync": results, "writeback": wb, "total_s": round(time.perf_counter() - started, 1)}
    print(json.dumps(figures, separators=(",", ":")))


if __name__ == "__main__":
    main()
