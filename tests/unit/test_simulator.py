"""The simulated org: model invariants, determinism, and the planted truth visible in the data."""

from __future__ import annotations

import math
from collections import Counter
from datetime import timedelta

import pytest

from crm_adapters.model import ActivityType, DealStatus, UserRole
from crm_adapters.sandbox import SimulatedWorld, load_scenario, oracle_playbook, simulate
from crm_adapters.sandbox import _vocab as V

SEED = 11


@pytest.fixture(scope="module")
def org():  # type: ignore[no-untyped-def]
    return simulate(seed=SEED)


@pytest.fixture(scope="module")
def null_org():  # type: ignore[no-untyped-def]
    return simulate("no-signal", seed=SEED)


def test_default_org_has_the_scenario_size(org) -> None:  # type: ignore[no-untyped-def]
    counts = org.counts()
    assert 4500 <= counts["deals"] <= 5700
    assert counts["users"] == 2 + 12 + 8
    assert counts["activities"] > 10 * counts["deals"]


def test_deals_are_consistent_with_pipeline_and_people(org) -> None:  # type: ignore[no-untyped-def]
    roles = {u.remote_id: u.role for u in org.users}
    stages = {s.id: s for s in org.pipelines[0].stages}
    for deal in org.deals:
        stage = stages[deal.stage_id]
        assert (deal.status is DealStatus.WON) == stage.is_won
        assert (deal.status is DealStatus.OPEN) == (not stage.is_closed)
        assert roles[deal.sdr_id] is UserRole.SDR and roles[deal.owner_id] is UserRole.BDM
        assert deal.created_at <= org.now and deal.remote_updated_at <= org.now
        assert deal.custom["close_date_history"][-1] == deal.close_date.isoformat() or deal.is_closed
        assert (deal.loss_reason is not None) == (deal.status is DealStatus.LOST)


def test_stage_history_is_contiguous_and_ends_in_the_current_stage(org) -> None:  # type: ignore[no-untyped-def]
    snap = org.snapshot()
    for deal in org.deals[:1500]:
        history = snap.history_for(deal.remote_id)
        assert history[0].stage_id == "101"
        for before, after in zip(history, history[1:], strict=False):
            assert before.exited_at == after.entered_at
        assert history[-1].exited_at is None and history[-1].stage_id == deal.stage_id


def test_activities_follow_the_shared_conventions(org) -> None:  # type: ignore[no-untyped-def]
    deal_ids = {d.remote_id for d in org.deals}
    kinds = Counter(a.custom.get("kind") for a in org.activities)
    assert kinds["sdr_qualification"] == len(org.deals)
    settled = sum(
        d.created_at < org.now - timedelta(days=5) for d in org.deals
    )  # discovery follows within 4 days
    assert settled <= kinds["discovery_call"] <= len(org.deals)
    sequences = {s.id: set(s.variants) for s in org.scenario.sequences}
    for a in org.activities:
        assert a.occurred_at <= org.now
        assert set(a.deal_ids) <= deal_ids
        if a.custom.get("kind") in ("sdr_call", "discovery_call"):
            assert a.type is ActivityType.CALL
            assert all(line.startswith(("Rep: ", "Prospect: ")) for line in a.transcript.splitlines())
        if "sequence" in a.custom:
            assert a.custom["variant"] in sequences[a.custom["sequence"]]
    replies = Counter(a.custom.get("reply") for a in org.activities if "reply" in a.custom)
    assert replies["positive"] > 0 and replies["negative"] > 0


def test_notes_are_varied_natural_language_with_negations(org) -> None:  # type: ignore[no-untyped-def]
    notes = [a.body for a in org.activities if a.custom.get("kind") == "sdr_qualification"]
    assert len(set(notes)) == len(notes)
    text = "\n".join(notes).lower()
    assert "budget is not an issue" in text and "there is no budget" in text
    openings = Counter(n.split(" ")[0] for n in notes)
    assert len(openings) >= 4


def test_same_seed_same_records_and_another_seed_differs() -> None:
    a, b, c = (simulate(seed=s, weeks=3) for s in (5, 5, 6))
    assert list(a.records()) == list(b.records())
    assert list(a.records()) != list(c.records())


def test_advancing_in_steps_equals_advancing_at_once() -> None:
    one, two = SimulatedWorld(seed=3), SimulatedWorld(seed=3)
    one.advance(4)
    two.advance(2)
    two.advance(2)
    assert list(one.org().records()) == list(two.org().records())


