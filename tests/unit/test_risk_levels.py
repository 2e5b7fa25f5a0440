"""One risk scale: the level is a monotone function of the score, with cut-offs relative to the base rate."""

from __future__ import annotations

import pytest

from jobs.loops.deal_risk.levels import RiskScale, display, score_of

ORDER = {"low": 0, "medium": 1, "high": 2}


@pytest.mark.parametrize("base", [0.05, 0.3, 0.5, 0.62, 0.7, 0.9, 0.98, None])
def test_level_is_monotone_in_the_score(base: float | None) -> None:
    scale = RiskScale.for_base_rate(base)
    levels = [ORDER[scale.level(s)] for s in range(101)]
    assert levels == sorted(levels) and levels[0] == 0 and levels[-1] == 2


def test_cut_offs_mean_above_typical_and_twice_the_typical_odds() -> None:
    scale = RiskScale.for_base_rate(0.6)  # typical deal: 60% lost, odds 1.5
    assert (scale.medium, scale.high) == (61, 75)  # High: odds of losing >= 3, i.e. p >= 0.75
    assert [scale.level(s) for s in (60, 61, 74, 75)] == ["low", "medium", "medium", "high"]
    low_base = RiskScale.for_base_rate(0.2)  # a tenant that wins most deals: 35% risk is already high
    assert low_base.level(35) == "high" and RiskScale.for_base_rate(0.7).level(35) == "low"


def test_a_score_never_sits_in_a_contradicting_level_and_reads_as_a_win_chance() -> None:
    scale = RiskScale.for_base_rate(0.59)
    shown = display(score_of(0.824), scale, "Discovery", {"Discovery": {"win": 0.41, "n": 300}})
    assert shown["level"] == "high" and shown["win_chance"] == 18
    assert shown["chance_text"] == "Win chance 18%, typical for deals in Discovery 41%"
    assert display(20, scale, "Unknown stage", {})["chance_text"] == "Win chance 80%, typical for all deals 41%"
    assert RiskScale.from_json(scale.to_json()) == scale
