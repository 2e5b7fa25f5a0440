"""The sandbox CRM's own record pages, served by `salesloop demo --serve` (never by the production app).

A deal list sorted by the risk salesloop wrote into the CRM's app fields, a deal page with
the card embedded as the CRM would frame it (the same presenter and card markup as the
Salesforce canvas card), and the manager's task list: complete or reject a salesloop task
in the CRM, then run the loops so the verdict is read back like any CRM's. Every POST is
CSRF-checked; the local user is signed in as the sandbox org's admin.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from dataclasses import dataclass, field
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
from sqlalchemy import select

from connector import loop_runs, web
from connector import sandbox_reads as reads
from connector.admin import auth
from connector.errors import ApiError
from connector.store.tables import ModelVersion, Proposal, ProposalStatus
from crm_adapters.errors import CrmNotFound
from crm_adapters.model import Account, Entity, TaskStatus
from crm_adapters.sandbox import SandboxCrm
from crm_adapters.writes import APP_FIELDS
from ui_extensions import card_data

logger = logging.getLogger(__name__)
bp = Blueprint("sandbox", __name__, url_prefix="/sandbox")
SORTS = {"risk": "Risk", "name": "Deal", "amount": "Amount", "close_date": "Close date"}
DEALS_PER_PAGE = 100


@dataclass
class SandboxSite:
    """What the pages work on: one sandbox CRM and the salesloop installation inside it."""

    crm: SandboxCrm
    installation_id: str
    user: str = "sandbox admin"
    worker: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start_burst_worker(self) -> None:
        """With Redis and no worker listening, one burst worker runs what is queued and exits (as `salesloop demo` does)."""
        if self.worker is not None and self.worker.poll() is None:
            return
        self.worker = subprocess.Popen([sys.executable, "-m", "connector.cli", "worker", "--burst"])


def site() -> SandboxSite:
    return current_app.extensions["salesloop.sandbox"]  # type: ignore[no-any-return]


@bp.before_request
def _signed_in() -> None:
    """The person at this local server is the sandbox org's admin (and its sales manager)."""
    here = site()
    if session.get("installation_id") != here.installation_id:
        auth.sign_in(here.installation_id, here.user, role="admin")
    auth.check_csrf()


@bp.after_request
def _no_outside(response: Response) -> Response:
    """Everything the pages need comes from this server: no CDN, no outside script."""
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
        "frame-ancestors 'self'; form-action 'self'"
    )
    return response


@bp.app_context_processor
def _inject() -> dict[str, Any]:
    return {"csrf_token": auth.csrf_token}


@bp.get("/")
def home() -> Response:
    return redirect(url_for("sandbox.deals"))  # type: ignore[return-value]


@bp.get("/admin")
def admin_pages() -> Response:
    """Into salesloop's admin pages through the same signed link a CRM's settings page would open."""
    here = site()
    return redirect(auth.signed_login_url(here.installation_id, here.user, external=False))  # type: ignore[return-value]


