"""The extractor on the simulator's own notes and transcripts, scored against its planted labels."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest

from crm_adapters.sandbox.simulator import SimulatedWorld
from jobs.loops.handoff.signals import alignment, deal_signals


@pytest.fixture(scope="module")
def world() -> tuple[dict, dict]:
    sim = SimulatedWorld(None, seed=7)
    sim.advance(3)
    org = sim.org()
    return deal_signals(org.snapshot()), org.truth.deals


def _pr(pairs: Iterable[tuple[set[str], set[str]]]) -> tuple[float, float]:
    tp = fp = fn = 0
    for got, want in pairs:
        tp, fp, fn = tp + len(got & want), fp + len(got - want), fn + len(want - got)
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1)


def _score(world: tuple[dict, dict], got: Callable, want: Callable) -> tuple[float, float]:
    signals, truth = world
    return _pr((set(got(s)), set(want(truth[d]))) for d, s in signals.items())


def test_enough_simulated_deals(world: tuple[dict, dict]) -> None:
    assert len(world[0]) > 150


def test_claimed_pains_match_the_sdr_note_labels(world: tuple[dict, dict]) -> None:
    precision, recall = _score(world, lambda s: s.claimed_pains, lambda t: t.stated_pains)
    assert precision > 0.95 and recall > 0.95


def test_discovered_pains_match_the_discovery_labels(world: tuple[dict, dict]) -> None:
    signals, truth = world
    pairs = [(set(s.discovered_pains), set(truth[d].discovered_pains)) for d, s in signals.items()
             if s.discovered_pains is not None]
    precision, recall = _pr(pairs)
    assert len(pairs) > 50 and precision > 0.95 and recall > 0.95


def test_meddic_and_questions_match(world: tuple[dict, dict]) -> None:
    assert min(_score(world, lambda s: s.meddic, lambda t: t.meddic)) > 0.9
    assert min(_score(world, lambda s: s.questions, lambda t: t.questions_sdr)) > 0.95


def test_alignment_flags_made_up_pains(world: tuple[dict, dict]) -> None:
    signals, truth = world
    made_up = [(set(s.unconfirmed_pains), set(truth[d].misaligned_pains)) for d, s in signals.items()
               if alignment(s) is not None]
    _, recall = _pr(made_up)
    assert recall > 0.95  # every made-up pain shows up as not confirmed by discovery
