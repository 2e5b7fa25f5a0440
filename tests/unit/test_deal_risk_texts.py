"""The deal-risk morning task reads in one pass and always fits the gate's size limit."""

from __future__ import annotations

from datetime import UTC, datetime

from jobs.loops import labels
from jobs.loops.deal_risk import loop as deal_risk
from jobs.loops.deal_risk.levels import RiskScale, display

NOW = datetime(2026, 1, 5, 7, tzinfo=UTC)


def _scored(i: int) -> dict[str, object]:
    shown = display(96, RiskScale.for_base_rate(0.66), "Qualification", {"Qualification": {"win": 0.06, "n": 900}})
    reasons = [{"code": "risk_language", "text": "timeline slipping (email on 1 Jan 2026): " + "words " * 40, "evidence": []}] * 3
    return {"deal_id": str(i), "name": f"A rather long deal name number {i} - Expansion pilot", "score": 96,
            "probability": 0.96, "reasons": reasons, "next_move": {"text": "Send a mutual action plan with dated steps"},
            **shown}


def test_the_morning_list_fits_and_says_how_many_more_wait() -> None:
    task = deal_risk._task("7", [_scored(i) for i in range(10)], "v1", NOW)
    body = str(task.payload["body"])
    assert len(body) <= deal_risk.BODY_LIMIT and body.endswith("more high-risk deals: filter your deals by Risk level High.")
    assert task.payload["subject"] == "10 deals at high risk this morning (5 Jan 2026)"
    assert "(High; Win chance 4%, typical for deals in Qualification 6%)" in body
    assert labels.plain_problems(body + str(task.payload["subject"])) == []
