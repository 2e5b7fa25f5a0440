"""Webhook ingest in the deployed shape: gunicorn as the Procfile runs it, on PostgreSQL and Redis.

HubSpot counts a delivery as failed after 5 s and retries it, so what matters is how many signed
deliveries per second the web process answers and how long the slowest take. This bench starts
a private Redis (redis-server on a free port) and a private PostgreSQL schema (DATABASE_URL, or
the local server .ci/services starts), one installed portal, and the Procfile's `web:` command
(BENCH_GUNICORN adds flags, for trying others). A second process offers deliveries at rising rates
(open loop: each request is due at its own time, and its latency counts from then, so a server that
falls behind shows it), each delivery 1-3 events signed when built (within HubSpot's 5 minutes), 5%
of them HubSpot retries of an earlier delivery, one connection per delivery.

Side by side, the same command serves bench/_bare_wsgi.py (read the body, answer 200): the floor of
the HTTP server and the load generator on this machine at that moment, so a shortfall can be told
apart from a busy machine. The load average is printed with the figures (other work shares the cores).

Then it checks that nothing was lost: every distinct event is a row in webhook_events, and the
incremental syncs it asked for are in the queue (one per tenant while one waits).
Runs with no arguments in about two minutes; the last line is one JSON object.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, select, text  # noqa: E402

from bench._procfile import web_command  # noqa: E402
from connector.signatures import v3_signature  # noqa: E402
from connector.store import Store  # noqa: E402
from connector.store import installations as inst  # noqa: E402
from connector.store.crypto import TokenCipher  # noqa: E402
from connector.store.db import migrate, normalise_url  # noqa: E402
from connector.store.tables import WebhookEvent  # noqa: E402

SECRET = "bench-hubspot-secret"
PORTAL = 62515
RATES = (100, 250, 500, 750)
SECONDS_PER_RATE = 6
THREADS = 48
TIMEOUT_S = 10.0
DEFAULT_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {seconds} s")


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes] | None, str]:
    binary = shutil.which("redis-server")
    if binary is None:
        url = os.environ.get("REDIS_URL")
        if not url:
            raise SystemExit("needs redis-server on PATH or REDIS_URL")
        return None, url
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc, f"redis://127.0.0.1:{port}/0"


def make_schema() -> tuple[str, str]:
    """A private schema on the PostgreSQL server, migrated, with one installed HubSpot portal."""
    base = normalise_url(os.environ.get("DATABASE_URL", "") or DEFAULT_DB)
    if not base.startswith("postgresql"):
        raise SystemExit("needs PostgreSQL: DATABASE_URL=postgresql://... (or the local server .ci/services starts)")
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with create_engine(base).begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    engine = create_engine(url)
    migrate(engine)
    store = Store(engine)
    with store.session() as s:
        inst.upsert(s, TokenCipher.from_key_text(KEY), crm="hubspot", tenant_id=str(PORTAL),
                    tokens={"access_token": "a", "refresh_token": "r"})
    engine.dispose()
    return base, schema


def drop_schema(base: str, schema: str) -> None:
    with create_engine(base).begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))


KEY = TokenCipher.generate_key_text()


def start_gunicorn(port: int, database_url: str, redis_url: str, log: Path, app: str | None = None) -> subprocess.Popen[bytes]:
    """The Procfile's web process on `port`; `app` replaces its WSGI app (the floor)."""
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "SECRET_KEY": "bench-" + "x" * 32,
           "TOKEN_ENCRYPTION_KEY": KEY, "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
           "HUBSPOT_CLIENT_ID": "bench", "HUBSPOT_CLIENT_SECRET": SECRET}
    argv = web_command(port, *os.environ.get("BENCH_GUNICORN", "").split(), "--log-level", "warning")
    if app is not None:
        argv[-1] = app
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    wait_port(port)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


