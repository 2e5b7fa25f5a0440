"""Quality gate: the spot-check sample rate, evals that catch invented facts, PSI and calibration."""

from __future__ import annotations

import random

from connector.store.tables import GateStatus
from crm_adapters.model import Entity
from crm_adapters.snapshot import Snapshot
from jobs.engine.drift import calibration, psi, psi_of_counts
from jobs.engine.policy import Autonomy, Verdict
from jobs.engine.quality import (
    QualitySettings,
    eval_text,
    gate,
    in_sample,
    proper_names,
    source_text,
)
from jobs.loops.decision import ActionKind, Decision, Reason
from tests.factories import a_contact, a_deal, a_role, an_account, an_activity

AUTO = Verdict(Autonomy.AUTO, "test")


def test_sample_rate_is_close_to_the_setting_and_stable_per_key() -> None:
    keys = [f"deal_risk:fields:{i}" for i in range(20000)]
    picked = [k for k in keys if in_sample("tenant-1", k, 0.10)]
    assert 0.09 < len(picked) / len(keys) < 0.11
    assert picked == [k for k in keys if in_sample("tenant-1", k, 0.10)]
    assert picked != [k for k in keys if in_sample("tenant-2", k, 0.10)]
    assert not any(in_sample("tenant-1", k, 0.0) for k in keys[:1000])


def _task(body: str, reasons: tuple[Reason, ...] = ()) -> Decision:
    return Decision(loop="deal_risk", kind=ActionKind.CREATE_TASK, target=Entity.DEAL, target_id="d1", key="k1",
                    payload={"subject": "Recover the deal", "body": body}, reasons=reasons)


def _snapshot() -> Snapshot:
    account = an_account(remote_id="a1", name="Initech")
    deal = a_deal(remote_id="d1", name="Initech - platform", account_id="a1", amount="48000")
    dana = a_contact(remote_id="c1", first_name="Dana", last_name="Lee", account_id="a1")
    call = an_activity(deal_id="d1", body="Dana said the budget of $48,000 is approved for Q3.")
    return Snapshot.of([account, deal, dana, a_role("d1", "c1"), call])


def test_evals_pass_text_grounded_in_the_source() -> None:
    snapshot = _snapshot()
    decision = _task("Call Dana Lee at Initech: the $48,000 budget was approved. No reply in 12 days.")
    assert eval_text(decision.payload["body"], source_text(snapshot, decision), QualitySettings()) == []


def test_evals_catch_an_invented_number() -> None:
    snapshot = _snapshot()
    decision = _task("Offer Initech a $55,000 package with 35% off.")
    problems = eval_text(decision.payload["body"], source_text(snapshot, decision), QualitySettings())
    assert any("55,000" in p for p in problems) and any("35%" in p for p in problems)


def test_evals_catch_an_invented_person_and_company() -> None:
    snapshot = _snapshot()
    decision = _task("Loop in Priya Raman from Globex Corp before Friday.")
    problems = eval_text(decision.payload["body"], source_text(snapshot, decision), QualitySettings())
    assert "name 'Priya Raman' is not in the source data" in problems
    assert "name 'Globex Corp' is not in the source data" in problems


def test_gate_blocks_banned_phrases_and_overlong_text_and_downgrades_when_paused() -> None:
    snapshot = _snapshot()
    banned = _task("This is guaranteed to close.")
    assert gate(banned, AUTO, source_text(snapshot, banned), QualitySettings()).status is GateStatus.BLOCKED
    long = _task("word " * 600)
    result = gate(long, AUTO, source_text(snapshot, long), QualitySettings(max_body=100))
    assert result.status is GateStatus.BLOCKED and "over the limit of 100" in result.reason
    ok = _task("Call Dana Lee this week.")
    paused = gate(ok, AUTO, source_text(snapshot, ok), QualitySettings(sample_rate=0.0), paused=True)
    assert paused.status is GateStatus.DOWNGRADED and paused.autonomy is Autonomy.DRAFT
    assert gate(ok, AUTO, "", QualitySettings(sample_rate=1.0)).status is GateStatus.BLOCKED  # no source: Dana Lee unknown
    assert gate(ok, AUTO, source_text(snapshot, ok), QualitySettings(sample_rate=1.0)).status is GateStatus.SAMPLED


