"""An edited deal is rescored in the same run: decision keys follow the score written, not only the day and model."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from connector.settings import Settings
from connector.store import Store
from connector.store.tables import CardData, DecisionRecord, ModelVersion, OutboxItem
from crm_adapters.model import Deal, Entity
from crm_adapters.sandbox import SandboxCrm
from crm_adapters.writes import AppField
from jobs.engine.chain import Options, run_chain
from jobs.loops.registry import all_loops
from tests.factories import a_sandbox_tenant


def _count(store: Store, iid: str, table: Any) -> int:
    with store.session() as s:
        return int(s.execute(select(func.count()).select_from(table).where(table.installation_id == iid)).scalar_one())


def _card_score(store: Store, iid: str, deal_id: str) -> Any:
    with store.session() as s:
        row = s.get(CardData, (iid, deal_id))
        return None if row is None else (row.payload or {}).get("risk", {}).get("score")


def _risk_versions(store: Store, iid: str) -> list[str]:
    with store.session() as s:
        return list(s.execute(select(ModelVersion.id).where(ModelVersion.installation_id == iid,
                                                            ModelVersion.loop == "deal_risk")).scalars())


@dataclass(frozen=True)
class _Tenant:
    """A sandbox tenant whose deal risk ran once, the first open deal, and a rerun of the chain."""

    store: Store
    iid: str
    crm: SandboxCrm
    deal: Deal
    run: Callable[[], object]
    pushed: list[str]  # a close date pushed three times: an edit that moves the score


@pytest.fixture
def tenant(store: Store, tmp_path: Path) -> Iterator[_Tenant]:
    made = a_sandbox_tenant(store, tmp_path, deals=40, seed=4)
    org = made.org
    options = Options(loops={"deal_risk": all_loops()["deal_risk"]}, workers=1)

    def run() -> object:
        return run_chain(store, made.installation_id, settings=Settings(testing=True),
                         now=org.now + timedelta(hours=1), options=options)

    run()
    crm = SandboxCrm.open(made.crm_url, "t")
    try:
        deal = sorted(org.snapshot().open_deals(), key=lambda d: d.remote_id)[0]
        pushed = [(org.now - timedelta(days=400 - 90 * i)).date().isoformat() for i in range(4)]
        yield _Tenant(store, made.installation_id, crm, deal, run, pushed)
    finally:
        crm.close()


def test_an_edited_deal_gets_its_new_score_the_same_day_and_an_unchanged_rerun_writes_nothing(tenant: _Tenant) -> None:
    store, iid, crm, deal = tenant.store, tenant.iid, tenant.crm, tenant.deal
    before = crm.field_value(Entity.DEAL, deal.remote_id, AppField.RISK_SCORE)
    assert before is not None and _card_score(store, iid, deal.remote_id) == before
    version = _risk_versions(store, iid)
    crm.edit_deal(deal.remote_id, custom={**deal.custom, "close_date_history": tenant.pushed})
    tenant.run()  # same day, same model
    after = crm.field_value(Entity.DEAL, deal.remote_id, AppField.RISK_SCORE)
    assert _risk_versions(store, iid) == version
    assert after != before
    assert _card_score(store, iid, deal.remote_id) == after
    decisions, writes = _count(store, iid, DecisionRecord), _count(store, iid, OutboxItem)
    tenant.run()  # nothing changed: nothing recorded, nothing queued
    assert (_count(store, iid, DecisionRecord), _count(store, iid, OutboxItem)) == (decisions, writes)
    assert crm.field_value(Entity.DEAL, deal.remote_id, AppField.RISK_SCORE) == after


def test_an_edit_undone_the_same_day_gives_the_crm_back_its_first_score_and_a_rerun_writes_nothing(tenant: _Tenant) -> None:
    """A → B → A: the third score's inputs equal the first's, but the CRM holds B's, so it must be written again."""
    store, iid, crm, deal = tenant.store, tenant.iid, tenant.crm, tenant.deal
    first = crm.field_value(Entity.DEAL, deal.remote_id, AppField.RISK_SCORE)
    crm.edit_deal(deal.remote_id, custom={**deal.custom, "close_date_history": tenant.pushed})
    tenant.run()
    assert crm.field_value(Entity.DEAL, deal.remote_id, AppField.RISK_SCORE) != first
    crm.edit_deal(deal.remote_id, custom=dict(deal.custom))  # the edit undone
    tenant.run()
    assert crm.field_value(Entity.DEAL, deal.remote_id, AppField.RISK_SCORE) == first
    assert _card_score(store, iid, deal.remote_id) == first
    decisions, writes = _count(store, iid, DecisionRecord), _count(store, iid, OutboxItem)
    tenant.run()  # nothing changed since: nothing recorded, nothing queued
    assert (_count(store, iid, DecisionRecord), _count(store, iid, OutboxItem)) == (decisions, writes)
