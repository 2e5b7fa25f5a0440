"""HubSpot sync and write-back cost: API calls, 429s and wall time against the fake HubSpot over HTTP.

Runs with no arguments (< 10 min on 2 cores). The fake runs in its own process (so client and
server do not share one GIL) with HubSpot's real limits: 110 requests per rolling 10 s, search
5/s, 100 per batch, 200 per search page. Scenarios:

  - 10k deals (with companies, contacts with labelled roles, stage history and engagements):
    backfill and an idle incremental sync, both at the real budget;
  - 100k deals: measured at 25k with the budget lifted (the fake answers as fast as it can), then
    extrapolated x4 (calls and time grow linearly with the portal), and the wall time at the real
    budget projected as calls / 11 per s - both clearly labelled;
  - writing scores back to 10k deals: batched write_fields (read current values, update what
    changed) at the real budget, against one SDK basic_api.update per deal (run with the budget
    lifted; projected at the real budget).

Each row compares the calls made to the page-size minimum (ceil(n/100) per list/batch, n/200
per search page, n/1000 per association batch read). The last line is one JSON object.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crm_adapters.auth import StaticTokens, Tokens  # noqa: E402
from crm_adapters.hubspot.adapter import HubSpotAdapter  # noqa: E402
from crm_adapters.hubspot.limiter import LocalLimiter  # noqa: E402
from crm_adapters.model import Entity  # noqa: E402
from crm_adapters.writes import AppField, FieldUpdate  # noqa: E402

REAL = {"rate_limit": 110, "window_s": 10.0, "search_per_s": 5}
LIFTED = {"rate_limit": 1_000_000, "window_s": 10.0, "search_per_s": 1_000_000}
STAGES = [("appointmentscheduled", 0.2, False), ("qualifiedtobuy", 0.4, False), ("contractsent", 0.8, False),
          ("closedwon", 1.0, True), ("closedlost", 0.0, True)]


def populate(portal: Any, n: int, engagements_per_deal: int) -> None:
    """A portal with n deals: n/10 companies, n contacts (one champion each), history, engagements."""
    rng = random.Random(7)
    base = int((datetime.now(UTC) - timedelta(days=400)).timestamp() * 1000)
    step = 5 * 60_000 if n <= 10_000 else 5 * 60_000 // 10  # records spread over months, as in a real portal
    portal.add_pipeline("default", "Sales", 0, [{"id": s, "label": s, "order": i, "probability": p, "closed": c}
                                                for i, (s, p, c) in enumerate(STAGES)])
    for i in range(20):
        portal.add_owner(100 + i, email=f"rep{i}@example.com", first="Rep", last=str(i), teams=[("t", "AE")])
    label = portal.define_label("deals", "contacts", "Champion")
    companies = max(1, n // 10)
    for i in range(companies):
        portal.put("companies", {"name": f"Co {i}", "numberofemployees": str(10 + i % 500)}, id=1_000_000 + i,
                   modified_ms=base + i * step)
    types = ("calls", "emails", "meetings", "notes", "tasks")
    for i in range(n):
        company = 1_000_000 + i % companies
        portal.put("contacts", {"firstname": f"C{i}", "associatedcompanyid": str(company)}, id=3_000_000 + i,
                   modified_ms=base + i * step)
        deal = portal.put("deals", {"dealname": f"Deal {i}", "dealstage": "appointmentscheduled", "pipeline": "default",
                                    "amount": str(rng.randint(1, 90) * 1000), "hubspot_owner_id": str(100 + i % 20)},
                          id=5_000_000 + i, modified_ms=base + i * step, created_ms=base + i * step)
        deal.history["dealstage"].append(("qualifiedtobuy", base + i * step + 1000))
        deal.properties["dealstage"] = "qualifiedtobuy"
        portal.associate("deals", deal.id, "companies", company, [("HUBSPOT_DEFINED", 5)])
        portal.associate("deals", deal.id, "contacts", 3_000_000 + i, [("USER_DEFINED", label)])
        for k in range(engagements_per_deal):
            otype = types[(i + k) % len(types)]
            eng = portal.put(otype, {"hs_timestamp": str(base + i * step), "hubspot_owner_id": str(100 + i % 20),
                                     "hs_call_body": "Prospect: we report by hand"}, modified_ms=base + i * step)
            portal.associate(otype, eng.id, "deals", deal.id)
            portal.associate(otype, eng.id, "contacts", 3_000_000 + i)


def _serve(n: int, per_deal: int, limits: dict[str, Any], out: Any) -> None:
    from tests.fakes.hubspot.app import FakeHubSpot
    from tests.fakes.hubspot.server import make

    fake = FakeHubSpot(**limits)
    populate(fake.portal, n, per_deal)
    fake.index_now()  # the portal's records predate the run: search has indexed them
    grant = fake.oauth.grant_for(fake.portal.hub_id)
    body = fake.oauth.issue(grant)
    fake.oauth.access_ttl = 24 * 3600
    server = make(fake)
    out.put({"port": server.server_port, "token": body["access_token"], "hub": fake.portal.hub_id})
    server.serve_forever()


class Recording(LocalLimiter):
    """The adapter's limiter, remembering when each request of the 10-s budget went out."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sent: list[float] = []

    def acquire(self, bucket: str) -> float:
        waited = super().acquire(bucket)
        if bucket == "api":
            self.sent.append(time.monotonic())
        return waited

    def peak_share(self, since: float) -> float:
        """The busiest rolling 10 s since `since`, as a share of HubSpot's 110 requests."""
        stamps = [t for t in self.sent if t >= since]
        j, best = 0, 0
        for i, t in enumerate(stamps):
            while stamps[j] <= t - 10.0:
                j += 1
            best = max(best, i - j + 1)
        return round(best / 110, 2)


