"""Scenario files that say what real orgs do: team scale, several causes per weak SDR, skill-linked
questions (a confounded trap), band edges that are not the loop's own."""

from __future__ import annotations

import numpy as np
import pytest

from crm_adapters.sandbox import load_scenario
from crm_adapters.sandbox._draw import _ask_rates, population
from crm_adapters.sandbox.scenario import ScenarioError
from crm_adapters.sandbox.scenario_files import SCENARIOS


def test_team_scale_grows_the_team_and_its_volume_together() -> None:
    base, big = load_scenario(None), load_scenario("team-3x")
    assert (big.sdrs, big.bdms, big.managers) == (3 * base.sdrs, 3 * base.bdms, 3 * base.managers)
    assert big.leads_per_week == 3 * base.leads_per_week and big.accounts == 3 * base.accounts
    assert big.team_scale == 3.0 and big.underperformers == base.underperformers


def test_half_effects_halves_every_planted_effect() -> None:
    base, half = load_scenario(None), load_scenario("half-effects")
    assert half.questions["cost_of_inaction"][2] == base.questions["cost_of_inaction"][2] / 2
    assert half.misaligned_pain_effect == base.misaligned_pain_effect / 2


def test_a_weak_sdr_can_have_two_causes_and_a_skill_offset(tmp_path) -> None:  # type: ignore[no-untyped-def]
    trap = load_scenario("confounded-trap")
    two = next(u for u in trap.underperformers if u.index == 8)
    assert two.causes == ("skips_meddic", "pain_misalignment") and two.cause == "skips_meddic"
    pop = population(trap, np.random.default_rng(0))
    assert pop.sdr_fabrication[8] == 0.4 and pop.sdr_meddic_factor[8] == 0.4
    file = tmp_path / "offset.toml"
    file.write_text(f'extends = "{SCENARIOS / "default.toml"}"\n[sdr_skill]\nsd = 0.0\n'
                    '[[sdr_skill.underperformers]]\nindex = 2\ncause = "skips_meddic"\n'
                    'meddic_capture_factor = 0.5\nskill = -0.7\n', encoding="utf-8")
    offset = population(load_scenario(file), np.random.default_rng(0))
    assert offset.sdr_skill[2] == -0.7 and offset.sdr_skill[0] == 0.0


def test_skilled_sdrs_ask_the_linked_question_more_often() -> None:
    trap = load_scenario("confounded-trap")
    pop = population(trap, np.random.default_rng(1))
    best, worst = int(np.argmax(pop.sdr_skill)), int(np.argmin(pop.sdr_skill))
    rates = _ask_rates(trap, pop, np.array([best, worst]))
    q = list(trap.questions).index("past_attempts")
    assert rates[0, q] > 2 * rates[1, q]
    assert trap.questions["past_attempts"][2] < 0  # and asking it truly hurts: the trap


def test_band_edges_differ_from_the_loops_own() -> None:
    trap = load_scenario("confounded-trap")
    small = next(s for s in trap.segments if s.name == "too_small")
    assert small.rules[0].value == 80  # the handoff loop's own band edge is 50


def test_unknown_confounding_question_is_named(tmp_path) -> None:  # type: ignore[no-untyped-def]
    file = tmp_path / "bad.toml"
    file.write_text(f'extends = "{SCENARIOS / "default.toml"}"\n[confounding]\nquestions = {{ guess_work = 1.0 }}\n',
                    encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"confounding.questions.*guess_work"):
        load_scenario(file)
