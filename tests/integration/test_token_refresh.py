"""The token store under real concurrency: two worker processes, one Redis, one database."""

from __future__ import annotations

import multiprocessing
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis as redis_lib

from connector.store import Store
from connector.store import installations as inst
from connector.store.crypto import TokenCipher
from crm_adapters.auth import Tokens
from crm_adapters.errors import CrmAuthError
from jobs.tokens import StoreTokenSource, heartbeat_idle

CIPHER = TokenCipher(b"k" * 32)
FORK = multiprocessing.get_context("fork")


def _install(store: Store, *, crm: str, expires_at: datetime | None, refresh_token: str = "rt-0") -> str:
    with store.session() as session:
        row = inst.upsert(session, CIPHER, crm=crm, tenant_id=f"{crm}-tenant",
                          tokens={"access_token": "access-0", "refresh_token": refresh_token},
                          expires_at=expires_at, instance_url="https://acme.my.salesforce.com")
        return row.id


def _counting_refresher(redis_url: str):  # type: ignore[no-untyped-def]
    """A refresher that counts its calls in Redis and rotates the refresh token like Salesforce does."""
    conn = redis_lib.Redis.from_url(redis_url, decode_responses=True)

    def refresh(tokens: Tokens) -> Tokens:
        valid = conn.get("fake:valid-refresh-token")
        if valid is not None and valid != tokens.refresh_token:
            raise CrmAuthError("invalid_grant: expired access/refresh token")
        n = conn.incr("fake:refreshes")
        time.sleep(0.3)  # a slow token endpoint widens the race window
        conn.set("fake:valid-refresh-token", f"rt-{n}")
        return Tokens(access_token=f"access-{n}", refresh_token=f"rt-{n}",
                      expires_at=datetime.now(UTC) + timedelta(minutes=30))
    return refresh


def _worker(store: Store, redis_url: str, installation_id: str, after_401: bool, barrier, results) -> None:  # type: ignore[no-untyped-def]
    store.engine.dispose(close=False)  # never share the parent's pooled connections
    source = StoreTokenSource(store, CIPHER, installation_id, _counting_refresher(redis_url),
                              redis=redis_lib.Redis.from_url(redis_url))
    try:
        tokens = source.current()
        barrier.wait(timeout=10)
        if after_401:
            tokens = source.refreshed(tokens)
        results.put(("ok", tokens.access_token, tokens.refresh_token, tokens.version))
    except Exception as exc:  # reported to the parent, which fails the test
        results.put(("error", type(exc).__name__, str(exc), 0))


