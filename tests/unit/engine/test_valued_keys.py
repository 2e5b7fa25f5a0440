"""A deal's field or card write is keyed to the deal's records: an edit is a new write, the same one never twice."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from connector.settings import Settings
from connector.store import Store
from connector.store.tables import Installation, OutboxItem
from crm_adapters.model import DealStatus, Entity, UserRole
from crm_adapters.snapshot import Snapshot
from jobs.engine.chain import Options, run_chain
from jobs.engine.route import keyed_to_inputs
from jobs.loops.decision import ActionKind, Decision
from tests.factories import T0, a_deal, a_pipeline, a_user, an_account, an_activity
from tests.fakes.memory_crm import MemoryCrm
from tests.unit.engine.loop_fixture import TEST_LOOP


def a_field_write(score: int) -> Decision:
    return Decision("deal_risk", ActionKind.UPDATE_FIELD, Entity.DEAL, "d1", "deal_risk:fields:d1:2026-01-01:v1",
                    {"risk_score": score, "risk_level": "low"})


def test_the_key_follows_the_deals_records_not_the_clock_nor_our_own_write_back() -> None:
    deal, account = a_deal(remote_id="d1", account_id="a1"), an_account(remote_id="a1")
    calls = [an_activity(deal_id="d1", occurred_at=T0 - timedelta(days=i)) for i in range(3)]
    snapshot = Snapshot(deals=(deal,), accounts=(account,), activities=tuple(calls))

    def key(snap: Snapshot, score: int = 40) -> str:
        return keyed_to_inputs([a_field_write(score)], snap)[0].key

    first = key(snapshot)
    assert first.startswith("deal_risk:fields:d1:2026-01-01:v1:")
    assert key(snapshot, score=41) == first  # the clock alone moved the score: no new write within the day
    assert key(replace(snapshot, activities=tuple(reversed(calls)))) == first  # loaded in another order
    stamped = replace(deal, remote_updated_at=T0, custom={**deal.custom, "salesloop_risk_score": 40})
    assert key(replace(snapshot, deals=(stamped,))) == first  # our write-back moved the CRM's stamp
    assert key(replace(snapshot, deals=(replace(deal, next_step="call the CFO"),))) != first  # a person's edit
    assert key(replace(snapshot, activities=(*calls, an_activity(deal_id="d1")))) != first  # a new activity
    assert key(replace(snapshot, accounts=(replace(account, employees=999),))) != first  # its account changed
    task = replace(a_field_write(40), kind=ActionKind.CREATE_TASK, key="deal_risk:at_risk_list:u1:2026-01-01")
    assert keyed_to_inputs([task], snapshot)[0].key == task.key  # other decisions keep their loop's key


def test_a_field_write_killed_mid_send_is_retried_once_and_never_queued_twice(store: Store) -> None:
    crm = MemoryCrm(page_size=50)
    crm.seed(a_pipeline(), a_user(UserRole.MANAGER, remote_id="m1"), a_user(UserRole.AE, remote_id="u1", manager_id="m1"))
    crm.seed(*[a_deal(remote_id=f"d{i}", owner_id="u1", created_at=T0 - timedelta(days=10 * i)) for i in range(1, 5)])
    crm.seed(*[a_deal(remote_id=f"w{i}", status=DealStatus.WON if i % 2 else DealStatus.LOST) for i in range(4)])
    with store.session() as s:
        s.add(Installation(id="i1", crm="sandbox", tenant_id="t1", settings={"quality": {"sample_rate": 0.0}}))
    now = T0 + timedelta(days=1)
    real = crm.write_fields

    def dies_after_writing(updates):  # type: ignore[no-untyped-def]
        real(updates)  # the CRM took them, then the worker died before recording it
        raise SystemExit("killed")

    crm.write_fields = dies_after_writing  # type: ignore[method-assign]
    options = Options(loops={"test_loop": TEST_LOOP}, workers=1)
    with pytest.raises(SystemExit):
        run_chain(store, "i1", settings=Settings(testing=True), now=now, crm=crm, options=options)
    with store.session() as s:
        queued = int(s.execute(select(func.count()).select_from(OutboxItem)).scalar_one())
    written = list(crm.field_writes)
    crm.write_fields = real  # type: ignore[method-assign]
    run_chain(store, "i1", settings=Settings(testing=True), now=now + timedelta(minutes=5), crm=crm, options=options)
    with store.session() as s:
        keys = list(s.execute(select(OutboxItem.idempotency_key)).scalars())
        pending = int(s.execute(select(func.count()).select_from(OutboxItem).where(OutboxItem.status == "pending")).scalar_one())
    assert len(keys) == queued == len(set(keys)) and pending == 0  # the rerun queued nothing new, and sent what waited
    assert crm.field_writes == written  # the CRM already held those values: the retry changed nothing in it
