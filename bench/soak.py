"""Production-shape soak: gunicorn (2 workers), 3 `salesloop worker` processes and `salesloop cron` on a
private PostgreSQL cluster and Redis, several tenants over the sandbox, the HubSpot fake and the
Salesforce fake, webhooks arriving, and faults injected while chains run: work-horses and workers
SIGKILLed, Redis and PostgreSQL restarted, a grant revoked mid write-back and reconnected.

At the end every CRM must hold exactly the writes of one clean run (none lost, none duplicated), no
job stuck, and `salesloop status` must agree. Prints a table; the last line is a JSON object.
Usage: python bench/soak.py [--deals 40] [--seed 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._soak_services import Postgres, Processes, RedisServer, free_port, wait_until  # noqa: E402
from bench._soak_tenants import (  # noqa: E402
    Tenant,
    audit,
    install_hubspot,
    install_salesforce,
    install_sandbox,
    reconnect_salesforce,
    revoke_salesforce,
)

TERMINAL = ("finished", "failed", "canceled", "stopped")


class Soak:
    """One soak run: the services, the processes, the tenants, and the figures."""

    def __init__(self, workdir: Path, deals: int, seed: int) -> None:
        from crm_adapters.sandbox import load_scenario, simulate

        self.dir, self.rng = workdir, random.Random(seed)
        self.org = simulate(load_scenario(None).scaled(deals), seed=seed)
        self.pg, self.redis = Postgres(workdir), RedisServer(workdir)
        self.faults: list[dict[str, Any]] = []
        self.tenants: list[Tenant] = []
        self.jobs: list[str] = []
        self.chain_of: dict[str, str] = {}  # tenant name -> its chain job of the current round
        self.chains = 0
        self.webhooks = {"sent": 0, "accepted": 0}

    def start(self, env: dict[str, str]) -> None:
        from redis import Redis

        from connector.store import Store

        self.store = Store.connect(self.pg.url)
        self.conn = Redis.from_url(self.redis.url)
        self.web_port = free_port()
        self.env = {**os.environ, **env, "DATABASE_URL": self.pg.url, "REDIS_URL": self.redis.url, "TESTING": "1",
                    "PUBLIC_BASE_URL": f"http://127.0.0.1:{self.web_port}", "SALESLOOP_LOCK_TTL": "5",
                    "SALESLOOP_LOOP_WORKERS": "1", "SALESLOOP_HOME": str(self.dir), "PYTHONPATH": str(Path.cwd())}
        self.procs = Processes(self.dir, self.env)
        self.procs.web(self.web_port)
        for i in range(3):
            self.procs.worker(f"worker{i}")
        self.procs.cron()
        wait_until(self._web_up, 60, "gunicorn")

    def _web_up(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/health", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    # --- jobs ---------------------------------------------------------------------------------

    def enqueue_chains(self, tenants: list[Tenant], round_no: int) -> list[str]:
        from jobs import queues

        ids = [queues.enqueue("chain", t.installation_id, connection=self.conn, suffix=f"r{round_no}").id for t in tenants]
        self.chain_of.update({t.name: j for t, j in zip(tenants, ids, strict=True)})
        self.jobs += ids
        self.chains += len(ids)
        return ids

    def settled(self, ids: list[str]) -> bool:
        """Every job of the round ended and no active tenant has a write waiting."""
        from rq.job import Job

        from jobs.engine.writes_status import installations_status

        try:
            if any(Job.fetch(j, connection=self.conn).get_status(refresh=True) not in TERMINAL for j in ids):
                return False
            rows = installations_status(self.store)
        except Exception:  # Redis or PostgreSQL restarting: not settled yet
            return False
        return all(r["writes"]["waiting"] == 0 for r in rows if r["status"] == "active")

    def wait_round(self, ids: list[str], faults: list[dict[str, Any]], timeout: float = 300) -> None:
        """Wait until the round settled; each fault's recovery time runs from its injection to then."""
        seconds = wait_until(lambda: self.settled(ids), timeout, f"the round's {len(ids)} jobs")
        for fault in faults:
            fault["recovered_s"] = round(time.monotonic() - fault["at"], 1)
            self.faults.append(fault)
        print(f"  round settled in {seconds:.1f} s", flush=True)

    # --- faults -------------------------------------------------------------------------------

    def horses(self) -> dict[str, int]:
        """Worker name -> pid of its work-horse, for the workers running a job now (not RQ's scheduler child)."""
        try:
            schedulers = {int(self.conn.hget(k, "pid") or 0) for k in self.conn.scan_iter("rq:scheduler:*")}
        except Exception:  # Redis restarting
            return {}
        found = {}
        for name, proc in self.procs.procs.items():
            if name.startswith("worker") and proc.poll() is None:
                horses = [pid for pid in self.procs.children(name) if pid not in schedulers]
                if horses:
                    found[name] = horses[0]
        return found

    def busy_worker(self, timeout: float = 120) -> str:
        wait_until(lambda: bool(self.horses()), timeout, "a worker with a job")
        return self.rng.choice(sorted(self.horses()) or ["worker0"])

    def kill_horse(self) -> dict[str, Any]:
        self.busy_worker()
        time.sleep(self.rng.uniform(0.0, 2.0))
        horses = self.horses()
        if horses:
            name = self.rng.choice(sorted(horses))
            os.kill(horses[name], signal.SIGKILL)
            print(f"  SIGKILLed the work-horse of {name}", flush=True)
        return {"fault": "SIGKILL a work-horse", "at": time.monotonic()}

    def kill_worker(self, round_no: int) -> dict[str, Any]:
        name = self.busy_worker()
        time.sleep(self.rng.uniform(0.0, 2.0))
        os.killpg(self.procs.procs[name].pid, signal.SIGKILL)  # the worker, its horse and its scheduler child
        print(f"  SIGKILLed {name} with its children; started another worker", flush=True)
        self.procs.worker(f"worker{round_no}b")  # the platform starts a new one
        return {"fault": "SIGKILL a worker (and its children)", "at": time.monotonic()}

    def restart_redis(self) -> dict[str, Any]:
        self.busy_worker()
        time.sleep(self.rng.uniform(0.5, 2.0))
        at = time.monotonic()
        self.redis.restart()
        print("  restarted Redis", flush=True)
        return {"fault": "restart Redis", "at": at}

    def restart_postgres(self) -> dict[str, Any]:
        self.busy_worker()
        time.sleep(self.rng.uniform(0.5, 2.0))
        at = time.monotonic()
        self.pg.restart()
        print("  restarted PostgreSQL", flush=True)
        return {"fault": "restart PostgreSQL (immediate)", "at": at}

    def revoke_mid_write_back(self, tenant: Tenant) -> dict[str, Any]:
        """Revoke as soon as the tenant's first writes are queued; reconnect once a run stopped for it.

        On a fast machine the run may send its last write before it makes another call with the
        revoked grant; then the next sync (cron runs one every 5 minutes) is the call that finds out,
        so one is enqueued as soon as the round's chain ended without noticing.
        """
        from jobs import queues

        wait_until(lambda: self._outbox_rows(tenant) > 0, 240, "the first writes to send")
        revoke_salesforce(tenant)
        at = time.monotonic()
        jobs: list[str] = []

        def stopped_for_it() -> bool:
            if self._status(tenant) == "needs_reauth":
                return True
            if not jobs and self._job_status(self.chain_of[tenant.name]) in TERMINAL:
                jobs.append(queues.enqueue("chain", tenant.installation_id, connection=self.conn, suffix="after-revoke").id)
            return False

        wait_until(stopped_for_it, 240, "the installation to need a reconnect")
        print(f"  revoked the Salesforce grant; the run stopped with {self._waiting(tenant)} writes waiting; reconnecting",
              flush=True)
        reconnect_salesforce(self.store, tenant, self.org)
        jobs.append(queues.enqueue_backfill(tenant.installation_id, connection=self.conn).id)  # as the OAuth callback does
        self.jobs += jobs
        return {"fault": "revoke a grant mid write-back, reconnect", "at": at, "jobs": jobs}

    def _job_status(self, job_id: str) -> str:
        from rq.job import Job

        try:
            status = Job.fetch(job_id, connection=self.conn).get_status(refresh=True)
            return status.value if status is not None else ""  # str() of RQ's JobStatus is "JobStatus.FINISHED"
        except Exception:  # Redis restarting: not ended as far as we know
            return ""

    def _outbox_rows(self, tenant: Tenant) -> int:
        from sqlalchemy import func, select

        from connector.store.tables import OutboxItem

        with self.store.session() as s:
            return int(s.execute(select(func.count()).where(OutboxItem.installation_id == tenant.installation_id)).scalar_one())

    def _waiting(self, tenant: Tenant) -> int:
        from jobs.state.outbox import waiting

        with self.store.session() as s:
            return waiting(s, tenant.installation_id)["waiting"]

    def _status(self, tenant: Tenant) -> str:
        from connector.store.tables import Installation

        with self.store.session() as s:
            row = s.get(Installation, tenant.installation_id)
            return str(row.status) if row is not None else ""

    # --- webhooks -----------------------------------------------------------------------------

    def post_webhooks(self, tenant: Tenant, secret: str, n: int) -> None:
        from connector.signatures import v3_signature

        url = f"http://127.0.0.1:{self.web_port}/webhooks/hubspot"
        for _ in range(n):
            deal = self.rng.choice(self.org.deals)
            body = json.dumps([{"eventId": self.rng.randrange(1 << 40), "subscriptionId": 1, "portalId": int(tenant.extra["hub_id"]),
                                "appId": 1, "occurredAt": int(time.time() * 1000), "subscriptionType": "deal.propertyChange",
                                "attemptNumber": 0, "objectId": int(deal.remote_id), "propertyName": "amount",
                                "propertyValue": "1", "changeSource": "CRM"}]).encode()
            ts = str(int(time.time() * 1000))
            request = urllib.request.Request(url, data=body, method="POST", headers={
                "Content-Type": "application/json", "X-HubSpot-Request-Timestamp": ts,
                "X-HubSpot-Signature-v3": v3_signature(secret, "POST", url, body, ts)})
            self.webhooks["sent"] += 1
            try:
                with urllib.request.urlopen(request, timeout=10) as resp:
                    self.webhooks["accepted"] += resp.status < 300
            except OSError:
                pass


