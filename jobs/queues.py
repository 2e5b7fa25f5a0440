"""RQ wiring: queues by priority, deterministic job ids, explicit retries and timeouts.

Workers listen to `interactive` before `default` before `bulk`, so a write-back a person
is waiting for never queues behind a tenant's backfill. Jobs take an installation id and
nothing else; the id of a job is derived from what it does for whom, so enqueueing the
same work twice while it is still waiting or running adds nothing.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry

from connector.settings import Settings

logger = logging.getLogger(__name__)

INTERACTIVE, DEFAULT, BULK = "interactive", "default", "bulk"
QUEUE_ORDER = (INTERACTIVE, DEFAULT, BULK)
LIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


@dataclass(frozen=True)
class JobKind:
    """One kind of job: its task, its queue, how long it may run and how it retries."""

    name: str
    func: str  # dotted path, so the web side never imports the engine
    queue: str
    timeout: int
    retry: tuple[int, ...] = (10, 60, 300)


KINDS: dict[str, JobKind] = {k.name: k for k in (
    JobKind("writeback", "jobs.rq.tasks.run_writeback", INTERACTIVE, 10 * 60),
    JobKind("sync", "jobs.rq.tasks.run_sync", DEFAULT, 30 * 60),
    JobKind("chain", "jobs.rq.tasks.run_chain", DEFAULT, 60 * 60),
    JobKind("morning", "jobs.rq.tasks.run_morning", DEFAULT, 30 * 60),
    JobKind("backfill", "jobs.rq.tasks.run_chain", BULK, 3 * 60 * 60, (60, 300, 900)),
    JobKind("learn", "jobs.rq.tasks.run_learn", BULK, 2 * 60 * 60, (60, 300, 900)),
    JobKind("weekly", "jobs.rq.tasks.run_weekly", BULK, 2 * 60 * 60, (60, 300, 900)),
)}


def connect(url: str | None = None) -> Redis:
    """The Redis connection (REDIS_URL when no url is given; the web side calls helpers without one)."""
    if url is None:
        url = Settings.from_env().redis_url
        if url is None:
            raise RuntimeError("REDIS_URL is not set: jobs run in-process (embedded mode), there is no queue")
    return Redis.from_url(url)


def job_id(kind: str, installation_id: str, suffix: str = "") -> str:
    return f"salesloop-{kind}-{installation_id}" + (f"-{suffix}" if suffix else "")


def enqueue(kind: str, installation_id: str, *, connection: Redis, suffix: str = "", at_front: bool = False) -> Job:
    """Enqueue one job for one installation, or return the same job already waiting or running."""
    spec = KINDS[kind]
    jid = job_id(kind, installation_id, suffix)
    try:
        existing = Job.fetch(jid, connection=connection)
        if existing.get_status(refresh=True) in LIVE:
            return existing
    except NoSuchJobError:
        pass
    queue = Queue(spec.queue, connection=connection)
    return queue.enqueue(
        spec.func, installation_id, job_id=jid, job_timeout=spec.timeout, at_front=at_front,
        retry=Retry(max=len(spec.retry), interval=list(spec.retry)), result_ttl=24 * 3600, failure_ttl=7 * 24 * 3600,
        description=f"{kind} {installation_id}", meta={"installation_id": installation_id, "kind": kind},
    )


# --- helpers the web side calls (connector.installations, webhooks, admin) ------------------------


def enqueue_backfill(installation_id: str, connection: Redis | None = None) -> Job:
    return enqueue("backfill", installation_id, connection=connection or connect())


def enqueue_incremental_sync(installation_id: str, entities: Any = (), connection: Redis | None = None) -> Job:
    """A webhook said something changed: an incremental sync (cursors make `entities` a hint only)."""
    return enqueue("sync", installation_id, connection=connection or connect())


def enqueue_writeback(installation_id: str, connection: Redis | None = None) -> Job:
    return enqueue("writeback", installation_id, connection=connection or connect(), at_front=True)


def stop_installation_jobs(installation_id: str, connection: Redis | None = None) -> int:
    """Cancel every waiting or scheduled job of an uninstalled installation; a running one sees its status and stops."""
    conn = connection or connect()
    cancelled = 0
    for name in QUEUE_ORDER:
        queue = Queue(name, connection=conn)
        waiting = list(queue.get_job_ids()) + list(ScheduledJobRegistry(queue=queue).get_job_ids())
        cancelled += sum(_cancel(conn, jid) for jid in waiting if _belongs(jid, installation_id))
    return cancelled


def _belongs(jid: str, installation_id: str) -> bool:
    bases = [job_id(kind, installation_id) for kind in KINDS]
    return any(jid == base or jid.startswith(base + "-") for base in bases)


def _cancel(conn: Redis, jid: str) -> int:
    try:
        job = Job.fetch(jid, connection=conn)
    except NoSuchJobError:
        return 0
    if job.get_status(refresh=True) in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
        job.cancel()
        return 1
    return 0


def run_inline(kind: str, installation_id: str) -> Any:
    """Embedded mode (no REDIS_URL): run the job's task in this process."""
    module, _, name = KINDS[kind].func.rpartition(".")

    func: Callable[[str], Any] = getattr(importlib.import_module(module), name)
    return func(installation_id)
