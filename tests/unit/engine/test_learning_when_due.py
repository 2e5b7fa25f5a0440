"""Learning on demand runs only when due: a day old, or enough new outcomes; a run with nothing new decides only."""

from __future__ import annotations

from datetime import timedelta

from connector.settings import Settings
from connector.store import Store
from connector.store.tables import Installation, ModelVersion
from crm_adapters.model import DealStatus, UserRole
from jobs.engine import learning
from jobs.engine.chain import Options, run_chain
from jobs.state.versions import CONTENT
from tests.factories import T0, a_deal, a_pipeline, a_user
from tests.fakes.memory_crm import MemoryCrm
from tests.unit.engine.loop_fixture import TEST_LOOP


def test_a_version_is_due_when_new_unmarked_a_day_old_or_outcomes_grew() -> None:
    version = ModelVersion(metrics={CONTENT: {"data": "x"}})
    assert learning.due(None, 100, T0) and learning.due(version, 100, T0)  # never said what it saw
    learning.mark(version, 100, T0)
    assert version.metrics[CONTENT]["data"] == "x"  # what it was trained on is kept
    assert not learning.due(version, 100, T0 + timedelta(hours=1))
    assert not learning.due(version, 100 + learning.MIN_NEW - 1, T0 + timedelta(hours=1))
    assert learning.due(version, 100 + learning.MIN_NEW, T0 + timedelta(hours=1))
    assert learning.due(version, 100, T0 + learning.EVERY)


def test_an_on_demand_rerun_with_nothing_new_neither_learns_nor_reads_the_snapshot(store: Store) -> None:
    crm = MemoryCrm(page_size=50)
    crm.seed(a_pipeline(), a_user(UserRole.MANAGER, remote_id="m1"), a_user(UserRole.AE, remote_id="u1", manager_id="m1"))
    crm.seed(*[a_deal(remote_id=f"d{i}", owner_id="u1") for i in range(3)])
    crm.seed(*[a_deal(remote_id=f"w{i}", status=DealStatus.WON if i % 2 else DealStatus.LOST) for i in range(4)])
    with store.session() as s:
        s.add(Installation(id="i1", crm="sandbox", tenant_id="t1", settings={"quality": {"sample_rate": 0.0}}))
    options = Options(loops={"test_loop": TEST_LOOP}, learn_when_due=True)

    def run(hours: float):  # type: ignore[no-untyped-def]
        now = T0 + timedelta(days=1, hours=hours)
        report = run_chain(store, "i1", settings=Settings(testing=True), now=now, crm=crm, options=options)
        return report.loops.get("test_loop"), report.skipped

    assert run(0)[0].metrics  # no version yet: it learns
    assert run(1) == (None, {"test_loop": "looks at the whole tenant; runs when due"})  # nothing new an hour later
    crm.seed(*[a_deal(remote_id=f"n{i}", status=DealStatus.WON) for i in range(learning.MIN_NEW)])
    assert run(2)[0].metrics  # enough new outcomes: learns again
    assert run(3)[0] is None and run(2 + 20)[0].metrics  # then the day's schedule
