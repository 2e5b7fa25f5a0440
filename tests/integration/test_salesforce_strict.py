"""SalesforceAdapter against the strict fake: field setup through Activity, a lost create answer, a 30-day idle
sync through the reconcile, the two REQUEST_LIMIT_EXCEEDED forms, request-level locks, per-record failures."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from crm_adapters.errors import CrmRateLimited
from crm_adapters.model import Entity
from crm_adapters.salesforce._collections import paired
from crm_adapters.salesforce._mapping import APP_FIELD_NAMES, TASK_KEY
from crm_adapters.salesforce.adapter import SalesforceAdapter
from crm_adapters.writes import AppField, FieldUpdate, TaskDraft
from tests.fakes.salesforce.fixtures import Clock, adapter_for, add_default_stages
from tests.fakes.salesforce.org import FakeOrg, Injected
from tests.fakes.salesforce.server import LIMIT, FakeSalesforce, shared_fake

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SCORE, NEXT = APP_FIELD_NAMES[AppField.RISK_SCORE], APP_FIELD_NAMES[AppField.NEXT_MOVE]


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def fake(clock: Clock) -> Iterator[FakeSalesforce]:
    fake = shared_fake()
    add_default_stages(fake.reset(FakeOrg(clock=clock)))
    yield fake


def _ready(fake: FakeSalesforce, **kw: object) -> SalesforceAdapter:
    adapter = adapter_for(fake, **kw)
    report = adapter.ensure_app_fields()
    assert not report.missing_permissions, report
    return adapter


def _opps(fake: FakeSalesforce, n: int) -> list[str]:
    return [fake.org.insert("Opportunity", {"Name": f"o{i}", "StageName": "Prospecting"}) for i in range(n)]


def _task(key: str, deal: str) -> TaskDraft:
    return TaskDraft(key, f"Check {key}", "body", None, T0 + timedelta(days=1), deal_id=deal)


def test_field_setup_works_through_activity(fake: FakeSalesforce) -> None:
    report = adapter_for(fake).ensure_app_fields()
    assert f"Activity.{TASK_KEY}" in report.created and not report.missing_permissions
    assert TASK_KEY in fake.org.fields["Task"] and TASK_KEY in fake.org.fields["Event"]
    assert not any(f["FullName"].startswith("Task.") for f in fake.org.custom_fields)
    again = adapter_for(fake).ensure_app_fields()
    assert again.created == () and f"Activity.{TASK_KEY}" in again.existing


def test_a_create_whose_answer_is_lost_is_retried_and_leaves_one_task(fake: FakeSalesforce) -> None:
    adapter = _ready(fake)
    [deal] = _opps(fake, 1)
    fake.org.injected.append(Injected("/composite/sobjects/Task/", 503, [{"errorCode": "SERVER_UNAVAILABLE",
                                                                          "message": "lost"}], after=True))
    [ref] = adapter.create_tasks([_task("risk-1", deal)])
    mine = [rid for rid, t in fake.org.records["Task"].items() if t.get(TASK_KEY) == "risk-1"]
    assert mine == [ref.remote_id]
    again = adapter_for(fake).create_tasks([_task("risk-1", deal)])  # a retried job
    assert [r.remote_id for r in again] == mine and not again[0].created


def test_tasks_are_upserted_by_their_external_id(fake: FakeSalesforce) -> None:
    adapter = _ready(fake)
    [deal] = _opps(fake, 1)
    refs = adapter.create_tasks([_task("a", deal), _task("b", deal)])
    assert all(r.created for r in refs) and not refs.failed
    assert any("/composite/sobjects/Task/" + TASK_KEY in path for _, path in fake.org.calls)


def test_a_sync_after_30_idle_days_completes_through_the_reconcile(fake: FakeSalesforce, clock: Clock) -> None:
    ids = _opps(fake, 5)
    held: dict[Entity, set[str]] = {Entity.DEAL: set(ids)}
    adapter = adapter_for(fake, known_ids=lambda e: held.get(e, set()))
    cursor = [b.cursor for b in adapter.read_changes(Entity.DEAL, since=None)][-1]
    clock.now += timedelta(days=31)
    fake.org.delete("Opportunity", ids[0], hard=True)
    fake.org.update("Opportunity", ids[1], {"Name": "renamed"})
    records = [r for b in adapter_for(fake, known_ids=lambda e: held.get(e, set())).read_changes(Entity.DEAL, since=cursor)
               for r in b.records]
    assert {(r.remote_id, r.deleted) for r in records} >= {(ids[0], True), (ids[1], False)}
    assert any("/deleted/" in path for _, path in fake.org.calls)  # getDeleted refused: INVALID_REPLICATION_DATE


def test_the_concurrent_limit_is_waited_out_and_the_daily_limit_is_not(fake: FakeSalesforce) -> None:
    waits: list[float] = []
    adapter = adapter_for(fake, sleep=waits.append)
    fake.org.busy_long_running = 2
    assert len(adapter.read_pipelines()[0].stages) == 10 and len(waits) == 2
    fake.org.busy_long_running = 5
    with pytest.raises(CrmRateLimited) as concurrent:
        adapter_for(fake, sleep=waits.append).read_pipelines()
    assert not concurrent.value.daily
    fake.org.busy_long_running = 0
    fake.org.injected.append(Injected("FROM+OpportunityStage", 403, LIMIT))
    fake.org.limits_exhausted = 1  # the org really has spent its day: /limits says so
    before = len(waits)
    with pytest.raises(CrmRateLimited) as daily:
        adapter_for(fake, sleep=waits.append).read_pipelines()
    assert daily.value.daily and len(waits) == before


def test_a_request_level_lock_is_retried(fake: FakeSalesforce) -> None:
    waits: list[float] = []
    adapter = _ready(fake, sleep=waits.append)
    ids = _opps(fake, 3)
    fake.org.locked_requests = 2
    result = adapter.write_fields([FieldUpdate(Entity.DEAL, i, {AppField.RISK_SCORE: 50.0}) for i in ids])
    assert sorted(result.written) == sorted(ids) and not result.failed and len(waits) == 2


def test_a_collection_refused_for_one_field_fails_only_the_records_carrying_it(fake: FakeSalesforce) -> None:
    adapter = _ready(fake)
    ids = _opps(fake, 3)
    # Salesforce refuses the whole collection for one field it will not take (request-level INVALID_FIELD)
    fake.org.injected.append(Injected("/composite/sobjects", 400, [{"errorCode": "INVALID_FIELD", "fields": [NEXT],
                                                                    "message": f"No such column '{NEXT}'"}], method="PATCH"))
    updates = [FieldUpdate(Entity.DEAL, i, {AppField.RISK_SCORE: 70.0}) for i in ids[:2]]
    updates.append(FieldUpdate(Entity.DEAL, ids[2], {AppField.RISK_SCORE: 70.0, AppField.NEXT_MOVE: "call"}))
    result = adapter.write_fields(updates)
    assert sorted(result.written) == sorted(ids[:2])
    assert [(f.key, f.retryable) for f in result.failed] == [(ids[2], False)] and "INVALID_FIELD" in result.failed[0].reason
    assert fake.org.records["Opportunity"][ids[0]][SCORE] == 70.0


def test_every_error_of_a_record_is_read(fake: FakeSalesforce) -> None:
    adapter = _ready(fake)
    [rid] = _opps(fake, 1)
    fake.org.record_errors[rid] = [("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Amount is required")]
    result = adapter.write_fields([FieldUpdate(Entity.DEAL, rid, {AppField.RISK_SCORE: 1.0})])
    assert "FIELD_CUSTOM_VALIDATION_EXCEPTION: Amount is required" in result.failed[0].reason
    assert paired([{"id": "a"}, {"id": "b"}], [{"success": True}], "id") is None  # counts differ: nothing trusted
