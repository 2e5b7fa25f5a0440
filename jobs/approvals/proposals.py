"""Proposals a manager decides in the CRM: playbook changes, escalated actions, drift pauses, spot-checks.

Each becomes a Proposal row and a CRM task for the manager. The next run reads the tasks
back: completed = approved, rejected = rejected with the manager's comment. A change with
the same fingerprint is never proposed again unless its evidence grew.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.store import Store
from connector.store.installations import audit
from connector.store.tables import (
    Arm,
    DecisionRecord,
    GateStatus,
    Installation,
    OutboxKind,
    Proposal,
    ProposalStatus,
    VersionKind,
)
from crm_adapters.codec import jsonable
from crm_adapters.model import TaskStatus
from crm_adapters.port import CrmPort
from jobs.approvals import text as proposal_text
from jobs.loops import labels, registry
from jobs.loops.base import LoopDefinition
from jobs.loops.decision import ActionKind, Decision
from jobs.state import outbox, outbox_keys, versions
from jobs.state.attention import Ask, Ledger, stamp
from jobs.state.pause import clear_pause

logger = logging.getLogger(__name__)

PLAYBOOK, APPROVAL, DRIFT, SPOT_CHECK = "playbook", "approval", "drift", "spot_check"
APPROVE_PREFIX = "[salesloop] Approve:"  # every approval task reads the same in every CRM's task list
REVIEW_PREFIX = "[salesloop] Review:"
WAITING = "waiting_for_budget"  # evidence flag: a pending proposal whose task waits for the manager's weekly budget
BUNDLE_LIST = 20
FINGERPRINT_LENGTH = 64  # Proposal.fingerprint's column


def fingerprint(decision: Decision) -> str:
    """The change itself, without its evidence: the same diff proposed twice has the same fingerprint."""
    payload = dict(decision.payload)
    if "fingerprint" in payload:
        return str(payload["fingerprint"])[:FINGERPRINT_LENGTH]
    core = payload.get("diff", {k: v for k, v in payload.items() if k not in ("evidence", "body", "subject")})
    text = json.dumps([decision.loop, decision.kind.value, decision.target_id, core], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def evidence_size(evidence: Mapping[str, Any]) -> int:
    n = evidence.get("n", 0)
    return int(n) if isinstance(n, int | float) else 0


def has_new_evidence(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Enough more data to ask again: at least 20% (and 10) more observations than when rejected."""
    before = evidence_size(old)
    return evidence_size(new) >= before + max(10, before // 5)


def propose(
    session: Session, installation_id: str, decision: Decision, *, decision_id: str | None, manager_id: str | None,
    now: datetime, kind: str, ledger: Ledger | None = None,
) -> Proposal | None:
    """A Proposal row and its manager task; None when this change is pending, approved, or rejected on the same evidence.

    With a ledger, the task is sent only if it fits the manager's weekly approval budget; otherwise the proposal
    waits (pending, on the admin page, listed in the manager's bundle) and `release_waiting` sends it later."""
    print_ = fingerprint(decision)
    evidence = dict(decision.payload.get("evidence") or {}) if isinstance(decision.payload.get("evidence"), Mapping) else {}
    evidence["type"] = kind
    evidence["manager_id"] = manager_id
    previous = session.execute(
        select(Proposal).where(Proposal.installation_id == installation_id, Proposal.fingerprint == print_)
        .order_by(Proposal.created_at.desc())
    ).scalars().first()
    if previous is not None and (previous.status != ProposalStatus.REJECTED or not has_new_evidence(previous.evidence, evidence)):
        return None
    title = proposal_text.title(decision)
    diff = decision.payload.get("diff", [dict(decision.payload)])
    proposal = Proposal(
        installation_id=installation_id, loop=decision.loop, title=title[:300], fingerprint=print_,
        diff=diff if isinstance(diff, list) else [diff], evidence=jsonable(evidence), status=ProposalStatus.PENDING,
        created_at=now,
    )
    proposal.evidence["decision"] = {"kind": decision.kind.value, "target": decision.target.value,
                                     "target_id": decision.target_id, "payload": jsonable(dict(decision.payload))}
    session.add(proposal)
    session.flush()
    body = _task_body(decision, kind)
    if ledger is None or ledger.admit(manager_id, Ask.APPROVAL, now.date()):
        _approval_task(session, proposal, body, manager_id, now, decision_id)
    else:  # the exact gated text waits with it
        proposal.evidence = {**proposal.evidence, WAITING: True, "task_body": body, "decision_id": decision_id}
    audit(session, installation_id, f"loop:{decision.loop}", "proposal:created", {"proposal": proposal.id, "title": title[:200]})
    return proposal


def _approval_task(session: Session, proposal: Proposal, body: str, manager_id: str | None, now: datetime,
                   decision_id: str | None) -> None:
    """The manager's approval task: high priority, one subject prefix, on the deal when it is about one."""
    target = proposal.evidence.get("decision", {})
    payload = {"subject": f"{APPROVE_PREFIX} {proposal.title}"[:250], "body": body, "owner_id": manager_id,
               "due_at": (now + timedelta(days=2)).isoformat(), "priority": "high", "category": "approval",
               "deal_id": target.get("target_id") if target.get("target") == "deal" else None, "proposal_id": proposal.id}
    outbox.enqueue(session, proposal.installation_id, outbox_keys.approval_task(proposal.fingerprint, proposal.id), OutboxKind.TASK,
                   stamp(payload, Ask.APPROVAL, now), decision_id)


def release_waiting(session: Session, installation_id: str, ledger: Ledger, now: datetime, admin_url: str = "") -> int:
    """Send the tasks of waiting proposals that now fit their manager's budget (oldest first); bundle the rest.

    Returns how many still wait. Each manager with waiting proposals gets at most one bundle a week
    listing them, with where to decide them (the admin page): nothing waits unseen."""
    rows = session.execute(select(Proposal).where(Proposal.installation_id == installation_id, Proposal.status == ProposalStatus.PENDING)
                           .order_by(Proposal.created_at, Proposal.fingerprint)).scalars()
    still: dict[str | None, list[Proposal]] = {}
    for row in rows:
        if not (row.evidence or {}).get(WAITING):
            continue
        manager = row.evidence.get("manager_id")
        if ledger.admit(manager, Ask.APPROVAL, now.date()):
            body = str(row.evidence.get("task_body") or f"{row.title}\n{proposal_text.ANSWER[False]}")
            row.evidence = {k: v for k, v in row.evidence.items() if k not in (WAITING, "task_body")}
            _approval_task(session, row, body, manager, now, row.evidence.get("decision_id"))
        else:
            still.setdefault(manager, []).append(row)
    for manager, waiting in still.items():
        if ledger.left(manager, Ask.APPROVAL_BUNDLE, now.date()) and _bundle(session, installation_id, manager, waiting, now, admin_url):
            ledger.book(manager, Ask.APPROVAL_BUNDLE, now.date())
    return sum(len(w) for w in still.values())


def _bundle(session: Session, installation_id: str, manager: str | None, waiting: list[Proposal], now: datetime,
            admin_url: str) -> bool:
    year, week, _ = now.isocalendar()
    lines = [f"- {p.title}" for p in waiting[:BUNDLE_LIST]]
    if len(waiting) > BUNDLE_LIST:
        lines.append(f"- and {labels.count(len(waiting) - BUNDLE_LIST, 'more proposal')}")
    where = f"on the salesloop admin page: {admin_url}/admin/approvals" if admin_url else "on the salesloop admin page (Approvals)"
    body = "\n".join([f"Your weekly approval tasks are used up; these proposals wait for you {where}.", *lines,
                      "Each one also gets its own task here as your budget frees up next week."])
    payload = {"subject": f"{APPROVE_PREFIX} {labels.count(len(waiting), 'more proposal')} waiting for you"[:250],
               "body": body[:4000], "owner_id": manager, "due_at": (now + timedelta(days=2)).isoformat(),
               "priority": "high", "category": "approval"}
    made = outbox.enqueue(session, installation_id, outbox_keys.key("approvals-waiting", str(manager), f"{year}-W{week:02d}"), OutboxKind.TASK,
                          stamp(payload, Ask.APPROVAL_BUNDLE, now))
    return made is not None


def _task_body(decision: Decision, kind: str) -> str:
    return proposal_text.body(decision, review=kind == SPOT_CHECK)  # the same text the quality gate evals


def open_review(
    session: Session, installation_id: str, *, loop: str, kind: str, title: str, body: str, key: str,
    manager_id: str | None, now: datetime, diff: list[Any],
) -> Proposal | None:
    """A review task that is not a loop decision (drift pause, spot-check); one per key, high priority."""
    key = key[:FINGERPRINT_LENGTH]  # compared as it is stored
    if session.execute(select(Proposal.id).where(Proposal.installation_id == installation_id, Proposal.fingerprint == key)).first():
        return None
    proposal = Proposal(installation_id=installation_id, loop=loop, title=title[:300], fingerprint=key, diff=diff,
                        evidence={"type": kind}, status=ProposalStatus.PENDING, created_at=now)
    session.add(proposal)
    session.flush()
    ask = Ask.SPOT_CHECK if kind == SPOT_CHECK else Ask.REVIEW
    outbox.enqueue(session, installation_id, outbox_keys.review_task(proposal.fingerprint), OutboxKind.TASK, stamp({
        "subject": f"{REVIEW_PREFIX} {title}"[:250], "body": body[:4000], "owner_id": manager_id,
        "due_at": (now + timedelta(days=1)).isoformat(), "proposal_id": proposal.id, "priority": "high", "category": "review",
    }, ask, now))
    return proposal


@dataclass
class ReadBack:
    approved: int = 0
    rejected: int = 0
    open: int = 0
    activated: list[str] | None = None


def read_back(store: Store, installation_id: str, crm: CrmPort, loops: Mapping[str, LoopDefinition], now: datetime) -> ReadBack:
    """Read the managers' verdicts from the CRM tasks and act on them."""
    result = ReadBack(activated=[])
    with store.session() as session:
        pending = list(session.execute(select(Proposal).where(
            Proposal.installation_id == installation_id, Proposal.status == ProposalStatus.PENDING, Proposal.task_remote_id.is_not(None),
        )).scalars())
    if not pending:
        return result
    states = {s.remote_id: s for s in crm.read_tasks([p.task_remote_id for p in pending if p.task_remote_id])}
    for proposal in pending:
        state = states.get(proposal.task_remote_id or "")
        if state is None or state.status is TaskStatus.OPEN:
            result.open += 1
            continue
        approved = state.status is TaskStatus.COMPLETED
        with store.session() as session:
            row = session.get(Proposal, proposal.id)
            if row is None or row.status != ProposalStatus.PENDING:
                continue
            activated = settle(session, row, approved=approved, by="user:crm", reason=state.comment,
                               loops=loops, now=state.completed_at or now)
        result.approved += approved
        result.rejected += not approved
        if activated:
            assert result.activated is not None
            result.activated.append(activated)
    return result


def settle(
    session: Session, row: Proposal, *, approved: bool, by: str, reason: str, loops: Mapping[str, LoopDefinition],
    now: datetime,
) -> str | None:
    """Apply a manager's verdict (from a CRM task or the admin page); returns the version it activated."""
    row.decided_at, row.decided_by = now, by
    if not approved:
        row.status, row.reason = ProposalStatus.REJECTED, reason or "rejected without a comment"
        audit(session, row.installation_id, by, "proposal:rejected", {"proposal": row.id, "reason": row.reason[:500]})
        _flag_spot_check(session, row)
        return None
    row.status, row.reason = ProposalStatus.APPROVED, reason
    kind = row.evidence.get("type")
    audit(session, row.installation_id, by, "proposal:approved", {"proposal": row.id, "type": kind})
    if kind == DRIFT:
        installation = session.get(Installation, row.installation_id)
        if installation is not None:
            clear_pause(session, installation, row.loop, by=by)
        return None
    definition = loops.get(row.loop)
    if kind != PLAYBOOK or definition is None or definition.approve is None:
        return None
    current = versions.active(session, row.installation_id, row.loop)
    decision = row.evidence.get("decision", {})
    state = versions.state_of(current, definition.state_type) or versions.decoded({}, definition.state_type)
    new_state = definition.approve(state, decision.get("payload", {}))
    version = versions.save(session, row.installation_id, row.loop, new_state, {"approved_proposal": row.id},
                            kind=VersionKind.PLAYBOOK, arm=Arm.TREATMENT, proposal_id=row.id)
    audit(session, row.installation_id, by, "model:activated", {"loop": row.loop, "version": version.version, "arm": Arm.TREATMENT})
    return f"{definition.title or registry.title(row.loop)} v{version.version}"  # read by people


def _flag_spot_check(session: Session, row: Proposal) -> None:
    """A rejected spot-check marks the writes it covered, so the rejection rate per loop is visible."""
    if row.evidence.get("type") != SPOT_CHECK:
        return
    for item in row.diff:
        record = session.get(DecisionRecord, item.get("decision_id")) if isinstance(item, dict) else None
        if record is not None:
            record.gate_verdict = GateStatus.SPOT_CHECK_REJECTED
            record.gate_reason = f"manager: {row.reason}"[:1000]


def is_playbook(decision: Decision) -> bool:
    return decision.kind is ActionKind.PROPOSE_PLAYBOOK_CHANGE
