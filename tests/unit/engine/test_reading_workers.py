"""Reading in forked workers saves exactly the readings one process reads, on SQLite and PostgreSQL: during a
sync (while the next page is fetched) and in the chain's pass over what is unread; a failure mid-sync stops the
workers and leaves the batches in flight unread for the chain."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete

from connector.store import Store, readings
from connector.store.tables import ActivityReadingRow, Installation
from crm_adapters.model import Activity, ActivityType, Direction, UserRole
from jobs import reading
from jobs.nlp.reading import Reader
from jobs.reading import Readers, read_pending
from jobs.sync import sync_installation
from tests.factories import a_deal, a_pipeline, a_user, an_activity
from tests.fakes.memory_crm import MemoryCrm

TEXTS = [
    "Rep: How do you report today?\nProspect: We build every report by hand. We may delay this to next year.",
    "Prospect: Budget is not an issue. Our data sits in silos.\nRep: What's your timeline?\nProspect: By Q3.",
    "Rep: I understood you build every report by hand. Is that right?\nProspect: Not really, no.",
]


def _activities() -> list[Activity]:
    out = []
    for i in range(41):
        text = f"{TEXTS[i % 3]} (call {i})" if i % 2 else TEXTS[i % 3]  # some texts recur, some are new
        if i % 4 == 3:
            out.append(an_activity(ActivityType.EMAIL, "d1", remote_id=f"a{i:03}", body=text, direction=Direction.INBOUND))
        else:
            out.append(an_activity(ActivityType.CALL, "d1", remote_id=f"a{i:03}", transcript=text, subject="Call"))
    return out


@pytest.fixture
def crm() -> MemoryCrm:
    crm = MemoryCrm(page_size=20)
    crm.seed(a_pipeline(), a_user(UserRole.AE, remote_id="u1"), a_deal(remote_id="d1", owner_id="u1"))
    crm.seed(*_activities())
    return crm


@pytest.fixture
def iid(any_store: Store) -> str:
    with any_store.session() as s:
        s.add(Installation(id="i1", crm="sandbox", tenant_id="t1", settings={}))
    return "i1"


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Small batches go to two workers; counts the batches handed to them."""
    monkeypatch.setattr(reading, "CHUNK", 3)
    monkeypatch.setattr(reading, "MIN_PARALLEL", 4)
    monkeypatch.setattr(reading, "reading_workers", lambda: 2)
    handed: list[int] = []
    workers = Readers._workers

    def counted(self: Readers) -> Any:
        handed.append(1)
        return workers(self)

    monkeypatch.setattr(Readers, "_workers", counted)
    return handed


def _stored(store: Store, iid: str) -> dict[str, dict[str, Any]]:
    with store.session() as s:
        return dict(readings.current(s, iid, Reader().version))


def _one_process() -> dict[str, dict[str, Any]]:
    reader = Reader(memo=False)
    return {a.remote_id: reader.read(a).to_json() for a in _activities()}


def test_a_sync_read_by_forked_workers_saves_what_one_process_reads(any_store: Store, crm: MemoryCrm, iid: str,
                                                                   forks: list[int]) -> None:
    report = sync_installation(any_store, iid, crm)
    assert len(forks) >= 2  # both pages of activities went to the workers
    assert report.read == 41
    assert _stored(any_store, iid) == _one_process()


def test_the_chains_pass_over_unread_activities_reads_them_in_workers_too(any_store: Store, crm: MemoryCrm, iid: str,
                                                                         forks: list[int]) -> None:
    sync_installation(any_store, iid, crm)
    with any_store.session() as s:
        s.execute(delete(ActivityReadingRow))
    forks.clear()
    assert read_pending(any_store, iid).read == 41 and forks
    assert _stored(any_store, iid) == _one_process()


def test_a_failure_mid_sync_stops_the_workers_and_the_chain_reads_what_was_in_flight(
        any_store: Store, crm: MemoryCrm, iid: str, forks: list[int]) -> None:
    sync_installation(any_store, iid, crm)
    with any_store.session() as s:
        s.execute(delete(ActivityReadingRow))
        rows = readings.unread(s, iid, Reader().version, limit=100)
    with pytest.raises(RuntimeError, match="the CRM went away"), Readers(any_store, iid) as readers:
        readers.submit(rows)
        raise RuntimeError("the CRM went away")
    assert forks and readers._pool is None  # the workers are gone
    saved = len(_stored(any_store, iid))  # a batch may have been saved before the failure, never half of one
    assert saved in (0, 41)
    assert read_pending(any_store, iid, workers=1).read == 41 - saved
    assert _stored(any_store, iid) == _one_process()
