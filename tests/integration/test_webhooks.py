"""HubSpot webhooks through the real app: signature, dedupe, privacy deletion, malformed bodies."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from connector.app import create_app
from connector.settings import Settings
from connector.signatures import decode_uri, v3_signature
from connector.store import Store
from connector.store import installations as inst
from connector.store.records import upsert_records
from connector.store.tables import AuditEntry, CrmRecord, WebhookEvent
from crm_adapters.model import Entity
from tests.conftest import require
from tests.factories import a_contact, a_deal, a_role

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
SECRET = "hub-secret"
PUBLIC = "https://salesloop.example.com"


@pytest.fixture
def app(store: Store):  # type: ignore[no-untyped-def]
    settings = Settings(testing=True, public_base_url=PUBLIC, hubspot_client_id="cid", hubspot_client_secret=SECRET)
    app = create_app(settings, store=store)
    app.extensions["salesloop.clock"] = lambda: NOW
    return app


@pytest.fixture
def installation_id(app) -> str:  # type: ignore[no-untyped-def]
    store = app.extensions["salesloop.store"]
    with store.session() as session:
        return inst.upsert(session, app.extensions["salesloop.cipher"], crm="hubspot", tenant_id="62515",
                           tokens={"access_token": "a", "refresh_token": "r"}).id


def _ts(at: datetime = NOW) -> str:
    return str(int(at.timestamp() * 1000))


def _post(client, body: bytes, *, path: str = "/webhooks/hubspot", signed_url: str | None = None,  # type: ignore[no-untyped-def]
          ts: str | None = None, secret: str = SECRET):
    ts = ts or _ts()
    sig = v3_signature(secret, "POST", signed_url or PUBLIC + path, body, ts)
    return client.post(path, data=body, content_type="application/json",
                       headers={"X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": ts})


def _event(**kw):  # type: ignore[no-untyped-def]
    base = {"eventId": 1, "subscriptionId": 12345, "portalId": 62515, "appId": 54321, "occurredAt": 1780304400000,
            "subscriptionType": "deal.propertyChange", "attemptNumber": 0, "objectId": 123,
            "propertyName": "dealstage", "propertyValue": "closedwon", "changeSource": "CRM"}
    return {**base, **kw}


def _sync_requests(store: Store) -> list[dict]:  # type: ignore[type-arg]
    with store.session() as s:
        return [a.detail for a in s.execute(select(AuditEntry).where(AuditEntry.action == "sync_requested")).scalars()]


def test_known_answer_vector_from_the_hubspot_sdk() -> None:
    sig = v3_signature("yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy", "POST", "https://www.example.com/webhook_uri",
                       b"{'example_field':'example_value'}", "1693657560000")
    assert sig == "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y="


def test_uri_decoding_follows_hubspots_list_and_agrees_with_the_sdk() -> None:
    from hubspot.utils.signature import Signature

    raw = "https://x.io/hook?email=a%40b.com&path=%2Fdeals%3Fx%2Cy&space=%20"
    assert decode_uri(raw) == "https://x.io/hook?email=a@b.com&path=/deals?x,y&space=%20"
    body = '[{"objectId":1}]'
    ours = v3_signature("s", "POST", raw, body.encode(), "1693657560000")
    sdk = Signature.get_signature("s", body, "v3", decode_uri(raw), "POST", "1693657560000")
    assert ours == sdk


def test_good_delivery_is_recorded_and_an_incremental_sync_requested(app, installation_id: str) -> None:  # type: ignore[no-untyped-def]
    body = json.dumps([_event(), _event(eventId=2, objectId=124), _event(eventId=3, subscriptionType="company.creation",
                                                                         objectId=9, propertyName=None)]).encode()
    resp = _post(app.test_client(), body)
    assert resp.status_code == 200, resp.json
    assert resp.json == {"received": 3, "duplicates": 0}
    requests = _sync_requests(app.extensions["salesloop.store"])
    assert requests == [{"kind": "incremental", "objects": {"account": ["9"], "deal": ["123", "124"]}}]


def test_a_retried_delivery_is_not_processed_twice(app, installation_id: str) -> None:  # type: ignore[no-untyped-def]
    body = json.dumps([_event()]).encode()
    client = app.test_client()
    assert _post(client, body).json == {"received": 1, "duplicates": 0}
    assert _post(client, body).json == {"received": 0, "duplicates": 1}
    assert len(_sync_requests(app.extensions["salesloop.store"])) == 1


@pytest.mark.parametrize("case", ["wrong_secret", "stale", "future", "missing", "other_query", "proxy_scheme"])
def test_bad_signatures_get_401_a_log_line_and_nothing_stored(app, installation_id: str, caplog, case: str) -> None:  # type: ignore[no-untyped-def]
    body = json.dumps([_event()]).encode()
    client = app.test_client()
    caplog.set_level(logging.WARNING, logger="connector.webhooks")
    if case == "wrong_secret":
        resp = _post(client, body, secret="not-the-secret")
    elif case == "stale":
        resp = _post(client, body, ts=_ts(NOW - timedelta(minutes=5, seconds=1)))
    elif case == "future":
        resp = _post(client, body, ts=_ts(NOW + timedelta(minutes=6)))
    elif case == "missing":
        resp = client.post("/webhooks/hubspot", data=body, content_type="application/json")
    elif case == "other_query":
        resp = _post(client, body, path="/webhooks/hubspot?x=2", signed_url=PUBLIC + "/webhooks/hubspot?x=1")
    else:  # signed over the URL Flask sees behind a TLS-terminating proxy, not the public one
        resp = _post(client, body, signed_url="http://localhost/webhooks/hubspot")
    assert resp.status_code == 401
    assert resp.json["code"] == "bad_signature"
    assert any("rejected HubSpot webhook" in r.getMessage() for r in caplog.records)
    with app.extensions["salesloop.store"].session() as s:
        assert s.execute(select(WebhookEvent)).first() is None
    assert _sync_requests(app.extensions["salesloop.store"]) == []


def test_a_delivery_just_inside_five_minutes_is_accepted(app, installation_id: str) -> None:  # type: ignore[no-untyped-def]
    resp = _post(app.test_client(), json.dumps([_event()]).encode(), ts=_ts(NOW - timedelta(minutes=4, seconds=59)))
    assert resp.status_code == 200


def test_the_query_string_is_part_of_what_is_signed(app, installation_id: str) -> None:  # type: ignore[no-untyped-def]
    resp = _post(app.test_client(), json.dumps([_event()]).encode(), path="/webhooks/hubspot?source=app%3A1")
    assert resp.status_code == 200


@pytest.mark.parametrize("body", [b"not json {", b'{"objectId": 1}', b'[{"objectId": 1}]', b"[1, 2]", b"\xff\xfe["])
def test_a_well_signed_malformed_body_gets_400_and_is_kept_raw(app, installation_id: str, body: bytes) -> None:  # type: ignore[no-untyped-def]
    resp = _post(app.test_client(), body)
    assert resp.status_code == 400
    assert resp.json["code"] == "malformed_webhook"
    with app.extensions["salesloop.store"].session() as s:
        rows = s.execute(select(WebhookEvent)).scalars().all()
    assert [r.status for r in rows] == ["malformed"]
    assert rows[0].raw == body.decode("utf-8", "backslashreplace")


def test_privacy_deletion_purges_the_contact_and_its_roles(app, installation_id: str) -> None:  # type: ignore[no-untyped-def]
    store = app.extensions["salesloop.store"]
    with store.session() as s:
        upsert_records(s, installation_id, Entity.CONTACT, [a_contact(remote_id="501"), a_contact(remote_id="502")])
        upsert_records(s, installation_id, Entity.DEAL_CONTACT_ROLE,
                       [a_role(remote_id="r1", deal_id="123", contact_id="501"),
                        a_role(remote_id="r2", deal_id="123", contact_id="502")])
    body = json.dumps([_event(subscriptionType="contact.privacyDeletion", objectId=501, propertyName=None)]).encode()
    assert _post(app.test_client(), body).status_code == 200
    with store.session() as s:
        left = {(r.entity, r.remote_id) for r in s.execute(select(CrmRecord)).scalars()}
    assert left == {("contact", "502"), ("deal_contact_role", "r2")}
    assert _sync_requests(store) == []


def test_deal_deletion_marks_the_deal_deleted(app, installation_id: str) -> None:  # type: ignore[no-untyped-def]
    store = app.extensions["salesloop.store"]
    with store.session() as s:
        upsert_records(s, installation_id, Entity.DEAL, [a_deal(remote_id="123")])
    body = json.dumps([_event(subscriptionType="deal.deletion", propertyName=None)]).encode()
    assert _post(app.test_client(), body).status_code == 200
    with store.session() as s:
        assert s.get(CrmRecord, (installation_id, "deal", "123")).deleted is True


def test_events_for_an_unknown_portal_are_kept_but_ignored(app) -> None:  # type: ignore[no-untyped-def]
    resp = _post(app.test_client(), json.dumps([_event(portalId=999)]).encode())
    assert resp.status_code == 200
    with app.extensions["salesloop.store"].session() as s:
        assert [r.status for r in s.execute(select(WebhookEvent)).scalars()] == ["ignored"]
    assert _sync_requests(app.extensions["salesloop.store"]) == []


def test_with_redis_the_sync_is_enqueued_on_rq_once(store: Store, redis_conn, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    from rq.job import Job

    from jobs.queues import job_id

    settings = Settings(testing=True, public_base_url=PUBLIC, hubspot_client_id="cid", hubspot_client_secret=SECRET,
                        redis_url=redis_url)
    app = create_app(settings, store=store)
    app.extensions["salesloop.clock"] = lambda: NOW
    with store.session() as session:
        iid = inst.upsert(session, app.extensions["salesloop.cipher"], crm="hubspot", tenant_id="62515",
                          tokens={"access_token": "a"}).id
    client = app.test_client()
    assert _post(client, json.dumps([_event()]).encode()).status_code == 200
    assert _post(client, json.dumps([_event(eventId=9, objectId=5)]).encode()).status_code == 200
    job = Job.fetch(job_id("sync", iid), connection=redis_conn)
    assert job.get_status() == "queued" and job.args == (iid,)
    assert _sync_requests(store) == []  # enqueued, not merely recorded


def test_after_uninstall_privacy_deletions_still_purge_but_nothing_syncs(app, installation_id: str) -> None:  # type: ignore[no-untyped-def]
    store = app.extensions["salesloop.store"]
    with store.session() as s:
        upsert_records(s, installation_id, Entity.CONTACT, [a_contact(remote_id="501")])
        inst.set_status(s, installation_id, inst.InstallationStatus.UNINSTALLED, "test")
    body = json.dumps([_event(subscriptionType="contact.privacyDeletion", objectId=501, propertyName=None),
                       _event(eventId=2)]).encode()
    assert _post(app.test_client(), body).status_code == 200
    with store.session() as s:
        assert s.execute(select(CrmRecord)).first() is None
        assert sorted(r.status for r in s.execute(select(WebhookEvent)).scalars()) == ["done", "ignored"]
    assert _sync_requests(store) == []


def test_a_privacy_deletion_touches_only_its_own_portal(app, installation_id: str) -> None:  # type: ignore[no-untyped-def]
    store = app.extensions["salesloop.store"]
    with store.session() as s:
        other = inst.upsert(s, app.extensions["salesloop.cipher"], crm="hubspot", tenant_id="99999",
                            tokens={"access_token": "b"}).id
        for iid in (installation_id, other):
            upsert_records(s, iid, Entity.CONTACT, [a_contact(remote_id="501")])
    body = json.dumps([_event(subscriptionType="contact.privacyDeletion", objectId=501, propertyName=None)]).encode()
    assert _post(app.test_client(), body).status_code == 200
    with store.session() as s:
        assert [r.installation_id for r in s.execute(select(CrmRecord)).scalars()] == [other]


def _stored_keys(store: Store) -> list[str]:
    with store.session() as s:
        return sorted(s.execute(select(WebhookEvent.event_key)).scalars())


def test_the_ingest_connection_keeps_its_no_fsync_setting_to_itself(app, installation_id: str) -> None:  # type: ignore[no-untyped-def]
    store = app.extensions["salesloop.store"]
    require(store.engine.dialect.name == "postgresql", "PostgreSQL: set DATABASE_URL=postgresql://...")
    assert _post(app.test_client(), json.dumps([_event()]).encode()).status_code == 200
    assert store.hint_write(lambda c: c.exec_driver_sql("SHOW synchronous_commit").scalar()) == "off"
    with store.engine.connect() as pooled:  # every other user of the store still waits for the disk
        assert pooled.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"


def test_a_delivery_after_the_server_dropped_the_connection_is_stored(app, installation_id: str) -> None:  # type: ignore[no-untyped-def]
    """What a PostgreSQL restart does to the ingest connection: it is replaced and the delivery kept, no 5xx."""
    store = app.extensions["salesloop.store"]
    require(store.engine.dialect.name == "postgresql", "PostgreSQL: set DATABASE_URL=postgresql://...")
    client = app.test_client()
    assert _post(client, json.dumps([_event()]).encode()).status_code == 200
    backend = store.hint_write(lambda c: c.exec_driver_sql("SELECT pg_backend_pid()").scalar())
    with store.engine.begin() as other:
        assert other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend}).scalar() is True
    resp = _post(client, json.dumps([_event(eventId=2, objectId=124)]).encode())
    assert resp.status_code == 200 and resp.json == {"received": 1, "duplicates": 0}
    assert len(_stored_keys(store)) == 2
    assert store.hint_write(lambda c: c.exec_driver_sql("SELECT pg_backend_pid()").scalar()) != backend


def test_if_redis_fails_nothing_is_kept_so_hubspots_retry_is_not_a_duplicate(store: Store) -> None:
    """The sync is asked for before the events are written: a Redis outage answers 503 and keeps nothing."""
    settings = Settings(testing=True, public_base_url=PUBLIC, hubspot_client_id="cid", hubspot_client_secret=SECRET,
                        redis_url="redis://127.0.0.1:1/0")  # nothing listens there
    app = create_app(settings, store=store)
    app.extensions["salesloop.clock"] = lambda: NOW
    with store.session() as session:
        inst.upsert(session, app.extensions["salesloop.cipher"], crm="hubspot", tenant_id="62515",
                    tokens={"access_token": "a"})
    resp = _post(app.test_client(), json.dumps([_event()]).encode())
    assert resp.status_code == 503 and resp.json["code"] == "queue_unavailable"
    assert _stored_keys(store) == []