def _rates(org, has):  # type: ignore[no-untyped-def]
    """Observed win rates with/without a signal on deals old enough to be closed, and the planted ones."""
    cutoff = org.now - timedelta(days=150)
    old = [d for d in org.deals if d.created_at < cutoff]
    assert sum(d.is_closed for d in old) >= 0.99 * len(old)
    groups = {True: [], False: []}  # type: ignore[var-annotated]
    for d in old:
        if d.is_closed:
            groups[bool(has(d))].append(d)
    out = {}
    for flag, deals in groups.items():
        n = len(deals)
        won = sum(d.status is DealStatus.WON for d in deals) / n
        planted = sum(org.truth.deals[d.remote_id].p_win for d in deals) / n
        out[flag] = (n, won, planted)
    (n1, w1, p1), (n0, w0, p0) = out[True], out[False]
    se = math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    return w1 - w0, p1 - p0, se


SIGNALS = {
    "referral lead source": lambda org: lambda d: d.lead_source == "referral",
    "core ICP segment": lambda org: lambda d: org.truth.deals[d.remote_id].segment == "core_mid_market",
    "cost_of_inaction asked": lambda org: (
        lambda d: (
            "cost_of_inaction"
            in (org.truth.deals[d.remote_id].questions_sdr + org.truth.deals[d.remote_id].questions_bdm)
        )
    ),
    "economic buyer captured": lambda org: lambda d: "economic_buyer" in org.truth.deals[d.remote_id].meddic,
    "champion went quiet": lambda org: (
        lambda d: "champion_quiet" in org.truth.deals[d.remote_id].warning_signs
    ),
}


@pytest.mark.parametrize("signal", sorted(SIGNALS))
def test_a_planted_signal_moves_the_observed_win_rate_by_its_planted_amount(org, signal) -> None:  # type: ignore[no-untyped-def]
    # Outcomes are Bernoulli(p_win): the observed difference in win rates is within 4 standard errors
    # of the planted difference (a false alarm at 4 SE has probability ~6e-5), and the planted
    # difference is material (>= 6 points), so the signal is really there to find.
    observed, planted, se = _rates(org, SIGNALS[signal](org))
    assert abs(planted) >= 0.06
    assert abs(observed - planted) <= 4 * se


@pytest.mark.parametrize("signal", sorted(SIGNALS))
def test_no_signal_world_has_no_signal(null_org, signal) -> None:  # type: ignore[no-untyped-def]
    observed, planted, se = _rates(null_org, SIGNALS[signal](null_org))
    assert planted == pytest.approx(0.0, abs=1e-9)
    assert abs(observed) <= 4 * se


def test_underperforming_sdr_claims_pains_the_prospect_lacks_and_wins_less(org) -> None:  # type: ignore[no-untyped-def]
    ((bad, cause),) = [kv for kv in org.truth.underperforming_sdrs.items() if kv[1] == "pain_misalignment"]
    truths = org.truth.deals.values()
    mis = lambda ts: sum(bool(t.misaligned_pains) for t in ts) / len(ts)  # noqa: E731
    theirs = [t for t in truths if t.sdr_id == bad]
    others = [t for t in truths if t.sdr_id != bad]
    assert mis(theirs) > 0.5 > 0.1 > mis(others)
    closed = {d.remote_id: d.status for d in org.deals if d.is_closed}
    theirs, others = [t for t in theirs if t.deal_id in closed], [t for t in others if t.deal_id in closed]
    won = lambda ts: sum(closed[t.deal_id] is DealStatus.WON for t in ts) / len(ts)  # noqa: E731
    planted = lambda ts: sum(t.p_win for t in ts) / len(ts)  # noqa: E731
    assert planted(theirs) < planted(others) - 0.08
    se = math.sqrt(
        won(theirs) * (1 - won(theirs)) / len(theirs) + won(others) * (1 - won(others)) / len(others)
    )
    assert won(theirs) < won(others)
    assert abs((won(theirs) - won(others)) - (planted(theirs) - planted(others))) <= 4 * se


def test_truth_names_the_best_answers() -> None:
    truth = simulate(seed=1, weeks=1).truth
    assert truth.effective_questions[0] == "cost_of_inaction"
    assert truth.best_response["price"] == "roi_case"
    assert truth.better_variant == {"cold_ops": "B", "event_followup": "A"}
    assert set(truth.warning_signs) == set(V.WARNING_SIGNS)
    assert all(e < 0 for e in truth.warning_signs.values())