# ---- the load generator (its own process) ---------------------------------------------------------
def delivery(port: int, serial: int, rng: random.Random) -> tuple[bytes, list[str]]:
    """A signed-ready body of 1-3 events; returns the body and its event keys."""
    now_ms = int(time.time() * 1000)
    events = [{"eventId": serial * 10 + k, "subscriptionId": 7, "portalId": PORTAL, "appId": 1,
               "occurredAt": now_ms, "subscriptionType": "deal.propertyChange", "attemptNumber": 0,
               "objectId": rng.randrange(1, 5000), "propertyName": "amount", "propertyValue": str(rng.randrange(9999)),
               "changeSource": "CRM"} for k in range(rng.choice((1, 1, 2, 3)))]
    keys = [f"{e['portalId']}:7:{e['eventId']}:{now_ms}:{e['objectId']}:amount" for e in events]
    return json.dumps(events).encode(), keys


def signed_request(port: int, body: bytes) -> bytes:
    """The whole HTTP request, signed now (the bench sends it within seconds, well inside HubSpot's 5 minutes)."""
    ts = str(int(time.time() * 1000))
    sig = v3_signature(SECRET, "POST", f"http://127.0.0.1:{port}/webhooks/hubspot", body, ts)
    head = (f"POST /webhooks/hubspot HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nX-HubSpot-Signature-v3: {sig}\r\n"
            f"X-HubSpot-Request-Timestamp: {ts}\r\nConnection: close\r\n\r\n")
    return head.encode() + body


