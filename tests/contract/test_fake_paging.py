"""Every listing the adapters read, filled past one page on both fakes and read back through the adapter:
each record once, and more than one page asked for (a fake that stops paging fails here)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from crm_adapters.model import Entity
from crm_adapters.port import Cursor
from tests.factories import a_deal, a_pipeline
from tests.fakes.hubspot.harness import HubSpotHarness, hubspot_harness
from tests.fakes.salesforce.fixtures import adapter_for, add_default_stages
from tests.fakes.salesforce.org import FakeOrg
from tests.fakes.salesforce.server import FakeSalesforce, shared_fake


def _ids(batches: Iterator) -> list[str]:  # type: ignore[type-arg]
    return [r.remote_id for b in batches for r in b.records]


@pytest.fixture
def hs() -> Iterator[HubSpotHarness]:
    with hubspot_harness() as harness:
        yield harness


def test_hubspot_object_listing_pages(hs: HubSpotHarness) -> None:
    deals = [a_deal(stage_id="101") for _ in range(250)]
    hs.seed(pipelines=[a_pipeline()], deals=deals)
    got = _ids(hs.adapter.read_changes(Entity.DEAL, since=None))
    assert sorted(got) == sorted(d.remote_id for d in deals) and len(got) == 250
    assert hs.fake.count(path="/crm/v3/objects/deals", method="GET") >= 3  # 100 a page


def test_hubspot_search_and_archived_listings_page(hs: HubSpotHarness) -> None:
    base = 1_790_000_000_000
    with hs.fake.lock:
        for i in range(450):
            hs.portal.put("deals", {"dealname": f"d{i}", "dealstage": "101"}, id=1 + i, modified_ms=base + i)
        for i in range(130):
            hs.portal.archive("deals", 1 + i)
    hs.settle()
    cursor = Cursor(json.dumps({"phase": "incremental", "since": {"deals": base}, "deleted": {"deals": base}}))
    records = [r for b in hs.adapter.read_changes(Entity.DEAL, since=cursor) for r in b.records]
    live = sorted(r.remote_id for r in records if not r.deleted)
    gone = sorted(r.remote_id for r in records if r.deleted)
    assert live == sorted(str(i) for i in range(131, 451)) and gone == sorted(str(i) for i in range(1, 131))
    assert hs.fake.count(path="/deals/search") >= 2 and hs.fake.count(path="/crm/v3/objects/deals", method="GET") >= 2


def test_hubspot_owner_listing_pages(hs: HubSpotHarness) -> None:
    with hs.fake.lock:
        for i in range(620):
            hs.portal.add_owner(100 + i, email=f"o{i}@example.com", first="O", last=str(i))
    users = hs.adapter.read_users()
    assert len({u.remote_id for u in users}) == 620 and hs.fake.count(path="/crm/v3/owners") >= 3  # 500 a page


@pytest.fixture
def sf() -> FakeSalesforce:
    fake = shared_fake()
    org = fake.reset(FakeOrg(batch_size=200))  # a real org pages at 2,000 or fewer; 200 keeps the test small
    add_default_stages(org)
    return fake


def test_salesforce_query_and_query_all_page(sf: FakeSalesforce) -> None:
    ids = [sf.org.insert("Opportunity", {"Name": f"o{i}", "StageName": "Prospecting"}) for i in range(450)]
    adapter = adapter_for(sf)
    batches = list(adapter.read_changes(Entity.DEAL, since=None))
    assert sorted(r.remote_id for b in batches for r in b.records) == sorted(ids)
    assert sum(1 for _, p in sf.org.calls if p.startswith("/services/data/v66.0/query/01g")) >= 2
    for rid in ids[:300]:
        sf.org.update("Opportunity", rid, {"Name": "changed"})
    for rid in ids[300:320]:
        sf.org.delete("Opportunity", rid)
    records = [r for b in adapter_for(sf).read_changes(Entity.DEAL, since=batches[-1].cursor) for r in b.records]
    assert sorted(r.remote_id for r in records if not r.deleted) == sorted(ids[:300])
    assert sorted(r.remote_id for r in records if r.deleted) == sorted(ids[300:320])
    assert sum(1 for _, p in sf.org.calls if p.startswith("/services/data/v66.0/queryAll/01g")) >= 1


def test_salesforce_bulk_results_page_by_locator(sf: FakeSalesforce) -> None:
    ids = {sf.org.insert("Account", {"Name": f"a{i}"}) for i in range(1200)}
    pages = list(adapter_for(sf).client.bulk_pages("Account", "SELECT Id, Name FROM Account", page_size=500))
    assert len(pages) == 3 and {r["Id"] for page in pages for r in page} == ids
