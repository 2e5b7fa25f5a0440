"""The attention budget where tasks are routed: approvals capped per manager per week and bundled, nothing lost;
one spot-check a week with a deterministic sample of at most 20 writes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from connector.settings import Settings
from connector.store import Store
from connector.store.tables import Installation, Proposal
from crm_adapters.model import Entity, TaskStatus, UserRole
from crm_adapters.snapshot import Snapshot
from jobs.approvals.proposals import APPROVE_PREFIX, WAITING
from jobs.engine.chain import Options, run_chain
from jobs.loops.base import Learned, LoopDefinition
from jobs.loops.decision import ActionKind, Decision, Reason
from tests.factories import T0, a_deal, a_pipeline, a_user
from tests.fakes.memory_crm import MemoryCrm

SETTINGS = Settings(testing=True, public_base_url="https://app.example")
MONDAY = datetime(2026, 6, 1, 8, tzinfo=T0.tzinfo)  # ISO week 23


def _learn(snapshot: Snapshot, state: Mapping[str, Any] | None, now: datetime) -> Learned:
    return Learned({"v": 1}, {})


def _decide(snapshot: Snapshot, state: Mapping[str, Any], now: datetime) -> list[Decision]:
    """Eight different playbook changes, and a field on every open deal (what the spot-check samples)."""
    out = [Decision("many", ActionKind.PROPOSE_PLAYBOOK_CHANGE, Entity.USER, "playbook:many", f"many:p:{i}",
                    {"title": f"Change number {i}", "diff": [{"op": "add", "field": "ask", "value": f"q{i}"}],
                    "evidence": {"n": 100}}, (Reason("r", f"change {i} helps", 0.1),)) for i in range(8)]
    out += [Decision("many", ActionKind.UPDATE_FIELD, Entity.DEAL, d.remote_id, f"many:f:{d.remote_id}:{now:%Y-%m-%d}",
                     {"risk_score": 40}) for d in snapshot.open_deals()]
    return out


LOOPS = {"many": LoopDefinition("many", _learn, _decide, None, "many proposals")}


@pytest.fixture
def crm() -> MemoryCrm:
    return _org()


def _org() -> MemoryCrm:
    crm = MemoryCrm(page_size=100)
    crm.seed(a_pipeline(), a_user(UserRole.MANAGER, remote_id="m1"), a_user(UserRole.AE, remote_id="u1", manager_id="m1"))
    crm.seed(*[a_deal(remote_id=f"d{i}", owner_id="u1", created_at=T0) for i in range(60)])
    return crm


def _install(store: Store, settings: dict[str, Any]) -> None:
    with store.session() as s:
        s.add(Installation(id="i1", crm="sandbox", tenant_id="t1", settings=settings))


def run(store: Store, crm: MemoryCrm, now: datetime):  # type: ignore[no-untyped-def]
    return run_chain(store, "i1", settings=SETTINGS, now=now, crm=crm, options=Options(loops=LOOPS))


def _approvals(crm: MemoryCrm) -> list[dict[str, Any]]:
    return [t for t in crm.tasks.values() if t["subject"].startswith(APPROVE_PREFIX)]


def test_approvals_beyond_the_weekly_cap_wait_in_one_bundle_and_are_released_next_week(store: Store, crm: MemoryCrm) -> None:
    _install(store, {"quality": {"sample_rate": 0.0}, "attention": {"approvals_per_manager_per_week": 3}})
    run(store, crm, MONDAY)
    own = [t for t in _approvals(crm) if "waiting for you" not in t["subject"]]
    [bundle] = [t for t in _approvals(crm) if "waiting for you" in t["subject"]]
    assert len(own) == 3 and all(t["owner_id"] == "m1" and t["priority"] == "high" for t in own)
    assert bundle["subject"] == f"{APPROVE_PREFIX} 5 more proposals waiting for you" and bundle["priority"] == "high"
    assert "https://app.example/admin/approvals" in bundle["body"] and bundle["body"].count("\n- Change number") == 5
    with store.session() as s:
        rows = s.execute(select(Proposal)).scalars().all()
        assert len(rows) == 8 and {r.status for r in rows} == {"pending"}  # nothing lost: all eight wait to be decided
        assert sum(bool(r.evidence.get(WAITING)) for r in rows) == 5
    run(store, crm, MONDAY + timedelta(days=2))  # same week: nothing more reaches the manager
    assert len(_approvals(crm)) == 4
    run(store, crm, MONDAY + timedelta(days=7))  # next week: three more tasks, one bundle for the last two
    own = [t for t in _approvals(crm) if "waiting for you" not in t["subject"]]
    bundles = [t for t in _approvals(crm) if "waiting for you" in t["subject"]]
    assert len(own) == 6 and len(bundles) == 2 and bundles[-1]["subject"].endswith("2 more proposals waiting for you")


def test_an_approval_task_reads_back_after_waiting(store: Store, crm: MemoryCrm) -> None:
    _install(store, {"quality": {"sample_rate": 0.0}, "attention": {"approvals_per_manager_per_week": 1}})
    run(store, crm, MONDAY)
    first = {rid for rid, t in crm.tasks.items() if "Change number" in t["subject"]}
    run(store, crm, MONDAY + timedelta(days=7))
    [released] = [rid for rid, t in crm.tasks.items() if "Change number" in t["subject"] and rid not in first]
    title = crm.tasks[released]["subject"].removeprefix(f"{APPROVE_PREFIX} ")
    assert "change" in crm.tasks[released]["body"] and "Complete this task to approve" in crm.tasks[released]["body"]
    crm.set_task_status(released, TaskStatus.COMPLETED, "")
    run(store, crm, MONDAY + timedelta(days=8))
    with store.session() as s:
        statuses = {r.title: r.status for r in s.execute(select(Proposal)).scalars()}
    assert statuses[title] == "approved" and list(statuses.values()).count("approved") == 1


def _spot_task(crm: MemoryCrm) -> dict[str, Any]:
    [task] = [t for t in crm.tasks.values() if "Spot-check" in t["subject"]]
    return task


def test_one_spot_check_a_week_with_at_most_twenty_linked_items_the_same_for_the_same_seed(store: Store, crm: MemoryCrm) -> None:
    _install(store, {"quality": {"sample_rate": 0.9}})
    run(store, crm, MONDAY)
    task = _spot_task(crm)
    items = [line for line in task["body"].splitlines() if line.startswith("- ")]
    assert len(items) == 20 and all("https://app.example/admin/audit?id=" in line for line in items)
    assert task["priority"] == "high" and "more writes sampled this run are listed on" in task["body"]
    run(store, crm, MONDAY + timedelta(days=1))  # same week: the manager gets no second spot-check
    assert _spot_task(crm)
    with store.session() as s:  # same tenant, same writes, fresh install: the very same sample
        s.delete(s.get(Installation, "i1"))
    again = _org()
    _install(store, {"quality": {"sample_rate": 0.9}})
    run(store, again, MONDAY)
    assert _items(_spot_task(again)) == _items(task)


def _items(task: dict[str, Any]) -> list[str]:
    return sorted(line.split(" (https://")[0] for line in task["body"].splitlines() if line.startswith("- "))


def test_the_attention_summary_counts_tasks_per_person_per_day_and_what_waits(store: Store, crm: MemoryCrm) -> None:
    from jobs.engine.route import attention_summary

    _install(store, {"quality": {"sample_rate": 0.0}, "attention": {"approvals_per_manager_per_week": 3}})
    run(store, crm, MONDAY)
    with store.session() as s:
        summary = attention_summary(s, "i1", {"attention": {"approvals_per_manager_per_week": 3}})
    assert summary["tasks"] == 4 and summary["people"] == 1 and summary["max_per_person_day"] == 4
    assert summary["budget"]["approvals_per_manager_per_week"] == 3 and summary["approvals_waiting"] == 5
