"""“Run the loops now” without holding the browser: start the chain in the background, report its progress.

With REDIS_URL the chain is the tenant's RQ job (the same deterministic job id as the
scheduled runs, so pressing twice runs it once); its progress is read from what the chain
records in the store (its loop runs), its end from the job's status. Without Redis (the
embedded default) a background thread runs it in this process and reports each step.
Either way the status is read on the server, so a page reload finds the run where it is.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from rq import Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy import select

from connector.settings import Settings
from connector.store import Store, installation_settings
from connector.store import installations as inst
from connector.store.tables import LoopRun
from jobs import queues
from jobs.engine import chain as engine
from jobs.rq import tasks as job_tasks

logger = logging.getLogger(__name__)

SYNC_SHARE, LOOPS_START, LOOPS_END, WRITE_BACK = 30, 35, 90, 92


@dataclass
class RunStatus:
    """What the progress bar shows: a state, a percent, the step in plain words, and the outcome."""

    state: str = "idle"  # idle | queued | running | done | failed
    percent: int = 0
    step: str = ""
    message: str = ""
    started_at: str = ""
    finished_at: str = ""
    run_id: str = ""

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "finished": self.state in ("done", "failed")}


def outcome(summary: dict[str, Any]) -> str:
    """One sentence from a chain's summary: what was read back from the CRM and what became active."""
    approvals = summary.get("approvals") or {}
    activated = ", ".join(approvals.get("activated") or []) or "none"
    status = str(summary.get("status", "done"))
    head = "Loops ran" if status == "done" else f"Loops ran with problems ({status})"
    return (f"{head}: {approvals.get('approved', 0)} approved, {approvals.get('rejected', 0)} rejected, "
            f"{approvals.get('open', 0)} still waiting; newly active: {activated}.")


def _step_words(name: str) -> str:
    if name == "sync":
        return "Reading what changed in the CRM"
    if name == "approvals":
        return "Reading approvals and rejections back from the CRM"
    if name.startswith("loops"):
        return "Learning and deciding (every loop)"
    if name.startswith("record "):
        return f"Recording what the {name.removeprefix('record ').replace('_', ' ')} loop decided"
    if name == "write-back":
        return "Writing back into the CRM"
    if name == "drift":
        return "Checking the models for drift"
    return name.replace("_", " ").capitalize()


@dataclass
class _ThreadRun:
    """One chain in a background thread, with the step it is on."""

    status: RunStatus
    thread: threading.Thread | None = None
    loops_total: int = 6
    loops_recorded: int = 0
    entities_done: set[str] = field(default_factory=set)

    def on_step(self, name: str) -> None:
        base = {"sync": 1, "approvals": SYNC_SHARE, "write-back": WRITE_BACK, "drift": 96}.get(name)
        if name.startswith("loops"):
            base = LOOPS_START
        elif name.startswith("record "):
            self.loops_recorded += 1
            base = LOOPS_START + (LOOPS_END - LOOPS_START) * self.loops_recorded // max(self.loops_total, 1)
        self.status.percent = max(self.status.percent, base or self.status.percent)
        self.status.step = _step_words(name)

    def on_sync(self, entity: str, done: int, total: int | None) -> None:
        if total is not None and done >= total:
            self.entities_done.add(entity)
        self.status.percent = max(self.status.percent, min(SYNC_SHARE - 1, 1 + 3 * len(self.entities_done)))
        self.status.step = f"Reading {entity.replace('_', ' ')}s from the CRM ({done:,} so far)"


