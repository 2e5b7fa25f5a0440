"""SandboxCrm beyond the shared contract: quarantine, bulk load and refresh, write failures, cursors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crm_adapters.errors import CrmBadRequest, CrmNotFound
from crm_adapters.model import Entity, TaskStatus
from crm_adapters.port import CrmPort, Cursor
from crm_adapters.sandbox import SandboxCrm, SimulatedWorld
from crm_adapters.writes import AppField, FieldUpdate, TaskDraft
from tests.factories import T0, a_deal, a_pipeline

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def crm(tmp_path: Path) -> SandboxCrm:
    sandbox = SandboxCrm.open(f"sqlite:///{tmp_path / 'sb.db'}", page_size=4, clock=lambda: NOW)
    sandbox.save_pipelines([a_pipeline()])
    return sandbox


def _all(crm: SandboxCrm, entity: Entity, since: Cursor | None = None):  # type: ignore[no-untyped-def]
    batches = list(crm.read_changes(entity, since=since))
    return batches, [r for b in batches for r in b.records], [q for b in batches for q in b.quarantined]


def test_the_sandbox_is_a_crm_port(crm: SandboxCrm) -> None:
    assert isinstance(crm, CrmPort)


def test_malformed_deals_are_quarantined_with_a_reason_and_the_rest_lands(crm: SandboxCrm) -> None:
    good = a_deal(name="Good one")
    crm.upsert([good])
    base = {
        "name": "x",
        "pipeline_id": "1",
        "stage_id": "102",
        "status": "open",
        "currency": "USD",
        "amount": "10",
    }
    bad = [
        ({k: v for k, v in base.items()}, "missing id"),
        ({**base, "remote_id": "9001", "stage_id": "999"}, "unknown stage '999'"),
        ({**base, "remote_id": "9002", "close_date": "2026-13-45"}, "bad date in close_date"),
        ({**base, "remote_id": "9003", "amount": "twelve thousand"}, "amount is not a number"),
        ({**base, "remote_id": "9004", "currency": "XXQ"}, "unknown currency 'XXQ'"),
    ]
    for raw, _ in bad:
        crm.put_raw(Entity.DEAL, raw, modified_at=T0 + timedelta(minutes=1))
    batches, records, quarantined = _all(crm, Entity.DEAL)
    assert [r.remote_id for r in records] == [good.remote_id]
    reasons = {q.remote_id: q.reason for q in quarantined}
    assert len(quarantined) == 5
    for raw, why in bad:
        assert why in reasons[raw.get("remote_id")]
    assert next(q for q in quarantined if q.remote_id == "9003").raw["amount"] == "twelve thousand"
    assert batches[-1].cursor is not None  # the cursor moves past quarantined rows too


def test_pages_are_page_size_and_resume_from_the_cursor(crm: SandboxCrm) -> None:
    deals = [a_deal(remote_updated_at=T0) for _ in range(10)]  # all the same modified time
    crm.upsert(deals)
    batches, records, _ = _all(crm, Entity.DEAL)
    assert [len(b.records) for b in batches] == [4, 4, 2]
    assert [r.remote_id for r in records] == [d.remote_id for d in deals]
    _, again, _ = _all(crm, Entity.DEAL, since=batches[0].cursor)
    assert [r.remote_id for r in again] == [d.remote_id for d in deals[4:]]


def test_a_foreign_cursor_is_a_bad_request(crm: SandboxCrm) -> None:
    with pytest.raises(CrmBadRequest, match="cursor"):
        list(crm.read_changes(Entity.DEAL, since=Cursor("2026-01-01T00:00:00Z")))


def test_load_then_refresh_moves_only_what_changed(tmp_path: Path) -> None:
    crm = SandboxCrm.open(f"sqlite:///{tmp_path / 'w.db'}")
    world = SimulatedWorld(seed=4)
    world.advance(3)
    first = world.org()
    crm.load(first)
    cursors = {}
    for entity in Entity:
        batches, records, quarantined = _all(crm, entity)
        assert not quarantined
        cursors[entity] = batches[-1].cursor
    assert len(records) == len(first.activities)
    assert crm.load(first) == {e.value: 0 for e in Entity}
    world.advance(1)
    second = world.org()
    crm.load(second)
    _, new_deals, _ = _all(crm, Entity.DEAL, since=cursors[Entity.DEAL])
    before = {d.remote_id: d for d in first.deals}
    expected = {d.remote_id for d in second.deals if before.get(d.remote_id) != d}
    assert {d.remote_id for d in new_deals} == expected and expected


def test_write_fields_fails_clearly_on_missing_fields_or_records(crm: SandboxCrm) -> None:
    deal = a_deal()
    crm.upsert([deal])
    update = FieldUpdate(Entity.DEAL, deal.remote_id, {AppField.RISK_SCORE: 40})
    result = crm.write_fields([update])
    assert result.failed[0].reason.endswith("run ensure_app_fields") and not result.failed[0].retryable
    crm.ensure_app_fields()
    missing = crm.write_fields([FieldUpdate(Entity.DEAL, "424242", {AppField.RISK_SCORE: 40})])
    assert "not found" in missing.failed[0].reason
    ok = crm.write_fields([update, FieldUpdate(Entity.DEAL, deal.remote_id, {AppField.RISK_SCORE: 40.0})])
    assert ok.written == (deal.remote_id,) and ok.unchanged == (deal.remote_id,) and ok.api_calls == 1


def test_backdoor_edits_deletes_and_tasks(crm: SandboxCrm) -> None:
    deal = a_deal()
    crm.upsert([deal])
    edited = crm.edit_deal(deal.remote_id, stage_id="103")
    assert edited.stage_id == "103" and edited.remote_updated_at == NOW
    assert crm.get_deal(deal.remote_id).stage_id == "103"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="unknown stage"):
        crm.edit_deal(deal.remote_id, stage_id="777")
    (ref,) = crm.create_tasks([TaskDraft("k1", "Approve", "body", None, NOW, deal_id=deal.remote_id)])
    crm.reject_task(ref.remote_id, "not now")
    assert crm.list_tasks(status=TaskStatus.REJECTED)[0]["comment"] == "not now"
    with pytest.raises(CrmNotFound):
        crm.complete_task("999")
    crm.delete(Entity.DEAL, deal.remote_id)
    assert crm.get_deal(deal.remote_id) is None


def test_the_page_queries_seek_the_cursor_index_past_the_cursor(crm: SandboxCrm) -> None:
    """The cursor's bound reaches the index search, so a page costs its own rows, not every row before it (nor
    every row tied with the cursor's time: a bulk load gives thousands one time)."""
    plans = []
    for query in crm.page_queries(Entity.DEAL, (5, 7)):
        compiled = query.limit(crm.page_size).compile(crm.engine)
        with crm.engine.connect() as conn:
            plans.append(" ".join(str(row[-1]) for row in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + str(compiled), tuple(compiled.params[k] for k in compiled.positiontup or ()))))
    ties, later = plans
    assert "USING INDEX ix_sandbox_rows_cursor" in ties and "modified_us=? AND pk>?" in ties, ties
    assert "USING INDEX ix_sandbox_rows_cursor" in later and "modified_us>?" in later, later
    assert not any("TEMP B-TREE" in plan for plan in plans), plans  # the index gives the order too