@bp.get("/deals")
def deals() -> str:
    here = site()
    sort = request.args.get("sort", "risk")
    sort = sort if sort in SORTS else "risk"
    rows = reads.open_deals(here.crm, sort=sort)
    people = reads.users(here.crm)
    size = int(current_app.config.get("SANDBOX_DEALS_PER_PAGE", DEALS_PER_PAGE))
    pages = max((len(rows) + size - 1) // size, 1)
    page = min(max(request.args.get("page", 1, type=int) or 1, 1), pages)
    shown = rows[(page - 1) * size:page * size]  # pages, never a silent cut-off
    return render_template("sandbox/deals.html", rows=shown, total=len(rows), sort=sort, sorts=SORTS, page=page, pages=pages,
                           first=(page - 1) * size + 1, people=people, stages=reads.stage_names(here.crm))


@bp.get("/deals/<deal_id>")
def deal(deal_id: str) -> tuple[str, int] | str:
    here = site()
    record = here.crm.get_deal(deal_id)
    if record is None:
        return render_template("sandbox/missing.html", what=f"deal {deal_id}"), 404
    values = here.crm.app_field_values(Entity.DEAL, deal_id)
    fields = [(spec.label, values.get(spec.field.value)) for spec in APP_FIELDS if spec.entity is Entity.DEAL]
    account = _account(here.crm, record.account_id)
    return render_template(
        "sandbox/deal.html", deal=record, account=account, app_fields=fields, people=reads.users(here.crm),
        stages=reads.stage_names(here.crm), history=reads.stage_history(here.crm, deal_id),
        activities=reads.activities(here.crm, deal_id),
        account_fit=here.crm.app_field_values(Entity.ACCOUNT, account.remote_id) if account else {},
    )


def _account(crm: SandboxCrm, account_id: str | None) -> Account | None:
    if not account_id:
        return None
    found = [a for a in reads._records(crm, Entity.ACCOUNT, like=f'"remote_id":"{account_id}"')
             if isinstance(a, Account) and a.remote_id == account_id]
    return found[0] if found else None


@bp.get("/deals/<deal_id>/card")
def card(deal_id: str, notice: str = "") -> str:
    """The card as the CRM frames it on the deal page: the one presenter, the shared card markup."""
    here = site()
    with web.store().session() as s:
        view = card_data.load_view(s, here.installation_id, deal_id, manager=True)
    return render_template("sandbox/card.html", view=view, deal_id=deal_id, notice=notice)


@bp.post("/deals/<deal_id>/card/proposals/<proposal_id>/<verdict>")
def card_decide(deal_id: str, proposal_id: str, verdict: str) -> tuple[str, int] | str:
    """Approve or reject in the card: the same idempotent decide() as the CRM cards and the admin page."""
    if verdict not in ("approve", "reject"):
        return card(deal_id, notice="Unknown verdict."), 400
    reason = request.form.get("reason", "").strip()[:500]
    if verdict == "reject" and not reason:
        return card(deal_id, notice="Say why you reject it: the reason is kept with the proposal."), 400
    with web.store().session() as s:
        try:
            result = card_data.decide(s, site().installation_id, proposal_id, approved=verdict == "approve",
                                      by=f"user:{session['user']}", reason=reason)
        except ApiError as exc:
            return card(deal_id, notice=exc.message), exc.status
    activated = f" Now active: {result['activated']}." if result.get("activated") else ""
    return card(deal_id, notice=f"Proposal {result['status']}.{activated}")


@bp.get("/tasks")
def tasks() -> str:
    """The manager's task list: every decision waiting first (never paged away), then the rest, 25 a page."""
    here = site()
    people = reads.users(here.crm)
    query = reads.TaskQuery.from_args(request.args, people)
    rows = here.crm.list_tasks(status=None if query.status == "all" else TaskStatus(query.status))
    with web.store().session() as s:
        linked = list(s.execute(select(Proposal).where(
            Proposal.installation_id == here.installation_id, Proposal.task_remote_id.is_not(None))).scalars())
        pending = {str(p.task_remote_id): str((p.evidence or {}).get("type") or "") for p in linked if p.status == ProposalStatus.PENDING}
        shown = reads.task_page(rows, pending, people, query,
                                per_page=int(current_app.config.get("SANDBOX_TASKS_PER_PAGE", reads.PAGE_SIZE)))
        views = {p.task_remote_id: _proposal_view(p) for p in linked}
        active = _active_versions(s, here.installation_id)
    return render_template("sandbox/tasks.html", page=shown, q=query, statuses=reads.TASK_STATUSES, kinds=reads.TASK_KINDS,
                           people=people, proposals=views, pending=pending, versions=active, run=runs_status())


def _proposal_view(row: Proposal | None) -> dict[str, Any] | None:
    return None if row is None else {"id": row.id, "status": row.status, "loop": row.loop, "reason": row.reason}


def _active_versions(s: Any, installation_id: str) -> list[ModelVersion]:
    return list(s.execute(select(ModelVersion).where(
        ModelVersion.installation_id == installation_id, ModelVersion.active.is_(True))
        .order_by(ModelVersion.loop, ModelVersion.version.desc())).scalars())


@bp.post("/tasks/<task_id>/<action>")
def task_action(task_id: str, action: str) -> Response:
    """What a manager does in the CRM: complete (approve) or reject a task, with a comment."""
    here = site()
    comment = request.form.get("comment", "").strip()[:1000]
    target = request.form.get("next", "")
    back = redirect(target if target.startswith("/sandbox/tasks") and "//" not in target else url_for("sandbox.tasks"))
    if action not in ("complete", "reject"):
        flash("Unknown action.", "error")
        return back  # type: ignore[return-value]
    if action == "reject" and not comment:
        flash("Give a reason to reject a task: salesloop keeps it with the proposal.", "error")
        return back  # type: ignore[return-value]
    try:
        if action == "complete":
            here.crm.complete_task(task_id, comment)
        else:
            here.crm.reject_task(task_id, comment)
    except CrmNotFound:
        flash(f"Task {task_id} is not in this CRM.", "error")
        return back  # type: ignore[return-value]
    flash(f"Task {task_id} {'completed' if action == 'complete' else 'rejected'} in the CRM. "
          "salesloop reads it on its next run: press “Run the loops now”.")
    return back  # type: ignore[return-value]


def _runner() -> loop_runs.ThreadRunner | loop_runs.RqRunner:
    here = site()
    return loop_runs.runner(web.store(), web.settings(), current_app.extensions, on_no_worker=here.start_burst_worker)


def runs_status() -> dict[str, Any]:
    return _runner().status(site().installation_id).to_json()


@bp.post("/run")
def run_loops() -> Response | tuple[Response, int]:
    """Start the tenant's chain in the background and return at once; the page polls /sandbox/run.json."""
    here = site()
    status = _runner().start(here.installation_id, crm=here.crm)
    if request.accept_mimetypes.best == "application/json":
        return jsonify(status.to_json()), 202
    target = request.form.get("next", "")
    back = target if target.startswith("/sandbox/") and "//" not in target else url_for("sandbox.tasks")  # no open redirect
    return redirect(back)  # type: ignore[return-value]


@bp.get("/run.json")
def run_status() -> Response:
    """The run's state, percent and step, read on the server: a reload finds the run where it is."""
    return jsonify(runs_status())
