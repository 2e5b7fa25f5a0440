"""One tenant's chain, in the loop skeleton's order: sync -> read approvals -> learn -> decide ->
policy -> gate -> record -> outbox -> apply through the adapter -> drift.

Delivery-neutral: the RQ tasks, the demo and the tests all call `run_chain`; only the
adapter and the clock come from outside.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from connector.settings import Settings
from connector.store import Store, installation_settings
from connector.store import installations as inst
from connector.store.installations import InstallationStatus
from connector.store.records import load_snapshot
from connector.store.related import load_deals
from connector.store.tables import AuditEntry, Installation, LoopRun, LoopRunStatus
from crm_adapters.errors import CrmAuthError
from crm_adapters.port import CrmPort
from crm_adapters.snapshot import Snapshot
from jobs import reading
from jobs.adapters import adapter_for
from jobs.approvals import proposals
from jobs.engine import incremental, learning
from jobs.engine.compute import Computed, compute_all
from jobs.engine.drift_check import check_all
from jobs.engine.policy import load_rules
from jobs.engine.quality import QualitySettings, Sampled, paused_loops, spot_check_digest
from jobs.engine.route import Context, RouteReport, load_ledger, manager_for, route_all
from jobs.loops.base import LoopDefinition
from jobs.loops.registry import all_loops
from jobs.loops.texts import ReadSnapshot
from jobs.state import outbox, versions
from jobs.state.attention import Ask, AttentionBudget
from jobs.sync import Progress, SyncReport, sync_installation

logger = logging.getLogger(__name__)


@dataclass
class LoopReport:
    loop: str
    version: str = ""
    learned: bool = False
    metrics: dict[str, Any] = field(default_factory=dict)
    route: RouteReport = field(default_factory=RouteReport)
    seconds: float = 0.0
    error: str = ""


@dataclass
class ChainReport:
    installation_id: str
    sync: SyncReport | None = None
    loops: dict[str, LoopReport] = field(default_factory=dict)
    outbox: outbox.OutboxReport = field(default_factory=outbox.OutboxReport)
    approvals: proposals.ReadBack = field(default_factory=proposals.ReadBack)
    drift: list[dict[str, Any]] = field(default_factory=list)
    status: str = "done"
    writes_waiting: int = 0  # CRM writes this run left unsent (they go out with a later run)
    scope: str = ""  # what the loops read, in words: the whole snapshot (and why), the changed deals, or nothing
    skipped: dict[str, str] = field(default_factory=dict)  # loops that did not run, and why


@dataclass
class Options:
    """Which steps a chain runs: the cron entries and the demo choose different mixes."""

    sync: bool = True
    learn: bool = True
    learn_when_due: bool = False  # on-demand runs: learn only when jobs/engine/learning.py says so, and read only
    # what changed since the last run (jobs/engine/incremental.py); the scheduled runs read the whole snapshot
    decide: bool = True
    drift: bool = False
    loops: Mapping[str, LoopDefinition] | None = None  # None: every registered loop the tenant enabled
    job_id: str | None = None
    workers: int | None = None  # processes for the loops' learn/decide (None: settings.loop_workers, else the cores)
    progress: Progress | None = None
    on_step: Callable[[str], None] | None = None
    public_base_url: str = ""  # links in tasks (None of ours: the settings' PUBLIC_BASE_URL)


def run_chain(
    store: Store, installation_id: str, *, settings: Settings, now: datetime, crm: CrmPort | None = None,
    options: Options | None = None, redis: Any = None,
) -> ChainReport:
    """Run one tenant's chain; a dead grant marks the installation needs_reauth and is re-raised."""
    options = options or Options()
    if options.workers is None and settings.loop_workers:
        options = replace(options, workers=settings.loop_workers)
    if not options.public_base_url:
        options = replace(options, public_base_url=settings.public_base_url.rstrip("/"))
    report = ChainReport(installation_id)
    with store.session() as session:
        installation = inst.get(session, installation_id)
        if installation.status != InstallationStatus.ACTIVE:
            report.status = f"skipped: installation is {installation.status}"
            return report
    crm = crm or adapter_for(installation, store=store, settings=settings, redis=redis)
    started = datetime.now(UTC)
    try:
        _steps(store, installation, crm, options, now, report)
        settle(store, report)
    except CrmAuthError as exc:
        status = InstallationStatus.UNINSTALLED if exc.uninstalled else InstallationStatus.NEEDS_REAUTH
        with store.session() as session:
            if not _reconnected_since(session, installation_id, started):  # a fresh grant is not undone by an old one
                inst.set_status(session, installation_id, status, f"{type(exc).__name__}: {str(exc)[:200]}")
        report.status = str(status)
        raise
    return report