class ThreadRunner:
    """Embedded mode: one chain at a time per installation, in a daemon thread of this process."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store, self.settings = store, settings
        self._runs: dict[str, _ThreadRun] = {}
        self._lock = threading.Lock()

    def start(self, installation_id: str, *, crm: Any = None) -> RunStatus:
        """Start a run, or return the one already running (pressing twice runs once)."""
        with self._lock:
            current = self._runs.get(installation_id)
            if current is not None and current.thread is not None and current.thread.is_alive():
                return current.status
            now = datetime.now(UTC)
            run = _ThreadRun(RunStatus("running", 1, "Starting", started_at=now.isoformat(), run_id=f"thread-{now:%H%M%S%f}"))
            run.thread = threading.Thread(target=self._run, args=(installation_id, run, crm), daemon=True,
                                          name=f"salesloop-run-{installation_id}")
            self._runs[installation_id] = run
            run.thread.start()
            return run.status

    def status(self, installation_id: str) -> RunStatus:
        run = self._runs.get(installation_id)
        return run.status if run is not None else RunStatus()

    def wait(self, installation_id: str, timeout: float | None = None) -> RunStatus:
        """Block until the current run ends (the CLI and tests; never a web request)."""
        run = self._runs.get(installation_id)
        if run is not None and run.thread is not None:
            run.thread.join(timeout)
        return self.status(installation_id)

    def _run(self, installation_id: str, run: _ThreadRun, crm: Any) -> None:
        try:
            run.loops_total = len(engine.enabled_loops(_chosen_loops(self.store, installation_id))) or 1
            now = job_tasks.clock(self.store, installation_id)
            options = engine.Options(job_id=run.status.run_id, on_step=run.on_step, progress=run.on_sync, learn_when_due=True)
            report = engine.run_chain(self.store, installation_id, settings=self.settings, now=now, crm=crm, options=options)
            summary = job_tasks.summary(report)
            run.status.message = outcome(summary)
            run.status.state, run.status.percent, run.status.step = "done", 100, "Finished"
        except Exception as exc:  # the thread must end in a state the page can show
            logger.exception("background run of installation %s failed", installation_id)
            run.status.state, run.status.step = "failed", "Stopped"
            run.status.message = f"The run stopped: {type(exc).__name__}. The admin status page lists failed jobs."
        finally:
            run.status.finished_at = datetime.now(UTC).isoformat()


def _chosen_loops(store: Store, installation_id: str) -> Any:
    """The loops the admin switched on or off (the chain runs the same set)."""

    with store.session() as session:
        return installation_settings.read(inst.get(session, installation_id)).loops


class RqRunner:
    """With Redis: the tenant's chain job on a worker; progress from the loop runs it records in the store."""

    def __init__(self, store: Store, settings: Settings, *, on_no_worker: Callable[[], None] | None = None) -> None:
        self.store, self.settings, self.on_no_worker = store, settings, on_no_worker

    def _conn(self) -> Any:
        return queues.connect(self.settings.redis_url)

    def start(self, installation_id: str, *, crm: Any = None) -> RunStatus:
        conn = self._conn()
        queues.enqueue("chain", installation_id, connection=conn, at_front=True)
        if self.on_no_worker is not None and not Worker.all(connection=conn):
            self.on_no_worker()
        return self.status(installation_id)

    def status(self, installation_id: str) -> RunStatus:
        jid = queues.job_id("chain", installation_id)
        try:
            job = Job.fetch(jid, connection=self._conn())
        except NoSuchJobError:
            return RunStatus()
        raw = job.get_status(refresh=True)
        state = str(getattr(raw, "value", raw))  # rq's JobStatus is a str Enum: its str() is the member name
        started = job.started_at or job.enqueued_at
        status = RunStatus(started_at=started.isoformat() if started else "", run_id=jid)
        if state in ("queued", "scheduled", "deferred"):
            status.state, status.percent, status.step = "queued", 1, "Waiting for a worker to pick the run up"
        elif state == "started":
            status.state = "running"
            status.percent, status.step = self._progress(installation_id, jid, job.started_at)
        elif state == "finished":
            status.state, status.percent, status.step = "done", 100, "Finished"
            status.message = outcome(dict(job.return_value() or {}))
        else:
            status.state, status.step = "failed", "Stopped"
            status.message = f"The run ended {state}; the admin status page lists failed jobs."
        status.finished_at = job.ended_at.isoformat() if job.ended_at else ""
        return status

    def _progress(self, installation_id: str, jid: str, since: datetime | None) -> tuple[int, str]:
        """How far the running chain is, from its loop runs: none yet means it is still reading the CRM."""
        with self.store.session() as session:
            stmt = select(LoopRun.loop, LoopRun.status).where(LoopRun.installation_id == installation_id, LoopRun.job_id == jid)
            if since is not None:
                stmt = stmt.where(LoopRun.started_at >= (since if since.tzinfo else since.replace(tzinfo=UTC)))
            runs = session.execute(stmt).all()
        if not runs:
            return 10, "Reading what changed in the CRM"
        done = sum(1 for r in runs if r.status != "running")
        if done == len(runs):
            return WRITE_BACK, "Writing back into the CRM"
        return LOOPS_START + (LOOPS_END - LOOPS_START) * done // len(runs), f"Learning and deciding ({done} of {len(runs)} loops done)"


def runner(store: Store, settings: Settings, extensions: dict[str, Any], **options: Any) -> ThreadRunner | RqRunner:
    """The app's one runner (kept in app.extensions): RQ with REDIS_URL, else a background thread."""
    found = extensions.get("salesloop.runs")
    if found is None:
        found = RqRunner(store, settings, **options) if settings.redis_url else ThreadRunner(store, settings)
        extensions["salesloop.runs"] = found
    return found  # type: ignore[no-any-return]
