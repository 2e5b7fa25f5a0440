"""A verdict given in a card closes the proposal's task in the real CRM (fake HubSpot / fake Salesforce through
the real SDK adapters), once, in the convention read_tasks reads; a re-run writes nothing and counts no verdict.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from connector.store import Store
from connector.store.tables import Proposal
from crm_adapters.model import Entity, TaskStatus
from jobs.approvals import proposals
from jobs.loops.decision import ActionKind, Decision, Reason
from tests.factories import T0
from tests.integration.crm_rigs import Rig, hubspot_rig, salesforce_rig
from ui_extensions.card_data import decide

QUICK = {"sync": False, "learn": False, "decide": False}  # run_writeback's mix: approvals read back, outbox sent
CLOSED = {"hubspot": "COMPLETED", "salesforce": "Deferred"}  # how each CRM shows a rejected task


@pytest.fixture(params=["hubspot", "salesforce"])
def rig(request: pytest.FixtureRequest, store: Store, redis_conn: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    if request.param == "hubspot":
        with hubspot_rig(store, redis_conn) as r:
            yield r
    else:
        with salesforce_rig(store, redis_conn, monkeypatch) as r:
            yield r


def _proposal(rig: Rig, store: Store) -> str:
    decision = Decision(loop="icp", kind=ActionKind.PROPOSE_PLAYBOOK_CHANGE, target=Entity.USER,
                        target_id="playbook:icp", key="icp:proposal:closure-test", payload={
                            "title": "ICP definition: include employee_band=200-999",
                            "diff": [{"op": "add", "field": "include", "value": "employee_band=200-999"}],
                            "evidence": {"n": 304}, "fingerprint": "closure-test-icp"},
                        reasons=(Reason("icp_segment", "won 38% vs 28% elsewhere (n=304)", 0.1),))
    with store.session() as s:
        made = proposals.propose(s, rig.installation_id, decision, decision_id=None, manager_id=None, now=T0,
                                 kind=proposals.PLAYBOOK)
        assert made is not None
        return made.id


def test_a_card_rejection_closes_the_crm_task_once(rig: Rig, store: Store) -> None:
    proposal_id = _proposal(rig, store)
    assert rig.run(T0, **QUICK).outbox.sent == 1  # the manager's task exists in the CRM
    with store.session() as s:
        task_id = s.get(Proposal, proposal_id).task_remote_id  # type: ignore[union-attr]
        decide(s, rig.installation_id, proposal_id, approved=False, by="user:manager", reason="not this quarter")
    closing = rig.run(T0 + timedelta(hours=1), **QUICK)
    assert closing.outbox.sent == 1 and closing.approvals.rejected == 0, (closing.outbox, closing.approvals)
    task = next(t for t in rig.app_tasks() if t["id"] == task_id)
    assert task["status"] == CLOSED[rig.crm.value]
    state = rig.harness.adapter.read_tasks([task_id])[0]  # type: ignore[attr-defined]
    assert (state.status, state.comment) == (TaskStatus.REJECTED, "not this quarter")
    writes = rig.write_calls()
    again = rig.run(T0 + timedelta(hours=2), **QUICK)
    assert rig.write_calls() == writes and again.outbox.sent == 0 and again.approvals.rejected == 0
    with store.session() as s:
        assert s.get(Proposal, proposal_id).status == "rejected"  # type: ignore[union-attr]
