"""Scenario files that say what real orgs do: team scale, several causes per weak SDR, skill-linked
questions (a confounded trap), band edges that are not the loop's own."""

from __future__ import annotations

import numpy as np
import pytest

from crm_adapters.sandbox import _vocab as V
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


def _scenario_file(tmp_path, body: str):  # type: ignore[no-untyped-def]
    file = tmp_path / "world.toml"
    file.write_text(f'extends = "{SCENARIOS / "default.toml"}"\n{body}', encoding="utf-8")
    return file


def test_an_effect_can_start_ramp_and_fade_during_the_run() -> None:
    sc = load_scenario("shifting-market")
    stakeholders = [sc.at_week(w).questions["stakeholders"][2] for w in (0, 37, 38, 40, 43, 60)]
    assert stakeholders == pytest.approx([0.0, 0.0, 0.1, 0.3, 0.6, 0.6])  # appears at week 38, full by 43
    education = [next(s.effect for s in sc.at_week(w).segments if s.name == "education") for w in (39, 47, 60)]
    assert education == pytest.approx([-0.6, 0.0, 0.0])  # fades over weeks 40-47
    assert sc.at_week(43).questions["success_metrics"][2] == pytest.approx(0.35)
    assert sc.at_week(44).questions["success_metrics"][2] == 0.0  # a step at week 44
    assert sc.at_week(43).questions["success_metrics"][:2] == sc.questions["success_metrics"][:2]


def test_changes_are_scaled_with_the_other_effects(tmp_path) -> None:  # type: ignore[no-untyped-def]
    file = _scenario_file(tmp_path, '[outcome]\neffects_scale = 0.5\n'
                                    '[[changes]]\neffect = "pain_alignment.misaligned_pain_effect"\nfrom_week = 2\nto = -2.0\n')
    sc = load_scenario(file)
    assert sc.at_week(1).misaligned_pain_effect == -0.5 and sc.at_week(2).misaligned_pain_effect == -1.0


def test_the_truth_follows_the_world_as_it_is_now() -> None:
    from crm_adapters.sandbox.simulator import SimulatedWorld

    world = SimulatedWorld("shifting-market", seed=3)
    assert world.truth.question_effects["stakeholders"] == 0.0
    world.week = 43  # jump ahead: one week drawn is enough
    world.advance(1)
    assert world.truth.question_effects["stakeholders"] == pytest.approx(0.6)
    assert next(s["effect"] for s in world.truth.icp_segments if s["name"] == "education") == pytest.approx(-0.6 * 3 / 8)  # week 44: five of eight weeks faded


@pytest.mark.parametrize(("body", "message"), [
    ('[[changes]]\neffect = "questions.guess_work"\nfrom_week = 3\nto = 0.5\n', r"changes\[0\].*no effect 'guess_work'"),
    ('[[changes]]\neffect = "weather.rain"\nfrom_week = 3\nto = 0.5\n', r"changes\[0\].*section in"),
    ('[[changes]]\neffect = "questions.timeline"\nfrom_week = -1\nto = 0.5\n', r"changes\[0\].*from_week"),
    ('[[changes]]\neffect = "questions.timeline"\nfrom_week = 3\nto = 9.0\n', r"changes\[0\].*to must be in"),
    ('[[changes]]\neffect = "questions.timeline"\nfrom_week = 3\nto = 0.1\nramp = 2\n', r"changes\[0\].*unknown keys \['ramp'\]"),
    ('changes = { effect = "questions.timeline" }\n', r"\[changes\] must be an array"),
    ('[confounding]\npains = { slow_onboarding = { with = "enterprise", log_odds = 1.0 } }\n',
     r"confounding.pains.slow_onboarding.*with must be a segment"),
    ('[confounding]\npains = { hunger = { with = "education", log_odds = 1.0 } }\n', r"confounding.pains.*hunger"),
])
def test_a_bad_change_or_link_is_named_with_its_place(tmp_path, body: str, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ScenarioError, match=message):
        load_scenario(_scenario_file(tmp_path, body))


def test_a_linked_pain_travels_with_its_segment_and_source() -> None:
    from crm_adapters.sandbox._draw import _pain_rates

    sc = load_scenario("shifting-market")
    pop = population(sc, np.random.default_rng(2))
    core = sc.segments.index(next(s for s in sc.segments if s.name == "core_mid_market"))
    inside, outside = int(np.flatnonzero(pop.segment == core)[0]), int(np.flatnonzero(pop.segment == -1)[0])
    rates = _pain_rates(sc, pop, np.array([inside, outside, outside]),
                        np.array(["inbound", "inbound", "referral"], dtype=object))
    onboarding, compliance = V.PAINS.index("slow_onboarding"), V.PAINS.index("compliance_risk")
    assert rates[0, onboarding] > 2 * rates[1, onboarding] and rates[1, onboarding] == pytest.approx(0.25)
    assert rates[2, compliance] > 2 * rates[1, compliance]
    plain = load_scenario(None)
    assert _pain_rates(plain, population(plain, np.random.default_rng(2)), np.array([0]), np.array(["inbound"])).shape == (1, 8)


def test_some_sdrs_can_be_given_most_of_the_hard_leads() -> None:
    """harder-leads: 90% of the small-company leads, half the Education leads and 60% of the event leads go to six SDRs of ordinary skill."""
    from crm_adapters.sandbox._draw import _routed

    sc = load_scenario("harder-leads")
    routed = {1, 6, 13, 19, 24, 30}
    assert sc.sdrs == 36 and {r.partner for r in sc.lead_routing} == {"too_small", "education", "source:event"}
    assert all(set(r.sdrs) == routed for r in sc.lead_routing) and all(u.index not in routed for u in sc.underperformers)
    pop = population(sc, np.random.default_rng(4))
    rng = np.random.default_rng(5)
    n = 40_000
    account = rng.integers(0, sc.accounts, n)
    sources = np.array(["inbound", "event", "referral"], dtype=object)[rng.integers(0, 3, n)]
    even = rng.integers(0, sc.sdrs, n)
    sdr = _routed(sc, pop, rng, even, account, sources)
    small = pop.segment[account] == [s.name for s in sc.segments].index("too_small")
    mine = np.isin(sdr, list(routed))
    assert small[mine].mean() > 3 * small[~mine].mean()
    assert (sources[mine] == "event").mean() > 1.5 * (sources[~mine] == "event").mean()
    plain = load_scenario("team-3x")
    assert _routed(plain, population(plain, np.random.default_rng(4)), rng, even, account, sources) is even


@pytest.mark.parametrize(("body", "message"), [
    ('[[confounding.lead_routing]]\nsdrs = [12]\nwith = "too_small"\nshare = 0.5\n', r"lead_routing\[0\].*0 to 11"),
    ('[[confounding.lead_routing]]\nsdrs = [1]\nwith = "tiny"\nshare = 0.5\n', r"lead_routing\[0\].*with must be"),
    ('[[confounding.lead_routing]]\nsdrs = [1]\nwith = "source:event"\nshare = 1.5\n', r"lead_routing\[0\].*share"),
])
def test_a_bad_lead_routing_is_named_with_its_place(tmp_path, body: str, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ScenarioError, match=message):
        load_scenario(_scenario_file(tmp_path, body))
