"""The handoff loop's statistics against hand-computed values: readout, shrinkage, SDR flags, arms."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from scipy import integrate, stats

from crm_adapters.model import DealStatus
from jobs.loops.handoff.flags import flag_text, sdr_flags
from jobs.loops.handoff.readout import arm_figures, arm_of, assign_arm, compare, evidence, readout, recommend
from jobs.loops.handoff.signals import DealSignals
from jobs.loops.stats import Prior, fit_logit, pooled_prior, posterior, prob_greater

CREATED = datetime(2026, 3, 2, tzinfo=UTC)


def a_signal(i: int, *, sdr: str = "s1", status: DealStatus = DealStatus.LOST, max_stage: int = 1,
             amount: float = 1000.0, closed_on: str | None = "2026-04-01", claimed: frozenset[str] = frozenset(),
             found: frozenset[str] | None = None, meddic: frozenset[str] = frozenset()) -> DealSignals:
    return DealSignals(
        deal_id=f"d{i}", sdr_id=sdr, owner_id="b", status=status, created_at=CREATED,
        closed_on=closed_on if status is not DealStatus.OPEN else None, amount=amount, claimed_pains=claimed,
        meddic=meddic, questions=frozenset(), budget="unknown", timeline="unknown", firmographics={},
        discovered_pains=found, max_stage=max_stage, has_sdr_text=True)


def _arm(won: int, lost_at_2: int, lost_at_1: int, open_at_1: int, start: int) -> list[DealSignals]:
    kinds = ([(DealStatus.WON, 4, 2000.0)] * won + [(DealStatus.LOST, 2, 1000.0)] * lost_at_2
             + [(DealStatus.LOST, 1, 1000.0)] * lost_at_1 + [(DealStatus.OPEN, 1, 1000.0)] * open_at_1)
    return [a_signal(start + i, status=status, max_stage=stage, amount=amount,
                     closed_on=None if status is DealStatus.OPEN else "2026-04-01")
            for i, (status, stage, amount) in enumerate(kinds)]


def test_arm_figures_by_hand_with_open_deals_censored() -> None:
    deals = _arm(won=10, lost_at_2=20, lost_at_1=10, open_at_1=7, start=0)
    f = arm_figures(deals, sdrs=2)
    assert f["close_rate"] == {"k": 10, "n": 40, "rate": 0.25}  # 7 open deals are neither won nor lost
    assert f["acceptance"] == {"k": 30, "n": 40, "rate": 0.75}  # open deals still in stage 1: censored
    assert f["stage2_conversion"] == {"k": 10, "n": 30, "rate": round(10 / 30, 4)}
    assert f["pipeline_per_sdr"] == (10 * 2000 + 37 * 1000) / 2
    assert f["cycle_days_median"] == 30.0


def test_comparison_matches_direct_integration() -> None:
    control = arm_figures(_arm(10, 20, 10, 0, 0), sdrs=2)
    treatment = arm_figures(_arm(20, 15, 5, 0, 100), sdrs=2)
    result = compare(control, treatment, seed="t")["close_rate"]
    c, t = stats.beta(11, 31), stats.beta(21, 21)
    exact, _ = integrate.quad(lambda x: t.pdf(x) * c.cdf(x), 0, 1)
    assert result["p_treatment_better"] == pytest.approx(exact, abs=2e-3)
    assert result["lift_points"] == pytest.approx(100 * (21 / 42 - 11 / 42), abs=0.4)
    lo, hi = result["interval_points"]
    assert lo < result["lift_points"] < hi and lo > 0


def test_prob_greater_with_margin() -> None:
    x, y = posterior(40, 100), posterior(20, 100)  # Beta(41, 61) and Beta(21, 81) under the flat prior
    exact, _ = integrate.quad(lambda p: stats.beta(41, 61).pdf(p) * stats.beta(21, 81).cdf(p - 0.05), 0.05, 1)
    assert prob_greater(x, y, 0.05) == pytest.approx(exact, abs=2e-3)


def test_recommendation_needs_enough_closes_and_evidence_past_the_same_bar_both_ways() -> None:
    small = {"control": {"close_rate": {"n": 10}}, "treatment": {"close_rate": {"n": 10}}}
    big = {"control": {"close_rate": {"n": 80}}, "treatment": {"close_rate": {"n": 80}}}
    sure = {"close_rate": {"e_better": 50.0, "e_worse": 0.01}, "stage2_conversion": {"p_treatment_better": 0.8}}
    worse = {"close_rate": {"e_better": 0.01, "e_worse": 50.0}, "stage2_conversion": {"p_treatment_better": 0.2}}
    assert recommend(small, sure, True) == "continue"
    assert recommend(big, sure, True) == "promote"
    assert recommend(big, worse, True) == "revert"
    assert recommend(big, sure, False) == "no_experiment"
    # a change adopted on evidence of 600 to 1 is undone only on evidence as strong
    assert recommend(big, worse, True, bar=600.0) == "continue"
    assert recommend(big, {**worse, "close_rate": {"e_better": 0.0, "e_worse": 700.0}}, True, bar=600.0) == "revert"


def test_readout_evidence_is_net_of_the_arms_gap() -> None:
    figures = {"control": {"close_rate": {"k": 40, "n": 200}}, "treatment": {"close_rate": {"k": 70, "n": 200}}}
    plain = evidence(figures, {"net_lift_points": 15.0})
    netted = evidence(figures, {"net_lift_points": 1.0, "baseline_var": 0.002})
    assert plain["e_better"] > 50 > 1 > plain["e_worse"]
    assert netted["e_better"] < 1 and netted["e_worse"] < 1


def test_readout_splits_by_arm_and_window() -> None:
    deals = _arm(10, 10, 0, 0, 0) + [a_signal(900 + i, sdr="s2", status=DealStatus.WON, max_stage=4) for i in range(5)]
    out = readout(deals, arm_for=lambda d: "treatment" if d.sdr_id == "s2" else "control", unit="sdr",
                  sdr_arms={"s1": "control", "s2": "treatment"}, since=None, playbooks_differ=True)
    assert out["arms"]["treatment"]["close_rate"]["k"] == 5 and out["arms"]["control"]["close_rate"]["n"] == 20
    later = readout(deals, arm_for=lambda d: "control", unit="sdr", sdr_arms={}, since="2027-01-01",
                    playbooks_differ=True)
    assert later["arms"]["control"]["deals"] == 0


def test_readout_nets_out_the_arms_gap_before_the_experiment() -> None:
    before = [a_signal(i, sdr="s2", status=DealStatus.WON if i % 2 else DealStatus.LOST) for i in range(60)]
    before += [a_signal(100 + i, sdr="s1", status=DealStatus.WON if i % 4 == 0 else DealStatus.LOST) for i in range(60)]
    after = [DealSignals(**{**d.__dict__, "deal_id": "n" + d.deal_id, "created_at": datetime(2026, 5, 1, tzinfo=UTC)})
             for d in before]
    out = readout(before + after, arm_for=lambda d: "treatment" if d.sdr_id == "s2" else "control", unit="sdr",
                  sdr_arms={"s1": "control", "s2": "treatment"}, since="2026-04-01", playbooks_differ=True)
    close = out["comparison"]["close_rate"]
    assert close["baseline_gap_points"] == pytest.approx(100 * (30 / 60 - 15 / 60))
    assert close["net_lift_points"] == pytest.approx(close["lift_points"] - close["baseline_gap_points"])
    assert abs(close["net_lift_points"]) < 1.0 and out["recommendation"] == "continue"


def test_arms_are_stable_balanced_and_overridable() -> None:
    arms = [assign_arm("tenant-a", f"sdr{i}") for i in range(2000)]
    assert arms == [assign_arm("tenant-a", f"sdr{i}") for i in range(2000)]
    assert 900 < arms.count("treatment") < 1100
    assert arms != [assign_arm("tenant-b", f"sdr{i}") for i in range(2000)]
    assert arm_of("d1", "s1", tenant="t", unit="sdr", assigned={"s1": "treatment"}) == "treatment"
    assert arm_of("d1", "s1", tenant="t", unit="lead") == assign_arm("t", "d1")


def test_pooled_prior_is_strong_for_a_fair_team_and_weak_for_a_spread_one() -> None:
    fair = pooled_prior([(30, 100)] * 8, max_strength=1e5)
    spread = pooled_prior([(10, 100), (50, 100), (20, 100), (45, 100), (30, 100)], max_strength=1e5)
    assert fair.strength > 10 * spread.strength
    assert fair.mean == pytest.approx(0.3) and isinstance(fair, Prior)


def test_logit_recovers_an_effect_and_shrinks_a_small_sample() -> None:
    rng = np.random.default_rng(0)
    x = np.c_[np.ones(4000), rng.integers(0, 2, (4000, 2))]
    y = (rng.random(4000) < 1 / (1 + np.exp(-(-1 + 0.8 * x[:, 1])))).astype(float)
    fit = fit_logit(x, y, ["i", "a", "b"])
    assert fit.interval("a")[0] < 0.8 < fit.interval("a")[1]
    assert fit.interval("b")[0] < 0 < fit.interval("b")[1]
    tiny = fit_logit(x[:20], y[:20], ["i", "a", "b"], prior_sd=0.5)
    assert abs(tiny.coef("a")) < 0.8 and tiny.sd("a") > 0.3
    with pytest.raises(ValueError):
        fit_logit(x, y[:10], ["i", "a", "b"])


def _team(rates: dict[str, float], n: int, seed: int, fabricate: str | None = None) -> list[DealSignals]:
    rnd = np.random.default_rng(seed)
    deals, i = [], 0
    for sdr, rate in rates.items():
        for _ in range(n):
            won = rnd.random() < rate
            claimed = frozenset({"data_silos", "compliance_risk"}) if sdr == fabricate else frozenset({"data_silos"})
            deals.append(a_signal(i, sdr=sdr, status=DealStatus.WON if won else DealStatus.LOST,
                                  claimed=claimed, found=frozenset({"data_silos"}), meddic=frozenset({"metrics"})))
            i += 1
    return deals


def test_planted_underperformer_is_flagged_with_its_likely_cause() -> None:
    rates = {f"s{i}": 0.35 for i in range(6)} | {"s6": 0.12}
    flags = sdr_flags(_team(rates, 150, seed=1, fabricate="s6"), {s: "control" for s in rates})
    assert [f["sdr_id"] for f in flags] == ["s6"]
    assert flags[0]["likely_cause"] == "pain_misalignment" and flags[0]["causes"] == ["pain_misalignment"]
    assert flags[0]["n"] == 150 and flags[0]["peer_rate"] > flags[0]["shrunk_rate"]
    assert flags[0]["e_value"] >= flags[0]["e_needed"] == 20.0
    lo, hi = flags[0]["gap_interval_points"]
    assert lo < flags[0]["gap_points"] < hi and lo > 3.0  # beyond the manager's 3-point margin
    assert flags[0]["deals_to_detect"] is not None and "detectable after about" in flag_text(flags[0])


def test_a_gap_inside_the_managers_margin_is_not_flagged() -> None:
    rates = {f"s{i}": 0.35 for i in range(6)} | {"s6": 0.12}
    team = _team(rates, 150, seed=1)
    assert [f["sdr_id"] for f in sdr_flags(team, {s: "control" for s in rates})] == ["s6"]
    assert sdr_flags(team, {s: "control" for s in rates}, margin=0.30) == []


def test_fair_team_and_small_samples_get_no_flag() -> None:
    rates = {f"s{i}": 0.3 for i in range(8)}
    assert sdr_flags(_team(rates, 200, seed=2), {s: "control" for s in rates}) == []
    few = {f"s{i}": 0.35 for i in range(6)} | {"s6": 0.0}
    assert sdr_flags(_team(few, 12, seed=3), {s: "control" for s in few}) == []


def test_a_question_good_sdrs_ask_is_judged_within_sdrs() -> None:
    """The confounded trap: skilled SDRs ask 'past_attempts' far more often, and asking it truly costs
    a little; pooled over SDRs it looks good, within SDRs it does not, and no change is proposed."""
    from jobs.loops.handoff.model import fit
    from jobs.loops.handoff.playbook import BASELINE, candidate_changes

    rnd = np.random.default_rng(4)
    deals, i = [], 0
    team = {f"g{k}": (0.55, 0.8) for k in range(3)} | {f"b{k}": (0.15, 0.1) for k in range(3)}
    for sdr, (rate, ask) in team.items():
        for _ in range(400):
            asked = rnd.random() < ask
            won = rnd.random() < rate - (0.04 if asked else 0.0)
            deals.append(DealSignals(
                deal_id=f"d{i}", sdr_id=sdr, owner_id="b", status=DealStatus.WON if won else DealStatus.LOST,
                created_at=CREATED, closed_on="2026-04-01", amount=1000.0, claimed_pains=frozenset(),
                meddic=frozenset(), questions=frozenset({"past_attempts"} if asked else set()), budget="unknown",
                timeline="unknown", firmographics={}, discovered_pains=None, max_stage=2, has_sdr_text=True))
            i += 1
    pooled_rate = np.mean([d.won for d in deals if d.questions]) - np.mean([d.won for d in deals if not d.questions])
    assert pooled_rate > 0.15  # the trap: asked deals win far more often overall
    summary = fit(deals)
    assert summary["signals"]["question:past_attempts"]["effect"] < 0.05
    assert not any(k.startswith("sdr_adjust:") for k in summary["signals"])
    assert candidate_changes(summary, BASELINE) == []


def test_the_family_counts_every_claim_the_playbook_could_make_or_already_makes() -> None:
    """e-BH divides by the one-sided claims a change could rest on: a question helps (and once listed,
    hurts), a middle employee band can never be a disqualify rule, a qualification answer goes both ways,
    an up-sell fact one way. Adopted items stay in the family, their evidence held in e-BH's ranking."""
    from jobs.loops.handoff.model import UNCONFIRMED
    from jobs.loops.handoff.playbook import BASELINE, family_size, held_evidence

    def level(field: str, name: str, effect: float = 0.0) -> dict[str, object]:
        return {"field": field, "level": name, "effect": effect, "sd": 0.1}

    summary = {
        "signals": {"question:timeline": {"effect": 0.5, "sd": 0.1}, "meddic:champion": {"effect": 0.0, "sd": 0.1},
                    UNCONFIRMED: {"effect": -0.5, "sd": 0.1}, "not_actionable": {"effect": 0.0, "sd": 0.1}},
        "fields": [{"field": "employees", "qualification": False}, {"field": "industry", "qualification": False},
                   {"field": "budget", "qualification": True}, {"field": "upsell", "qualification": False}],
        "levels": [level("employees", "<50"), level("employees", "200-499"), level("employees", "2000+"),
                   level("industry", "Education", -0.5), level("industry", "other"), level("budget", "yes", 0.5),
                   level("budget", "unknown"), level("upsell", "yes")],
    }
    # 3 signals; employees <50 and 2000+; Education; budget yes twice, unknown once; upsell once
    assert family_size(summary, BASELINE) == 3 + 2 + 1 + 3 + 1
    assert held_evidence(summary, BASELINE) == {}
    book = {**BASELINE, "questions": ["timeline"], "verify_pains": True,
            "disqualify": [{"field": "industry", "op": "==", "value": "Education"}],
            "field_rules": [{"op": "require", "field": "budget", "level": "yes"}]}
    assert family_size(summary, book) == 10 + 1  # the listed question can now also be dropped
    held = held_evidence(summary, book)
    assert set(held) == {"held:question:timeline", f"held:{UNCONFIRMED}", "held:industry=Education", "held:budget=yes"}
    assert all(e > 1000 for e in held.values())  # each in the direction of its claim (z about 5)


