"""The text eval checks figures glued to letters too ("x1.83", "EUR5000", "10kg"), while ids, counts, ISO
dates and times of day read as what they are."""

from __future__ import annotations

import pytest

from jobs.engine.quality import QualitySettings, eval_text

SETTINGS = QualitySettings()
SOURCE = "Odds ratio 1.83 for champion_quiet; playbook v12 active since 2026-01-05. Budget 5000 EUR; team of 240."


@pytest.mark.parametrize(("text", "figure"), [
    ("Deals with a quiet champion close at x7.31 the rate.", "x7.31"),
    ("They close 7.31x as often.", "7.31x"),
    ("Switch to playbook v47 now.", "v47"),
    ("Budget is EUR9000.", "EUR9000"),
    ("Budget is 9000EUR.", "9000EUR"),
    ("Roll out to 900kg of users.", "900kg"),
    ("They plan for FY2031.", "FY2031"),
    ("Quiet champions cut win odds 9x.", "9x"),
])
def test_an_invented_figure_glued_to_letters_is_blocked(text: str, figure: str) -> None:
    assert any(repr(figure) in p for p in eval_text(text, SOURCE, SETTINGS)), eval_text(text, SOURCE, SETTINGS)


@pytest.mark.parametrize("text", [
    "Deals with a quiet champion close at x1.83 the rate.",  # the figure is in the source
    "They close 1.83x as often.",
    "Playbook v12 stays; v3 was retired.",  # a version the data names; a small count
    "Budget is EUR5000 for 240 seats.",
    "Aim to close in Q4 after the 3rd call.",
    "Call booked for 14:45, follow up at 9am.",  # times of day are not figures
    "Due 2026-01-05T10:00:00+00:00.",  # an ISO datetime on a date of the record
    "Ref a1b2c3 and 0065g00000ABCdeAAF.",  # ids are not figures
])
def test_grounded_glued_figures_ids_counts_and_times_pass(text: str) -> None:
    assert eval_text(text, SOURCE, SETTINGS) == []


def test_an_iso_datetime_on_an_invented_day_is_blocked() -> None:
    problems = eval_text("Due 2026-03-09T10:00:00Z.", SOURCE, SETTINGS)
    assert problems == ["date '2026-03-09' is not in the source data"]
