"""Write-back against the fake: app fields + FLS, collections with partial failure, idempotent tasks, read-back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crm_adapters.model import Entity, TaskStatus
from crm_adapters.salesforce._mapping import APP_FIELD_NAMES, SOURCE_MODSTAMP, TASK_KEY
from crm_adapters.writes import AppField, FieldUpdate, NoteDraft, TaskDraft
from tests.fakes.salesforce.fixtures import adapter_for

DUE = datetime(2026, 6, 2, 9, 0, tzinfo=UTC)
SCORE = APP_FIELD_NAMES[AppField.RISK_SCORE]


def _ready(fake):  # type: ignore[no-untyped-def]
    adapter = adapter_for(fake)
    report = adapter.ensure_app_fields()
    assert not report.missing_permissions
    return adapter


def test_ensure_app_fields_creates_fields_and_grants_them_once(sf_fake):
    adapter = adapter_for(sf_fake)
    first = adapter.ensure_app_fields()
    assert f"Opportunity.{SCORE}" in first.created and f"Activity.{TASK_KEY}" in first.created  # on Activity
    granted = {f["Field"] for f in sf_fake.org.records["FieldPermissions"].values()}
    assert granted == {f.replace("Activity.", "Task.") for f in first.created}  # field security on Task
    assert len(sf_fake.org.records["PermissionSetAssignment"]) == 1
    second = adapter.ensure_app_fields()
    assert second.created == () and set(second.existing) == set(first.created)
    assert len(sf_fake.org.records["FieldPermissions"]) == len(first.created)


def test_missing_rights_are_reported_field_by_field(sf_fake):
    sf_fake.org.admin = False
    report = adapter_for(sf_fake).ensure_app_fields()
    assert report.created == ()
    assert f"Customize Application: create field Opportunity.{SCORE}" in report.missing_permissions
    assert len(report.missing_permissions) == 10


def test_partial_failure_retries_locked_rows_and_records_the_rest(sf_fake):
    adapter = _ready(sf_fake)
    org = sf_fake.org
    ids = [org.insert("Opportunity", {"Name": f"o{i}", "StageName": "Prospecting"}) for i in range(3)]
    org.record_errors[ids[0]] = [("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record")]
    org.record_errors[ids[1]] = [("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Amount is required")] * 5
    result = adapter.write_fields([FieldUpdate(Entity.DEAL, i, {AppField.RISK_SCORE: 70.0}) for i in ids])
    assert sorted(result.written) == sorted([ids[0], ids[2]])
    assert [(f.key, f.retryable) for f in result.failed] == [(ids[1], False)]
    assert "FIELD_CUSTOM_VALIDATION_EXCEPTION" in result.failed[0].reason
    assert org.records["Opportunity"][ids[0]][SCORE] == 70.0


def test_only_changed_values_are_written_in_collections_of_200(sf_fake):
    adapter = _ready(sf_fake)
    org = sf_fake.org
    ids = [org.insert("Opportunity", {"Name": f"o{i}", "StageName": "Prospecting"}) for i in range(450)]
    updates = [FieldUpdate(Entity.DEAL, i, {AppField.RISK_SCORE: 10.0, AppField.RISK_LEVEL: "low"}) for i in ids]
    before = len(org.calls)
    first = adapter.write_fields(updates)
    patches = [p for m, p in org.calls[before:] if m == "PATCH"]
    assert len(first.written) == 450 and len(patches) == 3
    second = adapter.write_fields(updates)
    assert second.written == () and len(second.unchanged) == 450 and second.api_calls == 3  # 3 IN-list reads, no PATCH


def test_unknown_record_is_a_failure_not_an_exception(sf_fake):
    adapter = _ready(sf_fake)
    result = adapter.write_fields([FieldUpdate(Entity.DEAL, "006000000099999AAA", {AppField.RISK_SCORE: 1.0})])
    assert result.failed[0].key == "006000000099999AAA" and not result.failed[0].retryable


def test_our_write_back_is_not_re_ingested_as_a_user_change(sf_fake):
    adapter = _ready(sf_fake)
    org = sf_fake.org
    rid = org.insert("Opportunity", {"Name": "a", "StageName": "Prospecting"}, by="005USER")
    first = list(adapter.read_changes(Entity.DEAL, since=None))
    adapter.write_fields([FieldUpdate(Entity.DEAL, rid, {AppField.RISK_SCORE: 80.0})])
    again = [r for b in adapter_for(sf_fake).read_changes(Entity.DEAL, since=first[-1].cursor) for r in b.records]
    assert again == [first[0].records[0]]  # same payload: the store's hash sees no change
    org.update("Opportunity", rid, {"Name": "renamed"}, by="005USER")
    latest = [r for b in adapter_for(sf_fake).read_changes(Entity.DEAL, since=first[-1].cursor) for r in b.records]
    assert latest[-1].name == "renamed" and latest[-1].remote_updated_at != first[0].records[0].remote_updated_at
    assert org.records["Opportunity"][rid][SOURCE_MODSTAMP]


def test_retried_job_creates_no_second_task(sf_fake):
    adapter = _ready(sf_fake)
    deal = sf_fake.org.insert("Opportunity", {"Name": "a", "StageName": "Prospecting"})
    draft = TaskDraft("approve:proposal:42", "Approve playbook change", "why", None, DUE, deal_id=deal)
    first = adapter.create_tasks([draft])
    second = adapter_for(sf_fake).create_tasks([draft])
    assert first[0].created and not second[0].created and first[0].remote_id == second[0].remote_id
    ours = [t for t in sf_fake.org.records["Task"].values() if t.get(TASK_KEY)]
    assert len(ours) == 1 and ours[0]["WhatId"] == deal and ours[0]["ActivityDate"] == "2026-06-02"


def test_notes_are_idempotent_and_not_ingested_as_activities(sf_fake):
    adapter = _ready(sf_fake)
    deal = sf_fake.org.insert("Opportunity", {"Name": "a", "StageName": "Prospecting"})
    refs = adapter.create_notes([NoteDraft("note:1", "risk went up", deal)])
    assert adapter.create_notes([NoteDraft("note:1", "risk went up", deal)])[0].remote_id == refs[0].remote_id
    activities = [r for b in adapter_for(sf_fake).read_changes(Entity.ACTIVITY, since=None) for r in b.records]
    assert activities == []


def test_read_tasks_completed_and_rejected_with_comment(sf_fake):
    adapter = _ready(sf_fake)
    refs = adapter.create_tasks([TaskDraft(f"k{i}", "Approve", "", None, DUE) for i in range(4)])
    ids = [r.remote_id for r in refs]
    org = sf_fake.org
    org.update("Task", ids[0], {"Status": "Completed", "CompletedDateTime": "2026-06-03T10:00:00.000+0000"})
    org.update("Task", ids[1], {"Status": "Deferred", "Description": "old text\nREJECTED: too risky for Q3"})
    org.update("Task", ids[2], {"Status": "Completed", "Description": "Rejected: no budget"})
    states = {s.remote_id: s for s in adapter.read_tasks(ids)}
    assert states[ids[0]].status is TaskStatus.COMPLETED
    assert states[ids[0]].completed_at == datetime(2026, 6, 3, 10, tzinfo=UTC)
    assert (states[ids[1]].status, states[ids[1]].comment) == (TaskStatus.REJECTED, "too risky for Q3")
    assert (states[ids[2]].status, states[ids[2]].comment) == (TaskStatus.REJECTED, "no budget")
    assert states[ids[3]].status is TaskStatus.OPEN


def test_scored_at_is_written_as_a_salesforce_datetime(sf_fake):
    adapter = _ready(sf_fake)
    rid = sf_fake.org.insert("Opportunity", {"Name": "a", "StageName": "Prospecting"})
    when = (DUE + timedelta(hours=1)).isoformat()
    adapter.write_fields([FieldUpdate(Entity.DEAL, rid, {AppField.SCORED_AT: when})])
    assert sf_fake.org.records["Opportunity"][rid][APP_FIELD_NAMES[AppField.SCORED_AT]] == "2026-06-02T10:00:00.000+0000"
    assert adapter.write_fields([FieldUpdate(Entity.DEAL, rid, {AppField.SCORED_AT: when})]).unchanged == (rid,)