def reference_run(soak: Soak, crm_url: str) -> Tenant:
    """One clean run, in this process and with no faults: what every sandbox tenant must end with."""
    from connector.settings import Settings
    from jobs.engine.chain import Options, run_chain

    ref = install_sandbox(soak.store, crm_url, "reference", soak.org)
    run_chain(soak.store, ref.installation_id, settings=Settings(testing=True), now=soak.org.now, options=Options(workers=1))
    return ref


def scenario(soak: Soak, crm_url: str, hubspot: Any, salesforce: Any, rounds: int | None = None) -> None:
    """Rounds: each starts new tenants' first chains (they write) and re-runs the others, under one or two faults."""
    sandboxes = [install_sandbox(soak.store, crm_url, f"sandbox{i}", soak.org) for i in range(4)]
    hs, sf = install_hubspot(soak.store, hubspot, soak.org), install_salesforce(soak.store, salesforce, soak.org)
    hs.extra["hub_id"] = hubspot.portal.hub_id
    plan = [
        ([sandboxes[0], sf], lambda: [soak.revoke_mid_write_back(sf)]),
        ([sandboxes[1], hs], lambda: [soak.kill_horse()]),
        ([sandboxes[2]], lambda: [soak.restart_redis()]),
        ([sandboxes[3]], lambda: [soak.restart_postgres()]),
        ([], lambda: [soak.kill_worker(4)]),
        ([], lambda: [soak.kill_horse(), soak.restart_redis()]),
    ]
    for round_no, (new, faults) in enumerate(plan[:rounds]):
        soak.tenants += new
        print(f"round {round_no}: {len(soak.tenants)} tenants, new: {', '.join(t.name for t in new) or '-'}", flush=True)
        ids = soak.enqueue_chains(soak.tenants, round_no)
        if hs in soak.tenants:
            soak.post_webhooks(hs, hubspot.fake.oauth.client_secret, 5)
        injected = faults()
        soak.wait_round(ids + [j for f in injected for j in f.get("jobs", [])], injected)


