"""Install and uninstall through the real app: HubSpot against the fake HubSpot over HTTP, Salesforce's
token endpoint answered by `responses` (the full Salesforce flow runs in test_install_e2e.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import replace
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
from tests.fakes.hubspot.app import FakeHubSpot
from tests.fakes.hubspot.server import serve

PUBLIC = "https://salesloop.example.com"
SF_LOGIN = "https://login.salesforce.com"
SF_SECRET = "sf-secret"
ORG = "00D5e000000AbCdEAF"
JSON = {"Accept": "application/json"}


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def hubspot() -> Iterator[tuple[FakeHubSpot, str]]:
    """The fake HubSpot over real HTTP (our OAuth calls and the SDK both reach it)."""
    fake = FakeHubSpot()
    with serve(fake) as url:
        yield fake, url


def _settings(hubspot: tuple[FakeHubSpot, str], **kw: object) -> Settings:
    fake, url = hubspot
    return Settings(testing=True, public_base_url=PUBLIC, hubspot_client_id=fake.oauth.client_id,
                    hubspot_client_secret=fake.oauth.client_secret, hubspot_base_url=url, hubspot_app_base_url=url,
                    salesforce_client_id="sf-cid", salesforce_client_secret=SF_SECRET, **kw)  # type: ignore[arg-type]


@pytest.fixture
def app(store: Store, clock: Clock, hubspot):  # type: ignore[no-untyped-def]
    app = create_app(_settings(hubspot), store=store)
    app.extensions["salesloop.clock"] = clock
    return app


def _state_of(resp) -> tuple[str, dict]:  # type: ignore[no-untyped-def, type-arg]
    assert resp.status_code == 302, resp.data
    q = parse_qs(urlparse(resp.headers["Location"]).query)
    return q["state"][0], q


def _consent(hubspot, state: str, *, user: str = "admin@example.com") -> str:  # type: ignore[no-untyped-def]
    """What the admin's click on HubSpot's consent page yields: our callback path with a fresh code."""
    fake, _ = hubspot
    code = fake.oauth.authorize(fake.portal.hub_id, f"{PUBLIC}/oauth/hubspot/callback", user=user)
    return f"/oauth/hubspot/callback?code={code}&state={state}"


def _installations(store: Store) -> list[Installation]:
    with store.session() as s:
        return list(s.execute(select(Installation)).scalars())


def _audit(store: Store) -> list[AuditEntry]:
    with store.session() as s:
        return list(s.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars())


def test_hubspot_install_stores_an_encrypted_installation_provisions_fields_and_requests_a_backfill(  # type: ignore[no-untyped-def]
        app, store: Store, clock: Clock, hubspot) -> None:
    fake, _ = hubspot
    client = app.test_client()
    state, q = _state_of(client.get("/install/hubspot"))
    assert q["client_id"] == [fake.oauth.client_id]
    assert q["redirect_uri"] == [f"{PUBLIC}/oauth/hubspot/callback"]
    assert q["scope"][0].split(" ") == list(HUBSPOT_SCOPES)
    resp = client.get(_consent(hubspot, state), headers=JSON)
    assert resp.status_code == 200, resp.json
    assert resp.json["tenant_id"] == str(fake.portal.hub_id) and resp.json["backfill"] == "recorded"
    assert resp.json["fields"] == "provisioned"
    [row] = _installations(store)
    assert (row.crm, row.tenant_id, row.installed_by) == ("hubspot", str(fake.portal.hub_id), "admin@example.com")
    tokens = inst.read_tokens(row, app.extensions["salesloop.cipher"])
    assert tokens["access_token"].encode() not in row.tokens and tokens["refresh_token"].encode() not in row.tokens
    assert fake.oauth.check(tokens["access_token"]) is not None
    assert row.access_expires_at.replace(tzinfo=UTC) == clock.now + timedelta(minutes=30)
    actions = [a.action for a in _audit(store)]
    assert "sync_requested" in actions and "fields_provisioned" in actions



def test_a_hubspot_install_suggests_the_qualification_mapping_from_the_deal_properties(  # type: ignore[no-untyped-def]
        app, store: Store, hubspot) -> None:
    """The portal's own deal properties (a picklist, a multi-select checkbox) are described over the properties
    API at install; the suggestion waits, unconfirmed, for the admin."""
    fake, _ = hubspot
    with fake.lock:
        fake.portal.create_group("deals", {"name": "dealinformation", "label": "Deal information"})
        for name, label, shown, options in (("budget_allocated", "Budget allocated", "select", ["Yes", "No"]),
                                             ("competitors", "Competitors", "checkbox", ["acme", "globex"]),
                                             ("favourite_colour", "Favourite colour", "select", ["red"])):
            fake.portal.create_property("deals", {"name": name, "label": label, "type": "enumeration", "fieldType": shown,
                                                  "groupName": "dealinformation",
                                                  "options": [{"label": o.title(), "value": o} for o in options]})
    client = app.test_client()
    state, _ = _state_of(client.get("/install/hubspot"))
    assert client.get(_consent(hubspot, state), headers=JSON).status_code == 200
    [row] = _installations(store)
    suggested = {f["field"]: f for f in row.settings["qualification_suggested"]}
    assert set(suggested) == {"budget_allocated", "competitors"} and "qualification" not in row.settings
    assert suggested["competitors"]["kind"] == "multiselect" and suggested["competitors"]["options"] == ["acme", "globex"]
    assert "qualification_suggested" in [a.action for a in _audit(store)]
    assert fake.portal.properties["deals"]  # our properties exist in the portal now


def test_a_replayed_callback_is_refused(app, store: Store, hubspot) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    state, _ = _state_of(client.get("/install/hubspot"))
    callback = _consent(hubspot, state)
    assert client.get(callback, headers=JSON).status_code == 200
    again = client.get(callback, headers=JSON)
    assert again.status_code == 400 and again.json["code"] == "invalid_state"


def test_a_state_replayed_with_a_copied_session_cookie_is_refused_by_the_nonce_table(app, store: Store, hubspot) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    state, _ = _state_of(client.get("/install/hubspot"))
    cookie = client.get_cookie("session").value
    assert client.get(_consent(hubspot, state), headers=JSON).status_code == 200
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    resp = thief.get(_consent(hubspot, state), headers=JSON)
    assert resp.status_code == 400 and "already used" in resp.json["message"]


@pytest.mark.parametrize("case", ["missing", "tampered", "expired", "other_browser", "other_crm", "declined"])
def test_bad_states_get_400_with_a_clear_message(app, store: Store, clock: Clock, hubspot, case: str) -> None:  # type: ignore[no-untyped-def]
    fake, _ = hubspot
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
    before = fake.count(path="/oauth/")
    resp = client.get(url, headers=JSON)
    assert resp.status_code == 400, resp.json
    assert resp.json["code"] in ("invalid_state", "install_declined")
    assert len(resp.json["message"]) > 20
    assert _installations(store) == []
    assert fake.count(path="/oauth/") == before  # nothing reached the CRM


def test_a_refused_code_is_a_400_and_stores_nothing(app, store: Store) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    state, _ = _state_of(client.get("/install/hubspot"))
    resp = client.get(f"/oauth/hubspot/callback?code=made-up&state={state}", headers=JSON)
    assert resp.status_code == 400 and resp.json["code"] == "oauth_refused"
    assert _installations(store) == []


def test_reinstall_and_a_second_admin_map_to_the_same_tenant(app, store: Store, hubspot) -> None:  # type: ignore[no-untyped-def]
    for user in ("first@acme.test", "second@acme.test"):
        client = app.test_client()
        state, _ = _state_of(client.get("/install/hubspot"))
        assert client.get(_consent(hubspot, state, user=user), headers=JSON).status_code == 200
    [row] = _installations(store)
    assert row.installed_by == "second@acme.test" and row.token_version == 2


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



def _installed(app, hubspot) -> tuple:  # type: ignore[no-untyped-def, type-arg]
    client = app.test_client()
    state, _ = _state_of(client.get("/install/hubspot"))
    assert client.get(_consent(hubspot, state), headers=JSON).status_code == 200
    return client, _installations(app.extensions["salesloop.store"])[0]


def _csrf(client) -> str:  # type: ignore[no-untyped-def]
    with client.session_transaction() as sess:
        return str(sess["csrf"])


def test_admin_uninstall_needs_csrf_then_revokes_and_marks_uninstalled(app, store: Store, hubspot) -> None:  # type: ignore[no-untyped-def]
    fake, _ = hubspot
    client, row = _installed(app, hubspot)
    refresh = inst.read_tokens(row, app.extensions["salesloop.cipher"])["refresh_token"]
    assert client.post("/uninstall").status_code == 403
    assert _installations(store)[0].status == "active"
    resp = client.post("/uninstall", data={"csrf_token": _csrf(client)})
    assert resp.status_code == 200, resp.json
    assert fake.oauth.refresh[refresh].revoked is True
    assert fake.count(path="/appinstalls/2026-03/external-install", method="DELETE", status=204) == 1
    [row] = _installations(store)
    assert row.status == "uninstalled" and row.tokens is None


def test_uninstall_with_an_expired_access_token_refreshes_once_to_remove_the_app(app, store: Store, hubspot) -> None:  # type: ignore[no-untyped-def]
    fake, _ = hubspot
    client, _ = _installed(app, hubspot)
    before = fake.count(path="/appinstalls/2026-03/external-install", status=204)
    fake.oauth.expire_all()
    assert client.post("/uninstall", data={"csrf_token": _csrf(client)}).status_code == 200
    assert fake.count(path="/appinstalls/2026-03/external-install", status=401) >= 1
    assert fake.count(path="/appinstalls/2026-03/external-install", status=204) == before + 1


def test_uninstall_goes_through_even_when_the_crm_cannot_be_reached(store: Store, clock: Clock, hubspot) -> None:  # type: ignore[no-untyped-def]
    app = create_app(_settings(hubspot), store=store)
    app.extensions["salesloop.clock"] = clock
    client, _ = _installed(app, hubspot)
    offline = create_app(replace(_settings(hubspot), hubspot_base_url="http://127.0.0.1:9"), store=store)
    offline_client = offline.test_client()
    offline_client.set_cookie("session", client.get_cookie("session").value)
    assert offline_client.post("/uninstall", data={"csrf_token": _csrf(client)}).status_code == 200
    assert _installations(store)[0].status == "uninstalled"


def test_hubspot_signed_uninstall(app, store: Store, clock: Clock, hubspot) -> None:  # type: ignore[no-untyped-def]
    from connector.signatures import v3_signature

    fake, _ = hubspot
    _installed(app, hubspot)
    path = f"/api/hubspot/uninstall?portalId={fake.portal.hub_id}&userId=9"
    ts = str(int(clock.now.timestamp() * 1000))
    bad = app.test_client().post(path, headers={"X-HubSpot-Signature-v3": "x", "X-HubSpot-Request-Timestamp": ts})
    assert bad.status_code == 401
    assert _installations(store)[0].status == "active"
    sig = v3_signature(fake.oauth.client_secret, "POST", PUBLIC + path, b"", ts)
    ok = app.test_client().post(path, headers={"X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": ts})
    assert ok.status_code == 200
    assert _installations(store)[0].status == "uninstalled"


def test_uninstall_cancels_the_tenants_queued_jobs(store: Store, clock: Clock, hubspot, redis_conn, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    from rq.job import Job

    from jobs.queues import job_id

    app = create_app(_settings(hubspot, redis_url=redis_url), store=store)
    app.extensions["salesloop.clock"] = clock
    client, row = _installed(app, hubspot)
    job = Job.fetch(job_id("backfill", row.id), connection=redis_conn)
    assert job.get_status() == "queued"
    assert client.post("/uninstall", data={"csrf_token": _csrf(client)}).status_code == 200
    assert job.get_status(refresh=True) == "canceled"


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


