"""The admin pages: status and backfill progress, loops and policy, approvals, audit, charts.

Thin views: each reads or writes the store through the store's and jobs' functions and
renders a template; nothing here talks to a CRM while a person waits.
"""

from __future__ import annotations

import math
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import func, select

from connector import loop_runs
from connector.admin import auth, charts, qualification_form, readouts
from connector.qualification_setup import suggest_for
from connector.store import Store, installation_settings
from connector.store import installations as inst
from connector.store.tables import (
    AuditEntry,
    DecisionRecord,
    LoopRun,
    LoopRunStatus,
    ModelVersion,
    OutboxItem,
    OutboxStatus,
    Proposal,
    ProposalStatus,
    SyncCursor,
)
from crm_adapters.hubspot import oauth as hs_oauth
from crm_adapters.qualification import QualificationMappingError
from crm_adapters.salesforce import oauth as sf_oauth
from crm_adapters.writes import APP_FIELDS
from jobs.engine import policy
from ui_extensions.card_data import decide

admin = Blueprint("admin", __name__, url_prefix="/admin")
admin.before_request(auth.check_csrf)

LOOP_NAMES = ("deal_risk", "handoff", "discovery", "objections", "sequences", "icp")
SCOPES = {"hubspot": list(hs_oauth.SCOPES), "salesforce": list(sf_oauth.SCOPES)}


def _store() -> Store:
    return current_app.extensions["salesloop.store"]  # type: ignore[no-any-return]


@admin.app_context_processor
def _inject() -> dict[str, Any]:
    return {"csrf_token": auth.csrf_token, "signed_in_user": session.get("user")}


@admin.get("/login")
def login() -> Response:
    auth.sign_in_from_token(request.args.get("t", ""))
    return redirect(url_for("admin.status"))  # type: ignore[return-value]


@admin.post("/logout")
def logout() -> Response:
    session.clear()
    return redirect(url_for("admin.install"))  # type: ignore[return-value]


@admin.get("/install")
def install() -> str:
    """What each CRM will ask for, before the admin clicks install."""
    fields = [(spec.entity.value, spec.label, spec.kind) for spec in APP_FIELDS]
    return render_template("admin/install.html", scopes=SCOPES, fields=fields)


@admin.get("/")
@auth.login_required
def status() -> str:
    installation_id = auth.current_installation_id()
    with _store().session() as s:
        installation = inst.get(s, installation_id)
        cursors = s.execute(select(SyncCursor).where(SyncCursor.installation_id == installation_id)).scalars().all()
        failed_runs = s.execute(
            select(LoopRun).where(LoopRun.installation_id == installation_id, LoopRun.status == LoopRunStatus.FAILED)
            .order_by(LoopRun.started_at.desc()).limit(20)
        ).scalars().all()
        dead = s.execute(
            select(OutboxItem).where(OutboxItem.installation_id == installation_id, OutboxItem.status.in_((OutboxStatus.FAILED, OutboxStatus.DEAD)))
            .order_by(OutboxItem.updated_at.desc()).limit(20)
        ).scalars().all()
        return render_template(
            "admin/status.html", installation=installation, cursors=cursors, failed_runs=failed_runs,
            dead=dead, progress=readouts.backfill_progress(s, installation_id), budget=readouts.api_budget(installation),
            run=_runner().status(installation_id).to_json(),
        )


@admin.get("/progress.json")
@auth.login_required
def progress() -> Response:
    """Polled by the status page: survives reloads because it is read from the store."""
    with _store().session() as s:
        return jsonify(readouts.backfill_progress(s, auth.current_installation_id()))


def _runner() -> loop_runs.ThreadRunner | loop_runs.RqRunner:
    return loop_runs.runner(_store(), current_app.extensions["salesloop.settings"], current_app.extensions)


@admin.post("/run")
@auth.login_required
def run_loops() -> Response | tuple[Response, int]:
    """Start the chain in the background (RQ job, or a thread when embedded) and return at once."""
    installation_id = auth.current_installation_id()
    status = _runner().start(installation_id)
    with _store().session() as s:
        inst.audit(s, installation_id, f"user:{session['user']}", "run:requested", {"run": status.run_id})
    if request.accept_mimetypes.best == "application/json":
        return jsonify(status.to_json()), 202
    return redirect(url_for("admin.status"))  # type: ignore[return-value]


@admin.get("/run.json")
@auth.login_required
def run_status() -> Response:
    """Polled by the status page's progress bar; read on the server, so it survives a reload."""
    return jsonify(_runner().status(auth.current_installation_id()).to_json())


