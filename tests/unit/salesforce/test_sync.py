"""Incremental sync against the fake over HTTPS: ties, overlap, deletes, reconcile, Bulk, limits mid-sync."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crm_adapters.errors import CrmRateLimited
from crm_adapters.model import Deal, DealStatus, Entity
from crm_adapters.port import Batch
from tests.fakes.salesforce.fixtures import adapter_for

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock(sf_fake):  # type: ignore[no-untyped-def]
    c = Clock(T0)
    sf_fake.org.clock = c
    return c


def opp(org, name: str, stage: str = "Prospecting", **kw) -> str:  # type: ignore[no-untyped-def]
    return org.insert("Opportunity", {"Name": name, "StageName": stage, "CloseDate": "2026-07-01", **kw})


def ids(batches: list[Batch]) -> list[str]:
    return [r.remote_id for b in batches for r in b.records]


def test_tie_at_the_cursor_boundary_loses_nothing(sf_fake, clock):
    org = sf_fake.org
    first = [opp(org, f"o{i}") for i in range(3)]  # three rows with the same SystemModstamp
    org.batch_size = 2
    stream = adapter_for(sf_fake).read_changes(Entity.DEAL, since=None)
    batch = next(stream)  # the job stores one page and stops: the page boundary splits the tie
    assert ids([batch]) == first[:2]
    clock.at = T0 + timedelta(minutes=1)
    rest = list(adapter_for(sf_fake).read_changes(Entity.DEAL, since=batch.cursor))
    assert ids(rest) == [first[2]]  # the third tied row comes, the two stored ones do not come again


def test_late_commit_inside_the_overlap_window_is_read(sf_fake, clock):
    org = sf_fake.org
    opp(org, "early")
    batches = list(adapter_for(sf_fake).read_changes(Entity.DEAL, since=None))
    late = org.insert("Opportunity", {"Name": "late", "StageName": "Prospecting"}, at=T0 - timedelta(minutes=2))
    clock.at = T0 + timedelta(minutes=3)
    again = list(adapter_for(sf_fake).read_changes(Entity.DEAL, since=batches[-1].cursor))
    assert ids(again) == [late]


def test_idle_incremental_sync_reads_nothing(sf_fake, clock):
    opp(sf_fake.org, "a")
    cursor = list(adapter_for(sf_fake).read_changes(Entity.DEAL, since=None))[-1].cursor
    clock.at = T0 + timedelta(hours=1)
    assert ids(list(adapter_for(sf_fake).read_changes(Entity.DEAL, since=cursor))) == []


def test_recycle_bin_delete_comes_through_query_all(sf_fake, clock):
    org = sf_fake.org
    rid = opp(org, "doomed")
    cursor = list(adapter_for(sf_fake).read_changes(Entity.DEAL, since=None))[-1].cursor
    clock.at = T0 + timedelta(minutes=10)
    org.delete("Opportunity", rid)
    got = [r for b in adapter_for(sf_fake).read_changes(Entity.DEAL, since=cursor) for r in b.records]
    assert [(r.remote_id, r.deleted, r.name) for r in got] == [(rid, True, "doomed")]


def test_hard_delete_comes_through_get_deleted(sf_fake, clock):
    org = sf_fake.org
    keep, gone = opp(org, "keep"), opp(org, "gone")
    cursor = list(adapter_for(sf_fake).read_changes(Entity.DEAL, since=None))[-1].cursor
    clock.at = T0 + timedelta(minutes=10)
    org.delete("Opportunity", gone, hard=True)  # emptied from the recycle bin: queryAll cannot see it
    clock.at = T0 + timedelta(minutes=20)
    got = [r for b in adapter_for(sf_fake).read_changes(Entity.DEAL, since=cursor) for r in b.records]
    assert [(r.remote_id, r.deleted) for r in got] == [(gone, True)]
    assert keep not in {r.remote_id for r in got}
    assert any("/deleted/" in path for _, path in org.calls)


def test_reconcile_by_id_set_when_the_delete_log_no_longer_reaches_back(sf_fake, clock):
    org = sf_fake.org
    keep, gone = opp(org, "keep"), opp(org, "gone")
    cursor = list(adapter_for(sf_fake).read_changes(Entity.DEAL, since=None))[-1].cursor
    clock.at = T0 + timedelta(days=3)
    org.delete("Opportunity", gone, hard=True)
    org.forget_delete_log_before(T0 + timedelta(days=4))
    clock.at = T0 + timedelta(days=5)
    adapter = adapter_for(sf_fake, known_ids=lambda entity: [keep, gone])
    got = [r for b in adapter.read_changes(Entity.DEAL, since=cursor) for r in b.records]
    assert [(r.remote_id, r.deleted) for r in got] == [(gone, True)]


def test_large_backfill_uses_bulk_api_2(sf_fake, clock):
    org = sf_fake.org
    clock.at = T0 - timedelta(days=30)
    made = {opp(org, f"bulk {i}", Amount=float(i)) for i in range(2100)}
    clock.at = T0
    batches = list(adapter_for(sf_fake).read_changes(Entity.DEAL, since=None))
    assert set(ids(batches)) == made and len(ids(batches)) == len(made)
    assert org.bulk_jobs, "a Bulk API 2.0 query job ran"
    assert not any("/query/01g" in path for _, path in org.calls), "no REST paging"
    assert batches[-1].cursor is not None and all(b.cursor is None for b in batches[:-1])
    clock.at = T0 + timedelta(hours=1)
    assert ids(list(adapter_for(sf_fake).read_changes(Entity.DEAL, since=batches[-1].cursor))) == []


def test_backfill_falls_back_to_rest_when_bulk_refuses_the_object(sf_fake, clock):
    org = sf_fake.org
    org.no_bulk.add("Opportunity")
    made = {opp(org, f"o {i}") for i in range(2001)}
    batches = list(adapter_for(sf_fake).read_changes(Entity.DEAL, since=None))
    assert set(ids(batches)) == made and not org.bulk_jobs


def test_request_limit_mid_sync_stops_with_the_cursor_of_the_last_stored_batch(sf_fake, clock):
    org = sf_fake.org
    made = [opp(org, f"o{i}") for i in range(7)]
    org.batch_size = 2
    stored: list[str] = []
    cursor = None
    with pytest.raises(CrmRateLimited) as info:
        for batch in adapter_for(sf_fake).read_changes(Entity.DEAL, since=None):
            stored += [r.remote_id for r in batch.records]
            cursor = batch.cursor  # the job saves this once the batch is stored
            org.api_max = org.api_used  # the org's daily allocation runs out now
    assert info.value.daily and stored == made[:2]
    org.api_max = 100_000
    clock.at = T0 + timedelta(minutes=1)
    stored += ids(list(adapter_for(sf_fake).read_changes(Entity.DEAL, since=cursor)))
    assert stored == made


def test_stage_history_becomes_stays_with_exit_times(sf_fake, clock):
    org = sf_fake.org
    rid = opp(org, "x")
    org.insert("OpportunityHistory", {"OpportunityId": rid, "StageName": "Prospecting"})
    clock.at = T0 + timedelta(days=1)
    org.insert("OpportunityHistory", {"OpportunityId": rid, "StageName": "Prospecting", "Amount": 5.0})
    first = list(adapter_for(sf_fake).read_changes(Entity.STAGE_CHANGE, since=None))
    stays = [r for b in first for r in b.records]
    assert len(stays) == 1 and stays[0].exited_at is None
    clock.at = T0 + timedelta(days=2)
    org.insert("OpportunityHistory", {"OpportunityId": rid, "StageName": "Closed Won"})
    again = [r for b in adapter_for(sf_fake).read_changes(Entity.STAGE_CHANGE, since=first[-1].cursor) for r in b.records]
    assert [(s.entered_at, s.exited_at) for s in again] == [(T0, T0 + timedelta(days=2)), (T0 + timedelta(days=2), None)]


def test_sdr_comes_from_the_converted_lead_owner(sf_fake, clock):
    org = sf_fake.org
    sdr = org.insert("User", {"Name": "Sam SDR", "IsActive": True})
    rid = opp(org, "sourced")
    org.insert("Lead", {"LastName": "L", "Company": "C", "IsConverted": True, "ConvertedOpportunityId": rid, "OwnerId": sdr})
    deals = [r for b in adapter_for(sf_fake).read_changes(Entity.DEAL, since=None) for r in b.records]
    assert isinstance(deals[0], Deal) and deals[0].sdr_id == sdr


def test_malformed_record_is_quarantined_and_the_rest_lands(sf_fake, clock):
    org = sf_fake.org
    good = opp(org, "good", "Closed Lost")
    bad = org.insert("Opportunity", {"Name": "bad", "StageName": "Renamed Long Ago"})
    batches = list(adapter_for(sf_fake).read_changes(Entity.DEAL, since=None))
    assert [(r.remote_id, r.status) for r in batches[0].records] == [(good, DealStatus.LOST)]
    assert [q.remote_id for q in batches[0].quarantined] == [bad]
    assert "not an OpportunityStage" in batches[0].quarantined[0].reason


def test_incremental_history_is_read_in_modstamp_order_so_a_stop_loses_nothing(sf_fake, clock):
    org = sf_fake.org
    a, b = opp(org, "a"), opp(org, "b")
    org.insert("OpportunityHistory", {"OpportunityId": a, "StageName": "Prospecting"})
    cursor = list(adapter_for(sf_fake).read_changes(Entity.STAGE_CHANGE, since=None))[-1].cursor
    clock.at = T0 + timedelta(hours=1)
    org.insert("OpportunityHistory", {"OpportunityId": b, "StageName": "Prospecting"})  # older change, higher opp id
    clock.at = T0 + timedelta(hours=2)
    org.insert("OpportunityHistory", {"OpportunityId": a, "StageName": "Closed Won"})
    org.batch_size = 1
    seen: set[str] = set()
    stop_cursor = None
    for n, batch in enumerate(adapter_for(sf_fake).read_changes(Entity.STAGE_CHANGE, since=cursor), 1):
        seen |= {s.deal_id for s in batch.records}
        stop_cursor = batch.cursor or stop_cursor
        if n == 2:
            break  # the limit is reached after two stored pages
    clock.at = T0 + timedelta(hours=3)
    seen |= {s.deal_id for bt in adapter_for(sf_fake).read_changes(Entity.STAGE_CHANGE, since=stop_cursor)
             for s in bt.records}
    assert b in seen  # b's older change is not skipped by a cursor that ran ahead
