"""Install and uninstall through the real app; the CRMs' OAuth endpoints are answered by `responses`."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest
import responses
from sqlalchemy import select

from connector.app import create_app
from connector.installations import purge_expired
from connector.oauth import HUBSPOT_SCOPES
from connector.settings import Settings
from connector.store import Store
from connector.store import installations as inst
from connector.store.records import upsert_records
from connector.store.tables import AuditEntry, CrmRecord, Installation
from crm_adapters.model import Entity
from tests.factories import a_deal

PUBLIC = "https://salesloop.example.com"
HS_API = "https://api.hubapi.com"
SF_LOGIN = "https://login.salesforce.com"
SF_SECRET = "sf-secret"
ORG = "00D5e000000AbCdEAF"
JSON = {"Accept": "application/json"}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(store: Store, clock: Clock):  # type: ignore[no-untyped-def]
    settings = Settings(testing=True, public_base_url=PUBLIC, hubspot_client_id="hs-cid", hubspot_client_secret="hs-secret",
                        salesforce_client_id="sf-cid", salesforce_client_secret=SF_SECRET)
    app = create_app(settings, store=store)
    app.extensions["salesloop.clock"] = clock
    return app


def _state_of(resp) -> tuple[str, dict]:  # type: ignore[no-untyped-def, type-arg]
    assert resp.status_code == 302, resp.data
    q = parse_qs(urlparse(resp.headers["Location"]).query)
    return q["state"][0], q


def _hubspot_endpoints(hub_id: int = 62515, user: str = "admin@acme.test", access: str = "hs-access-1") -> None:
    responses.add(responses.POST, f"{HS_API}/oauth/2026-03/token", json={
        "token_type": "bearer", "access_token": access, "refresh_token": "na1-refresh", "expires_in": 1800,
        "hub_id": hub_id, "token_use": "access_token", "scopes": list(HUBSPOT_SCOPES)})
    responses.add(responses.POST, f"{HS_API}/oauth/2026-03/token/introspect", json={
        "active": True, "hub_id": hub_id, "user": user, "user_id": 77, "hub_domain": "acme.hubspot.com",
        "scopes": list(HUBSPOT_SCOPES), "token_use": "access_token", "expires_in": 1800})


def _installations(store: Store) -> list[Installation]:
    with store.session() as s:
        return list(s.execute(select(Installation)).scalars())


def _actions(store: Store) -> list[str]:
    with store.session() as s:
        return [a.action for a in s.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars()]


@responses.activate
def test_hubspot_install_stores_an_encrypted_installation_and_requests_a_backfill(app, store: Store) -> None:  # type: ignore[no-untyped-def]
    _hubspot_endpoints()
    client = app.test_client()
    state, q = _state_of(client.get("/install/hubspot"))
    assert q["client_id"] == ["hs-cid"]
    assert q["redirect_uri"] == [f"{PUBLIC}/oauth/hubspot/callback"]
    assert q["scope"][0].split(" ") == list(HUBSPOT_SCOPES)
    resp = client.get(f"/oauth/hubspot/callback?code=auth-code&state={state}", headers=JSON)
    assert resp.status_code == 200, resp.json
    assert resp.json["tenant_id"] == "62515" and resp.json["backfill"] == "recorded"
    exchange = parse_qs(responses.calls[0].request.body)
    assert exchange["grant_type"] == ["authorization_code"] and exchange["code"] == ["auth-code"]
    assert exchange["redirect_uri"] == [f"{PUBLIC}/oauth/hubspot/callback"]
    [row] = _installations(store)
    assert (row.crm, row.tenant_id, row.installed_by, row.name) == ("hubspot", "62515", "admin@acme.test", "acme.hubspot.com")
    assert b"hs-access-1" not in row.tokens and b"na1-refresh" not in row.tokens
    assert inst.read_tokens(row, app.extensions["salesloop.cipher"]) == {"access_token": "hs-access-1", "refresh_token": "na1-refresh"}
    assert row.access_expires_at.replace(tzinfo=UTC) == datetime(2026, 6, 1, 9, 30, tzinfo=UTC)
    assert "sync_requested" in _actions(store)
    assert {"fields_provisioned", "fields_pending"} & set(_actions(store))


@responses.activate
def test_a_replayed_callback_is_refused(app, store: Store) -> None:  # type: ignore[no-untyped-def]
    _hubspot_endpoints()
    client = app.test_client()
    state, _ = _state_of(client.get("/install/hubspot"))
    assert client.get(f"/oauth/hubspot/callback?code=c&state={state}", headers=JSON).status_code == 200
    again = client.get(f"/oauth/hubspot/callback?code=c&state={state}", headers=JSON)
    assert again.status_code == 400 and again.json["code"] == "invalid_state"


@responses.activate
def test_a_state_replayed_with_a_copied_session_cookie_is_refused_by_the_nonce_table(app, store: Store) -> None:  # type: ignore[no-untyped-def]
    _hubspot_endpoints()
    client = app.test_client()
    state, _ = _state_of(client.get("/install/hubspot"))
    cookie = client.get_cookie("session").value
    assert client.get(f"/oauth/hubspot/callback?code=c&state={state}", headers=JSON).status_code == 200
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    resp = thief.get(f"/oauth/hubspot/callback?code=c&state={state}", headers=JSON)
    assert resp.status_code == 400 and "already used" in resp.json["message"]


@pytest.mark.parametrize("case", ["missing", "tampered", "expired", "other_browser", "other_crm", "declined"])
@responses.activate
def test_bad_states_get_400_with_a_clear_message(app, store: Store, clock: Clock, case: str) -> None:  # type: ignore[no-untyped-def]
    _hubspot_endpoints()
    client = app.test_client()
    state, _ = _state_of(client.get("/install/hubspot"))
    url = f"/oauth/hubspot/callback?code=c&state={state}"
    if case == "missing":
        url = "/oauth/hubspot/callback?code=c"
    elif case == "tampered":
        url = f"/oauth/hubspot/callback?code=c&state={state[:-2]}xx"
    elif case == "expired":
        clock.now += timedelta(minutes=11)
    elif case == "other_browser":
        client = app.test_client()
    elif case == "other_crm":
        url = f"/oauth/salesforce/callback?code=c&state={state}"
    else:
        url = f"/oauth/hubspot/callback?error=access_denied&error_description=user+said+no&state={state}"
    resp = client.get(url, headers=JSON)
    assert resp.status_code == 400, resp.json
    assert resp.json["code"] in ("invalid_state", "install_declined")
    assert len(resp.json["message"]) > 20
    assert _installations(store) == []
    assert len(responses.calls) == 0  # nothing reached the CRM


@responses.activate
def test_reinstall_and_a_second_admin_map_to_the_same_tenant(app, store: Store) -> None:  # type: ignore[no-untyped-def]
    for user, access in (("first@acme.test", "a1"), ("second@acme.test", "a2")):
        responses.reset()
        _hubspot_endpoints(user=user, access=access)
        client = app.test_client()
        state, _ = _state_of(client.get("/install/hubspot"))
        assert client.get(f"/oauth/hubspot/callback?code=c&state={state}", headers=JSON).status_code == 200
    [row] = _installations(store)
    assert row.installed_by == "second@acme.test" and row.token_version == 2
    assert inst.read_tokens(row, app.extensions["salesloop.cipher"])["access_token"] == "a2"


def _sf_token(verifier_check=None, *, secret: str = SF_SECRET, org: str = ORG):  # type: ignore[no-untyped-def]
    def reply(request):  # type: ignore[no-untyped-def]
        form = parse_qs(request.body)
        if verifier_check is not None:
            verifier_check(form)
        ident, issued = f"{SF_LOGIN}/id/{org}/0055e000001XyZaAAK", "1780304400000"
        sig = base64.b64encode(hmac.new(secret.encode(), (ident + issued).encode(), hashlib.sha256).digest()).decode()
        return 200, {}, __import__("json").dumps({
            "access_token": f"{org}!AQ.access", "refresh_token": "5Aep.refresh", "instance_url": "https://acme.my.salesforce.com",
            "id": ident, "issued_at": issued, "signature": sig, "token_type": "Bearer", "scope": "api refresh_token id"})
    return reply


@responses.activate
def test_salesforce_install_uses_pkce_and_stores_the_org(app, store: Store) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    state, q = _state_of(client.get("/install/salesforce?env=production"))
    assert q["code_challenge_method"] == ["S256"] and q["scope"] == ["api refresh_token id"]
    challenge = q["code_challenge"][0]
    seen = {}

    def check(form):  # type: ignore[no-untyped-def]
        verifier = form["code_verifier"][0]
        seen["ok"] = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=") == challenge
        seen["secret"] = form["client_secret"] == [SF_SECRET]

    responses.add_callback(responses.POST, f"{SF_LOGIN}/services/oauth2/token", callback=_sf_token(check))
    resp = client.get(f"/oauth/salesforce/callback?code=sf-code&state={state}", headers=JSON)
    assert resp.status_code == 200, resp.json
    assert seen == {"ok": True, "secret": True}
    [row] = _installations(store)
    assert (row.tenant_id, row.login_host, row.instance_url) == (ORG, SF_LOGIN, "https://acme.my.salesforce.com")
    assert row.access_expires_at is None
    assert b"5Aep.refresh" not in row.tokens


@responses.activate
def test_a_salesforce_token_with_a_bad_signature_is_not_trusted(app, store: Store) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    state, _ = _state_of(client.get("/install/salesforce?env=production"))
    responses.add_callback(responses.POST, f"{SF_LOGIN}/services/oauth2/token", callback=_sf_token(secret="forged"))
    resp = client.get(f"/oauth/salesforce/callback?code=c&state={state}", headers=JSON)
    assert resp.status_code == 400 and resp.json["code"] == "bad_signature"
    assert _installations(store) == []


@pytest.mark.parametrize("query, host", [
    ("env=sandbox", "https://test.salesforce.com"),
    ("env=mydomain&host=acme.my.salesforce.com", "https://acme.my.salesforce.com"),
    ("env=mydomain&host=Acme--uat.sandbox.my.salesforce.com", "https://acme--uat.sandbox.my.salesforce.com"),
])
def test_salesforce_login_hosts(app, query: str, host: str) -> None:  # type: ignore[no-untyped-def]
    resp = app.test_client().get(f"/install/salesforce?{query}")
    assert resp.headers["Location"].startswith(f"{host}/services/oauth2/authorize?")
    assert "code_verifier" not in resp.headers["Location"]


@pytest.mark.parametrize("query", ["env=mydomain&host=evil.example.com", "env=mydomain&host=acme.my.salesforce.com.evil.io",
                                   "env=mydomain", "env=staging"])
def test_salesforce_refuses_hosts_that_are_not_salesforce(app, query: str) -> None:  # type: ignore[no-untyped-def]
    resp = app.test_client().get(f"/install/salesforce?{query}")
    assert resp.status_code == 400 and resp.json["code"] == "bad_request"


def _installed(app, store: Store) -> tuple:  # type: ignore[no-untyped-def, type-arg]
    _hubspot_endpoints()
    client = app.test_client()
    state, _ = _state_of(client.get("/install/hubspot"))
    client.get(f"/oauth/hubspot/callback?code=c&state={state}", headers=JSON)
    return client, _installations(store)[0].id


@responses.activate
def test_admin_uninstall_needs_csrf_then_revokes_and_marks_uninstalled(app, store: Store) -> None:  # type: ignore[no-untyped-def]
    client, iid = _installed(app, store)
    responses.add(responses.POST, f"{HS_API}/oauth/2026-03/token/revoke", status=200)
    assert client.post("/uninstall").status_code == 403
    with client.session_transaction() as sess:
        csrf = sess["csrf"]
    resp = client.post("/uninstall", data={"csrf_token": csrf})
    assert resp.status_code == 200, resp.json
    revoke = parse_qs(responses.calls[-1].request.body)
    assert revoke["token"] == ["na1-refresh"] and revoke["token_type_hint"] == ["refresh_token"]
    [row] = _installations(store)
    assert row.status == "uninstalled" and row.tokens is None


@responses.activate
def test_uninstall_goes_through_even_when_the_crm_already_dropped_the_grant(app, store: Store) -> None:  # type: ignore[no-untyped-def]
    client, iid = _installed(app, store)
    responses.add(responses.POST, f"{HS_API}/oauth/2026-03/token/revoke", status=400,
                  json={"error": "invalid_grant", "error_description": "refresh token is invalid"})
    with client.session_transaction() as sess:
        csrf = sess["csrf"]
    assert client.post("/uninstall", data={"csrf_token": csrf}).status_code == 200
    assert _installations(store)[0].status == "uninstalled"


@responses.activate
def test_hubspot_signed_uninstall(app, store: Store, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    from connector.signatures import v3_signature

    _installed(app, store)
    responses.add(responses.POST, f"{HS_API}/oauth/2026-03/token/revoke", status=200)
    path = "/api/hubspot/uninstall?portalId=62515&userId=9"
    ts = str(int(clock.now.timestamp() * 1000))
    bad = app.test_client().post(path, headers={"X-HubSpot-Signature-v3": "x", "X-HubSpot-Request-Timestamp": ts})
    assert bad.status_code == 401
    sig = v3_signature("hs-secret", "POST", PUBLIC + path, b"", ts)
    ok = app.test_client().post(path, headers={"X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": ts})
    assert ok.status_code == 200
    assert _installations(store)[0].status == "uninstalled"


def test_purge_deletes_tenant_data_only_after_the_retention(store: Store) -> None:
    from connector.store.crypto import TokenCipher

    cipher = TokenCipher(b"k" * 32)
    with store.session() as s:
        old = inst.upsert(s, cipher, crm="hubspot", tenant_id="1", tokens={"access_token": "a"}).id
        recent = inst.upsert(s, cipher, crm="hubspot", tenant_id="2", tokens={"access_token": "b"}).id
        for iid in (old, recent):
            upsert_records(s, iid, Entity.DEAL, [a_deal(remote_id="d1")])
            inst.set_status(s, iid, inst.InstallationStatus.UNINSTALLED, "test")
    now = datetime.now(UTC)
    with store.session() as s:
        inst.get(s, old).uninstalled_at = now - timedelta(days=31)
        inst.get(s, recent).uninstalled_at = now - timedelta(days=29)
    assert purge_expired(store, retention_days=30, now=now) == [old]
    with store.session() as s:
        assert {r.installation_id for r in s.execute(select(CrmRecord)).scalars()} == {recent}
        assert s.get(Installation, old) is None
        assert s.execute(select(AuditEntry).where(AuditEntry.action == "tenant_purged")).scalar_one().detail == \
            {"crm": "hubspot", "tenant_id": "1"}


@responses.activate
def test_uninstall_cancels_the_tenants_queued_jobs(store: Store, clock: Clock, redis_conn, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    from rq.job import Job

    from jobs.queues import job_id

    settings = Settings(testing=True, public_base_url=PUBLIC, hubspot_client_id="hs-cid", hubspot_client_secret="hs-secret",
                        redis_url=redis_url)
    app = create_app(settings, store=store)
    app.extensions["salesloop.clock"] = clock
    client, iid = _installed(app, store)
    job = Job.fetch(job_id("backfill", iid), connection=redis_conn)
    assert job.get_status() == "queued"
    responses.add(responses.POST, f"{HS_API}/oauth/2026-03/token/revoke", status=200)
    with client.session_transaction() as sess:
        csrf = sess["csrf"]
    assert client.post("/uninstall", data={"csrf_token": csrf}).status_code == 200
    assert job.get_status(refresh=True) == "canceled"
