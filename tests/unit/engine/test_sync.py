"""Sync: cursors saved per batch, quarantine keeps going, resume after a crash, daily budget stops cleanly."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from connector.store import Store
from connector.store.records import count_records, get_cursor
from connector.store.tables import Installation, QuarantinedRecord
from crm_adapters.model import Entity
from jobs.sync import sync_installation
from tests.factories import a_deal, a_pipeline, a_user, an_account
from tests.fakes.memory_crm import Crash, MemoryCrm


def _installation(store: Store) -> str:
    with store.session() as s:
        s.add(Installation(id="i1", crm="sandbox", tenant_id="t1", settings={}))
    return "i1"


def _crm(deals: int = 7) -> MemoryCrm:
    crm = MemoryCrm(page_size=2)
    crm.seed(a_pipeline(), a_user(), an_account(remote_id="a1"), *[a_deal(remote_id=str(i)) for i in range(1, deals + 1)])
    return crm


def test_everything_lands_with_a_cursor_after_each_batch(store: Store) -> None:
    iid = _installation(store)
    crm = _crm()
    seen: list[tuple[str, int, int | None]] = []
    report = sync_installation(store, iid, crm, progress=lambda e, n, total: seen.append((e, n, total)))
    with store.session() as s:
        assert count_records(s, iid, Entity.DEAL) == 7
        assert count_records(s, iid, "pipeline") == 1
        assert count_records(s, iid, Entity.USER) == 1
        cursor = get_cursor(s, iid, Entity.DEAL)
        assert cursor is not None and cursor.cursor == "7" and cursor.records_synced == 7
    assert report.synced[Entity.DEAL.value] == 7 and report.stopped == ""
    assert [n for e, n, _ in seen if e == "deal"] == [0, 2, 4, 6, 7]


def test_incremental_run_reads_only_what_changed(store: Store) -> None:
    iid = _installation(store)
    crm = _crm()
    sync_installation(store, iid, crm)
    crm.update(crm.log[Entity.DEAL][0], name="Renamed")
    report = sync_installation(store, iid, crm)
    assert report.synced[Entity.DEAL.value] == 1
    assert (Entity.DEAL, "7") in crm.reads


def test_crash_mid_sync_resumes_from_the_last_saved_batch(store: Store) -> None:
    iid = _installation(store)
    crm = _crm()
    crm.crash_after_batches = 2  # account batch + first deal batch stored, then the worker dies
    with pytest.raises(Crash):
        sync_installation(store, iid, crm)
    with store.session() as s:
        assert get_cursor(s, iid, Entity.DEAL).cursor == "2"  # type: ignore[union-attr]
        assert count_records(s, iid, Entity.DEAL) == 2
    crm.reads.clear()
    sync_installation(store, iid, crm)
    assert (Entity.DEAL, "2") in crm.reads
    with store.session() as s:
        assert count_records(s, iid, Entity.DEAL) == 7
        assert get_cursor(s, iid, Entity.DEAL).records_synced == 7  # type: ignore[union-attr]


def test_quarantined_records_are_stored_logged_briefly_and_the_sync_goes_on(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    iid = _installation(store)
    crm = _crm()
    crm.add_bad(Entity.DEAL, "bad-1", "amount 'lots' is not a number")
    crm.seed(*[a_deal(remote_id=str(i)) for i in range(100, 103)])
    with caplog.at_level(logging.WARNING):
        report = sync_installation(store, iid, crm)
    assert report.quarantined == 1
    with store.session() as s:
        rows = s.execute(select(QuarantinedRecord)).scalars().all()
        assert [(r.remote_id, r.reason) for r in rows] == [("bad-1", "amount 'lots' is not a number")]
        assert rows[0].raw["secret_body"] == "x" * 5000  # kept whole in the store
        assert count_records(s, iid, Entity.DEAL) == 10
    assert "amount 'lots'" in caplog.text and "x" * 100 not in caplog.text


def test_daily_budget_ends_the_run_cleanly_with_the_cursor_saved(store: Store) -> None:
    iid = _installation(store)
    crm = _crm()
    crm.daily_limit_after_batches = 3
    report = sync_installation(store, iid, crm)
    assert "daily API budget" in report.stopped
    with store.session() as s:
        cursor = get_cursor(s, iid, Entity.DEAL)
        assert cursor is not None and cursor.cursor == "4" and "rate limited" in cursor.last_error
    report = sync_installation(store, iid, crm)
    assert report.stopped == "" and report.synced[Entity.DEAL.value] == 3