def verdict(soak: Soak, reference: Tenant) -> dict[str, Any]:
    """Writes lost and duplicated per tenant, jobs stuck, and whether `salesloop status` agrees."""
    from rq import Queue
    from rq.job import Job
    from rq.registry import ScheduledJobRegistry, StartedJobRegistry

    from jobs import queues
    from jobs.engine.writes_status import installations_status

    per_tenant = {t.name: audit(soak.store, t, reference if t.crm == "sandbox" else None) for t in soak.tenants}
    statuses = {j: Job.fetch(j, connection=soak.conn).get_status(refresh=True) for j in set(soak.jobs)}
    stuck = [j for j, s in statuses.items() if s not in ("finished",)]
    for name in queues.QUEUE_ORDER:
        q = Queue(name, connection=soak.conn)
        stuck += [j for j in StartedJobRegistry(queue=q).get_job_ids() + ScheduledJobRegistry(queue=q).get_job_ids()
                  if j in statuses and j not in stuck]
    status = {r["installation_id"]: r for r in installations_status(soak.store)}
    agrees = all(status[t.installation_id]["status"] == "active" and status[t.installation_id]["writes"]["waiting"] == 0
                 and status[t.installation_id]["writes"]["given_up"] == 0 for t in soak.tenants)
    return {"per_tenant": per_tenant, "stuck_jobs": stuck, "status_agrees": agrees}