def _race(store: Store, redis_url: str, installation_id: str, *, after_401: bool) -> list[tuple]:  # type: ignore[type-arg]
    barrier, results = FORK.Barrier(2), FORK.Queue()
    procs = [FORK.Process(target=_worker, args=(store, redis_url, installation_id, after_401, barrier, results))
             for _ in range(2)]
    for p in procs:
        p.start()
    out = [results.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(timeout=10)
    return out


def test_two_workers_refresh_an_expiring_hubspot_token_once(store: Store, redis_conn, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    iid = _install(store, crm="hubspot", expires_at=datetime.now(UTC) + timedelta(minutes=1))
    out = _race_proactive(store, redis_url, iid)
    assert [r[0] for r in out] == ["ok", "ok"], out
    assert int(redis_conn.get("fake:refreshes")) == 1
    assert {r[1] for r in out} == {"access-1"}
    with store.session() as session:
        row = inst.get(session, iid)
        assert row.token_version == 2
        assert inst.read_tokens(row, CIPHER)["access_token"] == "access-1"


def _race_proactive(store: Store, redis_url: str, iid: str) -> list[tuple]:  # type: ignore[type-arg]
    """Both workers call current() at the same moment on a token about to expire."""
    barrier, results = FORK.Barrier(2), FORK.Queue()

    def work() -> None:
        store.engine.dispose(close=False)
        source = StoreTokenSource(store, CIPHER, iid, _counting_refresher(redis_url),
                                  redis=redis_lib.Redis.from_url(redis_url))
        barrier.wait(timeout=10)
        try:
            t = source.current()
            results.put(("ok", t.access_token, t.refresh_token, t.version))
        except Exception as exc:
            results.put(("error", type(exc).__name__, str(exc), 0))

    procs = [FORK.Process(target=work) for _ in range(2)]
    for p in procs:
        p.start()
    out = [results.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(timeout=10)
    return out


def test_salesforce_rotation_race_after_401_refreshes_once_and_nobody_gets_invalid_grant(
    store: Store, redis_conn, redis_url: str  # type: ignore[no-untyped-def]
) -> None:
    redis_conn.set("fake:valid-refresh-token", "rt-0")
    iid = _install(store, crm="salesforce", expires_at=None)
    out = _race(store, redis_url, iid, after_401=True)
    assert [r[0] for r in out] == ["ok", "ok"], out
    assert int(redis_conn.get("fake:refreshes")) == 1
    assert {(r[1], r[2], r[3]) for r in out} == {("access-1", "rt-1", 2)}
    with store.session() as session:
        assert inst.get(session, iid).status == "active"


def test_without_a_known_expiry_current_does_not_refresh(store: Store, redis_conn, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    iid = _install(store, crm="salesforce", expires_at=None)
    source = StoreTokenSource(store, CIPHER, iid, _counting_refresher(redis_url), redis=redis_conn)
    assert source.current().access_token == "access-0"
    assert redis_conn.get("fake:refreshes") is None


def test_a_stale_caller_gets_the_newer_tokens_without_a_second_refresh(store: Store, redis_conn, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    iid = _install(store, crm="salesforce", expires_at=None)
    source = StoreTokenSource(store, CIPHER, iid, _counting_refresher(redis_url), redis=redis_conn)
    stale = source.current()
    first = source.refreshed(stale)
    second = source.refreshed(stale)
    assert first == second and first.version == 2
    assert int(redis_conn.get("fake:refreshes")) == 1


@pytest.mark.parametrize("uninstalled, status", [(False, "needs_reauth"), (True, "uninstalled")])
def test_invalid_grant_marks_the_installation_and_later_calls_fail_fast(
    store: Store, redis_conn, uninstalled: bool, status: str  # type: ignore[no-untyped-def]
) -> None:
    iid = _install(store, crm="hubspot", expires_at=datetime.now(UTC) - timedelta(minutes=1))
    calls = []

    def refused(tokens: Tokens) -> Tokens:
        calls.append(tokens)
        raise CrmAuthError("invalid_grant: refresh token is invalid, expired or revoked", uninstalled=uninstalled)

    source = StoreTokenSource(store, CIPHER, iid, refused, redis=redis_conn)
    with pytest.raises(CrmAuthError):
        source.current()
    for _ in range(3):
        with pytest.raises(CrmAuthError):
            source.current()
    assert len(calls) == 1  # no retry storm against the CRM
    with store.session() as session:
        row = inst.get(session, iid)
        assert row.status == status
        assert "invalid_grant" in row.status_reason


def test_embedded_mode_serialises_refresh_with_a_process_lock(store: Store) -> None:
    import threading

    iid = _install(store, crm="hubspot", expires_at=datetime.now(UTC))
    count = []

    def refresh(tokens: Tokens) -> Tokens:
        count.append(1)
        time.sleep(0.2)
        return Tokens(access_token="access-x", expires_at=datetime.now(UTC) + timedelta(minutes=30))

    results: list[Tokens] = []
    threads = [threading.Thread(target=lambda: results.append(
        StoreTokenSource(store, CIPHER, iid, refresh).current())) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(count) == 1
    assert {r.access_token for r in results} == {"access-x"}
    assert {r.refresh_token for r in results} == {"rt-0"}  # kept when the CRM sends none back


def test_heartbeat_refreshes_only_salesforce_orgs_idle_for_25_days(store: Store, redis_conn, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    idle = _install(store, crm="salesforce", expires_at=None)
    with store.session() as session:
        busy = inst.upsert(session, CIPHER, crm="salesforce", tenant_id="busy", tokens={"access_token": "b"}).id
        inst.get(session, idle).last_refresh_at = datetime.now(UTC) - timedelta(days=26)
    done = heartbeat_idle(store, CIPHER, lambda row: _counting_refresher(redis_url), redis=redis_conn)
    assert done == [idle]
    assert busy not in done
    assert int(redis_conn.get("fake:refreshes")) == 1


def test_a_reconnect_while_the_old_grant_is_refused_stays_active_and_keeps_its_jobs(
    store: Store, redis_conn  # type: ignore[no-untyped-def]
) -> None:
    """The admin reconnects between the CRM refusing the old grant and the worker marking it dead."""
    from jobs import queues

    iid = _install(store, crm="hubspot", expires_at=datetime.now(UTC) - timedelta(minutes=1))
    backfill: list[str] = []

    def refused_after_a_reconnect(tokens: Tokens) -> Tokens:
        _install(store, crm="hubspot", expires_at=None, refresh_token="rt-new")  # the OAuth callback: new grant
        backfill.append(queues.enqueue_backfill(iid, connection=redis_conn).id)  # ... and its backfill
        raise CrmAuthError("invalid_grant: refresh token is invalid, expired or revoked")

    with pytest.raises(CrmAuthError):
        StoreTokenSource(store, CIPHER, iid, refused_after_a_reconnect, redis=redis_conn).current()
    with store.session() as session:
        assert inst.get(session, iid).status == "active"
    from rq.job import Job

    assert Job.fetch(backfill[0], connection=redis_conn).get_status(refresh=True) == "queued"
