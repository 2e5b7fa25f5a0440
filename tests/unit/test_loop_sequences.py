"""Sequence bandit: Thompson allocation, the stopping rule's minimum sample, promotion on approval."""

from __future__ import annotations

from jobs.loops import sequences
from jobs.loops.decision import ActionKind
from tests.unit.loop_worlds import NOW, sequence_world


def test_thompson_allocates_more_to_the_better_variant() -> None:
    state = sequences.learn(sequence_world({"A": 0.04, "B": 0.12}, 150), None, NOW).state
    alloc = state.allocation["seq1"]
    assert alloc["B"] > alloc["A"]
    assert alloc["A"] >= 0.05 / 2 - 1e-9  # the uniform holdout keeps measuring every variant
    assert abs(sum(alloc.values()) - 1.0) < 1e-3


def test_readout_has_posteriors_intervals_and_p_best_for_plots() -> None:
    metrics = sequences.learn(sequence_world({"A": 0.05, "B": 0.1}, 100), None, NOW).metrics
    variant = metrics["sequences"]["seq1"]["variants"]["A"]
    assert {"alpha", "beta", "mean", "lo", "hi", "p_best", "n", "k"} <= set(variant)
    assert variant["lo"] <= variant["mean"] <= variant["hi"]
    assert variant["alpha"] == 1 + variant["k"] and variant["beta"] == 1 + variant["n"] - variant["k"]


def test_negative_replies_and_opens_are_not_successes() -> None:
    metrics = sequences.learn(sequence_world({"A": 0.0}, 200), None, NOW).metrics
    assert metrics["sequences"]["seq1"]["variants"]["A"]["k"] == 0


def test_stopping_rule_waits_for_the_minimum_sample() -> None:
    small = sequence_world({"A": 0.02, "B": 0.30}, 60)
    state = sequences.learn(small, sequences.SequencesState.from_json({"params": {"min_n": 200}}), NOW).state
    assert state.sequences["seq1"]["variants"]["B"]["p_best"] > 0.99
    assert not state.sequences["seq1"]["stop"]
    assert sequences.decide(small, state, NOW) == []
    state = sequences.learn(small, sequences.SequencesState.from_json({"params": {"min_n": 50}}), NOW).state
    [decision] = sequences.decide(small, state, NOW)
    assert decision.kind is ActionKind.PROPOSE_PLAYBOOK_CHANGE
    assert decision.payload["diff"][0] == {"op": "set", "field": "promoted", "sequence": "seq1", "value": "B"}


def test_equal_variants_are_never_promoted() -> None:
    snap = sequence_world({"A": 0.08, "B": 0.08}, 1500, seed=9)
    state = sequences.learn(snap, None, NOW).state
    assert sequences.decide(snap, state, NOW) == []


def test_approve_promotes_winner_and_retires_loser() -> None:
    snap = sequence_world({"A": 0.04, "B": 0.15}, 400)
    state = sequences.learn(snap, None, NOW).state
    [decision] = sequences.decide(snap, state, NOW)
    approved = sequences.approve(state, decision.payload)
    assert approved.sequences["seq1"]["promoted"] == "B"
    assert approved.sequences["seq1"]["retired"] == ["A"]
    assert approved.allocation["seq1"] == {"A": 0.0, "B": 1.0}
    relearned = sequences.learn(snap, approved, NOW).state
    assert relearned.allocation["seq1"]["A"] == 0.0
    assert sequences.decide(snap, relearned, NOW) == []