def test_oracle_playbook_in_the_treatment_arm_closes_more() -> None:
    world = SimulatedWorld(seed=SEED)
    world.advance(6)
    world.advance(
        20, playbooks={"control": {"version": 1}, "treatment": oracle_playbook(world.truth, version=2)}
    )
    world.advance(12, playbooks={})  # let the experiment's deals close
    readout = world.readout(since_week=6)
    control, treatment = readout["control"], readout["treatment"]
    assert treatment["mean_p_win"] > control["mean_p_win"] + 0.15
    assert treatment["close_rate"] > control["close_rate"] + 0.10
    assert treatment["disqualified"] > 0 and control["disqualified"] == 0
    stamped = {d.custom["playbook_version"] for d in world.org().deals if d.custom["arm"] == "treatment"}
    assert stamped == {0, 2}


def test_playbooks_are_validated() -> None:
    world = SimulatedWorld(seed=1)
    with pytest.raises(ValueError, match="unknown question"):
        world.advance(1, playbooks={"treatment": {"questions": ["how_are_you"]}})
    with pytest.raises(ValueError, match="arm"):
        world.advance(1, playbooks={"experiment": {}})
    with pytest.raises(ValueError, match="rule"):
        world.advance(1, playbooks={"treatment": {"disqualify": [{"field": "mood", "op": "<", "value": 1}]}})


def test_scaled_scenario_keeps_effects() -> None:
    sc = load_scenario()
    big = sc.scaled(20_000)
    assert big.expected_deals() == pytest.approx(20_000, rel=0.01)
    assert big.pains == sc.pains and big.weeks == sc.weeks


def test_a_logistic_fit_recovers_the_planted_log_odds(org) -> None:  # type: ignore[no-untyped-def]
    # Fit win ~ every planted SDR-stage signal on deals old enough to be closed; each coefficient must be
    # within 4 standard errors (from the Fisher information) of its planted effect, after the known
    # attenuation by the unobserved per-deal noise (factor 1/sqrt(1 + pi^2 sd^2 / 8), ~0.93 here).
    # The standard errors are ~0.07-0.15, so a missing or halved effect fails.
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    truth, sc = org.truth, org.scenario
    old = [d for d in org.deals if d.created_at < org.now - timedelta(days=150) and d.is_closed]
    columns = ([("source", s) for s in sc.lead_sources if s != "inbound"] + [("segment", s.name) for s in sc.segments]
               + [("pain", p) for p in V.PAINS] + [("meddic", m) for m in V.MEDDIC] + [("question", q) for q in V.QUESTIONS]
               + [("sign", s) for s in V.WARNING_SIGNS] + [("misaligned", "")])  # fmt: skip

    def row(d):  # type: ignore[no-untyped-def]
        t = truth.deals[d.remote_id]
        have = {("source", d.lead_source), ("segment", t.segment)} | {("pain", p) for p in t.true_pains}
        have |= {("meddic", m) for m in t.meddic} | {
            ("question", q) for q in t.questions_sdr + t.questions_bdm
        }
        have |= {("sign", s) for s in t.warning_signs}
        return [len(t.misaligned_pains) if c == ("misaligned", "") else float(c in have) for c in columns]

    X = np.array([row(d) for d in old])
    y = np.array([d.status is DealStatus.WON for d in old], dtype=float)
    fit = LogisticRegression(C=1e6, max_iter=5000).fit(X, y)
    p = fit.predict_proba(X)[:, 1]
    Xi = np.hstack([np.ones((len(X), 1)), X])
    se = np.sqrt(np.diag(np.linalg.inv(Xi.T @ (Xi * (p * (1 - p))[:, None]))))[1:]
    shrink = 1 / math.sqrt(1 + math.pi**2 * sc.noise_sd**2 / 8)
    planted = {("source", "referral"): truth.lead_source_effects["referral"],
               ("segment", "core_mid_market"): truth.icp_segments[0]["effect"],
               ("question", "cost_of_inaction"): truth.question_effects["cost_of_inaction"],
               ("meddic", "economic_buyer"): truth.meddic_effects["economic_buyer"],
               ("sign", "champion_quiet"): truth.warning_signs["champion_quiet"],
               ("pain", "compliance_risk"): truth.pain_effects["compliance_risk"],
               ("misaligned", ""): truth.misaligned_pain_effect,
               ("question", "current_process"): 0.0}  # fmt: skip
    for column, effect in planted.items():
        i = columns.index(column)
        assert se[i] < 0.2
        assert abs(fit.coef_[0][i] - shrink * effect) <= 4 * se[i], (column, fit.coef_[0][i], effect, se[i])
