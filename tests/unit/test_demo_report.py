"""The demo summary's figures from plain data: tasks per person per day."""

from __future__ import annotations

from jobs.tools.demo_report import tasks_per_person_day


def _task(owner: str, day: str) -> dict[str, str]:
    return {"owner_id": owner, "due_at": f"{day}T09:00:00+00:00"}


def test_tasks_per_person_per_day_gives_the_median_and_the_busiest_person_day() -> None:
    tasks = [_task("u1", "2026-01-06")] * 5 + [_task("u2", "2026-01-06"), _task("u2", "2026-01-07"), _task("u3", "2026-01-06")]
    figures = tasks_per_person_day(tasks, {"u1": "Ana Ruiz"})
    assert figures == {"person_days": 4, "people": 3, "median": 1, "max": 5, "busiest": "Ana Ruiz on 2026-01-06"}


def test_no_tasks_is_zero_not_an_error() -> None:
    assert tasks_per_person_day([], {})["max"] == 0


def test_the_budget_reads_as_words_with_units() -> None:
    from jobs.tools.demo_render import budget_words

    words = budget_words({"digests_per_rep_per_day": 1, "approvals_per_manager_per_week": 5, "new_cap_per_week": 2})
    assert words == "1 morning digest(s) per rep a day, 5 approval task(s) per manager a week, new cap per week: 2"