def _reconnected_since(session: Any, installation_id: str, since: datetime) -> bool:
    """The admin connected the app again while this run was failing on the old grant."""
    return session.execute(select(AuditEntry.id).where(
        AuditEntry.installation_id == installation_id, AuditEntry.action == "installed", AuditEntry.at >= since,
    ).limit(1)).first() is not None


def _steps(store: Store, installation: Installation, crm: CrmPort, options: Options, now: datetime, report: ChainReport) -> None:
    step = options.on_step or (lambda _name: None)
    loops = dict(options.loops) if options.loops is not None else enabled_loops(installation_settings.read(installation).loops)
    with store.session() as session:
        inst.audit(session, installation.id, "system:engine", "chain:started",
                   {"job_id": options.job_id, "sync": options.sync, "learn": options.learn, "decide": options.decide})
    _ensure_fields(store, installation, crm)
    if options.sync:
        step("sync")
        report.sync = sync_installation(store, installation.id, crm, progress=options.progress)
    step("approvals")
    report.approvals = proposals.read_back(store, installation.id, crm, loops, now)
    if options.learn or options.decide:
        scope = _scope(store, installation.id, loops, now, options, report.approvals)
        report.scope, report.skipped = scope.why, dict(scope.skipped)
        if scope.loops:
            step("snapshot")
            snapshot = _read_snapshot(store, installation.id, scope.deals)
            report.loops = run_loops(store, installation.id, {n: loops[n] for n in scope.loops}, snapshot, now, options, scope)
        if any(r.error for r in report.loops.values()):
            report.status = "partial: " + ", ".join(f"{n} failed" for n, r in report.loops.items() if r.error)
    step("write-back")
    report.outbox = outbox.apply(store, installation.id, crm)
    if options.drift:
        step("drift")
        report.drift = check_all(store, installation.id, list(loops), now)
        if not report.outbox.stopped:  # the daily budget is spent: drift's tasks wait for the next run
            report.outbox = _merge(report.outbox, outbox.apply(store, installation.id, crm))
    with store.session() as session:
        inst.audit(session, installation.id, "system:engine", "chain:done", {
            "job_id": options.job_id, "loops": sorted(report.loops), "sent": report.outbox.sent,
            "synced": report.sync.total if report.sync else 0,
        })


def _scope(store: Store, installation_id: str, loops: Mapping[str, LoopDefinition], now: datetime, options: Options,
           approvals: proposals.ReadBack) -> incremental.Scope:
    """On-demand runs read what changed (jobs/engine/incremental.py); scheduled runs and learning-only runs, all."""
    records_at = datetime.now(UTC)  # before reading: a record synced from now on is the next run's to read
    if not (options.learn_when_due and options.decide):
        return incremental.whole(records_at, loops, "a scheduled run reads the whole snapshot")
    with store.session() as session:
        return incremental.scope(session, installation_id, loops, now, approvals_settled=bool(approvals.approved or approvals.rejected),
                                 records_at=records_at)


def _read_snapshot(store: Store, installation_id: str, deals: frozenset[str] | None = None) -> ReadSnapshot:
    """The snapshot (or only these deals' part of it) and its activities' stored readings: what sync left unread
    is read first, so no loop reads text."""
    reader = reading.Reader()
    with store.session() as session:
        snapshot = load_snapshot(session, installation_id) if deals is None else load_deals(session, installation_id, deals)
    ids = None if deals is None else [a.remote_id for a in snapshot.activities]
    reading.read_pending(store, installation_id, reader=reader, ids=ids)
    parts = {f.name: getattr(snapshot, f.name) for f in fields(Snapshot) if f.init and not f.name.startswith("_")}
    return ReadSnapshot(**parts, readings=reading.load(store, installation_id, reader, ids=ids))


