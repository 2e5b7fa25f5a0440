"""The handoff loop's statistics against hand-computed values: readout, shrinkage, SDR flags, arms."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from scipy import integrate, stats

from crm_adapters.model import DealStatus
from jobs.loops.handoff.flags import sdr_flags
from jobs.loops.handoff.readout import arm_figures, arm_of, assign_arm, compare, readout, recommend
from jobs.loops.handoff.signals import DealSignals
from jobs.loops.handoff_stats import Beta, eb_prior, fit_logit, prob_greater

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
    x, y = Beta(41, 61), Beta(21, 81)
    exact, _ = integrate.quad(lambda p: stats.beta(41, 61).pdf(p) * stats.beta(21, 81).cdf(p - 0.05), 0.05, 1)
    assert prob_greater(x, y, 0.05) == pytest.approx(exact, abs=2e-3)


def test_recommendation_needs_enough_closes_and_a_decisive_posterior() -> None:
    small = {"control": {"close_rate": {"n": 10}}, "treatment": {"close_rate": {"n": 10}}}
    big = {"control": {"close_rate": {"n": 80}}, "treatment": {"close_rate": {"n": 80}}}
    sure = {"close_rate": {"p_treatment_better": 0.99, "net_lift_points": 4.0},
            "stage2_conversion": {"p_treatment_better": 0.8}}
    worse = {"close_rate": {"p_treatment_better": 0.01, "net_lift_points": -4.0},
             "stage2_conversion": {"p_treatment_better": 0.2}}
    lucky_arm = {"close_rate": {"p_treatment_better": 0.99, "net_lift_points": -1.0},
                 "stage2_conversion": {"p_treatment_better": 0.8}}
    assert recommend(small, sure, True) == "continue"
    assert recommend(big, sure, True) == "promote"
    assert recommend(big, worse, True) == "revert"
    assert recommend(big, lucky_arm, True) == "continue"  # the gap was there before the experiment
    assert recommend(big, sure, False) == "no_experiment"


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


def test_eb_prior_is_strong_for_a_fair_team_and_weak_for_a_spread_one() -> None:
    fair = eb_prior([(30, 100)] * 8)
    spread = eb_prior([(10, 100), (50, 100), (20, 100), (45, 100), (30, 100)])
    assert sum(fair) > 10 * sum(spread)
    assert fair[0] / sum(fair) == pytest.approx(0.3)


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
    assert flags[0]["likely_cause"] == "pain_misalignment" and flags[0]["p_below_peers"] > 0.95
    assert flags[0]["n"] == 150 and flags[0]["peer_rate"] > flags[0]["shrunk_rate"]


def test_fair_team_and_small_samples_get_no_flag() -> None:
    rates = {f"s{i}": 0.3 for i in range(8)}
    assert sdr_flags(_team(rates, 200, seed=2), {s: "control" for s in rates}) == []
    few = {f"s{i}": 0.35 for i in range(6)} | {"s6": 0.0}
    assert sdr_flags(_team(few, 12, seed=3), {s: "control" for s in few}) == []
