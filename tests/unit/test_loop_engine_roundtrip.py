"""The learning loops through the real engine: state stored, fields written, proposal -> approval -> new state."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from connector.settings import Settings
from connector.store import Store
from connector.store.tables import Installation, ModelVersion, Proposal
from crm_adapters.model import UserRole
from jobs.approvals.verdicts import record_verdict
from jobs.engine.chain import Options, run_chain
from jobs.loops import discovery, icp
from jobs.loops.registry import LOOPS
from tests.factories import a_pipeline, a_user
from tests.fakes.memory_crm import MemoryCrm
from tests.unit.loop_worlds import NOW, discovery_world, icp_world

SETTINGS = Settings(testing=True)


@pytest.fixture
def iid(store: Store) -> str:
    with store.session() as s:
        s.add(Installation(id="i1", crm="sandbox", tenant_id="t1", settings={"quality": {"sample_rate": 0.0}}))
    return "i1"


def _crm(snapshot) -> MemoryCrm:  # type: ignore[no-untyped-def]
    crm = MemoryCrm(page_size=500)
    users = list(snapshot.users) or [a_user(UserRole.MANAGER)]
    crm.seed(a_pipeline(), *users, *snapshot.accounts, *snapshot.deals, *snapshot.stage_changes, *snapshot.activities)
    return crm


def _active_state(store: Store, loop: str) -> dict:  # type: ignore[type-arg]
    with store.session() as s:
        rows = s.execute(select(ModelVersion).where(ModelVersion.loop == loop, ModelVersion.active.is_(True))).scalars().all()
        return dict(max(rows, key=lambda r: r.version).state)


@pytest.mark.parametrize("loop, world, book, expected", [
    (icp, icp_world, "definition", {"include": ["industry=fintech"], "exclude": ["industry=retail"]}),
    (discovery, discovery_world, "framework", {"ask": ["budget_owner"], "stall_signals": ["competing_priorities"]}),
])
def test_proposal_approved_in_the_engine_changes_the_loops_state(store: Store, iid: str, loop, world, book, expected) -> None:  # type: ignore[no-untyped-def]
    crm = _crm(world())
    run_chain(store, "i1", settings=SETTINGS, now=NOW, crm=crm, options=Options(loops={loop.NAME: LOOPS[loop.NAME]}))
    state = _active_state(store, loop.NAME)
    json.dumps(state)  # JSON-ready
    assert state[book] in ({}, {k: [] for k in expected})
    with store.session() as s:
        proposal = s.execute(select(Proposal).where(Proposal.loop == loop.NAME)).scalar_one()
        assert proposal.status == "pending" and proposal.evidence["n"] > 0
        record_verdict(s, "i1", proposal.id, approved=True, by="user:m1", now=NOW)
    assert _active_state(store, loop.NAME)[book] == expected


def test_icp_fit_is_written_to_accounts(store: Store, iid: str) -> None:
    snap = icp_world()
    crm = _crm(snap)
    run_chain(store, "i1", settings=SETTINGS, now=NOW, crm=crm, options=Options(loops={"icp": LOOPS["icp"]}))
    fintech = next(a for a in snap.accounts if a.industry == "fintech")
    assert 0 <= crm.fields[("account", fintech.remote_id)]["icp_fit"] <= 100
