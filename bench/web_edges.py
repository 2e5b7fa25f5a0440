"""The web edges under load: webhook ingest and dedupe, card reads, signature checks, the refresh race.

Runs with no arguments in well under a minute on 2 cores (embedded SQLite store, Flask's test
client, so the figures are the app's own cost without a network). Scenarios:

  - X-HubSpot-Signature-v3 verification of a 1 KB body (microseconds per check);
  - 400 webhook deliveries of 10 events each (verify, store each event once, request the sync),
    then the same 400 again (HubSpot's retries): every replayed event must be recognised;
  - 1,000 HubSpot card reads (a rep's view and a manager's view with 10 pending proposals):
    latency percentiles and the JSON size against HubSpot's 1 MB cap;
  - the token refresh race: 8 worker processes ask for an expiring token at the same moment
    (real Redis lock when redis-server is installed): how many refreshes reach the CRM.

The last line is one JSON object.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connector.app import create_app  # noqa: E402
from connector.settings import Settings  # noqa: E402
from connector.signatures import v3_signature, verify_v3  # noqa: E402
from connector.store import Store  # noqa: E402
from connector.store import installations as inst  # noqa: E402
from connector.store.crypto import TokenCipher  # noqa: E402
from connector.store.records import upsert_records  # noqa: E402
from connector.store.tables import CardData, Proposal  # noqa: E402
from crm_adapters.auth import Tokens  # noqa: E402
from crm_adapters.model import Crm, Entity, User, UserRole  # noqa: E402

PUBLIC, SECRET = "https://salesloop.example.com", "bench-secret"
NOW = datetime.now(UTC)


def pct(values: list[float], q: float) -> float:
    return round(sorted(values)[min(len(values) - 1, int(q * len(values)))], 3)


def bench_signature() -> dict:
    body, ts = b"x" * 1024, str(int(NOW.timestamp() * 1000))
    uri = PUBLIC + "/webhooks/hubspot?portalId=62515"
    headers = {"X-HubSpot-Signature-v3": v3_signature(SECRET, "POST", uri, body, ts), "X-HubSpot-Request-Timestamp": ts}
    n, start = 20_000, time.perf_counter()
    for _ in range(n):
        verify_v3(SECRET, method="POST", uri=uri, body=body, headers=headers, now_ms=int(ts))
    return {"label": "v3 signature check (1 KB body)", "us_per_check": round((time.perf_counter() - start) / n * 1e6, 2)}


def _app(store: Store):  # type: ignore[no-untyped-def]
    app = create_app(Settings(testing=True, public_base_url=PUBLIC, hubspot_client_id="c", hubspot_client_secret=SECRET,
                              salesforce_client_id="s", salesforce_client_secret="s"), store=store)
    app.extensions["salesloop.clock"] = lambda: NOW
    return app


def _signed(client, method: str, path: str, body: bytes = b""):  # type: ignore[no-untyped-def]
    ts = str(int(NOW.timestamp() * 1000))
    sig = v3_signature(SECRET, method, PUBLIC + path, body, ts)
    return client.open(path, method=method, data=body, content_type="application/json",
                       headers={"X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": ts})


def bench_webhooks(store: Store, deliveries: int = 400, per: int = 10) -> list[dict]:
    client = _app(store).test_client()
    bodies = [json.dumps([{"eventId": d * per + i, "subscriptionId": 7, "portalId": 62515, "occurredAt": 1_780_000_000_000 + d,
                           "subscriptionType": "deal.propertyChange", "objectId": (d * per + i) % 997,
                           "propertyName": "dealstage", "propertyValue": "closedwon"} for i in range(per)]).encode()
              for d in range(deliveries)]
    rows = []
    for label in ("webhook deliveries (new events)", "webhook deliveries (replayed)"):
        lat, received, dupes = [], 0, 0
        start = time.perf_counter()
        for body in bodies:
            t = time.perf_counter()
            resp = _signed(client, "POST", "/webhooks/hubspot", body)
            lat.append((time.perf_counter() - t) * 1000)
            assert resp.status_code == 200, resp.json
            received += resp.json["received"]
            dupes += resp.json["duplicates"]
        wall = time.perf_counter() - start
        rows.append({"label": label, "deliveries": deliveries, "events": deliveries * per, "stored": received,
                     "duplicates": dupes, "per_s": round(deliveries / wall, 1), "events_per_s": round(deliveries * per / wall, 1),
                     "p50_ms": pct(lat, 0.5), "p95_ms": pct(lat, 0.95)})
    return rows


def _seed_card(store: Store, iid: str) -> None:
    with store.session() as s:
        s.add(CardData(installation_id=iid, deal_id="d1", payload={
            "risk": {"score": 82, "level": "high", "next_move": "Book a call with the CFO",
                     "reasons": [{"code": f"r{i}", "text": "Champion silent for 21 days " * 3, "evidence": ["e" * 80] * 5}
                                 for i in range(8)]},
            "objections": {"objections": {o: {"answered_with": ["roi_case"], "recommended": "roi_case", "best": [
                {"strategy": "roi_case", "n": 14, "k": 9, "mean": 0.62, "lo": 0.41, "hi": 0.8, "verdict": "better"}] * 4}
                for o in ("price", "timing", "competitor", "authority", "no_budget")}},
            "discovery": {"questions": [{"question": "budget_owner", "lift": 0.18}] * 6, "asked": ["timeline"]}}))
        for i in range(10):
            s.add(Proposal(installation_id=iid, loop="discovery", title=f"Ask question {i} in discovery", fingerprint=str(i),
                           diff=[{"op": "add", "field": "ask", "value": f"q{i}"}], evidence={"type": "playbook"}))
        upsert_records(s, iid, Entity.USER, [User(crm=Crm.HUBSPOT, remote_id="77", role=UserRole.MANAGER),
                                             User(crm=Crm.HUBSPOT, remote_id="88", role=UserRole.AE)])


def bench_cards(store: Store, iid: str, n: int = 500) -> list[dict]:
    _seed_card(store, iid)
    client = _app(store).test_client()
    rows = []
    for label, user in (("card read: rep", "88"), ("card read: manager + 10 proposals", "77")):
        lat, size = [], 0
        for _ in range(n):
            t = time.perf_counter()
            resp = _signed(client, "GET", f"/api/hubspot/cards/deal?portalId=62515&objectId=d1&userId={user}")
            lat.append((time.perf_counter() - t) * 1000)
            assert resp.status_code == 200
            size = len(resp.data)
        rows.append({"label": label, "requests": n, "p50_ms": pct(lat, 0.5), "p95_ms": pct(lat, 0.95),
                     "max_ms": round(max(lat), 2), "json_bytes": size, "share_of_1mb": round(size / 1_000_000, 4)})
    return rows


def _race_worker(url: str, redis_url: str | None, iid: str, barrier, out) -> None:  # type: ignore[no-untyped-def]
    import redis as redis_lib

    from jobs.tokens import StoreTokenSource

    conn = redis_lib.Redis.from_url(redis_url) if redis_url else None
    store = Store.connect(url, upgrade=False)

    def refresh(tokens: Tokens) -> Tokens:
        if conn is not None:
            conn.incr("bench:refreshes")
        time.sleep(0.2)
        return Tokens(access_token="fresh", expires_at=datetime.now(UTC) + timedelta(minutes=30))

    source = StoreTokenSource(store, TokenCipher(b"k" * 32), iid, refresh, redis=conn)
    barrier.wait()
    t = time.perf_counter()
    tokens = source.current()
    out.put((tokens.access_token, (time.perf_counter() - t) * 1000))


def bench_race(tmp: Path, workers: int = 8) -> dict | None:
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([binary, "--port", str(port), "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import redis as redis_lib

        redis_url = f"redis://127.0.0.1:{port}/0"
        for _ in range(100):
            try:
                redis_lib.Redis.from_url(redis_url).ping()
                break
            except redis_lib.ConnectionError:
                time.sleep(0.05)
        url = f"sqlite:///{tmp / 'race.db'}"
        store = Store.connect(url)
        with store.session() as s:
            iid = inst.upsert(s, TokenCipher(b"k" * 32), crm="hubspot", tenant_id="1",
                              tokens={"access_token": "old", "refresh_token": "r"},
                              expires_at=datetime.now(UTC) + timedelta(seconds=30)).id
        ctx = mp.get_context("spawn")
        barrier, out = ctx.Barrier(workers), ctx.Queue()
        procs = [ctx.Process(target=_race_worker, args=(url, redis_url, iid, barrier, out)) for _ in range(workers)]
        for p in procs:
            p.start()
        results = [out.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        refreshes = int(redis_lib.Redis.from_url(redis_url).get("bench:refreshes") or 0)
        return {"label": f"refresh race: {workers} worker processes", "workers": workers, "refreshes": refreshes,
                "same_token": len({r[0] for r in results}) == 1, "p50_ms": pct([r[1] for r in results], 0.5),
                "max_ms": round(max(r[1] for r in results), 1)}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.connect(f"sqlite:///{Path(tmp) / 'bench.db'}")
        with store.session() as s:
            iid = inst.upsert(s, TokenCipher(b"k" * 32), crm="hubspot", tenant_id="62515", tokens={"access_token": "a"}).id
        sig = bench_signature()
        hooks = bench_webhooks(store)
        cards = bench_cards(store, iid)
        race = bench_race(Path(tmp))
    print(f"{'scenario':40} {'count':>7} {'per s':>8} {'p50 ms':>7} {'p95 ms':>7}  notes")
    print(f"{sig['label']:40} {20000:>7} {round(1e6 / sig['us_per_check']):>8} {'':>7} {'':>7}  {sig['us_per_check']} us/check")
    for r in hooks:
        print(f"{r['label']:40} {r['deliveries']:>7} {r['per_s']:>8} {r['p50_ms']:>7} {r['p95_ms']:>7}  "
              f"{r['events_per_s']} events/s, stored {r['stored']}, duplicates {r['duplicates']}")
    for r in cards:
        print(f"{r['label']:40} {r['requests']:>7} {'':>8} {r['p50_ms']:>7} {r['p95_ms']:>7}  "
              f"{r['json_bytes']} bytes ({r['share_of_1mb'] * 100:.2f}% of 1 MB)")
    if race:
        print(f"{race['label']:40} {race['workers']:>7} {'':>8} {race['p50_ms']:>7} {'':>7}  "
              f"{race['refreshes']} refresh(es) reached the CRM; same token everywhere: {race['same_token']}")
    else:
        print("refresh race: skipped (no redis-server binary)")
    print(f"total bench time {time.monotonic() - start:.0f}s (embedded SQLite, Flask test client, no network)")
    print(json.dumps({"signature": sig, "webhooks": hooks, "cards": cards, "refresh_race": race,
                      "bench_s": round(time.monotonic() - start, 1)}))


if __name__ == "__main__":
    main()
