"""Write-back through HubSpotAdapter to the fake: properties, batched fields, 207s, idempotent tasks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from crm_adapters.model import Entity, TaskStatus
from crm_adapters.writes import AppField, FieldUpdate, NoteDraft, TaskDraft
from tests.factories import T0, a_deal, a_pipeline
from tests.fakes.hubspot.harness import HubSpotHarness, hubspot_harness


@pytest.fixture
def hs() -> Iterator[HubSpotHarness]:
    with hubspot_harness() as harness:
        harness.seed(pipelines=[a_pipeline()])
        harness.adapter.ensure_app_fields()
        yield harness


def test_ensure_app_fields_is_idempotent(hs: HubSpotHarness) -> None:
    again = hs.adapter.ensure_app_fields()
    assert not again.created and "deals.salesloop_risk_score" in again.existing
    assert hs.fake.count(path="/crm/v3/properties/deals", status=409) >= 1


def test_write_fields_batches_by_100_and_skips_unchanged(hs: HubSpotHarness) -> None:
    deals = [a_deal() for _ in range(250)]
    hs.seed(deals=deals)
    updates = [FieldUpdate(Entity.DEAL, d.remote_id, {AppField.RISK_SCORE: 40.0 + i % 7, AppField.RISK_LEVEL: "high"})
               for i, d in enumerate(deals)]
    first = hs.adapter.write_fields(updates)
    assert len(first.written) == 250 and first.api_calls == 6  # 3 batch reads + 3 batch updates
    assert hs.field_value(Entity.DEAL, deals[3].remote_id, AppField.RISK_SCORE) == 43.0
    second = hs.adapter.write_fields(updates[:100] + [FieldUpdate(Entity.DEAL, deals[0].remote_id,
                                                                  {AppField.RISK_SCORE: 99})])
    assert len(second.unchanged) == 99 and second.written == (deals[0].remote_id,)


def test_a_batch_refused_whole_lands_every_valid_value_and_reports_the_bad_one(hs: HubSpotHarness) -> None:
    deals = [a_deal() for _ in range(5)]
    hs.seed(deals=deals)
    updates = [FieldUpdate(Entity.DEAL, d.remote_id, {AppField.RISK_LEVEL: "high"}) for d in deals[:3]]
    updates.append(FieldUpdate(Entity.DEAL, deals[3].remote_id, {AppField.RISK_LEVEL: "catastrophic"}))
    updates.append(FieldUpdate(Entity.DEAL, "999999", {AppField.RISK_LEVEL: "low"}))
    result = hs.adapter.write_fields(updates)
    assert set(result.written) == {d.remote_id for d in deals[:3]}
    failed = {f.key: f for f in result.failed}
    assert set(failed) == {deals[3].remote_id, "999999"}
    assert "VALIDATION_ERROR" in failed[deals[3].remote_id].reason and not failed[deals[3].remote_id].retryable
    assert hs.fake.count(path="/batch/update", status=400) >= 1  # HubSpot refused the first batch whole
    assert hs.field_value(Entity.DEAL, deals[0].remote_id, AppField.RISK_LEVEL) == "high"


def test_retried_job_creates_no_second_task(hs: HubSpotHarness) -> None:
    deal = a_deal()
    hs.seed(deals=[deal])
    drafts = [TaskDraft(f"risk:{deal.remote_id}:{i}", "Call the champion", "Deal at risk", None, T0 + timedelta(days=1),
                        deal_id=deal.remote_id) for i in range(3)]
    hs.fake.inject("/crm/v3/objects/tasks/batch/create", 502, after=True)  # created, but the answer is lost
    refs = hs.adapter.create_tasks(drafts)
    assert sorted(r.idempotency_key for r in refs) == sorted(d.idempotency_key for d in drafts)
    assert hs.app_task_count() == 3
    again = hs.adapter.create_tasks(drafts)  # the whole job runs again
    assert hs.app_task_count() == 3 and not any(r.created for r in again)
    assert {r.remote_id for r in again} == {r.remote_id for r in refs}
    task = hs.portal.objects["tasks"][int(refs[0].remote_id)]
    assert hs.portal.associations("tasks", task.id, "deals") and task.properties["hs_task_status"] == "NOT_STARTED"


def test_notes_are_idempotent_too(hs: HubSpotHarness) -> None:
    deal = a_deal()
    hs.seed(deals=[deal])
    note = NoteDraft("note:1", "Risk went up: no activity for 21 days", deal.remote_id)
    first, second = hs.adapter.create_notes([note]), hs.adapter.create_notes([note])
    assert first[0].created and not second[0].created and first[0].remote_id == second[0].remote_id


def test_read_tasks_maps_completion_and_rejection(hs: HubSpotHarness) -> None:
    deal = a_deal()
    hs.seed(deals=[deal])
    refs = hs.adapter.create_tasks([TaskDraft(f"approve:{i}", "Approve playbook v2", "Complete to approve.", None,
                                              T0, deal_id=deal.remote_id) for i in range(3)])
    ids = {r.idempotency_key: r.remote_id for r in refs}
    hs.set_task_status(ids["approve:0"], TaskStatus.COMPLETED)
    hs.set_task_status(ids["approve:1"], TaskStatus.REJECTED, "not this quarter")
    states = {s.remote_id: s for s in hs.adapter.read_tasks(list(ids.values()))}
    assert states[ids["approve:0"]].status is TaskStatus.COMPLETED and states[ids["approve:0"]].completed_at
    assert states[ids["approve:1"]].status is TaskStatus.REJECTED
    assert states[ids["approve:1"]].comment == "not this quarter"
    assert states[ids["approve:2"]].status is TaskStatus.OPEN