def settle(store: Store, report: ChainReport) -> None:
    """A run that left writes behind is not "done": it says how many wait, or that some were given up."""
    with store.session() as session:
        report.writes_waiting = outbox.waiting(session, report.installation_id)["waiting"]
    if report.status != "done":
        return
    if report.writes_waiting:
        report.status = "done_with_pending_writes"
    elif report.outbox.dead:
        report.status = "done_with_failed_writes"


def status_in_words(status: str, writes_waiting: int, given_up: int = 0) -> str:
    """The run's outcome for a person (the demo, the job result, the admin page)."""
    words = {
        "done": "done: every write reached the CRM",
        "done_with_pending_writes": f"done, but {writes_waiting} writes are not in the CRM yet; the next run sends them",
        "done_with_failed_writes": f"done, but {given_up} writes were given up; retry them on the admin status page",
        "needs_reauth": f"stopped: the CRM connection must be renewed; {writes_waiting} writes wait and are sent after the reconnect",
        "uninstalled": "stopped: the app was uninstalled from the CRM",
    }
    return words.get(status, status)


def _merge(a: outbox.OutboxReport, b: outbox.OutboxReport) -> outbox.OutboxReport:
    return outbox.OutboxReport(a.sent + b.sent, a.unchanged + b.unchanged, a.failed + b.failed, a.dead + b.dead,
                               a.api_calls + b.api_calls, stopped=a.stopped or b.stopped)


def _ensure_fields(store: Store, installation: Installation, crm: CrmPort) -> None:
    """Create our CRM fields once per installation (idempotent in the adapter anyway)."""
    if installation_settings.read(installation).fields_ready:
        return
    crm.ensure_app_fields()
    with store.session() as session:
        row = inst.get(session, installation.id)
        installation_settings.write(row, fields_ready=True)


def enabled_loops(chosen_loops: Mapping[str, Any] | None) -> dict[str, LoopDefinition]:
    """Every registered loop the admin did not switch off (InstallationSettings.loops)."""
    chosen = chosen_loops or {}
    return {name: d for name, d in all_loops().items() if (chosen.get(name) or {}).get("enabled", True)}


def run_loops(
    store: Store, installation_id: str, loops: Mapping[str, LoopDefinition], snapshot: Snapshot, now: datetime,
    options: Options, scope: incremental.Scope | None = None,
) -> dict[str, LoopReport]:
    """Learn and decide for every loop (pure, maybe in parallel), then record and route each in turn. A scope of
    changed deals (a partial snapshot) only decides, and keeps the decisions about those deals."""
    step = options.on_step or (lambda _name: None)
    scope = scope or incremental.whole(datetime.now(UTC), loops, "whole snapshot")
    run_ids, states, labels, learn = {}, {}, {}, {}
    seen = learning.outcomes(snapshot) if scope.whole else 0
    with store.session() as session:
        for name in loops:
            run = LoopRun(installation_id=installation_id, loop=name, job_id=options.job_id, status=LoopRunStatus.RUNNING,
                          started_at=datetime.now(UTC), stats={"as_of": now.isoformat(), incremental.RECORDS_AT:
                                                               scope.records_at.isoformat(), "scope": scope.why})
            session.add(run)
            session.flush()
            run_ids[name] = run.id
            current = versions.active(session, installation_id, name)
            states[name] = versions.state_of(current, loops[name].state_type)  # decoded once, typed
            labels[name] = versions.label(current)
            learn[name] = scope.whole and options.learn and (not options.learn_when_due or learning.due(current, seen, now))
    step("loops: learn and decide")
    workers = options.workers if scope.whole else 1  # a few deals: forking would cost more than it saves
    computed = compute_all(loops, snapshot, states, now, learn=learn, decide=options.decide, workers=workers)
    reports = {}
    for name, result in computed.items():
        step(f"record {name}")
        report = LoopReport(name, version=labels[name], seconds=result.seconds, error=result.error)
        if scope.deals is not None:
            result.decisions = incremental.only_changed(result.decisions, scope.deals)
        if not result.error:
            _record(store, installation_id, name, result, now, run_ids[name], snapshot, report, options, (seen, scope.records_at))
        _finish(store, run_ids[name], LoopRunStatus.FAILED if result.error else LoopRunStatus.DONE, report)
        reports[name] = report
    _spot_check(store, installation_id, snapshot, now, reports, options)
    return reports