@admin.post("/outbox/<item_id>/retry")
@auth.login_required
def retry_write(item_id: str) -> Response:
    installation_id = auth.current_installation_id()
    with _store().session() as s:
        item = s.get(OutboxItem, item_id)
        if item is None or item.installation_id != installation_id:
            return Response("not found", status=404)
        item.status, item.attempts, item.error = OutboxStatus.PENDING, 0, ""
        inst.audit(s, installation_id, f"user:{session['user']}", "outbox:retry", {"item": item_id})
    flash("The write is queued again; it goes out with the next run.")
    return redirect(url_for("admin.status"))  # type: ignore[return-value]


@admin.route("/loops", methods=["GET", "POST"])
@auth.login_required
def loops() -> str | Response | tuple[str, int]:
    installation_id = auth.current_installation_id()
    if request.method == "POST" and request.form.get("action") == "suggest":
        return _suggest_qualification(installation_id)
    with _store().session() as s:
        installation = inst.get(s, installation_id)
        settings = installation_settings.read(installation)
        if request.method == "GET":
            suggested = not settings.qualification and bool(settings.qualification_suggested)
            rows = qualification_form.rows_from_settings(settings.qualification_suggested if suggested else settings.qualification)
            return _loops_page(settings, settings.loops or {}, settings.mappings or {}, rows, suggested=suggested)
        loop_settings = {name: {"enabled": request.form.get(f"enabled_{name}") == "on",
                                "schedule": request.form.get(f"schedule_{name}", "").strip()} for name in LOOP_NAMES}
        mappings = {"sdr_roles": _csv(request.form.get("sdr_roles", "")),
                    "champion_role": request.form.get("champion_role", "").strip(),
                    "sdr_field": request.form.get("sdr_field", "").strip()}
        rows = qualification_form.rows_from_form(request.form, settings.qualification_described)
        try:
            fields = qualification_form.to_settings(rows)
        except QualificationMappingError as exc:  # nothing saved; the page comes back as submitted, each problem named
            return _loops_page(settings, loop_settings, mappings, rows, problems=exc.problems), 400
        settings = installation_settings.write(installation, qualification=fields, loops=loop_settings, mappings=mappings)
        inst.audit(s, installation_id, f"user:{session['user']}", "loops:saved", dict(settings.loops or {}))
        flash("Loops and mappings saved.")
        return redirect(url_for("admin.loops"))  # type: ignore[return-value]


def _loops_page(settings: installation_settings.InstallationSettings, loop_settings: Any, mappings: Any,
                rows: list[qualification_form.Row], *, suggested: bool = False, problems: tuple[str, ...] = ()) -> str:
    return render_template(
        "admin/loops.html", loops=[(n, loop_settings.get(n, {"enabled": True, "schedule": ""})) for n in LOOP_NAMES],
        mappings=mappings, suggested=suggested, rows=rows, blank=qualification_form.Row(new=True), problems=problems,
        described=qualification_form.described_fields(settings.qualification_described, rows),
        choices=qualification_form.choices())


def _suggest_qualification(installation_id: str) -> Response:
    """Ask the CRM for its deal fields again and show the suggested mapping (kept unconfirmed until saved)."""
    with _store().session() as s:
        installation = inst.get(s, installation_id)
        s.expunge(installation)
    count = suggest_for(installation, store=_store(), settings=current_app.extensions["salesloop.settings"])
    with _store().session() as s:
        saved = installation_settings.read(inst.get(s, installation_id)).qualification
    flash("The CRM could not be asked for its fields; try again later." if count is None else
          f"{count} qualification fields suggested from the CRM's fields" + (
              "; your saved mapping is unchanged (the suggestion is not shown while one is saved)." if saved else
              ": check each row and save to confirm."))
    return redirect(url_for("admin.loops"))  # type: ignore[return-value]


@admin.route("/policy", methods=["GET", "POST"])
@auth.login_required
def policy_editor() -> tuple[str, int] | str | Response:
    installation_id = auth.current_installation_id()
    error = None
    with _store().session() as s:
        rules = policy.load_rules(s, installation_id)
    if request.method == "POST":
        error = _policy_form_problem(request.form)
    if request.method == "POST" and error is None:
        rules = readouts.rules_from_form(request.form)
        try:
            with _store().session() as s:
                policy.save_rules(s, installation_id, rules, by=f"user:{session['user']}")
            flash("Policy saved.")
            return redirect(url_for("admin.policy_editor"))  # type: ignore[return-value]
        except policy.PolicyError as exc:
            error = str(exc)
    page = render_template("admin/policy.html", rules=rules, error=error, actions=readouts.ACTIONS,
                           autonomies=[a.value for a in policy.Autonomy], locked=policy.LOCKED_RULES,
                           loop_names=LOOP_NAMES)
    return (page, 400) if error else page