class Fake:
    """The fake HubSpot in a child process."""

    def __init__(self, n: int, per_deal: int, limits: dict[str, Any]) -> None:
        ctx = mp.get_context("fork")
        queue = ctx.Queue()
        self.proc = ctx.Process(target=_serve, args=(n, per_deal, limits, queue), daemon=True)
        self.proc.start()
        info = queue.get(timeout=600)
        self.url, self.token, self.hub = f"http://127.0.0.1:{info['port']}", info["token"], str(info["hub"])

    def adapter(self, limits: dict[str, Any], **kwargs: Any) -> HubSpotAdapter:
        tokens = StaticTokens(Tokens(self.token, "r", datetime.now(UTC) + timedelta(hours=24)))
        search = min(4, limits["search_per_s"]) if limits is REAL else limits["search_per_s"]
        limiter = kwargs.pop("limiter", None) or Recording(per_window=limits["rate_limit"],
                                                           window_s=limits["window_s"], search_per_s=search)
        return HubSpotAdapter(tokens, self.hub, host=self.url, limiter=limiter, lookback=timedelta(minutes=2), **kwargs)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.join(timeout=10)


def sync_all(adapter: HubSpotAdapter, cursors: dict[Entity, Any] | None) -> tuple[dict[Entity, Any], int]:
    out, records = {}, 0
    adapter.read_pipelines()
    for entity in Entity:
        cursor = (cursors or {}).get(entity)
        for batch in adapter.read_changes(entity, since=cursor):
            records += len(batch.records)
            cursor = batch.cursor
        out[entity] = cursor
    return out, records