def _record(
    store: Store, installation_id: str, name: str, result: Computed, now: datetime, run_id: str, snapshot: Snapshot,
    report: LoopReport, options: Options, seen: tuple[int, datetime],
) -> None:
    """A new version when learning changed the state; then every decision through policy, gate and outbox."""
    learned = result.learned
    if learned is not None:
        report.metrics = dict(learned.metrics)
        data = versions.snapshot_digest(snapshot)
        with store.session() as session:
            current = versions.active(session, installation_id, name)
            if not versions.unchanged(current, learned.state, data):
                current = versions.save(session, installation_id, name, learned.state, learned.metrics, data_digest=data)
                inst.audit(session, installation_id, f"loop:{name}", "model:new_version",
                           {"version": current.version, "metrics": _small(learned.metrics)})
                report.version, report.learned = versions.label(current), True
            if current is not None:
                learning.mark(current, seen[0], now, seen[1])
    decisions = [d if d.model_version else _with_version(d, report.version) for d in result.decisions]
    with store.session() as session:
        installation = inst.get(session, installation_id)
        ctx = Context(installation_id, run_id, load_rules(session, installation_id), _quality(installation),
                      name in paused_loops(installation_settings.read(installation).paused), snapshot, now,
                      budget=AttentionBudget.of(installation.settings), admin_url=options.public_base_url)
        report.route = route_all(session, ctx, decisions)


def _quality(installation: Installation) -> QualitySettings:
    """The tenant's gate settings; the sample's seed is the tenant itself, so a re-install samples the same writes."""
    return QualitySettings.of(installation_settings.read(installation).quality, f"{installation.crm}:{installation.tenant_id}")


def _with_version(decision: Any, label: str) -> Any:

    return replace(decision, model_version=label)


def _spot_check(store: Store, installation_id: str, snapshot: Snapshot, now: datetime, reports: Mapping[str, LoopReport],
                options: Options) -> None:
    """This run's sampled autonomous writes, every loop together: one spot-check a week per manager, at most
    `spot_check_items` of them (a deterministic sample), each with a link; the rest stay listed on the audit page."""
    items = [Sampled(rid, key, loop, kind, target, summary) for loop, r in reports.items()
             for (rid, kind, target, summary), (key,) in zip(r.route.sampled, r.route.sampled_keys, strict=True)]
    if not items:
        return
    manager = manager_for(snapshot, None)
    with store.session() as session:
        installation = inst.get(session, installation_id)
        budget = AttentionBudget.of(installation.settings)
        if not load_ledger(session, installation_id, budget).left(manager, Ask.SPOT_CHECK, now.date()):
            return
        chosen, body = spot_check_digest(items, _quality(installation).seed, budget.spot_check_items, options.public_base_url)
        year, week, _ = now.isocalendar()
        proposals.open_review(
            session, installation_id, loop=chosen[0].loop, kind=proposals.SPOT_CHECK,
            title=f"Spot-check {len(chosen)} things salesloop wrote alone (week {week} of {year})", body=body,
            key=f"spot:{manager}:{year}-W{week:02d}", manager_id=manager, now=now,
            diff=[{"decision_id": i.record_id} for i in chosen],
        )


def _small(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if isinstance(v, int | float | str)}


def _finish(store: Store, run_id: str, status: str, report: LoopReport) -> None:
    with store.session() as session:
        run = session.get(LoopRun, run_id)
        if run is None:
            return
        run.status, run.error = status, report.error
        run.finished_at = datetime.now(UTC)
        run.stats = {
            **(run.stats or {}),
            "version": report.version, "learned": report.learned, "decisions": report.route.decisions,
            "repeated": report.route.repeated, "autonomy": dict(report.route.autonomy), "gate": dict(report.route.gate),
            "proposals": report.route.proposals, "cards": report.route.cards, "seconds": round(report.seconds, 3),
            "metrics": _small(report.metrics),
        }


def next_due(last: datetime | None, every: timedelta, now: datetime) -> bool:
    return last is None or now - last >= every