@admin.get("/approvals")
@auth.login_required
def approvals() -> str:
    installation_id = auth.current_installation_id()
    with _store().session() as s:
        waiting = s.execute(select(Proposal).where(Proposal.installation_id == installation_id, Proposal.status == ProposalStatus.PENDING)
                            .order_by(Proposal.created_at.desc())).scalars().all()  # every one: never cut off
        decided = s.execute(select(Proposal).where(Proposal.installation_id == installation_id, Proposal.status != ProposalStatus.PENDING)
                            .order_by(Proposal.created_at.desc()).limit(100)).scalars().all()
        rows = [*waiting, *decided]
        spot = readouts.spot_checks(s, installation_id)
        versions = s.execute(select(ModelVersion).where(ModelVersion.installation_id == installation_id, ModelVersion.active.is_(True))
                             .order_by(ModelVersion.loop, ModelVersion.version.desc())).scalars().all()
        return render_template("admin/approvals.html", proposals=rows, spot=spot, versions=versions)


@admin.post("/proposals/<proposal_id>/<verdict>")
@auth.login_required
def decide_proposal(proposal_id: str, verdict: str) -> Response:
    installation_id = auth.current_installation_id()
    if verdict not in ("approve", "reject"):
        return Response("unknown verdict", status=400)
    reason = request.form.get("reason", "").strip()
    with _store().session() as s:
        decide(s, installation_id, proposal_id, approved=verdict == "approve", by=f"user:{session['user']}", reason=reason)
    flash("Approved: the new version goes live for the treatment group." if verdict == "approve" else "Rejected; the reason is recorded.")
    return redirect(url_for("admin.approvals"))  # type: ignore[return-value]


@admin.get("/audit")
@auth.login_required
def audit_log() -> str:
    installation_id = auth.current_installation_id()
    filters = {k: request.args.get(k, "") for k in ("loop", "kind", "policy_verdict", "gate_verdict", "id")}
    with _store().session() as s:
        stmt = select(DecisionRecord).where(DecisionRecord.installation_id == installation_id)
        for name, value in filters.items():
            if value:
                stmt = stmt.where(getattr(DecisionRecord, name) == value)
        decisions = s.execute(stmt.order_by(DecisionRecord.created_at.desc()).limit(200)).scalars().all()
        total = s.execute(select(func.count()).select_from(DecisionRecord).where(DecisionRecord.installation_id == installation_id)).scalar_one()
        events = s.execute(select(AuditEntry).where(AuditEntry.installation_id == installation_id).order_by(AuditEntry.at.desc()).limit(50)).scalars().all()
        names = readouts.record_names(s, installation_id, ((d.target, d.target_id) for d in decisions))
        return render_template("admin/audit.html", decisions=decisions, events=events, filters=filters, total=total,
                               names=names,
                               loops=LOOP_NAMES, kinds=readouts.ACTIONS, actor=readouts.event_actor,
                               action=readouts.event_action)


@admin.get("/charts")
@auth.login_required
def charts_page() -> str:
    """Every chart inline (one store read each), each with the sentence that says what it covers or why it is empty."""
    with _store().session() as s:
        shown = [(name, title, *readouts.chart(s, auth.current_installation_id(), name)) for name, title in readouts.CHARTS.items()]
    return render_template("admin/charts.html", charts=shown)


@admin.get("/charts/<name>.svg")
@auth.login_required
def chart(name: str) -> Response:
    if name not in readouts.CHARTS:
        return Response("unknown chart", status=404)
    with _store().session() as s:
        svg = readouts.chart_svg(s, auth.current_installation_id(), name)
    return Response(svg, mimetype="image/svg+xml")


MAX_POLICY_ROWS = 200
MAX_POLICY_NUMBER = 1e12


def _policy_form_problem(form: Any) -> str | None:
    """Bounds on the policy form's numbers before anything parses them (a huge row count would loop for
    minutes, Infinity cannot be stored); text that is no number is left to the policy's own check."""
    count = (form.get("rule_count") or "0").strip()
    if not (count.isascii() and count.isdigit()) or int(count) > MAX_POLICY_ROWS:
        return f"The number of rules must be a whole number from 0 to {MAX_POLICY_ROWS}."
    for name, value in form.items():
        field, _, row = name.rpartition("_")
        if field not in ("amount_below", "amount_at_least", "mrr_below", "mrr_at_least"):
            continue
        try:
            number = float(value.strip()) if len(value) <= 40 else math.inf
        except ValueError:
            continue
        if not math.isfinite(number) or abs(number) > MAX_POLICY_NUMBER:
            rule = (form.get(f"id_{row}") or f"row {row}").strip()[:60]
            return (f"{rule}: {field} {value.strip()[:40]!r} is not an amount this policy can hold "
                    f"(at most {MAX_POLICY_NUMBER:,.0f}).")
    return None


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


__all__ = ["admin", "charts"]
