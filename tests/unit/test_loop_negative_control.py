"""Negative control: on Maven-like noise (a fictitious company, outcomes independent of everything)
every learning loop learns, finds no driver and proposes nothing."""

from __future__ import annotations

from jobs.loops import discovery, icp, objections, sequences
from jobs.loops.decision import ActionKind
from jobs.loops.registry import all_loops
from jobs.loops.stats import TOO_FEW
from tests.unit.loop_worlds import NOW, maven_like_noise


def test_every_loop_is_registered() -> None:
    assert {"discovery", "objections", "sequences", "icp"} <= set(all_loops())


def test_no_loop_proposes_anything_on_maven_like_noise() -> None:
    snap = maven_like_noise()
    for loop in (discovery, objections, sequences, icp):
        learned = loop.learn(snap, None, NOW)
        decisions = loop.decide(snap, learned.state, NOW)
        assert not [d for d in decisions if d.kind in (ActionKind.PROPOSE_PLAYBOOK_CHANGE, ActionKind.CREATE_TASK,
                                                       ActionKind.UPDATE_FIELD)], loop.NAME
    assert icp.learn(snap, None, NOW).metrics["drivers"] == {}
    verdicts = discovery.learn(snap, None, NOW).metrics["verdicts"]
    assert set(verdicts.values()) <= {"unclear", TOO_FEW}


def test_an_empty_crm_gives_empty_state_and_no_decisions() -> None:
    from crm_adapters.snapshot import Snapshot

    for loop in (discovery, objections, sequences, icp):
        learned = loop.learn(Snapshot(), None, NOW)
        assert loop.decide(Snapshot(), learned.state, NOW) == [], loop.NAME
