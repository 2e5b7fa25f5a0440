"""A small but real loop for engine tests: scores open deals by idle days, proposes one playbook change."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from crm_adapters.model import DealStatus, Entity
from crm_adapters.snapshot import Snapshot
from jobs.loops.base import Learned, LoopDefinition
from jobs.loops.decision import ActionKind, Decision, Reason


def learn(snapshot: Snapshot, state: Mapping[str, Any] | None, now: datetime) -> Learned:
    closed = snapshot.closed_deals()
    won = sum(d.status is DealStatus.WON for d in closed)
    new = dict(state or {"questions": ["budget_owner"]})
    new["win_rate"] = round(won / len(closed), 3) if closed else 0.0
    return Learned(new, {"n": len(closed), "win_rate": new["win_rate"]})


def decide(snapshot: Snapshot, state: Mapping[str, Any], now: datetime) -> list[Decision]:
    out: list[Decision] = []
    for deal in snapshot.open_deals():
        idle = (now.date() - (deal.created_at or now).date()).days
        score = min(99, idle)
        reason = Reason("no_recent_activity", f"No activity for {idle} days", 0.5)
        day = f"{now:%Y-%m-%d}"
        out.append(Decision("test_loop", ActionKind.UPDATE_FIELD, Entity.DEAL, deal.remote_id, f"test:f:{deal.remote_id}:{day}",
                            {"risk_score": score, "risk_level": "high" if score > 50 else "low"}, (reason,), amount=deal.amount))
        out.append(Decision("test_loop", ActionKind.UPDATE_CARD, Entity.DEAL, deal.remote_id, f"test:c:{deal.remote_id}:{day}",
                            {"section": "risk", "score": score}, (reason,)))
        if score > 50:
            out.append(Decision("test_loop", ActionKind.CREATE_TASK, Entity.DEAL, deal.remote_id, f"test:t:{deal.remote_id}:{day}",
                                {"subject": f"At risk: {deal.name}", "body": f"No activity for {idle} days."}, (reason,)))
        out.append(Decision("test_loop", ActionKind.CHANGE_COMPENSATION, Entity.DEAL, deal.remote_id, f"test:x:{deal.remote_id}:{day}",
                            {"subject": "cut commission"}))
    n = len(snapshot.closed_deals())
    if "discovery_budget" not in state.get("questions", []):
        out.append(Decision("test_loop", ActionKind.PROPOSE_PLAYBOOK_CHANGE, Entity.DEAL, "playbook", f"test:p:{n}",
                            {"title": "Add the budget question", "diff": [{"op": "add", "question": "discovery_budget"}],
                             "evidence": {"n": n, "lift": 0.12}}))
    return out


def approve(state: Mapping[str, Any], proposal: Mapping[str, Any]) -> dict[str, Any]:
    questions = list(state.get("questions", []))
    for change in proposal.get("diff", []):
        if change.get("op") == "add":
            questions.append(change["question"])
    return {**state, "questions": questions}


TEST_LOOP = LoopDefinition("test_loop", learn, decide, approve, "engine test loop")
