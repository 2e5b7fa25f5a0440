"""The CRM port contract: every adapter (sandbox, HubSpot, Salesforce) must pass these same tests.

Only what tests/contract/harness.py's CrmHarness offers is used, and remote ids are numeric strings,
so the fakes of HubSpot and Salesforce can run this file unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from crm_adapters.model import ActivityType, ContactRole, Deal, Entity, Record, TaskStatus, UserRole
from crm_adapters.port import Cursor
from crm_adapters.qualification import suggest
from crm_adapters.writes import AppField, FieldUpdate, NoteDraft, TaskClosure, TaskDraft
from tests.contract.harness import CrmHarness
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

DUE = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)


def read_all(
    harness: CrmHarness, entity: Entity, since: Cursor | None = None
) -> tuple[list[Record], Cursor | None]:
    """Every record of one entity after `since`, and the last cursor the adapter handed out."""
    records: list[Record] = []
    cursor = since
    for batch in harness.adapter.read_changes(entity, since=since):
        assert batch.entity is entity
        assert not batch.quarantined, [q.reason for q in batch.quarantined]
        records.extend(batch.records)
        cursor = batch.cursor or cursor
    return records, cursor


def ids(records: Iterable[Record]) -> set[str]:
    return {r.remote_id for r in records}


def seed_org(harness: CrmHarness) -> dict[str, list[str]]:
    """A small org: a pipeline, an AE, an account with two contacts, four deals with roles, history and calls."""
    owner = a_user(UserRole.AE)
    account = an_account(owner_id=owner.remote_id)
    contacts = [a_contact(account_id=account.remote_id) for _ in range(2)]
    deals = [
        a_deal(account_id=account.remote_id, owner_id=owner.remote_id, name=f"Deal {i}") for i in range(4)
    ]
    roles = [a_role(d.remote_id, contacts[0].remote_id, ContactRole.CHAMPION) for d in deals]
    changes = [a_stage_change(d.remote_id, "101", entered_at=T0 - timedelta(days=3)) for d in deals]
    calls = [an_activity(ActivityType.CALL, d.remote_id, subject="Discovery", body="Talked about reporting",
                         contact_ids=(contacts[0].remote_id,), owner_id=owner.remote_id) for d in deals]  # fmt: skip
    harness.seed(pipelines=[a_pipeline()], users=[owner], accounts=[account], contacts=contacts, deals=deals,
                 roles=roles, stage_changes=changes, activities=calls)  # fmt: skip
    return {"deals": [d.remote_id for d in deals], "contacts": [c.remote_id for c in contacts],
            "accounts": [account.remote_id], "activities": [a.remote_id for a in calls]}  # fmt: skip


def test_full_read_then_incremental_read_sees_only_changes(harness: CrmHarness) -> None:
    seeded = seed_org(harness)
    deals, cursor = read_all(harness, Entity.DEAL)
    assert ids(deals) == set(seeded["deals"])
    assert {d.name for d in deals if isinstance(d, Deal)} == {f"Deal {i}" for i in range(4)}
    assert ids(read_all(harness, Entity.ACCOUNT)[0]) == set(seeded["accounts"])
    assert ids(read_all(harness, Entity.CONTACT)[0]) >= set(seeded["contacts"])
    assert ids(read_all(harness, Entity.ACTIVITY)[0]) >= set(seeded["activities"])
    assert read_all(harness, Entity.DEAL, since=cursor)[0] == []

    changed = seeded["deals"][2]
    harness.update_deal(changed, amount=Decimal("54321"), name="Deal 2 (bigger)")
    again, _ = read_all(harness, Entity.DEAL, since=cursor)
    assert ids(again) == {changed}
    deal = again[0]
    assert isinstance(deal, Deal)
    assert deal.amount == Decimal("54321") and deal.name == "Deal 2 (bigger)"


def test_change_at_the_cursor_boundary_is_not_lost(harness: CrmHarness) -> None:
    first = a_deal(name="First", remote_updated_at=T0)
    harness.seed(pipelines=[a_pipeline()], deals=[first])
    _, cursor = read_all(harness, Entity.DEAL)
    assert cursor is not None
    twin = a_deal(name="Same modified time, higher id", remote_updated_at=T0)
    assert int(twin.remote_id) > int(first.remote_id)
    harness.seed(deals=[twin])
    later, _ = read_all(harness, Entity.DEAL, since=cursor)
    assert twin.remote_id in ids(later)


def test_deletes_read_back_as_deleted(harness: CrmHarness) -> None:
    seeded = seed_org(harness)
    _, cursor = read_all(harness, Entity.DEAL)
    gone = seeded["deals"][0]
    harness.delete(Entity.DEAL, gone)
    later, _ = read_all(harness, Entity.DEAL, since=cursor)
    assert [r.deleted for r in later if r.remote_id == gone] == [True]
    assert all(not r.deleted for r in later if r.remote_id != gone)


def test_pipelines_carry_stage_order_and_flags(harness: CrmHarness) -> None:
    harness.seed(pipelines=[a_pipeline()])
    pipelines = harness.adapter.read_pipelines()
    pipeline = next(p for p in pipelines if p.remote_id == "1")
    stages = {s.id: s for s in pipeline.stages}
    assert stages["105"].is_closed and stages["105"].is_won
    assert stages["106"].is_closed and not stages["106"].is_won
    assert not stages["101"].is_closed and not stages["104"].is_closed
    assert [s.id for s in sorted(pipeline.stages, key=lambda s: s.order)][:4] == ["101", "102", "103", "104"]


def test_users_come_with_their_roles(harness: CrmHarness) -> None:
    sdr, ae, manager = (
        a_user(UserRole.SDR, name="Sam Sdr"),
        a_user(UserRole.AE, name="Alex Ae"),
        a_user(UserRole.MANAGER, name="Max Manager"),
    )
    harness.seed(users=[sdr, ae, manager])
    roles = {u.remote_id: u.role for u in harness.adapter.read_users()}
    assert roles[sdr.remote_id] is UserRole.SDR
    assert roles[ae.remote_id] in (UserRole.AE, UserRole.BDM)
    assert roles[manager.remote_id] is UserRole.MANAGER


def test_ensure_app_fields_is_idempotent(harness: CrmHarness) -> None:
    first = harness.adapter.ensure_app_fields()
    second = harness.adapter.ensure_app_fields()
    assert first.created or first.existing
    assert second.created == ()
    assert set(first.created) | set(first.existing) <= set(second.existing)


def test_write_fields_writes_then_a_repeat_is_unchanged(harness: CrmHarness) -> None:
    deal_id = seed_org(harness)["deals"][1]
    harness.adapter.ensure_app_fields()
    update = FieldUpdate(Entity.DEAL, deal_id, {AppField.RISK_SCORE: 72, AppField.RISK_LEVEL: "high"})
    result = harness.adapter.write_fields([update])
    assert result.written == (deal_id,) and not result.failed
    assert float(harness.field_value(Entity.DEAL, deal_id, AppField.RISK_SCORE) or 0) == 72.0
    assert harness.field_value(Entity.DEAL, deal_id, AppField.RISK_LEVEL) == "high"
    repeat = harness.adapter.write_fields([update])
    assert repeat.unchanged == (deal_id,) and repeat.written == () and not repeat.failed


def _task(key: str, deal_id: str) -> TaskDraft:
    return TaskDraft(idempotency_key=key, subject="Approve playbook v2", body="Add cost_of_inaction", owner_id=None,
                     due_at=DUE, deal_id=deal_id)  # fmt: skip


def test_the_same_task_key_twice_makes_one_task(harness: CrmHarness) -> None:
    deal_id = seed_org(harness)["deals"][0]
    harness.adapter.ensure_app_fields()  # installs run it first; some CRMs keep the idempotency key in an app field
    first = harness.adapter.create_tasks([_task("approve-v2", deal_id)])
    second = harness.adapter.create_tasks([_task("approve-v2", deal_id)])
    assert first[0].created and not second[0].created
    assert first[0].remote_id == second[0].remote_id
    assert harness.app_task_count() == 1


def test_read_tasks_sees_completed_and_rejected_with_the_comment(harness: CrmHarness) -> None:
    deal_id = seed_org(harness)["deals"][0]
    harness.adapter.ensure_app_fields()
    done, rejected, still_open = harness.adapter.create_tasks(
        [_task("t-done", deal_id), _task("t-rejected", deal_id), _task("t-open", deal_id)]
    )
    harness.set_task_status(done.remote_id, TaskStatus.COMPLETED)
    harness.set_task_status(rejected.remote_id, TaskStatus.REJECTED, "too aggressive on small accounts")
    states = {
        s.remote_id: s
        for s in harness.adapter.read_tasks([done.remote_id, rejected.remote_id, still_open.remote_id])
    }
    assert states[done.remote_id].status is TaskStatus.COMPLETED
    assert states[rejected.remote_id].status is TaskStatus.REJECTED
    assert "too aggressive on small accounts" in states[rejected.remote_id].comment
    assert states[still_open.remote_id].status is TaskStatus.OPEN


def test_a_task_closed_through_the_port_reads_back_with_its_verdict_and_comment(harness: CrmHarness) -> None:
    deal_id = seed_org(harness)["deals"][0]
    harness.adapter.ensure_app_fields()
    approved, rejected, plain, untouched = harness.adapter.create_tasks(
        [_task(k, deal_id) for k in ("c-approved", "c-rejected", "c-plain", "c-open")]
    )
    closures = [
        TaskClosure(approved.remote_id, TaskStatus.COMPLETED, "approved on the admin page <b>if</b> price < 10k & > 5k"),
        TaskClosure(rejected.remote_id, TaskStatus.REJECTED, "not this\nquarter "),
        TaskClosure(plain.remote_id, TaskStatus.COMPLETED),
    ]
    result = harness.adapter.close_tasks(closures)
    assert sorted(result.written) == sorted(c.remote_id for c in closures) and not result.failed
    ids = [approved.remote_id, rejected.remote_id, plain.remote_id, untouched.remote_id]
    states = {s.remote_id: s for s in harness.adapter.read_tasks(ids)}
    assert (states[approved.remote_id].status, states[approved.remote_id].comment) == (
        TaskStatus.COMPLETED, "approved on the admin page <b>if</b> price < 10k & > 5k")
    assert (states[rejected.remote_id].status, states[rejected.remote_id].comment) == (TaskStatus.REJECTED, "not this quarter")
    assert (states[plain.remote_id].status, states[plain.remote_id].comment) == (TaskStatus.COMPLETED, "")
    assert states[approved.remote_id].completed_at is not None  # the CRM stamps when the task was closed
    assert states[untouched.remote_id].status is TaskStatus.OPEN
    again = harness.adapter.close_tasks(closures)
    assert sorted(again.unchanged) == sorted(c.remote_id for c in closures) and not again.written and not again.failed


def test_closing_a_task_the_crm_does_not_hold_fails_without_retry(harness: CrmHarness) -> None:
    seed_org(harness)
    harness.adapter.ensure_app_fields()
    result = harness.adapter.close_tasks([TaskClosure("999999991", TaskStatus.COMPLETED)])
    assert [f.key for f in result.failed] == ["999999991"] and not result.failed[0].retryable
    assert not result.written


def test_notes_are_idempotent_by_key(harness: CrmHarness) -> None:
    deal_id = seed_org(harness)["deals"][3]
    harness.adapter.ensure_app_fields()
    note = NoteDraft(
        idempotency_key="postmortem-1", body="Lost on price; champion went quiet", deal_id=deal_id
    )
    first = harness.adapter.create_notes([note])
    second = harness.adapter.create_notes([note])
    assert first[0].created and not second[0].created
    assert first[0].remote_id == second[0].remote_id


def test_deal_fields_are_described_for_a_suggested_qualification_mapping(harness: CrmHarness) -> None:
    """Install-time suggestion: the admin's qualification fields come back with label, type and values, and
    suggest() maps them by the MEDDIC / BANT vocabulary; a field outside it is not suggested."""
    seed_org(harness)
    budget = harness.define_deal_field("Budget allocated", "picklist", ["Yes", "No", "Unknown"])
    rivals = harness.define_deal_field("Competitors", "multiselect", ["Acme", "Globex", "In-house"])
    champion = harness.define_deal_field("Champion identified", "checkbox")
    colour = harness.define_deal_field("Colour", "picklist", ["Red", "Blue"])
    described = {d.name: d for d in harness.adapter.describe_deal_fields()}
    assert (described[budget].label, described[budget].type, described[budget].options) == (
        "Budget allocated", "picklist", ("Yes", "No", "Unknown"))
    assert (described[rivals].type, described[rivals].options) == ("multiselect", ("Acme", "Globex", "In-house"))
    assert described[champion].type == "checkbox" and described[colour].label == "Colour"
    suggested = {f.field: f for f in suggest(list(described.values())).fields}
    assert {n: (f.item, f.kind) for n, f in suggested.items() if n in (budget, rivals, champion, colour)} == {
        budget: ("budget", "picklist"), rivals: ("competition", "multiselect"), champion: ("champion", "checkbox")}
    assert suggested[rivals].options == ("Acme", "Globex", "In-house")
    assert not [n for n in suggested if "salesloop" in n.lower()]  # our own fields are never proposed