def test_numbers_from_the_loops_reasons_count_as_source() -> None:
    decision = _task("Risk 82: no activity for 40 days.", (Reason("no_recent_activity", "No activity for 40 days", 0.4, ("score 82",)),))
    assert eval_text(decision.payload["body"], source_text(Snapshot(), decision), QualitySettings()) == []


def test_proper_names_skip_sentence_starts_and_template_words() -> None:
    assert proper_names("Follow up with Dana Lee. Next week works. Send the proposal to Initech on Monday.") == ["Dana Lee", "Initech"]


def test_psi_is_zero_for_the_same_distribution_and_large_for_a_shift() -> None:
    rng = random.Random(7)
    base = [rng.gauss(40, 10) for _ in range(5000)]
    same = [rng.gauss(40, 10) for _ in range(5000)]
    shifted = [rng.gauss(65, 10) for _ in range(5000)]
    assert psi(base, same) < 0.02
    assert psi(base, shifted) > 0.5
    assert psi_of_counts([50, 50], [50, 50]) == 0.0
    assert psi_of_counts([90, 10], [10, 90]) > 1.0


def test_calibration_brier_and_reliability_bins() -> None:
    perfect = calibration([1.0, 0.0, 1.0, 0.0], [1, 0, 1, 0])
    wrong = calibration([0.9, 0.9, 0.1, 0.1], [0, 0, 1, 1])
    assert perfect.brier == 0.0 and wrong.brier > 0.8
    rng = random.Random(3)
    probs = [rng.random() for _ in range(4000)]
    outcomes = [int(rng.random() < p) for p in probs]
    calib = calibration(probs, outcomes)
    assert calib.brier < 0.2
    assert all(abs(b["predicted"] - b["observed"]) < 0.08 for b in calib.bins)
    assert sum(b["n"] for b in calib.bins) == 4000


def test_a_list_over_several_deals_may_cite_their_data_and_this_runs_scores_but_nothing_else() -> None:
    from jobs.engine.quality import computed_values

    snapshot = _snapshot()
    scores = Decision(loop="deal_risk", kind=ActionKind.UPDATE_FIELD, target=Entity.DEAL, target_id="d1", key="f1",
                      payload={"risk_score": 87})
    listing = Decision(loop="deal_risk", kind=ActionKind.CREATE_TASK, target=Entity.USER, target_id="u9", key="l1",
                       payload={"subject": "At-risk deals for 2026-06-01: 1",
                                "body": "- Initech - platform (d1): risk 87, budget $48,000", "deal_ids": ["d1"]})
    computed = computed_values([scores, listing], "2026-06-01")
    source = source_text(snapshot, listing, computed)
    assert eval_text(listing.payload["body"], source, QualitySettings()) == []
    assert eval_text(listing.payload["subject"], source, QualitySettings()) == []
    assert eval_text("- Initech (d1): risk 91", source, QualitySettings()) == ["number '91' is not in the source data"]


def test_shares_may_be_written_as_percentages() -> None:
    assert eval_text("Win chance 68%.", "p_win 0.68", QualitySettings()) == []
    assert eval_text("Win chance 0.68.", "win chance 68%", QualitySettings()) == []
    assert eval_text("Win chance 71%.", "p_win 0.68", QualitySettings()) == ["number '71%' is not in the source data"]


def test_dates_must_be_dates_of_the_record() -> None:
    snapshot = _snapshot()  # the call happened on 2026-01-05 (factories' T0)
    decision = _task("Proposal sent 2026-01-05, not opened.")
    assert eval_text(decision.payload["body"], source_text(snapshot, decision), QualitySettings()) == []
    wrong = _task("Proposal sent 2026-02-17, not opened.")
    assert eval_text(wrong.payload["body"], source_text(snapshot, wrong), QualitySettings()) == [
        "date '2026-02-17' is not in the source data"]
