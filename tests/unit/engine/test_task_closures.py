"""A verdict given on the admin page or a card closes the proposal's CRM task once, and is not read back twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from connector.settings import Settings
from connector.store import Store
from connector.store.tables import AuditEntry, Installation, OutboxItem, Proposal
from crm_adapters.errors import CrmBudgetExhausted, CrmUnavailable
from crm_adapters.model import DealStatus, TaskStatus, UserRole
from crm_adapters.writes import TaskClosure
from jobs.approvals import closures as task_closures
from jobs.approvals.verdicts import record_verdict
from jobs.engine.chain import Options, run_chain
from jobs.state import outbox
from tests.factories import T0, a_deal, a_pipeline, a_user
from tests.fakes.memory_crm import MemoryCrm
from tests.unit.engine.loop_fixture import TEST_LOOP
from ui_extensions.card_data import decide

SETTINGS = Settings(testing=True)
NOW = T0 + timedelta(days=1)


@pytest.fixture
def crm() -> MemoryCrm:
    crm = MemoryCrm(page_size=50)
    crm.seed(a_pipeline(), a_user(UserRole.MANAGER, remote_id="m1"), a_user(UserRole.AE, remote_id="u1", manager_id="m1"))
    crm.seed(*[a_deal(remote_id=f"d{i}", owner_id="u1", created_at=T0 - timedelta(days=10 * i)) for i in range(1, 9)])
    crm.seed(*[a_deal(remote_id=f"w{i}", status=DealStatus.WON if i % 2 else DealStatus.LOST) for i in range(6)])
    return crm


@pytest.fixture
def iid(store: Store) -> str:
    with store.session() as s:
        s.add(Installation(id="i1", crm="sandbox", tenant_id="t1", settings={"quality": {"sample_rate": 0.0}}))
    return "i1"


def run(store: Store, crm: MemoryCrm, now):  # type: ignore[no-untyped-def]
    return run_chain(store, "i1", settings=SETTINGS, now=now, crm=crm, options=Options(loops={"test_loop": TEST_LOOP}))


def proposal_with_task(store: Store, crm: MemoryCrm) -> tuple[str, str]:
    task_id = next(rid for rid, t in crm.tasks.items() if "[salesloop] Approve:" in t["subject"])
    with store.session() as s:
        return s.execute(select(Proposal.id).where(Proposal.task_remote_id == task_id)).scalar_one(), task_id


def closures(store: Store) -> list[tuple[str, str]]:
    with store.session() as s:
        return [(r.status, r.remote_id) for r in s.execute(select(OutboxItem).where(OutboxItem.kind == "task_close")).scalars()]


def test_an_admin_approval_closes_the_crm_task_once_and_is_not_read_back_again(store: Store, crm: MemoryCrm, iid: str) -> None:
    run(store, crm, NOW)
    proposal_id, task_id = proposal_with_task(store, crm)
    with store.session() as s:
        record_verdict(s, "i1", proposal_id, approved=True, by="user:admin", now=NOW)
    assert crm.tasks[task_id]["status"] is TaskStatus.OPEN  # nothing is sent before the next run
    second = run(store, crm, NOW + timedelta(hours=1))
    assert crm.closed == [TaskClosure(task_id, TaskStatus.COMPLETED, task_closures.APPROVED_NOTE)]
    assert crm.tasks[task_id]["status"] is TaskStatus.COMPLETED
    assert second.approvals.approved == 0  # settled on the admin page; the chain did not count it again
    assert closures(store) == [("sent", task_id)]
    third = run(store, crm, NOW + timedelta(hours=2))  # the task now reads back COMPLETED: still not a second verdict
    assert crm.closed == [TaskClosure(task_id, TaskStatus.COMPLETED, task_closures.APPROVED_NOTE)]
    assert third.approvals.approved == 0 and closures(store) == [("sent", task_id)]
    with store.session() as s:
        approvals = s.execute(select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "proposal:approved"))
        assert approvals.scalar_one() == 1
        assert s.get(Proposal, proposal_id).status == "approved"  # type: ignore[union-attr]


def test_a_card_rejection_closes_the_task_rejected_with_the_reason_once(store: Store, crm: MemoryCrm, iid: str) -> None:
    run(store, crm, NOW)
    proposal_id, task_id = proposal_with_task(store, crm)
    with store.session() as s:
        decide(s, "i1", proposal_id, approved=False, by="user:m1", reason="not this quarter")
    with store.session() as s:
        assert decide(s, "i1", proposal_id, approved=False, by="user:m1", reason="not this quarter")["repeated"]
    assert len(closures(store)) == 1
    run(store, crm, NOW + timedelta(hours=1))
    assert crm.closed == [TaskClosure(task_id, TaskStatus.REJECTED, "not this quarter")]
    assert (crm.tasks[task_id]["status"], crm.tasks[task_id]["comment"]) == (TaskStatus.REJECTED, "not this quarter")


def test_a_crm_outage_leaves_the_closure_for_the_next_run(store: Store, crm: MemoryCrm, iid: str) -> None:
    run(store, crm, NOW)
    proposal_id, task_id = proposal_with_task(store, crm)
    with store.session() as s:
        record_verdict(s, "i1", proposal_id, approved=True, by="user:admin", reason="good idea", now=NOW)
    real = crm.close_tasks

    def down(_closures):  # type: ignore[no-untyped-def]
        raise CrmUnavailable("503 from the CRM")

    crm.close_tasks = down  # type: ignore[method-assign]
    with pytest.raises(CrmUnavailable):  # as every outbox write: failed, and RQ retries the job
        run(store, crm, NOW + timedelta(hours=1))
    assert closures(store) == [("failed", task_id)]
    crm.close_tasks = real  # type: ignore[method-assign]
    run(store, crm, NOW + timedelta(hours=2))
    assert crm.closed == [TaskClosure(task_id, TaskStatus.COMPLETED, "good idea")]
    assert closures(store) == [("sent", task_id)]


def test_a_closure_whose_task_was_never_created_gives_up_without_calling_the_crm(store: Store, crm: MemoryCrm, iid: str) -> None:
    run(store, crm, NOW)
    proposal_id, _ = proposal_with_task(store, crm)
    with store.session() as s:
        s.get(Proposal, proposal_id).task_remote_id = None  # type: ignore[union-attr]
        task = s.execute(select(OutboxItem).where(OutboxItem.kind == "task", OutboxItem.remote_id.is_not(None))
                         .where(OutboxItem.idempotency_key.like("approval:%"))).scalar_one()
        task.status = "dead"
    with store.session() as s:
        record_verdict(s, "i1", proposal_id, approved=False, by="user:admin", reason="no", now=NOW)
    calls: list[object] = []
    crm.close_tasks = lambda c: calls.append(c)  # type: ignore[method-assign,assignment,func-returns-value]
    report = outbox.apply(store, "i1", crm)
    assert calls == [] and report.sent == 0
    assert [s for s, _ in closures(store)] == ["dead"]


def test_a_closure_waits_while_its_task_is_still_queued(store: Store, crm: MemoryCrm, iid: str) -> None:
    run(store, crm, NOW)
    proposal_id, _ = proposal_with_task(store, crm)
    with store.session() as s:
        s.get(Proposal, proposal_id).task_remote_id = None  # type: ignore[union-attr]
        record_verdict(s, "i1", proposal_id, approved=True, by="user:admin", now=NOW)
    report = outbox.apply(store, "i1", crm)
    assert crm.closed == [] and report.sent == 0 and closures(store) == [("pending", None)]


def test_only_a_settled_proposal_queues_a_closure(store: Store, iid: str) -> None:
    with store.session() as s:
        row = Proposal(installation_id="i1", loop="test_loop", title="t", fingerprint="f", diff=[], evidence={},
                       status="pending", created_at=NOW)
        s.add(row)
        s.flush()
        with pytest.raises(ValueError, match="only a settled proposal"):
            task_closures.queue(s, row)


def test_the_daily_budget_defers_closures_without_spending_attempts(store: Store, crm: MemoryCrm, iid: str) -> None:
    run(store, crm, NOW)
    proposal_id, task_id = proposal_with_task(store, crm)
    with store.session() as s:
        record_verdict(s, "i1", proposal_id, approved=True, by="user:admin", now=NOW)

    def spent(_closures):  # type: ignore[no-untyped-def]
        raise CrmBudgetExhausted("daily API limit", retry_after=3600)

    crm.close_tasks = spent  # type: ignore[method-assign]
    report = outbox.apply(store, "i1", crm)
    assert report.stopped.startswith("daily API budget exhausted")
    with store.session() as s:
        item = s.execute(select(OutboxItem).where(OutboxItem.kind == "task_close")).scalar_one()
        assert (item.status, item.attempts) == ("pending", 0)
    assert crm.closed == [] and crm.tasks[task_id]["status"] is TaskStatus.OPEN
