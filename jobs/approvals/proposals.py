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
from connector.store.tables import DecisionRecord, Installation, Proposal
from crm_adapters.codec import jsonable
from crm_adapters.model import TaskStatus
from crm_adapters.port import CrmPort
from jobs.approvals import text as proposal_text
from jobs.engine import outbox, versions
from jobs.engine.drift import clear_pause
from jobs.loops.base import LoopDefinition
from jobs.loops.decision import ActionKind, Decision

logger = logging.getLogger(__name__)

PLAYBOOK, APPROVAL, DRIFT, SPOT_CHECK = "playbook", "approval", "drift", "spot_check"


def fingerprint(decision: Decision) -> str:
    """The change itself, without its evidence: the same diff proposed twice has the same fingerprint."""
    payload = dict(decision.payload)
    if "fingerprint" in payload:
        return str(payload["fingerprint"])[:64]
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
    now: datetime, kind: str,
) -> Proposal | None:
    """A Proposal row and its manager task; None when this change is pending, approved, or rejected on the same evidence."""
    print_ = fingerprint(decision)
    evidence = dict(decision.payload.get("evidence") or {}) if isinstance(decision.payload.get("evidence"), Mapping) else {}
    evidence["type"] = kind
    previous = session.execute(
        select(Proposal).where(Proposal.installation_id == installation_id, Proposal.fingerprint == print_)
        .order_by(Proposal.created_at.desc())
    ).scalars().first()
    if previous is not None and (previous.status != "rejected" or not has_new_evidence(previous.evidence, evidence)):
        return None
    title = proposal_text.title(decision)
    diff = decision.payload.get("diff", [dict(decision.payload)])
    proposal = Proposal(
        installation_id=installation_id, loop=decision.loop, title=title[:300], fingerprint=print_,
        diff=diff if isinstance(diff, list) else [diff], evidence=jsonable(evidence), status="pending",
        created_at=now,
    )
    proposal.evidence["decision"] = {"kind": decision.kind.value, "target": decision.target.value,
                                     "target_id": decision.target_id, "payload": jsonable(dict(decision.payload))}
    session.add(proposal)
    session.flush()
    body = _task_body(decision, kind)
    outbox.enqueue(session, installation_id, outbox.key(APPROVAL, print_, proposal.id[:8]), "task", {
        "subject": f"[salesloop] Approve? {title}"[:250], "body": body, "owner_id": manager_id,
        "due_at": (now + timedelta(days=2)).isoformat(), "deal_id": decision.target_id if decision.target.value == "deal" else None,
        "proposal_id": proposal.id,
    }, decision_id)
    audit(session, installation_id, f"loop:{decision.loop}", "proposal:created", {"proposal": proposal.id, "title": title[:200]})
    return proposal


def _task_body(decision: Decision, kind: str) -> str:
    return proposal_text.body(decision, review=kind == SPOT_CHECK)  # the same text the quality gate evals


def open_review(
    session: Session, installation_id: str, *, loop: str, kind: str, title: str, body: str, key: str,
    manager_id: str | None, now: datetime, diff: list[Any],
) -> Proposal | None:
    """A review task that is not a loop decision (drift pause, spot-check); one per key."""
    if session.execute(select(Proposal.id).where(Proposal.installation_id == installation_id, Proposal.fingerprint == key)).first():
        return None
    proposal = Proposal(installation_id=installation_id, loop=loop, title=title[:300], fingerprint=key[:64], diff=diff,
                        evidence={"type": kind}, status="pending", created_at=now)
    session.add(proposal)
    session.flush()
    outbox.enqueue(session, installation_id, outbox.key("review", proposal.fingerprint), "task", {
        "subject": f"[salesloop] {title}"[:250], "body": body[:4000], "owner_id": manager_id,
        "due_at": (now + timedelta(days=1)).isoformat(), "proposal_id": proposal.id,
    })
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
            Proposal.installation_id == installation_id, Proposal.status == "pending", Proposal.task_remote_id.is_not(None),
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
            if row is None or row.status != "pending":
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
        row.status, row.reason = "rejected", reason or "rejected without a comment"
        audit(session, row.installation_id, by, "proposal:rejected", {"proposal": row.id, "reason": row.reason[:500]})
        _flag_spot_check(session, row)
        return None
    row.status, row.reason = "approved", reason
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
    new_state = definition.approve(dict(current.state) if current else {}, decision.get("payload", {}))
    version = versions.save(session, row.installation_id, row.loop, new_state, {"approved_proposal": row.id},
                            kind="playbook", arm="treatment", proposal_id=row.id)
    audit(session, row.installation_id, by, "model:activated", {"loop": row.loop, "version": version.version, "arm": "treatment"})
    return f"{row.loop} v{version.version}"


def _flag_spot_check(session: Session, row: Proposal) -> None:
    """A rejected spot-check marks the writes it covered, so the rejection rate per loop is visible."""
    if row.evidence.get("type") != SPOT_CHECK:
        return
    for item in row.diff:
        record = session.get(DecisionRecord, item.get("decision_id")) if isinstance(item, dict) else None
        if record is not None:
            record.gate_verdict = "spot_check_rejected"
            record.gate_reason = f"manager: {row.reason}"[:1000]


def is_playbook(decision: Decision) -> bool:
    return decision.kind is ActionKind.PROPOSE_PLAYBOOK_CHANGE
