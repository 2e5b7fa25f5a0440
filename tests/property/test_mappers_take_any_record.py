"""Property tests: every mapper (HubSpot, Salesforce, sandbox) maps or quarantines any generated record, and
the page lands in the store in one transaction (PostgreSQL in CI): no crash, no batch lost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from sqlalchemy import create_engine

from connector.store import Store
from crm_adapters.hubspot import _mapping as hs
from crm_adapters.hubspot._sync import Sync
from crm_adapters.model import Entity
from tests.property import mapper_targets as m
from tests.property.http_targets import OK, judge

FAST = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])


@pytest.fixture
def installation_id(store: Store) -> str:
    return m.installation(store, "fuzz")


@FAST
@given(case=m.hubspot_cases)
def test_hubspot_mappers_map_or_quarantine_anything(store: Store, installation_id: str, case: Any) -> None:
    assert judge(lambda: m.hubspot_case(store, installation_id, case)) == OK


@FAST
@given(case=m.salesforce_cases)
def test_salesforce_mappers_map_or_quarantine_anything(store: Store, installation_id: str, case: Any) -> None:
    assert judge(lambda: m.salesforce_case(store, installation_id, case)) == OK


@FAST
@given(case=m.sandbox_cases)
def test_sandbox_rows_map_or_quarantine_anything(store: Store, installation_id: str, tmp_path: Path, case: Any) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'sandbox.db'}")
    assert judge(lambda: m.sandbox_case(store, installation_id, engine, case)) == OK


def test_the_reported_hubspot_records_are_quarantined_not_fatal(store: Store, installation_id: str) -> None:
    """teams that is not a list, associations that is not an object, a closedate of 1e20 ms (OSError)."""
    owners = [{"id": "1", "teams": "sales"}, {"id": "2", "teams": [{"name": "AE", "primary": True}]}]
    users, bad = hs.users_from_owners(owners, hs.HubSpotMapping())
    assert [u.remote_id for u in users] == ["2"] and "teams" in bad[0].reason
    deal = {"id": "9", "properties": {"dealstage": "s", "hs_lastmodifieddate": "2026-01-01T00:00:00Z"}}
    rows = [{**deal, "associations": ["companies"]}, {**deal, "id": "10", "properties": {
        **deal["properties"], "closedate": "100000000000000000000"}}, {**deal, "id": "11"}]
    mapped = Sync(None, hs.HubSpotMapping(), lambda: {}, lambda: m.NOW, m.timedelta(0))._map(  # type: ignore[arg-type]
        Entity.DEAL, "deals", rows, listed=True)
    assert [r.remote_id for r in mapped.records] == ["11"]
    assert [q.remote_id for q in mapped.quarantined] == ["9", "10"]
    assert "associations" in mapped.quarantined[0].reason and "closedate" in mapped.quarantined[1].reason
    assert m.stored_all(store, installation_id, Entity.DEAL, mapped.records, mapped.quarantined) == OK
