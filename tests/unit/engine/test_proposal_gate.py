"""A proposal's manager task (title and body) passes the same text evals at runtime as any generated text:
an invented figure or name blocks it, recorded with the reason, and no proposal or task is written."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from connector.store import Store
from connector.store.tables import DecisionRecord, Proposal
from crm_adapters.model import Entity
from crm_adapters.snapshot import Snapshot
from jobs.engine.chain import Options, run_chain
from jobs.loops.base import LoopDefinition
from jobs.loops.decision import ActionKind, Decision, Reason
from tests.factories import T0
from tests.fakes.memory_crm import MemoryCrm
from tests.unit.engine import loop_fixture
from tests.unit.engine.test_engine import SETTINGS, crm, iid  # noqa: F401  (fixtures)


def _loop(body: str, flag_body: str) -> LoopDefinition:
    """The engine test loop, its playbook proposal carrying `body`, plus an SDR flag carrying `flag_body`."""

    def decide(snapshot: Snapshot, state: Any, now: datetime) -> list[Decision]:
        out = []
        for d in loop_fixture.decide(snapshot, state, now):
            out.append(replace(d, payload={**d.payload, "body": body}) if d.kind is ActionKind.PROPOSE_PLAYBOOK_CHANGE else d)
        reason = Reason("sdr_quality", "3 of the SDR's 8 handoffs lost", 0.4, ("lost 3 of 8",))
        out.append(Decision("test_loop", ActionKind.FLAG_SDR, Entity.USER, "u1", "test:flag:u1",
                            {"title": "Coach the SDR on handoffs", "body": flag_body}, (reason,)))
        return out

    return LoopDefinition("test_loop", loop_fixture.learn, decide, loop_fixture.approve, "gate test loop")


def _run(store: Store, memory: MemoryCrm, loop: LoopDefinition) -> dict[str, DecisionRecord]:
    run_chain(store, "i1", settings=SETTINGS, now=T0 + timedelta(days=1), crm=memory,
              options=Options(loops={"test_loop": loop}))
    with store.session() as s:
        rows = s.execute(select(DecisionRecord).where(DecisionRecord.kind.in_(("propose_playbook_change", "flag_sdr"))))
        return {r.kind: r for r in rows.scalars()}


def test_a_proposal_with_an_invented_figure_or_name_is_blocked_and_not_written(store: Store, crm: MemoryCrm, iid: str) -> None:  # noqa: F811
    rows = _run(store, crm, _loop("Asking it lifts win rate x2.4 (seen on 6 closed deals).",
                                  "Lost 3 of 8; Quentin Zabriskie says the notes are thin."))
    playbook, flag = rows["propose_playbook_change"], rows["flag_sdr"]
    assert (playbook.gate_verdict, playbook.write_status) == ("blocked", "blocked")
    assert "proposal:body" in playbook.gate_reason and "x2.4" in playbook.gate_reason
    assert (flag.gate_verdict, flag.write_status) == ("blocked", "blocked") and "Quentin Zabriskie" in flag.gate_reason
    with store.session() as s:
        assert s.execute(select(Proposal)).first() is None
    assert not [t for t in crm.tasks.values() if "[salesloop] Approve:" in t["subject"]]


def test_a_grounded_proposal_still_becomes_a_manager_task(store: Store, crm: MemoryCrm, iid: str) -> None:  # noqa: F811
    """Guards the test above: the same proposals, citing only their evidence, pass and are written."""
    rows = _run(store, crm, _loop("Seen on 6 closed deals.", "Lost 3 of 8 handoffs."))
    assert {k: (r.gate_verdict, r.write_status) for k, r in rows.items()} == {
        "propose_playbook_change": ("passed", "awaiting"), "flag_sdr": ("passed", "awaiting")}
    bodies = [t["body"] for t in crm.tasks.values() if "[salesloop] Approve:" in t["subject"]]
    assert len(bodies) == 2 and any("Seen on 6 closed deals." in b for b in bodies)