def run(deals: int = 40, seed: int = 3, rounds: int | None = None) -> dict[str, Any]:
    """The whole soak; `rounds` keeps only the first rounds of the plan (the pytest variant)."""
    from tests.fakes.hubspot.harness import hubspot_harness
    from tests.fakes.salesforce.harness import SalesforceHarness

    started, ca_bundle = time.monotonic(), os.environ.get("REQUESTS_CA_BUNDLE")
    workdir = Path(tempfile.mkdtemp(prefix="salesloop-soak-"))
    soak = Soak(workdir, deals, seed)
    soak.pg.start()
    soak.redis.start()
    try:
        with hubspot_harness(rate_limit=2_000) as hubspot:
            salesforce = SalesforceHarness()
            os.environ["REQUESTS_CA_BUNDLE"] = str(salesforce.fake.ca_bundle)  # this process's reference run and checks
            soak.start({"HUBSPOT_CLIENT_ID": hubspot.fake.oauth.client_id, "HUBSPOT_CLIENT_SECRET": hubspot.fake.oauth.client_secret,
                        "HUBSPOT_BASE_URL": hubspot.url, "HUBSPOT_RATE_PER_10S": str(hubspot.fake.rate_limit),
                        "SALESFORCE_CLIENT_ID": salesforce.fake.oauth_app.client_id,
                        "SALESFORCE_CLIENT_SECRET": salesforce.fake.oauth_app.client_secret,
                        "SALESFORCE_LOGIN_URL": salesforce.fake.url, "REQUESTS_CA_BUNDLE": str(salesforce.fake.ca_bundle)})
            crm_url = f"sqlite:///{workdir / 'sandbox-crm.db'}"
            reference = reference_run(soak, crm_url)
            scenario(soak, crm_url, hubspot, salesforce, rounds)
            result = verdict(soak, reference)
    finally:
        _restore_env("REQUESTS_CA_BUNDLE", ca_bundle)
        if hasattr(soak, "procs"):
            soak.procs.stop_all()
        soak.redis.stop()
        soak.pg.stop()
    fig = figures(soak, result, time.monotonic() - started, workdir)
    if fig["writes_lost"] == 0 and fig["writes_duplicated"] == 0 and fig["jobs_stuck"] == 0:
        shutil.rmtree(workdir, ignore_errors=True)  # kept, with every process's log, when something went wrong
        fig["logs"] = ""
    return fig


def _restore_env(key: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(key, None)
    else:
        os.environ[key] = value


def figures(soak: Soak, result: dict[str, Any], seconds: float, workdir: Path) -> dict[str, Any]:
    per = result["per_tenant"]
    return {
        "tenants": len(per), "chains_run": soak.chains, "faults_injected": len(soak.faults),
        "writes": sum(t["writes"] for t in per.values()), "writes_lost": sum(t["lost"] for t in per.values()),
        "writes_duplicated": sum(t["duplicated"] for t in per.values()), "jobs_stuck": len(result["stuck_jobs"]),
        "status_agrees": result["status_agrees"], "webhooks_sent": soak.webhooks["sent"],
        "webhooks_accepted": soak.webhooks["accepted"],
        "recovery_s": {f"{i + 1}. {f['fault']}": f["recovered_s"] for i, f in enumerate(soak.faults)},
        "per_tenant": per, "seconds": round(seconds, 1), "logs": str(workdir),
    }


def render(fig: dict[str, Any]) -> None:
    rows = [("tenants (sandbox x4, HubSpot, Salesforce)", fig["tenants"]), ("chains run", fig["chains_run"]),
            ("faults injected", fig["faults_injected"]), ("CRM writes made", fig["writes"]),
            ("writes lost", fig["writes_lost"]), ("writes duplicated", fig["writes_duplicated"]),
            ("jobs stuck", fig["jobs_stuck"]), ("salesloop status agrees", fig["status_agrees"]),
            ("webhooks sent / accepted", f"{fig['webhooks_sent']} / {fig['webhooks_accepted']}"),
            ("wall time, s", fig["seconds"])]
    rows += [(f"recovery, s: {name}", "-" if s is None else s) for name, s in fig["recovery_s"].items()]
    width = max(len(r[0]) for r in rows)
    print("\nproduction-shape soak")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=40)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    fig = run(args.deals, args.seed)
    render(fig)
    print(json.dumps(fig, default=str))


if __name__ == "__main__":
    main()
