"""The attention budget as plain data: caps per person, kind and period; deterministic samples; task load."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from jobs.state.attention import Ask, AttentionBudget, Ledger, period, sample, stamp, task_load

MONDAY = date(2026, 6, 1)


def test_defaults_and_tenant_settings() -> None:
    budget = AttentionBudget.of({"attention": {"approvals_per_manager_per_week": "2", "unknown": 9}})
    assert budget.approvals_per_manager_per_week == 2 and budget.digests_per_rep_per_day == 1
    assert AttentionBudget.of(None) == AttentionBudget() and AttentionBudget().spot_check_items == 20
    with pytest.raises(ValueError):
        AttentionBudget(spot_check_items=-1)


def test_a_daily_kind_resets_each_day_and_a_weekly_kind_each_iso_week() -> None:
    ledger = Ledger(AttentionBudget(approvals_per_manager_per_week=2))
    assert ledger.admit("rep", Ask.DIGEST, MONDAY) and not ledger.admit("rep", Ask.DIGEST, MONDAY)
    assert ledger.admit("rep", Ask.DIGEST, MONDAY + timedelta(days=1))
    week = [ledger.admit("boss", Ask.APPROVAL, MONDAY + timedelta(days=d)) for d in range(7)]
    assert week == [True, True, False, False, False, False, False]
    assert ledger.admit("boss", Ask.APPROVAL, MONDAY + timedelta(days=7))
    assert ledger.admit("other boss", Ask.APPROVAL, MONDAY)  # per person
    assert all(ledger.admit("boss", Ask.REVIEW, MONDAY) for _ in range(10))  # drift reviews are never held back
    assert period(Ask.SPOT_CHECK, MONDAY) == "2026-W23" and period(Ask.OTHER, MONDAY) == "2026-06-01"


def test_the_ledger_is_rebuilt_from_stamped_task_payloads() -> None:
    now = datetime(2026, 6, 3, 7)
    queued = [stamp({"owner_id": "boss"}, Ask.APPROVAL, now) for _ in range(5)] + [{"owner_id": "boss"}]  # unstamped: old
    ledger = Ledger.from_tasks(AttentionBudget(), queued)
    assert ledger.left("boss", Ask.APPROVAL, MONDAY) == 0 and ledger.left("boss", Ask.APPROVAL, MONDAY + timedelta(days=7)) == 5


def test_a_sample_depends_on_the_seed_and_the_keys_only() -> None:
    keys = [f"deal_risk:fields:{i}" for i in range(300)]
    first = sample(keys, "sandbox:demo-org", 20)
    assert len(first) == 20 and first == sample(reversed(keys), "sandbox:demo-org", 20)
    assert first != sample(keys, "sandbox:other-org", 20)
    assert sample(keys[:5], "s", 20) == sample(keys[:5], "s", 20) and len(sample(keys[:5], "s", 20)) == 5


def test_task_load_is_median_and_max_per_person_day() -> None:
    d1, d2 = MONDAY, MONDAY + timedelta(days=1)
    load = task_load([("a", d1), ("a", d1), ("a", d1), ("b", d1), ("a", d2), ("c", d2)])
    assert load == {"tasks": 6, "people": 3, "days": 2, "median_per_person_day": 1, "max_per_person_day": 3}
    assert task_load([])["max_per_person_day"] == 0
