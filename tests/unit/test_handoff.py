"""The handoff loop end to end on hand-built orgs: alignment, post-mortems, proposals, approvals."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from crm_adapters.model import DealStatus, Entity
from crm_adapters.writes import AppField
from jobs.loops.decision import ActionKind
from jobs.loops.handoff import loop as H
from jobs.loops.handoff.signals import deal_signals
from jobs.loops.handoff.state import HandoffState
from jobs.loops.registry import all_loops
from tests.factories import T0
from tests.unit.handoff_world import DealSpec, build, random_specs

NOW = T0 + timedelta(days=200)


def _planted(n: int, seed: int = 1, effect: float = 0.30) -> list[DealSpec]:
    """Asking cost_of_inaction lifts P(win) by `effect`; everything else is noise."""
    return random_specs(n, seed=seed, sdrs=["s1", "s2", "s3", "s4"],
                        win=lambda s: 0.2 + (effect if "cost_of_inaction" in s.asked else 0.0))


def _proposals(decisions: list) -> list:
    return [d for d in decisions if d.kind is ActionKind.PROPOSE_PLAYBOOK_CHANGE]


def test_registered_under_its_name() -> None:
    assert all_loops()["handoff"].approve is H.approve


def test_pain_alignment_field_with_matched_and_unmatched() -> None:
    spec = DealSpec(sdr="s1", claimed=("manual_reporting", "compliance_risk"), true=("manual_reporting",))
    snap = build([spec])
    decisions = H.decide(snap, H.initial_state(), NOW)
    field = [d for d in decisions if d.kind is ActionKind.UPDATE_FIELD]
    assert len(field) == 1 and field[0].payload == {AppField.PAIN_ALIGNMENT.value: 0.5}
    card = next(d for d in decisions if d.kind is ActionKind.UPDATE_CARD)
    assert card.payload["matched_pains"] == ["manual_reporting"]
    assert card.payload["claimed_not_found"] == ["compliance_risk"]


def test_no_alignment_before_discovery() -> None:
    snap = build([DealSpec(sdr="s1", claimed=("data_silos",))])
    signals = next(iter(deal_signals(snap).values()))
    assert signals.discovered_pains == frozenset()  # a discovery call that found nothing is still a finding


def test_postmortem_finds_what_discovery_contradicted() -> None:
    spec = DealSpec(sdr="s1", claimed=("compliance_risk", "data_silos"), true=("data_silos",), meddic_eb=True,
                    budget_note="Budget is approved.", status=DealStatus.LOST, created_days=180,
                    discovery_lines=("Prospect: We don't have budget for this this year.",
                                     "Prospect: I'd need to run this by my boss."))
    snap = build([spec])
    decisions = H.decide(snap, H.initial_state(), NOW)
    note = next(d for d in decisions if d.kind is ActionKind.CREATE_NOTE)
    deal_id = note.target_id
    assert note.key == f"handoff:postmortem:{deal_id}" and note.target is Entity.DEAL
    card = next(d for d in decisions if d.kind is ActionKind.UPDATE_CARD)
    codes = {c["code"] for c in card.payload["contradictions"]}
    assert codes == {"pain_not_confirmed", "budget_contradicted", "authority_contradicted"}
    assert card.payload["section"] == "handoff" and card.payload["outcome"] == "lost"
    assert "compliance risk" in note.payload["body"] and "audit" in note.payload["body"]
    again = H.decide(snap, H.learn(snap, None, NOW).state, NOW)  # learned state changes, the note's key does not
    assert note.key in {d.key for d in again}


def test_pain_the_buyer_denied_is_called_out() -> None:
    spec = DealSpec(sdr="s1", claimed=("compliance_risk",), true=(), status=DealStatus.LOST, created_days=180,
                    discovery_lines=("Rep: I understood they are worried about failing the next audit. Is that right?",
                                     "Prospect: No, that's not an issue for us."))
    snap = build([spec])
    assert next(iter(deal_signals(snap).values())).denied_pains == {"compliance_risk"}
    card = next(d for d in H.decide(snap, H.initial_state(), NOW) if d.kind is ActionKind.UPDATE_CARD)
    assert [c["code"] for c in card.payload["contradictions"]] == ["pain_denied"]


def test_honest_handoff_has_no_contradictions() -> None:
    spec = DealSpec(sdr="s1", claimed=("data_silos",), true=("data_silos",), budget_note="Budget is approved.",
                    status=DealStatus.WON, created_days=180)
    decisions = H.decide(build([spec]), H.initial_state(), NOW)
    card = next(d for d in decisions if d.kind is ActionKind.UPDATE_CARD)
    assert card.payload["contradictions"] == [] and card.payload["pain_alignment"] == 1.0


def test_old_closed_deals_get_no_new_postmortem() -> None:
    spec = DealSpec(sdr="s1", claimed=("data_silos",), true=("data_silos",), status=DealStatus.WON, created_days=0)
    decisions = H.decide(build([spec]), H.initial_state(), NOW)
    assert not [d for d in decisions if d.kind is ActionKind.CREATE_NOTE]


def test_small_sample_makes_no_proposal_even_with_a_big_raw_difference() -> None:
    snap = build(_planted(40, effect=0.45))
    learned = H.learn(snap, None, NOW)
    assert _proposals(H.decide(snap, learned.state, NOW)) == []


def test_decisive_evidence_proposes_the_planted_question_with_figures() -> None:
    snap = build(_planted(900))
    learned = H.learn(snap, None, NOW)
    proposals = _proposals(H.decide(snap, learned.state, NOW))
    assert [p.payload["changes"][0]["target"] for p in proposals] == ["cost_of_inaction"]
    payload = proposals[0].payload
    assert payload["diff"][0].startswith("add question cost of inaction: win rate +")
    assert "90% interval" in payload["diff"][0] and payload["evidence"]["n"] > 200
    again = _proposals(H.decide(snap, H.learn(snap, learned.state, NOW).state, NOW))
    assert again[0].payload["fingerprint"] == payload["fingerprint"] and again[0].key == proposals[0].key


def test_approve_makes_a_new_treatment_version_and_leaves_control() -> None:
    snap = build(_planted(900))
    state = H.learn(snap, None, NOW).state
    payload = _proposals(H.decide(snap, state, NOW))[0].payload
    approved = H.approve(state, payload)
    books = approved.playbooks
    assert books["treatment"]["version"] == 1 and books["treatment"]["questions"] == ["cost_of_inaction"]
    assert books["control"] == state.playbooks["control"]
    assert "question:cost_of_inaction" in books["treatment"]["weights"]
    assert approved.history[-1]["approved"] == payload["fingerprint"]
    relearned = H.learn(snap, approved, NOW)
    assert relearned.state.experiment["started_at"] == NOW.isoformat()
    assert _proposals(H.decide(snap, relearned.state, NOW)) == []  # nothing left to add
    with pytest.raises(ValueError):
        H.approve(state, {"kind": "bogus"})


def test_promote_gives_control_the_treatment_playbook() -> None:
    state = H.initial_state()
    state = H.approve(state, {"kind": "change", "fingerprint": "f1", "changes": [
        {"op": "add_question", "target": "timeline", "signal": "question:timeline", "weight": 0.3}]})
    promoted = H.approve(state, {"kind": "promote", "fingerprint": "f2"})
    assert promoted.playbooks["control"] == promoted.playbooks["treatment"]
    assert promoted.experiment["started_at"] is None


def test_no_signal_means_no_proposal_and_no_flag() -> None:
    snap = build(random_specs(900, seed=5, sdrs=["s1", "s2", "s3", "s4", "s5", "s6"], win=lambda s: 0.3))
    learned = H.learn(snap, None, NOW)
    decisions = H.decide(snap, learned.state, NOW)
    assert _proposals(decisions) == []
    assert [d for d in decisions if d.kind is ActionKind.FLAG_SDR] == []


def test_never_touches_comp_or_employment() -> None:
    specs = random_specs(600, seed=3, sdrs=["s1", "s2", "s3", "s4", "s5"],
                         win=lambda s: 0.05 if s.sdr == "s5" else 0.4, fabricate={"s5": 0.9})
    snap = build(specs)
    decisions = H.decide(snap, H.learn(snap, None, NOW).state, NOW)
    kinds = {d.kind for d in decisions}
    assert ActionKind.FLAG_SDR in kinds
    assert not kinds & {ActionKind.CHANGE_COMPENSATION, ActionKind.CHANGE_EMPLOYMENT, ActionKind.OFFER_DISCOUNT}
    text = " ".join(str(d.payload) for d in decisions if d.kind is ActionKind.FLAG_SDR).lower()
    assert not any(word in text for word in ("salary", "commission", "fire", "terminate", "quota"))


def test_learn_metrics_carry_a_plottable_readout() -> None:
    snap = build(_planted(300))
    state = H.approve(H.initial_state(), {"kind": "change", "fingerprint": "f", "changes": [
        {"op": "add_question", "target": "timeline", "signal": "question:timeline"}]})
    first = H.learn(snap, state, NOW)
    second = H.learn(snap, first.state, NOW + timedelta(days=7))
    series = second.metrics["readout_series"]
    assert len(series) == 2 and {"control_close_rate", "treatment_close_rate", "p_close_rate"} <= set(series[-1])
    assert second.metrics["readout"]["recommendation"] in ("continue", "promote", "revert")
    stored = json.loads(json.dumps(second.state.to_json()))  # the store keeps it as JSON
    assert HandoffState.from_json(stored).to_json() == stored
    json.dumps(second.metrics)


def test_engine_style_calls_on_empty_state() -> None:
    snap = build(_planted(50))
    empty = HandoffState.from_json({})  # what the engine decodes from an empty stored state
    assert [d for d in H.decide(snap, empty, NOW) if d.kind is ActionKind.PROPOSE_PLAYBOOK_CHANGE] == []
    state = H.approve(empty, {"kind": "change", "fingerprint": "f", "changes": [
        {"op": "capture_meddic", "target": "champion", "signal": "meddic:champion", "weight": 0.5}]})
    assert state.playbooks["treatment"]["meddic"] == ["champion"]


def test_bad_config_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unit"):
        H.learn(build([]), replace(H.initial_state(), config={"unit": "team"}), NOW)
    with pytest.raises(ValueError, match="arms"):
        H.learn(build([]), replace(H.initial_state(), config={"arms": {"s1": "placebo"}}), NOW)