def post(port: int, request: bytes) -> int:
    """Send one request on a new connection; the response's status (0: no answer within TIMEOUT_S)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
            sock.sendall(request)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        return int(answer.split(b" ", 2)[1])
    except (OSError, ValueError, IndexError):
        return 0


def offer(port: int, rate: int, seconds: float, serial0: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    """Offer `rate` deliveries a second for `seconds`; each latency counts from when the request was due."""
    rng = random.Random(rate)
    total = int(rate * seconds)
    bodies = [delivery(port, serial0 + i, rng) for i in range(total)]
    for i in range(total):  # 5% are HubSpot's retries of an earlier delivery
        if i > 10 and rng.random() < 0.05:
            bodies[i] = bodies[rng.randrange(i - 10, i)]
    requests = [signed_request(port, body) for body, _ in bodies]
    results: list[tuple[float, int]] = []
    lock, cursor = threading.Lock(), iter(range(total))
    start = time.perf_counter() + 0.2

    def worker() -> None:
        while True:
            with lock:
                i = next(cursor, None)
            if i is None:
                return
            due = start + i / rate
            time.sleep(max(0.0, due - time.perf_counter()))
            status = post(port, requests[i])
            with lock:
                results.append((time.perf_counter() - due, status))

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    keys = sorted({k for body, ks in bodies for k in ks})
    out.put({"rate": rate, "elapsed": elapsed, "results": results, "keys": keys})


def web_cpu_s(master: int) -> float:
    """CPU seconds the gunicorn workers used so far (a figure the other load on the machine does not change)."""
    total = 0.0
    try:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    except OSError:
        return 0.0
    for pid in children:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def run_rate(port: int, rate: int, serial0: int, seconds: float = SECONDS_PER_RATE) -> dict:  # type: ignore[type-arg]
    queue: mp.Queue = mp.get_context("spawn").Queue()  # type: ignore[type-arg]
    proc = mp.get_context("spawn").Process(target=offer, args=(port, rate, seconds, serial0, queue))
    proc.start()
    data = queue.get(timeout=seconds * 20 + 60)
    proc.join()
    ok = [lat for lat, status in data["results"] if status == 200]
    return {"offered_per_s": rate, "answered_per_s": round(len(ok) / data["elapsed"], 1),
            "p50_ms": round(pct(ok, 0.50) * 1000, 1), "p99_ms": round(pct(ok, 0.99) * 1000, 1),
            "over_5s": sum(1 for lat in ok if lat > 5.0), "failed": len(data["results"]) - len(ok), "answered": len(ok),
            "keys": data["keys"]}


def landed(database_url: str, keys: list[str]) -> tuple[int, int]:
    """(events stored, events asked for a sync or acted on) among `keys`."""
    engine = create_engine(database_url)
    with engine.connect() as conn:
        stored = conn.execute(select(WebhookEvent.event_key, WebhookEvent.status)).all()
    engine.dispose()
    wanted = set(keys)
    mine = [(k, s) for k, s in stored if k in wanted]
    return len(mine), sum(1 for _, s in mine if s in ("enqueued", "done", "ignored"))


def settle(database_url: str, keys: list[str], seconds: float = 20) -> tuple[int, int]:
    deadline = time.monotonic() + seconds
    while True:
        stored, handled = landed(database_url, keys)
        if handled == len(keys) or time.monotonic() > deadline:
            return stored, handled
        time.sleep(0.5)


def measured(port: int, rate: int, serial0: int, master: int) -> dict:  # type: ignore[type-arg]
    """One rate against one server, with the web CPU per answered delivery and the load average around it."""
    before = web_cpu_s(master)
    row = run_rate(port, rate, serial0)
    row["web_cpu_ms_per_delivery"] = round((web_cpu_s(master) - before) * 1000 / max(row.pop("answered"), 1), 2)
    row["load_average"] = round(os.getloadavg()[0], 1)
    return row


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    redis_proc, redis_url = start_redis(workdir)
    base, schema = make_schema()
    database_url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    port, floor_port = free_port(), free_port()
    web = start_gunicorn(port, database_url, redis_url, workdir / "gunicorn.log")
    floor = start_gunicorn(floor_port, database_url, redis_url, workdir / "floor.log", app="bench._bare_wsgi:app")
    rows, floors = [], []
    load_before = os.getloadavg()[0]
    try:
        warm = run_rate(port, 20, serial0=0, seconds=3)  # first requests import and connect: not measured
        run_rate(floor_port, 20, serial0=0, seconds=1)
        for n, rate in enumerate(RATES):  # each rate on the floor, then at once on salesloop: the same moment
            floors.append(measured(floor_port, rate, (n + 1) * 1_000_000, floor.pid))
            floors[-1].pop("keys")
            rows.append(measured(port, rate, (n + 1) * 1_000_000, web.pid))
        all_keys = sorted({k for r in [warm, *rows] for k in r.pop("keys")})
        stored, handled = settle(database_url, all_keys)
        import redis

        queued = len(redis.Redis.from_url(redis_url).lrange("rq:queue:default", 0, -1))
    finally:
        stop(web)
        stop(floor)
        drop_schema(base, schema)
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(timeout=10)
    command = " ".join(Path(a).name if a.startswith("/") else a for a in web_command(port, *os.environ.get("BENCH_GUNICORN", "").split())[:-1])
    print(f"web: {command}; load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, "
          f"on {os.cpu_count()} cores")
    print(f"{'offered/s':>10} | {'floor: answered/s':>17} {'p99 ms':>8} | {'salesloop: answered/s':>21} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'>5 s':>5} {'failed':>6} {'web CPU ms':>10} | {'load':>5}")
    for f, r in zip(floors, rows, strict=True):
        print(f"{r['offered_per_s']:>10} | {f['answered_per_s']:>17} {f['p99_ms']:>8} | {r['answered_per_s']:>21} "
              f"{r['p50_ms']:>8} {r['p99_ms']:>8} {r['over_5s']:>5} {r['failed']:>6} {r['web_cpu_ms_per_delivery']:>10} "
              f"| {r['load_average']:>5}")
    print(f"distinct events sent {len(all_keys)}, stored {stored}, handled {handled}, lost {len(all_keys) - stored}; "
          f"incremental sync jobs waiting in the queue: {queued}")
    keeps_up = [r for r in rows if r["p99_ms"] < 1000 and r["failed"] == 0
                and r["answered_per_s"] >= 0.97 * r["offered_per_s"]]
    best = max((r["offered_per_s"] for r in keeps_up), default=0)
    print(f"highest offered rate answered in full with p99 under 1 s: {best}/s (goal: 500/s)")
    print(json.dumps({"bench": "webhook_ingest", "web_command": command, "load_average_start": round(load_before, 1),
                      "rates": rows, "floor": floors, "highest_rate_kept_up_with_p99_under_1s": best,
                      "goal_500_per_s_met": best >= 500, "events_sent": len(all_keys), "events_stored": stored,
                      "events_handled": handled, "events_lost": len(all_keys) - stored, "sync_jobs_queued": queued}))


if __name__ == "__main__":
    main()
