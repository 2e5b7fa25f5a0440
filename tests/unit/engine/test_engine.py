"""The engine: decisions recorded and auditable, outbox idempotent, approvals and rejections read back."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from connector.settings import Settings
from connector.store import Store
from connector.store.tables import (
    AuditEntry,
    CardData,
    DecisionRecord,
    Installation,
    LoopRun,
    ModelVersion,
    OutboxItem,
    Proposal,
)
from crm_adapters.errors import CrmAuthError
from crm_adapters.model import DealStatus, Entity, TaskStatus, UserRole
from jobs.engine.chain import Options, run_chain
from jobs.loops.decision import ActionKind, Decision
from tests.factories import T0, a_deal, a_pipeline, a_user
from tests.fakes.memory_crm import MemoryCrm
from tests.unit.engine.loop_fixture import TEST_LOOP

SETTINGS = Settings(testing=True)
LOOPS = {"test_loop": TEST_LOOP}


@pytest.fixture
def crm() -> MemoryCrm:
    crm = MemoryCrm(page_size=50)
    manager = a_user(UserRole.MANAGER, remote_id="m1")
    crm.seed(a_pipeline(), manager, a_user(UserRole.AE, remote_id="u1", manager_id="m1"))
    crm.seed(*[a_deal(remote_id=f"d{i}", owner_id="u1", created_at=T0 - timedelta(days=10 * i)) for i in range(1, 9)])
    crm.seed(*[a_deal(remote_id=f"w{i}", status=DealStatus.WON if i % 2 else DealStatus.LOST) for i in range(6)])
    return crm


@pytest.fixture
def iid(store: Store) -> str:
    with store.session() as s:
        s.add(Installation(id="i1", crm="sandbox", tenant_id="t1", settings={"quality": {"sample_rate": 0.0}}))
    return "i1"


def run(store: Store, crm: MemoryCrm, now, **kw):  # type: ignore[no-untyped-def]
    return run_chain(store, "i1", settings=SETTINGS, now=now, crm=crm, options=Options(loops=LOOPS, **kw))


def count(store: Store, table, **where) -> int:  # type: ignore[no-untyped-def]
    with store.session() as s:
        stmt = select(func.count()).select_from(table)
        for k, v in where.items():
            stmt = stmt.where(getattr(table, k) == v)
        return int(s.execute(stmt).scalar_one())


def test_every_decision_is_recorded_with_its_verdicts_and_written_back(store: Store, crm: MemoryCrm, iid: str) -> None:
    now = T0 + timedelta(days=1)
    report = run(store, crm, now)
    with store.session() as s:
        rows = s.execute(select(DecisionRecord)).scalars().all()
        by_kind = {(r.kind, r.policy_verdict, r.write_status) for r in rows}
        assert ("update_field", "auto", "written") in by_kind
        assert ("update_card", "auto", "written") in by_kind
        assert ("create_task", "auto", "written") in by_kind
        assert ("change_compensation", "forbidden", "forbidden") in by_kind
        assert ("propose_playbook_change", "needs_approval", "awaiting") in by_kind
        assert all(r.policy_rule and r.gate_verdict and r.model_version == "v1" for r in rows)
        assert s.get(CardData, ("i1", "d8")).payload["risk"]["score"] == 81  # type: ignore[union-attr]
        run_row = s.execute(select(LoopRun)).scalar_one()
        assert run_row.status == "done" and run_row.stats["decisions"] == len(rows)
        assert s.execute(select(AuditEntry.action).where(AuditEntry.action == "model:new_version")).first()
    assert crm.fields[("deal", "d8")] == {"risk_score": 81, "risk_level": "high"}
    assert report.outbox.sent > 0 and report.outbox.failed == 0
    compensation_writes = [t for t in crm.tasks.values() if "commission" in t["subject"]]
    assert compensation_writes == []
    approval = [t for t in crm.tasks.values() if "[salesloop] Approve:" in t["subject"]]
    assert len(approval) == 1 and approval[0]["owner_id"] == "m1"


def test_running_the_chain_twice_writes_nothing_new(store: Store, crm: MemoryCrm, iid: str) -> None:
    now = T0 + timedelta(days=1)
    run(store, crm, now)
    tasks, writes, outbox = dict(crm.tasks), list(crm.field_writes), count(store, OutboxItem)
    second = run(store, crm, now + timedelta(minutes=5))
    assert crm.tasks == tasks
    assert crm.field_writes == writes
    assert count(store, OutboxItem) == outbox
    assert second.loops["test_loop"].route.decisions == 0 and second.loops["test_loop"].route.repeated > 0
    per_field: dict[tuple[str, str], set[object]] = {}
    for remote_id, name, value in crm.field_writes:
        per_field.setdefault((remote_id, name), set()).add(value)
    assert all(len(values) == 1 for values in per_field.values())


def _long_keys(snapshot, state, now):  # type: ignore[no-untyped-def]
    return [Decision("test_loop", ActionKind.UPDATE_CARD, Entity.DEAL, d.remote_id, f"test:c:{d.remote_id}:{'k' * 250}",
                     {"section": "risk", "score": 1}) for d in snapshot.open_deals()]


def test_a_key_longer_than_its_column_is_recognised_on_a_rerun(store: Store, crm: MemoryCrm, iid: str) -> None:
    options = Options(loops={"test_loop": replace(TEST_LOOP, decide=_long_keys)})
    now = T0 + timedelta(days=1)
    first = run_chain(store, "i1", settings=SETTINGS, now=now, crm=crm, options=options)
    second = run_chain(store, "i1", settings=SETTINGS, now=now + timedelta(minutes=5), crm=crm, options=options)
    assert first.loops["test_loop"].route.decisions == 8
    assert second.loops["test_loop"].route.decisions == 0 and second.loops["test_loop"].route.repeated == 8


def test_outbox_rows_left_pending_by_a_crash_are_sent_once_on_the_next_run(store: Store, crm: MemoryCrm, iid: str) -> None:
    now = T0 + timedelta(days=1)
    real = crm.create_tasks
    calls = {"n": 0}

    def dies_after_creating(tasks):  # type: ignore[no-untyped-def]
        real(tasks)  # the CRM made them, then the worker died before recording it
        calls["n"] += 1
        raise SystemExit("killed")

    crm.create_tasks = dies_after_creating  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        run(store, crm, now)
    made = dict(crm.tasks)
    assert made and count(store, OutboxItem, kind="task", status="pending") == len(made)
    crm.create_tasks = real  # type: ignore[method-assign]
    run(store, crm, now)
    assert crm.tasks == made
    assert count(store, OutboxItem, kind="task", status="sent") == len(made)


def test_approval_read_back_from_a_completed_task_activates_a_treatment_version(store: Store, crm: MemoryCrm, iid: str) -> None:
    now = T0 + timedelta(days=1)
    run(store, crm, now)
    task_id = next(rid for rid, t in crm.tasks.items() if "[salesloop] Approve:" in t["subject"])
    crm.set_task_status(task_id, TaskStatus.COMPLETED)
    report = run(store, crm, now + timedelta(days=1))
    assert report.approvals.approved == 1 and report.approvals.activated == ["Test loop v2"]  # read by people: the loop in words
    with store.session() as s:
        proposal = s.execute(select(Proposal).where(Proposal.task_remote_id == task_id)).scalar_one()
        assert proposal.status == "approved"
        active = s.execute(select(ModelVersion).where(ModelVersion.active.is_(True)).order_by(ModelVersion.version)).scalars().all()
        assert [(v.version, v.arm) for v in active] == [(1, "control"), (2, "treatment")]
        assert "discovery_budget" in active[1].state["questions"] and active[1].proposal_id == proposal.id
    assert sum("[salesloop] Approve:" in t["subject"] for t in crm.tasks.values()) == 1  # approved: not proposed again


def test_rejection_is_stored_and_not_reproposed_without_new_evidence(store: Store, crm: MemoryCrm, iid: str) -> None:
    now = T0 + timedelta(days=1)
    run(store, crm, now)
    task_id = next(rid for rid, t in crm.tasks.items() if "[salesloop] Approve:" in t["subject"])
    crm.set_task_status(task_id, TaskStatus.REJECTED, "we tried this last year")
    report = run(store, crm, now + timedelta(days=1))
    assert report.approvals.rejected == 1
    with store.session() as s:
        proposal = s.execute(select(Proposal).where(Proposal.task_remote_id == task_id)).scalar_one()
        assert (proposal.status, proposal.reason) == ("rejected", "we tried this last year")
    crm.seed(*[a_deal(remote_id=f"x{i}", status=DealStatus.LOST) for i in range(3)])  # a little more data: new key, same change
    run(store, crm, now + timedelta(days=2))
    assert sum("[salesloop] Approve:" in t["subject"] for t in crm.tasks.values()) == 1
    crm.seed(*[a_deal(remote_id=f"y{i}", status=DealStatus.WON) for i in range(20)])  # much more evidence
    run(store, crm, now + timedelta(days=3))
    assert sum("[salesloop] Approve:" in t["subject"] for t in crm.tasks.values()) == 2


def test_paused_loop_only_drafts(store: Store, crm: MemoryCrm, iid: str) -> None:
    with store.session() as s:
        s.get(Installation, "i1").settings = {"paused": {"test_loop": {"reason": "drift"}}, "quality": {"sample_rate": 0.0}}  # type: ignore[union-attr]
    run(store, crm, T0 + timedelta(days=1))
    assert crm.fields == {}
    assert any(t["subject"].startswith("[salesloop draft]") for t in crm.tasks.values())
    assert count(store, DecisionRecord, gate_verdict="downgraded") > 0


def test_spot_check_sample_becomes_one_manager_task(store: Store, crm: MemoryCrm, iid: str) -> None:
    with store.session() as s:
        s.get(Installation, "i1").settings = {"quality": {"sample_rate": 0.5}}  # type: ignore[union-attr]
    run(store, crm, T0 + timedelta(days=1))
    sampled = count(store, DecisionRecord, gate_verdict="spot_check")
    spot = [t for t in crm.tasks.values() if "Spot-check" in t["subject"]]
    assert sampled > 0 and len(spot) == 1 and spot[0]["owner_id"] == "m1"
    task_id = next(rid for rid, t in crm.tasks.items() if "Spot-check" in t["subject"])
    crm.set_task_status(task_id, TaskStatus.REJECTED, "scores look too high")
    run(store, crm, T0 + timedelta(days=2))
    assert count(store, DecisionRecord, gate_verdict="spot_check_rejected") == sampled


def test_a_dead_grant_marks_the_installation_needs_reauth(store: Store, crm: MemoryCrm, iid: str) -> None:
    def revoked():  # type: ignore[no-untyped-def]
        raise CrmAuthError("invalid_grant")

    crm.read_pipelines = revoked  # type: ignore[method-assign]
    with pytest.raises(CrmAuthError):
        run(store, crm, T0)
    with store.session() as s:
        assert s.get(Installation, "i1").status == "needs_reauth"  # type: ignore[union-attr]
    assert run(store, crm, T0).status.startswith("skipped")


def test_merged_outbox_reports_keep_why_a_run_stopped() -> None:
    from jobs.engine import chain as engine
    from jobs.state import outbox

    first = outbox.OutboxReport(sent=3, api_calls=2)
    second = outbox.OutboxReport(sent=1, api_calls=1, stopped="daily API limit reached")
    merged = engine._merge(first, second)
    assert (merged.sent, merged.api_calls, merged.stopped) == (4, 3, "daily API limit reached")