def minimum(n: int, per_deal: int) -> int:
    """Page-size minimum for a backfill: every object type listed once at its largest page (100; deals 50,
    since their stage history is needed), association labels at 1,000 per call, pipelines and owners."""
    companies = max(1, n // 10)
    lists = math.ceil(companies / 100) + math.ceil(n / 100) + math.ceil(n / 50) + 5 * math.ceil(n * per_deal / 5 / 100)
    return lists + math.ceil(n / 1000) + 3  # deal->contact labels, pipelines, owners (active + archived)


def measure(label: str, fn: Any, adapter: HubSpotAdapter) -> dict[str, Any]:
    before = adapter.stats.as_dict()
    t0 = time.monotonic()
    limiter = adapter.client.limiter
    result = fn()
    wall = time.monotonic() - t0
    after = adapter.stats.as_dict()
    calls = after["calls"] - before["calls"]
    return {"label": label, "calls": calls, "429s": after["rate_limited"] - before["rate_limited"],
            "wall_s": round(wall, 1), "result": result,
            "peak_10s_share": limiter.peak_share(t0) if isinstance(limiter, Recording) else None}


def scenario_sync(n: int, per_deal: int, limits: dict[str, Any]) -> list[dict[str, Any]]:
    fake = Fake(n, per_deal, limits)
    try:
        adapter = fake.adapter(limits)
        holder: dict[str, Any] = {}

        def backfill() -> int:
            holder["cursors"], records = sync_all(adapter, None)
            return records

        rows = [measure(f"backfill {n // 1000}k deals", backfill, adapter)]
        rows.append(measure(f"idle incremental {n // 1000}k", lambda: sync_all(adapter, holder["cursors"])[1], adapter))
        # the same portal budget (one limiter): two in-process limiters for one portal earn 429s
        scan = fake.adapter(limits, deletion_scan=timedelta(0), limiter=adapter.client.limiter)
        rows.append(measure(f"idle incremental {n // 1000}k + deletion scan",
                            lambda: sync_all(scan, holder["cursors"])[1], scan))
        rows[0]["minimum"] = minimum(n, per_deal)
        rows[1]["minimum"] = 10 + 3  # a search per object type read (10), pipelines, owners x2
        rows[2]["minimum"] = 10 + 3 + 9  # + an archived page per object type listed
        return rows
    finally:
        fake.stop()


def write_batched(adapter: HubSpotAdapter, ids: list[str]) -> int:
    """Scores through write_fields: read current values 100 a call, update what changed 100 a call."""
    updates = [FieldUpdate(Entity.DEAL, d, {AppField.RISK_SCORE: float(i % 100)}) for i, d in enumerate(ids)]
    return len(adapter.write_fields(updates).written)


def write_per_record(adapter: HubSpotAdapter, ids: list[str]) -> int:
    """The naive way: one SDK basic_api.update per deal."""
    for i, d in enumerate(ids):
        adapter.client.call("update", lambda api, d=d, i=i: api("crm.deals.basic_api").update(
            d, simple_public_object_input={"properties": {"salesloop_risk_score": str(i % 100)}}))
    return len(ids)


def scenario_writes(n: int) -> list[dict[str, Any]]:
    rows = []
    for limits, how, fn in ((REAL, "batched", write_batched), (LIFTED, "per-record SDK update", write_per_record)):
        fake = Fake(n, 0, limits)
        try:
            adapter = fake.adapter(limits)
            adapter.ensure_app_fields()
            ids = [str(5_000_000 + i) for i in range(n)]
            row = measure(f"write scores {n // 1000}k ({how})", lambda a=adapter, f=fn, x=ids: f(a, x), adapter)
            row["minimum"] = math.ceil(n / 100)
            rows.append(row)
        finally:
            fake.stop()
    return rows


def extrapolate(row: dict[str, Any], factor: int, label: str) -> dict[str, Any]:
    """A measured row scaled to a portal `factor` times larger (calls and time are linear in its size)."""
    out = dict(row, label=label, calls=row["calls"] * factor, minimum=row["minimum"] * factor,
               result=row["result"] * factor,
               wall_s=round(row["wall_s"] * factor, 1), extrapolated=f"x{factor} from {row['label']}")
    return out


def project(row: dict[str, Any]) -> dict[str, Any]:
    """Wall time at the real budget for a run made with the budget lifted: calls / 11 per s, or compute."""
    row["projected_wall_s"] = round(max(row["wall_s"], row["calls"] / 11.0), 1)
    row["peak_10s_share"] = None  # the budget was lifted: a share of it means nothing
    row["projected"] = True
    return row


def main() -> None:
    start = time.monotonic()
    rows = scenario_sync(10_000, 2, REAL)
    measured = scenario_sync(25_000, 1, LIFTED)
    rows += [project(r) for r in measured]
    rows += [project(extrapolate(measured[0], 4, "backfill 100k deals (extrapolated)"))]
    rows.append(project(dict(measured[1], label="idle incremental 100k (= 25k: size-independent)")))
    writes = scenario_writes(10_000)
    rows += [writes[0], project(writes[1])]
    print(f"{'scenario':44} {'calls':>7} {'minimum':>8} {'429s':>5} {'wall s':>8} {'at 110/10s':>11} {'peak 10s':>9}")
    for r in rows:
        at_real = f"{r['projected_wall_s']}*" if r.get("projected") else f"{r['wall_s']}"
        print(f"{r['label']:44} {r['calls']:>7} {r['minimum']:>8} {r['429s']:>5} {r['wall_s']:>8} {at_real:>11} "
              f"{(format(r['peak_10s_share'], '.0%') if not r.get('projected') else '-'):>9}")
    print("* projected: run with the budget lifted; wall at HubSpot's 110 requests/10 s = max(measured, calls / 11)")
    print("  100k rows: extrapolated from the 25k run (x4); the idle incremental does not grow with the portal")
    print("  peak 10s: the busiest rolling 10 s of the run as a share of HubSpot's 110 requests (search not included)")
    print(f"total bench time {time.monotonic() - start:.0f}s")
    print(json.dumps({"rows": [{k: v for k, v in r.items() if k != "result"} | {"records": r["result"]} for r in rows],
                      "bench_s": round(time.monotonic() - start, 1)}))


if __name__ == "__main__":
    main()
