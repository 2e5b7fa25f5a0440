"""Outbox write-back under a daily API budget: a quota outage of many runs loses no write, real failures still count."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from sqlalchemy import select

from connector.store import Store
from connector.store.tables import Installation, OutboxItem
from crm_adapters.errors import CrmBudgetExhausted, CrmUnavailable
from crm_adapters.writes import FieldUpdate, WriteResult
from jobs.state import outbox
from tests.fakes.memory_crm import MemoryCrm


class BudgetCrm(MemoryCrm):
    """The memory CRM with a switchable outage: the daily budget, or a plain 5xx, on every field write."""

    def __init__(self) -> None:
        super().__init__()
        self.failure: Exception | None = None

    def write_fields(self, updates: Sequence[FieldUpdate]) -> WriteResult:
        if self.failure is not None:
            raise self.failure
        return super().write_fields(updates)


def _queue(store: Store, n: int) -> str:
    with store.session() as s:
        s.add(Installation(id="i1", crm="sandbox", tenant_id="t1", settings={}))
    with store.session() as s:
        for i in range(n):
            outbox.enqueue(s, "i1", f"k{i}", "field", {"entity": "deal", "remote_id": str(i), "values": {"risk_level": "high"}})
    return "i1"


def _rows(store: Store) -> list[tuple[str, int]]:
    with store.session() as s:
        return [(r.status, r.attempts) for r in s.execute(select(OutboxItem).order_by(OutboxItem.idempotency_key)).scalars()]


def test_runs_stopped_by_the_daily_budget_use_up_no_attempts(store: Store) -> None:
    iid = _queue(store, outbox.BATCH + 20)
    crm = BudgetCrm()
    crm.failure = CrmBudgetExhausted("daily API limit", retry_after=3600)
    for _ in range(outbox.MAX_ATTEMPTS + 2):  # a quota outage longer than the retry allowance
        report = outbox.apply(store, iid, crm)
        assert "daily API budget" in report.stopped and report.dead == 0 and report.sent == 0
    assert set(_rows(store)) == {("pending", 0)}
    crm.failure = None
    report = outbox.apply(store, iid, crm)
    assert (report.sent, report.dead, report.stopped) == (outbox.BATCH + 20, 0, "")
    assert set(_rows(store)) == {("sent", 1)}
    assert len(crm.fields) == outbox.BATCH + 20


def test_real_send_failures_still_count_and_end_dead(store: Store) -> None:
    """Guards the test above: the attempt is given back only for the budget, not for a CRM that fails."""
    iid = _queue(store, 3)
    crm = BudgetCrm()
    crm.failure = CrmUnavailable("503 from the CRM")
    for attempt in range(1, outbox.MAX_ATTEMPTS + 1):
        with contextlib.suppress(CrmUnavailable):  # retryable: raised for RQ's Retry
            outbox.apply(store, iid, crm)
        assert {a for _, a in _rows(store)} == {attempt}
    assert {s for s, _ in _rows(store)} == {"dead"}
    assert outbox.apply(store, iid, crm).sent == 0  # dead rows are not tried again
