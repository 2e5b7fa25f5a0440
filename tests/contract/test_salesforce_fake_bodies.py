"""The fake Salesforce answers with the shapes of real Salesforce bodies (../shared/contracts/salesforce/)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHARED, require
from tests.fakes.salesforce.fixtures import add_default_stages
from tests.fakes.salesforce.org import FakeOrg
from tests.fakes.salesforce.server import FakeSalesforce, shared_fake

CONTRACTS = SHARED / "contracts" / "salesforce"
SF_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$")


def real(name: str) -> Any:
    path: Path = CONTRACTS / name
    require(path.exists(), f"real Salesforce bodies not found at {path}")
    return json.loads(path.read_text())


@pytest.fixture
def fake() -> FakeSalesforce:
    f = shared_fake()
    add_default_stages(f.reset(FakeOrg()))
    return f


def _get(fake: FakeSalesforce, path: str, token: str | None = None, **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {token or fake.issue_token()}"}
    return fake.session().get(f"{fake.url}/services/data/v66.0/{path}", headers=headers, params=params)


def test_token_response_has_the_real_keys_and_formats(fake):
    body = real("restforce/auth_success_response.json")
    refresh = fake.issue_refresh_token()
    resp = fake.session().post(f"{fake.url}/services/oauth2/token", data={
        "grant_type": "refresh_token", "refresh_token": refresh, "client_id": fake.oauth_app.client_id,
        "client_secret": fake.oauth_app.client_secret})
    ours = resp.json()
    assert set(body) <= set(ours) and "expires_in" not in ours
    assert re.fullmatch(r"\d{13}", ours["issued_at"]) and re.fullmatch(r"\d{13}", body["issued_at"])
    assert re.match(r"^https://[^/]+/id/00D\w+/005\w+$", ours["id"])
    assert len(ours["signature"]) == len(body["signature"])  # base64 of 32 bytes


def test_dead_refresh_token_body_is_the_real_one(fake):
    resp = fake.session().post(f"{fake.url}/services/oauth2/token", data={
        "grant_type": "refresh_token", "refresh_token": "dead", "client_id": fake.oauth_app.client_id,
        "client_secret": fake.oauth_app.client_secret})
    assert resp.status_code == 400 and resp.json() == real("restforce/refresh_error_response.json")
    assert set(real("restforce/auth_error_response.json")) == set(resp.json())


def test_expired_session_body_is_the_real_one(fake):
    resp = _get(fake, "query/", token="expired", q="SELECT Id FROM Account")
    assert resp.status_code == 401 and resp.json() == real("restforce/expired_session_response.json")


def test_paged_query_bodies_match(fake):
    for i in range(3):
        fake.org.insert("Account", {"Name": f"a{i}"})
    fake.org.batch_size = 2
    token = fake.issue_token()
    first = _get(fake, "query/", token=token, q="SELECT Id, Name FROM Account").json()
    assert list(first) == list(real("restforce/query_paginated_first_page_response.json"))
    assert re.fullmatch(r"/services/data/v\d+\.\d/query/[\w-]+", first["nextRecordsUrl"])
    last = fake.session().get(fake.url + first["nextRecordsUrl"], headers={"Authorization": f"Bearer {token}"}).json()
    assert set(last) == set(real("restforce/query_paginated_last_page_response.json")) and last["done"] is True
    assert set(first["records"][0]["attributes"]) == {"type", "url"}


def test_parent_relationship_shape_matches(fake):
    parent = fake.org.insert("Account", {"Name": "Parent"})
    fake.org.insert("Contact", {"LastName": "Lee", "AccountId": parent})
    row = _get(fake, "query/", q="SELECT Id, Account.Name FROM Contact").json()["records"][0]
    sample = real("restforce/query_success_response.json")["records"][0]["ParentWhizbang__r"]
    assert set(row["Account"]) == set(sample) - {"Text_Label"}
    assert row["Account"]["attributes"]["url"].endswith(parent)


def test_error_bodies_match(fake):
    bad = _get(fake, "query/", q="SELECT Foo FROM Account")
    assert bad.status_code == 400 and set(bad.json()[0]) == set(real("restforce/query_error_response.json")[0])
    missing = _get(fake, "sobjects/Account/001000000009999AAA")
    assert missing.status_code == 404 and missing.json() == real("restforce/sobject_describe_error_response.json")


def test_get_updated_and_get_deleted_bodies_match(fake):
    fake.org.clock = lambda: datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    rid = fake.org.insert("Account", {"Name": "a"})
    fake.org.delete("Account", rid, hard=True)
    window = {"start": "2026-05-31T00:00:00+00:00", "end": "2026-06-01T10:00:00+00:00"}
    updated = _get(fake, "sobjects/Account/updated/", **window).json()
    deleted = _get(fake, "sobjects/Account/deleted/", **window).json()
    real_updated, real_deleted = real("restforce/get_updated_success_response.json"), real("restforce/get_deleted_success_response.json")
    assert set(updated) == set(real_updated) and set(deleted) == set(real_deleted)
    assert set(deleted["deletedRecords"][0]) == set(real_deleted["deletedRecords"][0])
    for value in (deleted["latestDateCovered"], deleted["earliestDateAvailable"], real_deleted["latestDateCovered"]):
        assert SF_DATETIME.match(value)


def test_save_results_match(fake):
    token = fake.issue_token()
    headers = {"Authorization": f"Bearer {token}"}
    created = fake.session().post(f"{fake.url}/services/data/v66.0/sobjects/Account/", json={"Name": "x"}, headers=headers)
    assert created.status_code == 201 and set(created.json()) == set(real("restforce/create_success_response.json"))
    coll = fake.session().patch(f"{fake.url}/services/data/v66.0/composite/sobjects", headers=headers, json={
        "allOrNone": False, "records": [{"attributes": {"type": "Account"}, "id": created.json()["id"], "Name": "y"}]})
    assert [set(r) for r in coll.json()] == [set(r) for r in real("restforce/composite_sobjects_success_response.json")]


def test_describe_keys_are_real_keys(fake):
    ours = _get(fake, "sobjects/Opportunity/describe/").json()
    theirs = real("cumulusci/Opportunity_describe.json")
    assert set(ours) <= set(theirs)
    assert set(ours["fields"][0]) <= set(theirs["fields"][0])
    real_stages = {v["value"] for f in theirs["fields"] if f["name"] == "StageName" for v in f["picklistValues"]}
    assert {s["ApiName"] for s in fake.org.records["OpportunityStage"].values()} == real_stages


def test_limits_and_versions_match(fake):
    limits = _get(fake, "limits/").json()
    assert set(limits["DailyApiRequests"]) == set(real("simple-salesforce/limits_response.json")["DailyApiRequests"])
    versions = fake.session().get(f"{fake.url}/services/data/").json()
    assert set(versions[0]) == set(real("restforce/services_data_success_response.json")[0])


def test_request_limit_body_and_usage_header(fake):
    token = fake.issue_token()
    ok = _get(fake, "query/", token=token, q="SELECT Id FROM Account")
    assert re.fullmatch(r"api-usage=\d+/\d+", ok.headers["Sforce-Limit-Info"])
    fake.org.api_max = fake.org.api_used
    refused = _get(fake, "query/", token=token, q="SELECT Id FROM Account")
    assert refused.status_code == 403
    assert refused.json() == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]




def test_composite_response_shape_and_one_api_call(fake):
    token = fake.issue_token()
    before = fake.org.api_used
    resp = fake.session().post(f"{fake.url}/services/data/v66.0/composite", headers={"Authorization": f"Bearer {token}"},
                               json={"allOrNone": False, "compositeRequest": [
                                   {"method": "POST", "url": "/services/data/v66.0/sobjects/Account/", "referenceId": "acc",
                                    "body": {"Name": "Composite"}},
                                   {"method": "GET", "url": "/services/data/v66.0/query/?q=SELECT+Id+FROM+Account",
                                    "referenceId": "q"}]})
    parts = resp.json()["compositeResponse"]
    assert [set(p) for p in parts] == [{"body", "httpHeaders", "httpStatusCode", "referenceId"}] * 2
    assert [p["httpStatusCode"] for p in parts] == [201, 200] and parts[1]["body"]["totalSize"] == 1
    assert fake.org.api_used == before + 1  # the whole composite call counts once
