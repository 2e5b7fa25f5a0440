"""RQ entry points: `run_<what>(installation_id)`. Each reads like the loop skeleton through the engine.

A task takes an id only, builds its store and settings at the worker's composition root,
holds the tenant's lock in Redis, and lets retryable CRM errors reach RQ's Retry. A dead
grant marks the installation needs_reauth (the engine does) and ends the job without a
retry; so does any other error that retrying cannot fix.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from redis import Redis
from rq import Queue, get_current_job
from rq.registry import StartedJobRegistry
from sqlalchemy import select

from connector.settings import Settings
from connector.store import Store, installation_settings
from connector.store.installations import InstallationStatus
from connector.store.tables import Installation
from crm_adapters.errors import CrmAuthError, CrmError
from jobs import queues
from jobs.engine import chain as engine
from jobs.engine.chain import Options
from jobs.rq.locks import tenant_lock
from jobs.state import outbox

logger = logging.getLogger(__name__)


@cache
def _context() -> tuple[Settings, Store]:
    """The worker's composition root: settings from the environment, the store at its schema."""
    settings = Settings.from_env()
    return settings, Store.connect(settings.store_url, upgrade=False)


def _redis() -> Any:
    settings, _ = _context()
    if settings.redis_url is None:
        return None
    return Redis.from_url(settings.redis_url)


def _job_id() -> str | None:

    job = get_current_job()
    return job.id if job is not None else None


def _run(installation_id: str, options: Options) -> dict[str, Any]:
    settings, store = _context()
    options.job_id = _job_id()
    conn = _redis()
    now = clock(store, installation_id)
    if conn is None:
        return _execute(store, settings, installation_id, options, now, None)

    with tenant_lock(conn, installation_id, ttl=settings.lock_ttl_s, wait=settings.lock_wait_s):
        return _execute(store, settings, installation_id, options, now, conn)


def clock(store: Store, installation_id: str) -> datetime:
    """Wall-clock time, or a sandbox tenant's simulated time (its settings' clock, set by the demo)."""
    with store.session() as session:
        row = session.get(Installation, installation_id)
        simulated = installation_settings.read(row).simulated_now(row.crm) if row is not None else None
    return simulated or datetime.now(UTC)


def _execute(store: Store, settings: Settings, installation_id: str, options: Options, now: datetime, conn: Any) -> dict[str, Any]:
    try:
        report = engine.run_chain(store, installation_id, settings=settings, now=now, options=options, redis=conn)
    except CrmAuthError as exc:
        status = InstallationStatus.UNINSTALLED if exc.uninstalled else InstallationStatus.NEEDS_REAUTH
        logger.warning("installation %s is %s; not retrying", installation_id, status)
        with store.session() as session:
            left = outbox.waiting(session, installation_id)["waiting"]
        return {"installation_id": installation_id, "status": str(status), "writes_waiting": left,
                "message": engine.status_in_words(str(status), left)}
    except CrmError as exc:
        if exc.retryable:
            raise
        logger.error("installation %s: %s (not retryable)", installation_id, type(exc).__name__)
        return {"installation_id": installation_id, "status": "failed", "error": type(exc).__name__}
    return summary(report)


def summary(report: engine.ChainReport) -> dict[str, Any]:
    """A JSON-ready result of one chain (the job result, the demo's --json)."""
    return {
        "installation_id": report.installation_id,
        "status": report.status,
        "synced": report.sync.synced if report.sync else {},
        "quarantined": report.sync.quarantined if report.sync else 0,
        "sync_stopped": report.sync.stopped if report.sync else "",
        "loops": {
            name: {"version": r.version, "learned": r.learned, "decisions": r.route.decisions,
                   "repeated": r.route.repeated, "autonomy": dict(r.route.autonomy), "gate": dict(r.route.gate),
                   "proposals": r.route.proposals, "cards": r.route.cards, "seconds": round(r.seconds, 2),
                   "metrics": engine._small(r.metrics)}
            for name, r in report.loops.items()
        },
        "outbox": vars(report.outbox),
        "approvals": {"approved": report.approvals.approved, "rejected": report.approvals.rejected,
                      "open": report.approvals.open, "activated": report.approvals.activated or []},
        "drift": report.drift,
        "writes_waiting": report.writes_waiting,
        "message": engine.status_in_words(report.status, report.writes_waiting, report.outbox.dead),
    }


def run_sync(installation_id: str) -> dict[str, Any]:
    """Incremental sync, approvals read back, pending writes sent: every few minutes."""
    return _run(installation_id, Options(learn=False, decide=False))


def run_chain(installation_id: str) -> dict[str, Any]:
    """The whole chain: sync, learn when due (jobs/engine/learning.py), decide, write back (backfill, on demand)."""
    return _run(installation_id, Options(learn_when_due=True))


def run_morning(installation_id: str) -> dict[str, Any]:
    """The morning at-risk list: decide with the current versions, no re-learning."""
    return _run(installation_id, Options(learn=False))


def run_learn(installation_id: str) -> dict[str, Any]:
    """Nightly: learn from the day's outcomes, then decide with the new versions."""
    return _run(installation_id, Options())


def run_weekly(installation_id: str) -> dict[str, Any]:
    """Weekly: learn, decide (proposals), and the drift check."""
    return _run(installation_id, Options(drift=True))


def run_writeback(installation_id: str) -> dict[str, Any]:
    """Only send what is waiting in the outbox (a person is waiting on it)."""
    return _run(installation_id, Options(sync=False, learn=False, decide=False))


# --- cron entry points ----------------------------------------------------------------------


def active_installations(store: Store) -> list[tuple[str, dict[str, Any]]]:
    with store.session() as session:
        rows = session.execute(select(Installation.id, Installation.settings).where(
            Installation.status == InstallationStatus.ACTIVE)).all()
    return [(row.id, dict(row.settings or {})) for row in rows]


def dispatch(kind: str) -> int:
    """Enqueue `kind` for every active installation (deterministic ids: a slow tenant is not doubled)."""
    settings, store = _context()
    conn = queues.connect(settings.redis_url)
    count = 0
    for installation_id, _ in active_installations(store):
        queues.enqueue(kind, installation_id, connection=conn)
        count += 1
    return count


def dispatch_morning(hour: int = 7, now: datetime | None = None) -> int:
    """At-risk lists at `hour` in each tenant's own time zone (settings["time_zone"], default UTC)."""
    settings, store = _context()
    conn = queues.connect(settings.redis_url)
    now = now or datetime.now(UTC)
    count = 0
    for installation_id, tenant in active_installations(store):
        local = now.astimezone(_zone(installation_settings.InstallationSettings.from_json(tenant).time_zone))
        if local.hour == hour:
            queues.enqueue("morning", installation_id, connection=conn, suffix=f"{local:%Y%m%d}")
            count += 1
    return count


def _zone(name: Any) -> ZoneInfo:
    try:
        return ZoneInfo(str(name or "UTC"))
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def recover_abandoned() -> int:
    """Requeue jobs whose worker died (their execution heartbeat expired); rq's own cleanup, run every minute."""
    settings, _ = _context()
    conn = queues.connect(settings.redis_url)
    before = 0
    for name in queues.QUEUE_ORDER:
        registry = StartedJobRegistry(queue=Queue(name, connection=conn))
        before += len(registry.get_expired_job_ids())
        registry.cleanup()
    return before
