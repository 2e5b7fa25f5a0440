"""The deal-risk loop: learns from closed deals (rules first), decides fields, cards and at-risk tasks."""

from __future__ import annotations

import json
from datetime import timedelta

from crm_adapters.model import DealStatus, Entity
from crm_adapters.snapshot import Snapshot
from crm_adapters.writes import AppField
from jobs.loops.deal_risk import loop as deal_risk
from jobs.loops.deal_risk.features import MOMENTS, as_of_for, closed_table
from jobs.loops.deal_risk.signs import SIGNS, StageNorms
from jobs.loops.decision import ActionKind
from jobs.loops.registry import LOOPS, all_loops
from tests.factories import T0, a_deal
from tests.unit.risk_world import tenant

NOW = T0 + timedelta(days=500)


def test_the_loop_registers_itself() -> None:
    assert all_loops()["deal_risk"] is deal_risk.DEFINITION
    assert LOOPS["deal_risk"].decide is deal_risk.decide


def test_with_no_closed_deals_it_starts_from_rules_and_still_scores() -> None:
    snapshot = tenant(0, n_open=4, now=NOW)
    learned = deal_risk.learn(snapshot, None, NOW)
    assert learned.state.mode == "rules" and learned.state.weight == 0.0 and learned.state.model is None
    json.dumps(learned.state.to_json())
    decisions = deal_risk.decide(snapshot, learned.state, NOW)
    scores = {d.target_id: d.payload[AppField.RISK_SCORE.value] for d in decisions if d.kind is ActionKind.UPDATE_FIELD}
    quiet = {d.remote_id for d in snapshot.open_deals() if d.name == "Open quiet"}
    assert len(scores) == 4
    assert min(scores[q] for q in quiet) > max(s for d, s in scores.items() if d not in quiet)


def test_few_closed_deals_blend_rules_and_learning() -> None:
    blended = deal_risk.learn(tenant(120, now=NOW), None, NOW).state
    assert blended.mode == "blended" and 0 < blended.weight < 1 and blended.model is not None
    learned = deal_risk.learn(tenant(700, now=NOW + timedelta(days=300)), None, NOW + timedelta(days=300))
    assert learned.state.mode == "learned" and learned.state.weight == 1.0
    assert learned.metrics["validation"]["auc"] > 0.65
    assert {s["signal"] for s in learned.state.top_signals[:3]} & {"no_recent_activity", "champion_quiet", "single_threaded"}


def test_closed_deals_are_seen_at_moments_before_they_closed() -> None:
    deal = a_deal(status=DealStatus.LOST, created_at=T0, closed_at=(T0 + timedelta(days=60)).date())
    end = T0.replace(hour=23, minute=59) + timedelta(days=60)
    moments = [as_of_for(deal, f) for f in MOMENTS]
    assert moments == sorted(moments) and all(m is not None and T0 < m <= end - timedelta(days=3) for m in moments)
    assert as_of_for(deal, 0.5) == T0 + (end - T0) / 2
    short = a_deal(status=DealStatus.LOST, created_at=T0, closed_at=T0.date())
    assert as_of_for(short, 0.9) == T0  # closed the day it was made: seen as it was born, never after
    snapshot = tenant(10, now=NOW)
    table = closed_table(snapshot, StageNorms({})).table
    assert len(table) == 10 * len(MOMENTS)


def _decide(n_open: int = 6) -> tuple[Snapshot, list]:
    snapshot = tenant(200, n_open=n_open, now=NOW)
    state = deal_risk.learn(snapshot, None, NOW).state
    return snapshot, deal_risk.decide(snapshot, state, NOW)


def test_each_open_deal_gets_fields_and_a_card_with_reasons_and_a_move() -> None:
    snapshot, decisions = _decide()
    fields = [d for d in decisions if d.kind is ActionKind.UPDATE_FIELD]
    cards = [d for d in decisions if d.kind is ActionKind.UPDATE_CARD]
    assert {d.target_id for d in fields} == {d.target_id for d in cards} == {d.remote_id for d in snapshot.open_deals()}
    for d in fields:
        assert set(d.payload) == {f.value for f in (AppField.RISK_SCORE, AppField.RISK_LEVEL, AppField.RISK_REASONS,
                                                    AppField.NEXT_MOVE, AppField.SCORED_AT)}
        assert 0 <= d.payload["risk_score"] <= 100 and d.payload["risk_level"] in ("low", "medium", "high")
        assert d.target is Entity.DEAL and d.model_version.startswith("risk-")
    quiet_card = next(c for c in cards if snapshot.deal_by_id[c.target_id].name == "Open quiet")
    assert quiet_card.payload["section"] == "risk"
    codes = [r["code"] for r in quiet_card.payload["reasons"]]
    assert "no_recent_activity" in codes or "champion_quiet" in codes
    assert all(r["evidence"] for r in quiet_card.payload["reasons"] if r["code"] in ("no_recent_activity", "champion_quiet"))
    assert quiet_card.payload["next_move"]["text"] and len(quiet_card.payload["reasons"]) <= 3
    for card in cards:
        kinds = [r["code"] in SIGNS for r in card.payload["reasons"]]
        assert kinds == sorted(kinds, reverse=True)  # firing warning signs first: a rep can act on them
        assert all(r["weight"] > 0 for r in card.payload["reasons"])
        assert len(card.payload["drivers"]) == 3


def test_one_at_risk_task_per_owner_with_deterministic_keys() -> None:
    snapshot, first = _decide()
    state = deal_risk.learn(snapshot, None, NOW).state
    again = deal_risk.decide(snapshot, state, NOW)
    assert [d.key for d in first] == [d.key for d in again]
    assert len({d.key for d in first}) == len(first)
    tasks = [d for d in first if d.kind is ActionKind.CREATE_TASK]
    assert tasks and len({t.target_id for t in tasks}) == len(tasks)
    day = NOW.date().isoformat()
    for task in tasks:
        assert task.key == f"deal_risk:at_risk_list:{task.target_id}:{day}"
        assert task.payload["owner_id"] == task.target_id and task.payload["deal_ids"]
        assert all(snapshot.deal_by_id[i].owner_id == task.target_id for i in task.payload["deal_ids"])
    tomorrow = deal_risk.decide(snapshot, state, NOW + timedelta(days=1))
    assert not {d.key for d in tomorrow} & {d.key for d in first}


def test_no_open_deals_means_no_decisions() -> None:
    snapshot = tenant(30, now=NOW)
    assert deal_risk.decide(snapshot, deal_risk.learn(snapshot, None, NOW).state, NOW) == []


def test_outcomes_that_follow_nothing_yield_no_drivers() -> None:
    later = NOW + timedelta(days=400)
    learned = deal_risk.learn(tenant(700, signal=False, now=later), None, later)
    assert learned.metrics["signal_found"] is False
    assert learned.state.top_signals == ()
    assert abs(learned.metrics["validation_learned"]["auc"] - 0.5) < 0.1
