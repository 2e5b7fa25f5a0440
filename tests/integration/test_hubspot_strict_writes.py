"""HubSpotAdapter against the strict fake: search index lag, lost create answers, whole-batch refusals,
423/477 and 409 handled as HubSpot documents them, refused creates reported to the caller."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from crm_adapters.errors import CrmUnavailable
from crm_adapters.model import Entity
from crm_adapters.writes import AppField, FieldUpdate, TaskDraft
from tests.factories import T0, a_deal, a_pipeline, a_user
from tests.fakes.hubspot.harness import HubSpotHarness, hubspot_harness


@pytest.fixture
def hs() -> Iterator[HubSpotHarness]:
    with hubspot_harness() as harness:  # the index delay is on (3 s): search never sees our fresh writes
        owner = a_user()
        harness.seed(pipelines=[a_pipeline()], users=[owner], deals=[a_deal(owner_id=owner.remote_id) for _ in range(3)])
        harness.adapter.ensure_app_fields()
        yield harness


def _deals(hs: HubSpotHarness) -> list[str]:
    return sorted(str(i) for i in hs.portal.objects["deals"])


def _task(key: str, deal_id: str, owner: str | None = None) -> TaskDraft:
    return TaskDraft(key, f"Check {key}", "body", owner, T0 + timedelta(days=1), deal_id=deal_id)


def _tasks_with(hs: HubSpotHarness, key: str) -> int:
    return sum(1 for o in hs.portal.objects["tasks"].values() if o.properties.get("salesloop_key") == key)


def test_a_create_whose_answer_is_lost_is_retried_and_leaves_one_task(hs: HubSpotHarness) -> None:
    deal = _deals(hs)[0]
    hs.fake.inject("/tasks/batch/create", 504, after=True)  # HubSpot made the task; the answer never arrived
    [ref] = hs.adapter.create_tasks([_task("risk-1", deal)])
    assert _tasks_with(hs, "risk-1") == 1 and ref.remote_id == str(next(iter(hs.portal.objects["tasks"])))
    again = hs.make_adapter().create_tasks([_task("risk-1", deal)])  # a retried job, seconds later
    assert [r.remote_id for r in again] == [ref.remote_id] and not again[0].created
    assert _tasks_with(hs, "risk-1") == 1
    assert hs.fake.count(path="/tasks/search") == 0  # nothing leaned on the lagging search index


def test_a_second_worker_racing_on_the_same_key_finds_the_first_task(hs: HubSpotHarness) -> None:
    deal = _deals(hs)[0]
    first = hs.adapter.create_tasks([_task("race", deal)])
    # the other worker's task lands between our read-back and our create: our read-back saw nothing
    hs.fake.inject("/tasks/batch/read", 200, body={"status": "COMPLETE", "results": [],
                                                   "startedAt": "2026-01-01T00:00:00Z",
                                                   "completedAt": "2026-01-01T00:00:00Z"})
    [ref] = hs.make_adapter().create_tasks([_task("race", deal)])
    assert ref.remote_id == first[0].remote_id and not ref.created and _tasks_with(hs, "race") == 1
    assert hs.fake.count(path="/tasks/batch/create", status=409) == 1  # HubSpot refused the second holder


def test_one_invalid_input_of_a_batch_create_lands_every_valid_one(hs: HubSpotHarness) -> None:
    deal = _deals(hs)[0]
    drafts = [_task(f"k{i}", deal) for i in range(7)] + [_task("bad-owner", deal, owner="424242")]
    refs = hs.adapter.create_tasks(drafts)
    assert {r.idempotency_key for r in refs} == {f"k{i}" for i in range(7)}
    assert [(f.key, f.retryable) for f in refs.failed] == [("bad-owner", False)]
    assert "INVALID_OWNER_ID" in refs.failed[0].reason or "owner" in refs.failed[0].reason
    assert hs.fake.count(path="/tasks/batch/create", status=400) >= 1 and _tasks_with(hs, "bad-owner") == 0


def test_inputs_refused_one_by_one_reach_the_caller(hs: HubSpotHarness) -> None:
    refs = hs.adapter.create_tasks([_task("ok", _deals(hs)[0]), _task("no-deal", "987654321")])
    assert [r.idempotency_key for r in refs] == ["ok"]
    assert [f.key for f in refs.failed] == ["no-deal"] and "OBJECT_NOT_FOUND" in refs.failed[0].reason


def test_a_batch_with_one_invalid_value_lands_every_valid_value(hs: HubSpotHarness) -> None:
    deals = _deals(hs)
    updates = [FieldUpdate(Entity.DEAL, d, {AppField.RISK_LEVEL: "high"}) for d in deals[:2]]
    updates.append(FieldUpdate(Entity.DEAL, deals[2], {AppField.RISK_LEVEL: "catastrophic"}))
    result = hs.adapter.write_fields(updates)
    assert sorted(result.written) == deals[:2] and [f.key for f in result.failed] == [deals[2]]
    assert [hs.field_value(Entity.DEAL, d, AppField.RISK_LEVEL) for d in deals] == ["high", "high", None]


def test_423_waits_at_least_two_seconds_and_477_honours_retry_after(hs: HubSpotHarness) -> None:
    waits: list[float] = []
    adapter = hs.make_adapter(sleep=waits.append)
    deal = _deals(hs)[0]
    hs.fake.inject("/deals/batch/update", 423)
    hs.fake.inject("/tasks/batch/create", 477, headers={"Retry-After": "7"})
    assert adapter.write_fields([FieldUpdate(Entity.DEAL, deal, {AppField.RISK_SCORE: 12.0})]).written == (deal,)
    assert adapter.create_tasks([_task("after-477", deal)])[0].created  # a refused create is safe to resend
    assert min(waits) >= 2.0 and any(w >= 7.0 for w in waits)


def test_a_long_migration_ends_the_call_with_when_to_come_back(hs: HubSpotHarness) -> None:
    waits: list[float] = []
    adapter = hs.make_adapter(sleep=waits.append)
    hs.fake.inject("/tasks/batch/read", 477, headers={"Retry-After": "3600"})
    with pytest.raises(CrmUnavailable) as caught:
        adapter.create_tasks([_task("later", _deals(hs)[0])])
    assert getattr(caught.value, "retry_after", None) == 3600.0 and waits == []
    hs.fake.inject("/deals/batch/read", 477, headers={"Retry-After": "3600"})
    result = adapter.write_fields([FieldUpdate(Entity.DEAL, _deals(hs)[0], {AppField.RISK_SCORE: 1.0})])
    assert [f.retryable for f in result.failed] == [True] and waits == []


def test_409_is_recognised_by_status_and_category_not_by_its_text(hs: HubSpotHarness) -> None:
    hs.fake.inject("/crm/v3/properties/", 409, times=50, method="POST",
                   body={"status": "error", "message": "duplicate", "category": "CONFLICT", "correlationId": "x"})
    report = hs.make_adapter().ensure_app_fields()
    assert not report.created and not report.missing_permissions and "deals.salesloop_risk_score" in report.existing
