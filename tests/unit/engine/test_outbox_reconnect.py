"""Nothing written is lost or silently stuck: a dead grant keeps writes waiting for the reconnect; a
write whose job was killed at every attempt is given up visibly, with its reason, and can be retried."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pytest
from sqlalchemy import select

from connector.store import Store
from connector.store.tables import Installation, OutboxItem
from crm_adapters.errors import CrmAuthError
from crm_adapters.writes import FieldUpdate, WriteResult
from jobs.engine.chain import ChainReport, settle
from jobs.engine.writes_status import installations_status
from jobs.state import outbox
from tests.fakes.memory_crm import MemoryCrm


class Killed(BaseException):
    """Stands for a SIGKILL mid-send: not an error the outbox can catch or record."""


class FaultyCrm(MemoryCrm):
    """The memory CRM whose field writes fail from the `after`-th call on, with `failure`."""

    def __init__(self, failure: BaseException | None = None, after: int = 0) -> None:
        super().__init__()
        self.failure, self.after, self.calls = failure, after, 0

    def write_fields(self, updates: Sequence[FieldUpdate]) -> WriteResult:
        self.calls += 1
        if self.failure is not None and self.calls > self.after:
            raise self.failure
        return super().write_fields(updates)


def _queue(store: Store, n: int) -> str:
    with store.session() as s:
        s.add(Installation(id="i1", crm="sandbox", tenant_id="t1", settings={}))
    with store.session() as s:
        for i in range(n):
            outbox.enqueue(s, "i1", f"k{i:04d}", "field", {"entity": "deal", "remote_id": str(i), "values": {"risk_level": "high"}})
    return "i1"


def _rows(store: Store) -> list[tuple[str, int, str]]:
    with store.session() as s:
        return [(r.status, r.attempts, r.error) for r in s.execute(select(OutboxItem).order_by(OutboxItem.idempotency_key)).scalars()]


def test_a_grant_revoked_mid_write_back_keeps_the_rest_waiting_and_sends_it_after_the_reconnect(store: Store) -> None:
    n = outbox.BATCH * 2 + 7
    iid = _queue(store, n)
    crm = FaultyCrm(CrmAuthError("refresh token revoked"), after=1)
    with pytest.raises(CrmAuthError):
        outbox.apply(store, iid, crm)
    rows = _rows(store)
    assert [r[0] for r in rows].count("sent") == outbox.BATCH
    assert {(status, attempts) for status, attempts, _ in rows[outbox.BATCH:]} == {("pending", 0)}  # no attempt used up
    assert {error for *_, error in rows[outbox.BATCH:2 * outbox.BATCH]} == {outbox.RECONNECT}  # the batch turned away
    with store.session() as s:
        assert outbox.waiting(s, iid) == {"waiting": n - outbox.BATCH, "given_up": 0}
    crm.failure = None  # the admin reconnected
    report = outbox.apply(store, iid, crm)
    assert (report.sent, report.dead) == (n - outbox.BATCH, 0)
    assert {r[0] for r in _rows(store)} == {"sent"} and len(crm.fields) == n


def test_a_write_killed_at_every_attempt_is_given_up_with_its_reason_and_can_be_retried(store: Store) -> None:
    iid = _queue(store, 3)
    crm = FaultyCrm(Killed())
    for _ in range(outbox.MAX_ATTEMPTS):
        with pytest.raises(Killed):
            outbox.apply(store, iid, crm)
    assert {(s, a) for s, a, _ in _rows(store)} == {("pending", outbox.MAX_ATTEMPTS)}  # before: stuck for ever
    report = outbox.apply(store, iid, crm)
    assert report.dead == 3 and crm.calls == outbox.MAX_ATTEMPTS  # not sent a sixth time
    assert {(s, e) for s, _, e in _rows(store)} == {
        ("dead", f"gave up after {outbox.MAX_ATTEMPTS} attempts: the job sending it stopped each time before the CRM answered")}
    [status] = installations_status(store)
    assert status["writes"] == {"sent": 0, "waiting": 0, "given_up": 3} and len(status["given_up"]) == 3
    with store.session() as s:  # what the admin page's Retry button does
        for item in s.execute(select(OutboxItem)).scalars():
            item.status, item.attempts, item.error = "pending", 0, ""
    crm.failure = None
    assert outbox.apply(store, iid, crm).sent == 3


def test_a_run_that_left_writes_behind_is_not_done(store: Store) -> None:
    iid = _queue(store, 2)
    report = ChainReport(iid)
    settle(store, report)
    assert (report.status, report.writes_waiting) == ("done_with_pending_writes", 2)
    outbox.apply(store, iid, FaultyCrm())
    report = ChainReport(iid)
    settle(store, report)
    assert (report.status, report.writes_waiting) == ("done", 0)


def test_a_reconnect_while_a_run_fails_on_the_old_grant_is_not_undone(store: Store, now: datetime) -> None:
    from connector.settings import Settings
    from connector.store import installations as inst
    from connector.store.crypto import TokenCipher
    from jobs.engine.chain import Options, run_chain

    iid = _queue(store, 2)
    cipher = TokenCipher.from_key_text(Settings(testing=True).token_encryption_key)

    class ReconnectedMeanwhile(FaultyCrm):
        def write_fields(self, updates: Sequence[FieldUpdate]) -> WriteResult:
            with store.session() as s:  # the admin connects again while this call fails on the old grant
                inst.upsert(s, cipher, crm="sandbox", tenant_id="t1", tokens={"access_token": "new"})
            raise CrmAuthError("refresh token revoked")

    with pytest.raises(CrmAuthError):
        run_chain(store, iid, settings=Settings(testing=True), now=now, crm=ReconnectedMeanwhile(),
                  options=Options(sync=False, learn=False, decide=False))
    with store.session() as s:
        assert inst.get(s, iid).status == "active"
        assert outbox.waiting(s, iid) == {"waiting": 2, "given_up": 0}
