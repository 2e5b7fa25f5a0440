"""HubSpotAdapter sync against the fake HubSpot over HTTP: backfill, incremental, caps, deletes, quarantine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest

from crm_adapters.hubspot.limiter import LocalLimiter
from crm_adapters.model import ActivityType, ContactRole, DealStatus, Entity, UserRole
from crm_adapters.port import Cursor
from tests.factories import (
    T0,
    a_contact,
    a_deal,
    a_pipeline,
    a_role,
    a_stage_change,
    a_user,
    an_account,
    an_activity,
)
from tests.fakes.hubspot.harness import HubSpotHarness, hubspot_harness


@pytest.fixture
def hs() -> Iterator[HubSpotHarness]:
    with hubspot_harness(search_per_s=1000) as harness:
        harness.adapter = harness.make_adapter(limiter=LocalLimiter(search_per_s=1000))
        yield harness


def incremental_cursor(otype: str, since_ms: int) -> Cursor:
    """A cursor as the adapter saves it after a backfill that started at `since_ms`."""
    return Cursor(json.dumps({"phase": "incremental", "since": {otype: since_ms}, "deleted": {otype: since_ms}}))


def read_all(adapter, entity, since=None):  # type: ignore[no-untyped-def]
    records, quarantined, cursor = [], [], since
    for batch in adapter.read_changes(entity, since=since):
        records.extend(batch.records)
        quarantined.extend(batch.quarantined)
        cursor = batch.cursor or cursor
    return records, quarantined, cursor


def test_backfill_maps_every_entity(hs: HubSpotHarness) -> None:
    sdr, ae = a_user(role=UserRole.SDR, team="SDR"), a_user(role=UserRole.AE, team="AE")
    acct = an_account()
    contact = a_contact(account_id=acct.remote_id)
    deal = a_deal(account_id=acct.remote_id, owner_id=ae.remote_id, sdr_id=sdr.remote_id, stage_id="103")
    won = a_deal(stage_id="105", status=DealStatus.WON, account_id=acct.remote_id)
    call = an_activity(ActivityType.CALL, deal_id=deal.remote_id, body="Prospect: we file reports by hand",
                       transcript="Rep: hi\nProspect: hello", custom={"kind": "discovery_call"}, duration_s=600)
    hs.seed(pipelines=[a_pipeline()], users=[sdr, ae], accounts=[acct], contacts=[contact], deals=[deal, won],
            roles=[a_role(deal.remote_id, contact.remote_id, ContactRole.ECONOMIC_BUYER)],
            stage_changes=[a_stage_change(deal.remote_id, "101", T0), a_stage_change(deal.remote_id, "103", T0 + timedelta(days=3))],
            activities=[call])
    users = {u.remote_id: u for u in read_all(hs.adapter, Entity.USER)[0]}
    assert users[sdr.remote_id].role is UserRole.SDR and users[ae.remote_id].role is UserRole.AE
    deals = {d.remote_id: d for d in read_all(hs.adapter, Entity.DEAL)[0]}
    assert deals[deal.remote_id].account_id == acct.remote_id
    assert deals[deal.remote_id].sdr_id == sdr.remote_id and deals[deal.remote_id].amount == deal.amount
    assert deals[won.remote_id].status is DealStatus.WON and deals[deal.remote_id].status is DealStatus.OPEN
    roles = read_all(hs.adapter, Entity.DEAL_CONTACT_ROLE)[0]
    assert [(r.deal_id, r.contact_id, r.role) for r in roles] == [(deal.remote_id, contact.remote_id, ContactRole.ECONOMIC_BUYER)]
    history = sorted(read_all(hs.adapter, Entity.STAGE_CHANGE)[0], key=lambda c: c.entered_at)
    mine = [(c.stage_id, c.entered_at, c.exited_at) for c in history if c.deal_id == deal.remote_id]
    assert mine == [("101", T0, T0 + timedelta(days=3)), ("103", T0 + timedelta(days=3), None)]
    [act] = read_all(hs.adapter, Entity.ACTIVITY)[0]
    assert act.deal_ids == (deal.remote_id,) and act.transcript.startswith("Rep: hi")
    assert act.custom == {"kind": "discovery_call"} and act.duration_s == 600
    [pipeline] = hs.adapter.read_pipelines()
    assert [s.id for s in pipeline.stages if s.is_won] == ["105"]


def test_search_cap_never_loses_a_record(hs: HubSpotHarness) -> None:
    """12,500 deals changed since the cursor, 450 of them in one millisecond: every one read once."""
    base = 1_790_000_000_000
    with hs.fake.lock:
        for i in range(12_500):
            ts = base + 5_000 if 6_000 <= i < 6_450 else base + i * 7
            hs.portal.put("deals", {"dealname": f"d{i}", "dealstage": "101", "pipeline": "1"}, id=10_000 + i,
                          modified_ms=ts)
    hs.settle()
    cursor = incremental_cursor("deals", base)
    records, quarantined, _ = read_all(hs.adapter, Entity.DEAL, cursor)
    ids = [r.remote_id for r in records]
    assert len(ids) == len(set(ids)) == 12_500 and not quarantined
    assert hs.fake.count(path="/search", status=400) == 0


def test_record_modified_during_sync_is_neither_lost_nor_stale(hs: HubSpotHarness) -> None:
    base = 1_790_000_000_000
    with hs.fake.lock:
        for i in range(500):
            hs.portal.put("deals", {"dealname": f"d{i}", "dealstage": "101"}, id=1 + i, modified_ms=base + i)
    hs.settle()
    searches = []

    def edit_after_first_page(method: str, path: str) -> None:
        if path.endswith("/deals/search"):
            searches.append(path)
            if len(searches) == 2:  # between page 1 and page 2: an early record moves to the end
                hs.portal.update("deals", 5, {"dealname": "edited"}, modified_ms=base + 10_000)

    hs.fake.hooks.append(edit_after_first_page)
    cursor = incremental_cursor("deals", base)
    records, _, after = read_all(hs.adapter, Entity.DEAL, cursor)
    assert {r.remote_id for r in records} == {str(i) for i in range(1, 501)}
    hs.settle()  # search indexes the edit seconds later: the next sync reads it
    again, _, _ = read_all(hs.adapter, Entity.DEAL, after)
    assert [r.name for r in records + again if r.remote_id == "5"][-1] == "edited"


def test_backfill_then_incremental_sees_edits_made_during_backfill(hs: HubSpotHarness) -> None:
    deals = [a_deal(stage_id="101") for _ in range(250)]
    hs.seed(pipelines=[a_pipeline()], deals=deals)
    batches = hs.adapter.read_changes(Entity.DEAL, since=None)
    first = next(batches)
    hs.update_deal(first.records[0].remote_id, name="renamed mid-backfill")
    cursor = [b.cursor for b in batches][-1]
    changed, _, _ = read_all(hs.adapter, Entity.DEAL, cursor)
    assert "renamed mid-backfill" in {d.name for d in changed}


def test_deletions_arrive_from_archived_listings(hs: HubSpotHarness) -> None:
    deals = [a_deal(stage_id="101") for _ in range(3)]
    hs.seed(pipelines=[a_pipeline()], deals=deals)
    _, _, cursor = read_all(hs.adapter, Entity.DEAL)
    hs.delete(Entity.DEAL, deals[1].remote_id)
    records, _, _ = read_all(hs.adapter, Entity.DEAL, cursor)
    assert [(r.remote_id, r.deleted) for r in records if r.deleted] == [(deals[1].remote_id, True)]


def test_malformed_records_are_quarantined_and_the_rest_lands(hs: HubSpotHarness) -> None:
    good = [a_deal(stage_id="101") for _ in range(4)]
    hs.seed(pipelines=[a_pipeline()], deals=good)
    with hs.fake.lock:
        hs.portal.put("deals", {"dealname": "no stage"}, id=77)
        hs.portal.put("deals", {"dealname": "bad amount", "dealstage": "101", "amount": "a lot"}, id=78)
        hs.portal.put("calls", {"hs_call_body": "no timestamp"}, id=79)
    records, quarantined, _ = read_all(hs.adapter, Entity.DEAL)
    assert {r.remote_id for r in records} == {d.remote_id for d in good}
    reasons = {q.remote_id: q.reason for q in quarantined}
    assert "no dealstage" in reasons["77"] and "not a number" in reasons["78"]
    assert quarantined[0].raw["properties"]["dealname"] in ("no stage", "bad amount")
    _, bad_calls, _ = read_all(hs.adapter, Entity.ACTIVITY)
    assert [q.remote_id for q in bad_calls] == ["79"] and "hs_timestamp" in bad_calls[0].reason


def test_idle_incremental_sync_costs_one_search_and_one_archived_page_per_type(hs: HubSpotHarness) -> None:
    hs.seed(pipelines=[a_pipeline()], deals=[a_deal(stage_id="101", remote_updated_at=T0)])
    _, _, cursor = read_all(hs.adapter, Entity.DEAL)
    before = hs.adapter.stats.calls
    read_all(hs.adapter, Entity.DEAL, cursor)
    assert hs.adapter.stats.calls - before <= 3  # search (+ associations of the re-read lookback) + archived list


def test_archived_listing_runs_at_most_once_per_deletion_scan(hs: HubSpotHarness, now) -> None:  # type: ignore[no-untyped-def]
    deals = [a_deal(stage_id="101") for _ in range(3)]
    hs.seed(pipelines=[a_pipeline()], deals=deals)
    clock = [now]
    adapter = hs.make_adapter(limiter=LocalLimiter(search_per_s=1000), deletion_scan=timedelta(hours=1),
                              clock=lambda: clock[0])
    _, _, cursor = read_all(adapter, Entity.DEAL)
    hs.delete(Entity.DEAL, deals[0].remote_id)
    clock[0] = now + timedelta(minutes=10)
    records, _, cursor = read_all(adapter, Entity.DEAL, cursor)
    assert not any(r.deleted for r in records) and hs.fake.count(path="/crm/v3/objects/deals", method="GET") == 1
    clock[0] = now + timedelta(hours=2)
    records, _, _ = read_all(adapter, Entity.DEAL, cursor)
    assert [r.remote_id for r in records if r.deleted] == [deals[0].remote_id]
