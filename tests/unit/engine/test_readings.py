"""Text is read once: sync stores each activity's reading, the chain hands the loops the current ones, and an
edited text or a new taxonomy is read again (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from connector.settings import Settings
from connector.store import Store
from connector.store.tables import ActivityReadingRow, Installation
from crm_adapters.model import ActivityType, Direction, Entity, UserRole
from crm_adapters.snapshot import Snapshot
from jobs import reading
from jobs.engine.chain import Options, run_chain
from jobs.loops.base import Learned, LoopDefinition
from jobs.loops.texts import ReadSnapshot
from jobs.nlp import extract
from jobs.nlp.reading import Reader
from jobs.state import versions
from jobs.sync import sync_installation
from tests.factories import T0, a_deal, a_pipeline, a_user, an_activity
from tests.fakes.memory_crm import MemoryCrm

CALL = "Rep: How do you report today?\nProspect: We build every report by hand. We may delay this to next year."


def _probe_learn(snapshot: Snapshot, state: Mapping[str, Any] | None, now: datetime) -> Learned:
    """What the loop was handed: the stored readings' pains per activity (a plain Snapshot has none)."""
    got = snapshot.readings if isinstance(snapshot, ReadSnapshot) else {}
    return Learned({"pains": {a: sorted(r.transcript.pain_ids()) for a, r in got.items() if r.transcript}})


PROBE = LoopDefinition(name="probe", learn=_probe_learn, decide=lambda s, st, now: [])


@pytest.fixture
def crm() -> MemoryCrm:
    crm = MemoryCrm(page_size=2)
    crm.seed(a_pipeline(), a_user(UserRole.AE, remote_id="u1"), a_deal(remote_id="d1", owner_id="u1"))
    crm.seed(an_activity(ActivityType.CALL, "d1", remote_id="a1", transcript=CALL),
             an_activity(ActivityType.EMAIL, "d1", remote_id="a2", body="It is too expensive.", direction=Direction.INBOUND),
             an_activity(ActivityType.TASK, "d1", remote_id="a3"))
    return crm


@pytest.fixture
def iid(any_store: Store) -> str:
    with any_store.session() as s:
        s.add(Installation(id="i1", crm="sandbox", tenant_id="t1", settings={"quality": {"sample_rate": 0.0}}))
    return "i1"


def _rows(store: Store) -> dict[str, ActivityReadingRow]:
    with store.session() as s:
        return {r.activity_id: r for r in s.execute(select(ActivityReadingRow)).scalars()}


def test_sync_reads_each_activity_as_it_is_stored_and_not_again(any_store: Store, crm: MemoryCrm, iid: str) -> None:
    first = sync_installation(any_store, iid, crm)
    rows = _rows(any_store)
    assert first.read == 3 and set(rows) == {"a1", "a2", "a3"}
    assert {r.taxonomy_version for r in rows.values()} == {Reader().version}
    stored = reading.load(any_store, iid)
    assert stored["a1"].transcript == extract(CALL) and stored["a1"].risk and "a3" not in stored  # a task: nothing read
    assert stored["a2"].email is not None and stored["a2"].email.objection_ids() == {"price"}
    assert sync_installation(any_store, iid, crm).read == 0  # nothing new: nothing read


def test_an_edited_text_is_read_again_and_its_old_reading_is_never_handed_out(any_store: Store, crm: MemoryCrm, iid: str) -> None:
    sync_installation(any_store, iid, crm)
    old = next(a for a in crm.log[Entity.ACTIVITY] if a.remote_id == "a1")
    crm.update(old, transcript="Prospect: our data sits in silos.", remote_updated_at=T0 + timedelta(hours=1))
    again = sync_installation(any_store, iid, crm)
    assert again.read == 1
    assert reading.load(any_store, iid)["a1"].transcript.pain_ids() == {"data_silos"}  # type: ignore[union-attr]


def test_a_taxonomy_change_reads_everything_again_before_the_loops_run(any_store: Store, crm: MemoryCrm, iid: str) -> None:
    sync_installation(any_store, iid, crm)
    with any_store.session() as s:
        s.execute(update(ActivityReadingRow).values(taxonomy_version="an-older-one"))
    assert reading.load(any_store, iid) == {}  # readings of another taxonomy are not current
    report = run_chain(any_store, iid, settings=Settings(testing=True), now=T0 + timedelta(days=1), crm=crm,
                       options=Options(sync=False, loops={"probe": PROBE}))
    assert report.loops["probe"].error == ""
    assert {r.taxonomy_version for r in _rows(any_store).values()} == {Reader().version}
    with any_store.session() as s:
        state = versions.active(s, iid, "probe").state  # type: ignore[union-attr]
    assert state["pains"] == {"a1": ["manual_reporting"]}  # the loop got the readings, read again at this taxonomy
