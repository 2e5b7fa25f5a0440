"""The fake Salesforce is as strict as a real org where a production bug would hide; each test fails if the
fake goes lenient again (sources cited in tests/fakes/salesforce/rest.py, server.py, describe.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from tests.fakes.salesforce.fixtures import Clock
from tests.fakes.salesforce.org import FakeOrg
from tests.fakes.salesforce.server import FakeSalesforce, shared_fake

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
Call = Callable[..., requests.Response]


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def sf(clock: Clock) -> Iterator[tuple[FakeSalesforce, Call]]:
    fake = shared_fake()
    fake.reset(FakeOrg(clock=clock))
    token, session = fake.issue_token(), fake.session()

    def call(method: str, path: str, body: Any = None, **params: Any) -> requests.Response:
        return session.request(method, f"{fake.url}/services/data/v66.0/{path}", json=body, params=params, timeout=10,
                               headers={"Authorization": f"Bearer {token}"})

    yield fake, call


def _field(call: Call, full: str) -> requests.Response:
    return call("POST", "tooling/sobjects/CustomField", {"FullName": full, "Metadata": {
        "label": "Key", "type": "Text", "length": 255, "externalId": True, "unique": True}})


def test_task_custom_fields_are_created_on_activity(sf: tuple[FakeSalesforce, Call]) -> None:
    _, call = sf
    refused = _field(call, "Task.Key__c")
    assert refused.status_code == 400 and refused.json()[0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    assert _field(call, "Activity.Key__c").status_code == 201
    for sobject in ("Task", "Event"):
        names = {f["name"] for f in call("GET", f"sobjects/{sobject}/describe/").json()["fields"]}
        assert "Key__c" in names


def test_replication_windows_older_than_30_days_are_refused(sf: tuple[FakeSalesforce, Call], clock: Clock) -> None:
    fake, call = sf
    window = {"start": (T0 - timedelta(days=31)).isoformat(), "end": T0.isoformat()}
    for kind in ("updated", "deleted"):
        resp = call("GET", f"sobjects/Opportunity/{kind}/", **window)
        assert resp.status_code == 400 and resp.json()[0]["errorCode"] == "INVALID_REPLICATION_DATE"
    fake.org.forget_delete_log_before(T0 - timedelta(days=1))
    purged = call("GET", "sobjects/Opportunity/deleted/", start=(T0 - timedelta(days=2)).isoformat(), end=T0.isoformat())
    assert purged.status_code == 400 and purged.json()[0]["errorCode"] == "INVALID_REPLICATION_DATE"
    assert call("GET", "sobjects/Opportunity/updated/", start=(T0 - timedelta(days=29)).isoformat(),
                end=T0.isoformat()).status_code == 200


def test_the_concurrent_form_of_request_limit_exceeded_leaves_the_daily_allocation(sf: tuple[FakeSalesforce, Call]) -> None:
    fake, call = sf
    fake.org.busy_long_running = 1
    busy = call("GET", "query/", q="SELECT Id FROM Account")
    assert busy.status_code == 403 and busy.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert "Concurrent" in busy.json()[0]["message"]
    assert call("GET", "limits/").json()["DailyApiRequests"]["Remaining"] > 0
    assert call("GET", "query/", q="SELECT Id FROM Account").status_code == 200


def test_a_locked_row_can_refuse_a_whole_request(sf: tuple[FakeSalesforce, Call]) -> None:
    fake, call = sf
    rid = fake.org.insert("Opportunity", {"Name": "o", "StageName": "Prospecting"})
    fake.org.locked_requests = 1
    locked = call("PATCH", f"sobjects/Opportunity/{rid}", {"Name": "p"})
    assert locked.status_code == 400 and locked.json()[0]["errorCode"] == "UNABLE_TO_LOCK_ROW"
    assert call("PATCH", f"sobjects/Opportunity/{rid}", {"Name": "p"}).status_code == 204


def test_a_malformed_id_answers_malformed_id(sf: tuple[FakeSalesforce, Call]) -> None:
    _, call = sf
    resp = call("GET", "sobjects/Opportunity/not-an-id!")
    assert resp.status_code == 400 and resp.json()[0]["errorCode"] == "MALFORMED_ID"
    missing = call("GET", "sobjects/Opportunity/006000000000999AAA")
    assert missing.status_code == 404 and missing.json()[0]["errorCode"] == "NOT_FOUND"
    result = call("PATCH", "composite/sobjects", {"allOrNone": False, "records": [
        {"attributes": {"type": "Opportunity"}, "id": "bad id", "Name": "x"}]}).json()
    assert result[0]["errors"][0]["statusCode"] == "MALFORMED_ID"


def test_describe_reports_real_types(sf: tuple[FakeSalesforce, Call]) -> None:
    _, call = sf
    types = {f["name"]: f["type"] for f in call("GET", "sobjects/Opportunity/describe/").json()["fields"]}
    assert (types["Amount"], types["CloseDate"], types["Probability"], types["StageName"]) == (
        "currency", "date", "percent", "picklist")


def test_all_or_none_really_rolls_back(sf: tuple[FakeSalesforce, Call]) -> None:
    fake, call = sf
    good = fake.org.insert("Opportunity", {"Name": "before", "StageName": "Prospecting"})
    gone = fake.org.insert("Opportunity", {"Name": "gone", "StageName": "Prospecting"})
    fake.org.delete("Opportunity", gone, hard=True)
    results = call("PATCH", "composite/sobjects", {"allOrNone": True, "records": [
        {"attributes": {"type": "Opportunity"}, "id": good, "Name": "after"},
        {"attributes": {"type": "Opportunity"}, "id": gone, "Name": "x"}]}).json()
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert fake.org.records["Opportunity"][good]["Name"] == "before"


def test_records_without_attributes_or_with_unknown_fields_are_refused_whole_in_json(sf: tuple[FakeSalesforce, Call]) -> None:
    fake, call = sf
    rid = fake.org.insert("Opportunity", {"Name": "o", "StageName": "Prospecting"})
    bare = call("PATCH", "composite/sobjects", {"allOrNone": False, "records": [{"id": rid, "Name": "x"}]})
    assert bare.status_code == 400 and bare.json()[0]["errorCode"] == "INVALID_INPUT"
    unknown = call("PATCH", "composite/sobjects", {"allOrNone": False, "records": [
        {"attributes": {"type": "Opportunity"}, "id": rid, "Name": "ok"},
        {"attributes": {"type": "Opportunity"}, "id": rid, "Nope__c": 1}]})
    assert unknown.status_code == 400 and unknown.json()[0]["errorCode"] == "INVALID_FIELD"
    assert unknown.json()[0]["fields"] == ["Nope__c"] and fake.org.records["Opportunity"][rid]["Name"] == "o"


def test_unknown_resources_answer_json(sf: tuple[FakeSalesforce, Call]) -> None:
    _, call = sf
    resp = call("GET", "no/such/resource")
    assert resp.status_code == 404 and resp.json() == [{"errorCode": "NOT_FOUND",
                                                        "message": "The requested resource does not exist"}]


def test_a_unique_external_id_refuses_a_second_record_and_upserts_by_key(sf: tuple[FakeSalesforce, Call]) -> None:
    fake, call = sf
    _field(call, "Activity.Key__c")
    first = call("POST", "sobjects/Task/", {"Subject": "a", "Key__c": "k1"})
    assert first.status_code == 201
    dup = call("POST", "sobjects/Task/", {"Subject": "b", "Key__c": "k1"})
    assert dup.status_code == 400 and dup.json()[0]["errorCode"] == "DUPLICATE_VALUE"
    upsert = call("PATCH", "composite/sobjects/Task/Key__c", {"allOrNone": False, "records": [
        {"attributes": {"type": "Task"}, "Key__c": "k1", "Subject": "a"},
        {"attributes": {"type": "Task"}, "Key__c": "k2", "Subject": "c"}]}).json()
    assert [(r["id"] == first.json()["id"], r["created"]) for r in upsert] == [(True, False), (False, True)]
    assert sum(1 for t in fake.org.records["Task"].values() if t.get("Key__c")) == 2