def test_pages_over_mixed_times_and_ties_return_every_row_once_in_cursor_order(crm: SandboxCrm) -> None:
    deals = [a_deal(remote_updated_at=T0 + timedelta(seconds=i % 3)) for i in range(11)]
    crm.upsert(deals)
    batches, records, _ = _all(crm, Entity.DEAL)
    expected = sorted(deals, key=lambda d: d.remote_updated_at)  # stable: ties keep insertion (row id) order
    assert [r.remote_id for r in records] == [d.remote_id for d in expected]
    assert [len(b.records) for b in batches] == [4, 4, 3]
    _, rest, _ = _all(crm, Entity.DEAL, since=batches[1].cursor)
    assert [r.remote_id for r in rest] == [d.remote_id for d in expected[8:]]


def test_a_page_ends_a_run_of_tied_times_and_goes_on_into_later_ones(crm: SandboxCrm) -> None:
    """Pages that end inside a run of rows sharing one time (5 then 3 here, pages of 4) still return every row
    once, in cursor order: the tied rows past the cursor, then the later times, in one page."""
    deals = [a_deal(remote_updated_at=T0 + timedelta(seconds=0 if i < 5 else 1)) for i in range(8)]
    crm.upsert(deals)
    batches, records, _ = _all(crm, Entity.DEAL)
    assert [r.remote_id for r in records] == [d.remote_id for d in deals]
    assert [len(b.records) for b in batches] == [4, 4]
    _, rest, _ = _all(crm, Entity.DEAL, since=batches[0].cursor)
    assert [r.remote_id for r in rest] == [d.remote_id for d in deals[4:]]
