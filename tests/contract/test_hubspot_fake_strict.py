"""The fake HubSpot is as strict as the real API where a production bug would hide; each test fails if
the fake goes lenient again (sources: tests/fakes/hubspot/rules.py, validate.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.fakes.hubspot.app import FakeHubSpot
from tests.fakes.hubspot.rules import DEFAULT_PROPERTIES, app_scopes
from tests.fakes.hubspot.server import serve


class Clock:
    def __init__(self) -> None:
        self.now = 1_790_000_000.0

    def __call__(self) -> float:
        return self.now


class Api:
    """Raw HTTP against the fake with one token (the real SDK is exercised by the adapter tests)."""

    def __init__(self, fake: FakeHubSpot, url: str, scopes: tuple[str, ...] | None = None) -> None:
        self.fake, self.url = fake, url
        grant = fake.oauth.grant_for(fake.portal.hub_id, scopes=scopes or app_scopes())
        self.token = fake.oauth.issue(grant)["access_token"]

    def __call__(self, method: str, path: str, body: Any = None, **params: Any) -> requests.Response:
        return requests.request(method, self.url + path, json=body, params=params, timeout=10,
                                headers={"Authorization": f"Bearer {self.token}"})


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def api(clock: Clock) -> Iterator[Api]:
    fake = FakeHubSpot(clock=clock)
    with serve(fake) as url:
        yield Api(fake, url)


def _group_and_enum(api: Api, otype: str = "deals") -> None:
    assert api("POST", f"/crm/v3/properties/{otype}/groups", {"name": "g", "label": "G"}).status_code == 201
    assert api("POST", f"/crm/v3/properties/{otype}", {
        "name": "level", "label": "Level", "type": "enumeration", "fieldType": "select", "groupName": "g",
        "options": [{"label": "Low", "value": "low"}, {"label": "High", "value": "high"}]}).status_code == 201


def test_search_sees_a_write_only_after_the_index_delay(api: Api, clock: Clock) -> None:
    created = api("POST", "/crm/v3/objects/deals", {"properties": {"dealname": "fresh"}}).json()
    body = {"filterGroups": [{"filters": [{"propertyName": "dealname", "operator": "EQ", "value": "fresh"}]}]}
    assert api("POST", "/crm/v3/objects/deals/search", body).json()["total"] == 0
    assert api("GET", f"/crm/v3/objects/deals/{created['id']}").status_code == 200  # reads by id see it at once
    clock.now += api.fake.index_delay_s
    assert [r["id"] for r in api("POST", "/crm/v3/objects/deals/search", body).json()["results"]] == [created["id"]]


def test_search_serves_the_old_version_of_a_fresh_edit(api: Api, clock: Clock) -> None:
    oid = api("POST", "/crm/v3/objects/deals", {"properties": {"dealname": "before"}}).json()["id"]
    clock.now += api.fake.index_delay_s
    api("PATCH", f"/crm/v3/objects/deals/{oid}", {"properties": {"dealname": "after"}})
    found = api("POST", "/crm/v3/objects/deals/search", {"properties": ["dealname"]}).json()["results"]
    assert [r["properties"]["dealname"] for r in found] == ["before"]


def test_one_invalid_value_refuses_the_whole_batch(api: Api) -> None:
    _group_and_enum(api)
    ids = [api("POST", "/crm/v3/objects/deals", {"properties": {"dealname": f"d{i}"}}).json()["id"] for i in range(3)]
    inputs = [{"id": i, "properties": {"level": "high"}} for i in ids[:2]] + [{"id": ids[2], "properties": {"level": "x"}}]
    resp = api("POST", "/crm/v3/objects/deals/batch/update", {"inputs": inputs})
    assert resp.status_code == 400 and resp.json()["category"] == "VALIDATION_ERROR"
    values = api("POST", "/crm/v3/objects/deals/batch/read", {"inputs": [{"id": i} for i in ids], "properties": ["level"]})
    assert {r["properties"]["level"] for r in values.json()["results"]} == {None}  # nothing of the batch landed


def test_unknown_property_names_are_refused(api: Api) -> None:
    oid = api("POST", "/crm/v3/objects/deals", {"properties": {"dealname": "d"}}).json()["id"]
    resp = api("PATCH", f"/crm/v3/objects/deals/{oid}", {"properties": {"no_such_thing": "1"}})
    assert resp.status_code == 400 and "PROPERTY_DOESNT_EXIST" in resp.json()["message"]
    assert api("POST", "/crm/v3/objects/tasks", {"properties": {"hs_timestamp": "1", "nope": "x"}}).status_code == 400


def test_a_taken_unique_value_refuses_the_whole_batch_create_with_409(api: Api) -> None:
    api("POST", "/crm/v3/properties/tasks/groups", {"name": "g", "label": "G"})
    api("POST", "/crm/v3/properties/tasks", {"name": "k", "label": "K", "type": "string", "fieldType": "text",
                                             "groupName": "g", "hasUniqueValue": True})
    first = api("POST", "/crm/v3/objects/tasks", {"properties": {"hs_timestamp": "1", "k": "one"}})
    assert first.status_code == 201
    again = api("POST", "/crm/v3/objects/tasks/batch/create", {"inputs": [
        {"properties": {"hs_timestamp": "1", "k": "two"}}, {"properties": {"hs_timestamp": "1", "k": "one"}}]})
    assert again.status_code == 409 and again.json()["category"] == "CONFLICT"
    read = api("POST", "/crm/v3/objects/tasks/batch/read", {"idProperty": "k", "inputs": [{"id": "one"}, {"id": "two"}]})
    assert [r["id"] for r in read.json()["results"]] == [first.json()["id"]]  # read by unique value, no index


def test_reading_by_a_property_that_is_not_unique_is_refused(api: Api) -> None:
    resp = api("POST", "/crm/v3/objects/deals/batch/read", {"idProperty": "dealname", "inputs": [{"id": "x"}]})
    assert resp.status_code == 400 and "non-unique" in resp.json()["message"]


def test_scopes_are_enforced_per_token(api: Api) -> None:
    reader = Api(api.fake, api.url, scopes=("oauth", "crm.objects.deals.read"))
    assert reader("GET", "/crm/v3/objects/deals").status_code == 200
    refused = reader("POST", "/crm/v3/objects/deals", {"properties": {"dealname": "x"}})
    assert refused.status_code == 403 and refused.json()["category"] == "MISSING_SCOPES"
    assert reader("GET", "/crm/v3/objects/tasks").status_code == 403
    assert reader("GET", "/crm/v3/owners").status_code == 403


def test_email_bodies_need_sales_email_read(api: Api) -> None:
    oid = api("POST", "/crm/v3/objects/emails", {"properties": {"hs_timestamp": "1", "hs_email_text": "hi"}}).json()["id"]
    props = ["hs_email_text"]
    assert api("GET", f"/crm/v3/objects/emails/{oid}", properties=props).json()["properties"]["hs_email_text"] == "hi"
    without = Api(api.fake, api.url, scopes=tuple(s for s in app_scopes() if s != "sales-email-read"))
    assert without("GET", f"/crm/v3/objects/emails/{oid}", properties=props).json()["properties"]["hs_email_text"] is None


def test_the_app_asks_for_the_scopes_its_calls_need() -> None:
    assert {"sales-email-read", "crm.objects.contacts.write", "crm.objects.owners.read"} <= set(app_scopes())


def test_errors_are_json_everywhere(api: Api) -> None:
    for method, path in (("GET", "/crm/v3/nowhere"), ("DELETE", "/crm/v3/owners"), ("GET", "/crm/v3/objects/deals/1")):
        resp = api(method, path)
        assert resp.status_code in (404, 405) and resp.headers["Content-Type"].startswith("application/json")
        assert resp.json()["status"] == "error" and resp.json()["category"]


def test_lists_return_the_default_properties_with_nulls(api: Api) -> None:
    api("POST", "/crm/v3/objects/deals", {"properties": {"dealname": "only a name"}})
    [row] = api("GET", "/crm/v3/objects/deals").json()["results"]
    assert set(row["properties"]) == set(DEFAULT_PROPERTIES["deals"])
    assert row["properties"]["amount"] is None and row["properties"]["dealname"] == "only a name"
    asked = api("GET", "/crm/v3/objects/deals", properties="closed_lost_reason").json()["results"][0]["properties"]
    assert "closed_lost_reason" in asked and asked["closed_lost_reason"] is None
