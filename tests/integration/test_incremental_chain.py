"""An on-demand rerun reads only what changed: edited deals are rescored (fields and card) in that run, no other
deal gets a write, and a rerun with nothing changed decides nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from connector.settings import Settings
from connector.store import Store
from connector.store.records import load_snapshot
from connector.store.tables import CardData, DecisionRecord, OutboxItem
from crm_adapters.model import Entity
from crm_adapters.sandbox import SandboxCrm
from crm_adapters.writes import AppField
from jobs.engine.chain import ChainReport, Options, run_chain
from jobs.loops.deal_risk.loop import decide
from jobs.loops.deal_risk.state import DealRiskState
from jobs.loops.decision import ActionKind
from jobs.loops.registry import all_loops
from jobs.state import versions
from tests.factories import a_sandbox_tenant

LOOPS = {name: all_loops()[name] for name in ("deal_risk", "icp")}  # one per-deal loop, one that reads the tenant


def _install(store: Store, tmp_path: Path) -> tuple[str, Any, SandboxCrm]:
    tenant = a_sandbox_tenant(store, tmp_path, deals=60, seed=5)
    return tenant.installation_id, tenant.org, SandboxCrm.open(tenant.crm_url, "t")


def _rows(store: Store, iid: str, table: Any) -> dict[str, Any]:
    with store.session() as s:
        return {r.id: r for r in s.execute(select(table).where(table.installation_id == iid)).scalars()}


def _current_scores(store: Store, iid: str, now: Any) -> dict[str, Any]:
    """What the active deal-risk version scores every open deal now, from the whole snapshot."""
    with store.session() as s:
        state = versions.state_of(versions.active(s, iid, "deal_risk"), DealRiskState)
        snapshot = load_snapshot(s, iid)
    return {d.target_id: d.payload for d in decide(snapshot, state, now) if d.kind is ActionKind.UPDATE_FIELD}


def test_edited_deals_are_rescored_in_the_rerun_and_no_other_deal_is_written(store: Store, tmp_path: Path) -> None:
    iid, org, crm = _install(store, tmp_path)
    try:
        def run(hours: float, on_demand: bool = True) -> ChainReport:
            options = Options(loops=LOOPS, workers=1, learn_when_due=on_demand)
            return run_chain(store, iid, settings=Settings(testing=True), now=org.now + timedelta(hours=hours), crm=crm,
                             options=options)

        run(0, on_demand=False)
        decisions, writes = _rows(store, iid, DecisionRecord), _rows(store, iid, OutboxItem)
        edited = sorted(d.remote_id for d in org.snapshot().open_deals())[:3]
        for n, deal_id in enumerate(edited):
            pushed = [(org.now - timedelta(days=400 - 90 * i)).date().isoformat() for i in range(3 + n)]
            deal = crm.get_deal(deal_id)
            assert deal is not None
            crm.edit_deal(deal_id, custom={**deal.custom, "close_date_history": pushed}, next_step="call the CFO")
        report = run(1)
        assert report.scope == "3 changed deals" and list(report.loops) == ["deal_risk"] and "icp" in report.skipped
        new_decisions = [r for i, r in _rows(store, iid, DecisionRecord).items() if i not in decisions]
        new_writes = [r for i, r in _rows(store, iid, OutboxItem).items() if i not in writes]
        assert {r.target_id for r in new_decisions} == set(edited)
        assert {r.kind for r in new_decisions} == {"update_field", "update_card"}
        assert sorted(w.payload["remote_id"] for w in new_writes) == edited  # one field write per edited deal, no other
        now = _current_scores(store, iid, org.now + timedelta(hours=1))
        with store.session() as s:
            for deal_id in edited:
                score = now[deal_id][AppField.RISK_SCORE.value]
                assert crm.field_value(Entity.DEAL, deal_id, AppField.RISK_SCORE) == score
                assert s.get(CardData, (iid, deal_id)).payload["risk"]["score"] == score  # type: ignore[union-attr]

        quiet = run(2)  # nothing changed since: nothing is read, decided, recorded or queued
        assert quiet.scope == "nothing changed" and quiet.loops == {}
        assert len(_rows(store, iid, DecisionRecord)) == len(decisions) + len(new_decisions)
        assert len(_rows(store, iid, OutboxItem)) == len(writes) + len(new_writes)
    finally:
        crm.close()
