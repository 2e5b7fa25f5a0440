"""A loop the engine runs per deal (incremental.PER_DEAL) decides the same for a deal from that deal's own records
as from the whole snapshot: what lets an on-demand run load only the changed deals."""

from __future__ import annotations

import pytest

from connector.store import Store, related
from connector.store.records import load_snapshot
from crm_adapters.sandbox import load_scenario, simulate
from jobs.engine.incremental import PER_DEAL, only_changed
from jobs.loops.registry import all_loops
from tests.unit.test_store_related import stored


@pytest.mark.parametrize("name", sorted(PER_DEAL))
def test_a_per_deal_loop_decides_a_deal_alike_from_its_own_records(name: str, store: Store) -> None:
    org = simulate(load_scenario(None).scaled(60), seed=5)
    iid = stored(store, org.snapshot())
    with store.session() as s:
        whole = load_snapshot(s, iid)
        chosen = frozenset(sorted(d.remote_id for d in whole.deals)[::4])  # open and closed
        part = related.load_deals(s, iid, chosen)
    loop = all_loops()[name]
    state = loop.learn(whole, None, org.now).state
    expected = only_changed(loop.decide(whole, state, org.now), chosen)
    assert expected and {d.target_id for d in expected} <= chosen
    assert only_changed(loop.decide(part, state, org.now), chosen) == expected