def test_an_adopted_claim_still_counts_among_the_discoveries() -> None:
    """A question whose e-value (about 45) is under K/alpha (60 for K = 3) but over K/(2 alpha) (30) is
    proposed while the listed question's own evidence still stands, and not once that evidence is gone."""
    from jobs.loops.handoff.playbook import BASELINE, candidate_changes
    from jobs.loops.stats import e_normal, z_needed

    def signal(effect: float, sd: float = 0.1) -> dict[str, object]:
        return {"effect": effect, "sd": sd, "interval": [effect - 0.16, effect + 0.16], "points": [5.0, 1.0, 9.0],
                "n_with": 900, "wins_with": 300, "n_without": 2000, "wins_without": 500}

    information = 1 / 0.1**2 - 1 / 0.5**2  # what e_values undoes of the N(0, 0.5^2) prior
    se = information**-0.5
    z = z_needed(45.0, se, tau=0.5)
    shrunk = z * se * information * 0.1**2  # the posterior effect whose likelihood estimate is z standard errors
    assert 30 < e_normal(z * se, se, tau=0.5) < 60
    book = {**BASELINE, "questions": ["timeline"]}
    strong = {"signals": {"question:timeline": signal(0.8), "question:budget_owner": signal(shrunk)}}
    weak = {"signals": {"question:timeline": signal(0.0), "question:budget_owner": signal(shrunk)}}
    assert [c["target"] for c in candidate_changes(strong, book)] == ["budget_owner"]
    assert candidate_changes(weak, book) == []
