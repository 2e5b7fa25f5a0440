"""Install -> refresh -> uninstall against the fake CRMs over real HTTP(S), consent pages included."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from sqlalchemy import select

from connector.app import create_app
from connector.settings import Settings
from connector.store import Store
from connector.store import installations as inst
from connector.store.tables import AuditEntry, Installation
from crm_adapters.errors import CrmAuthError
from jobs.lifecycle import token_source_for
from tests.fakes.hubspot.app import FakeHubSpot
from tests.fakes.hubspot.server import serve

PUBLIC = "https://salesloop.example.com"


def _local(url: str) -> str:
    """Our public callback URL as a path for the test client."""
    assert url.startswith(PUBLIC), url
    return url[len(PUBLIC):]


def _only_installation(store: Store) -> Installation:
    with store.session() as s:
        [row] = s.execute(select(Installation)).scalars().all()
        return row


def _admin_csrf(client) -> str:  # type: ignore[no-untyped-def]
    with client.session_transaction() as sess:
        return str(sess["csrf"])


def test_hubspot_install_refresh_uninstall(store: Store) -> None:
    fake = FakeHubSpot()
    with serve(fake) as url:
        settings = Settings(testing=True, public_base_url=PUBLIC, hubspot_client_id=fake.oauth.client_id,
                            hubspot_client_secret=fake.oauth.client_secret, hubspot_base_url=url, hubspot_app_base_url=url)
        app = create_app(settings, store=store)
        client = app.test_client()
        consent_url = client.get("/install/hubspot").headers["Location"]
        page = requests.get(consent_url, timeout=10)
        assert page.status_code == 200 and "crm.objects.deals.write" in page.text
        fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', page.text))
        approved = requests.post(f"{url}/oauth/authorize", data={**fields, "decision": "allow"},
                                 allow_redirects=False, timeout=10)
        done = client.get(_local(approved.headers["Location"]), headers={"Accept": "application/json"})
        assert done.status_code == 200, done.json
        row = _only_installation(store)
        assert (row.tenant_id, row.installed_by) == (str(fake.portal.hub_id), "admin@example.com")

        source = token_source_for(row, store=store, settings=settings)
        first = source.current()
        assert fake.oauth.check(first.access_token) is not None
        fresh = source.refreshed(first)
        assert fresh.access_token != first.access_token and fresh.version == first.version + 1
        assert fresh.refresh_token == first.refresh_token  # HubSpot does not rotate

        assert client.post("/uninstall", data={"csrf_token": _admin_csrf(client)}).status_code == 200
        with pytest.raises(CrmAuthError):
            source.current()
        with pytest.raises(CrmAuthError):  # the grant is revoked at HubSpot too
            from crm_adapters.hubspot import oauth as hs

            hs.refresh(hs.OAuthApp(fake.oauth.client_id, fake.oauth.client_secret, api_host=url), fresh)


def test_hubspot_consent_denied_stores_nothing(store: Store) -> None:
    fake = FakeHubSpot()
    with serve(fake) as url:
        app = create_app(Settings(testing=True, public_base_url=PUBLIC, hubspot_client_id=fake.oauth.client_id,
                                  hubspot_client_secret=fake.oauth.client_secret, hubspot_base_url=url,
                                  hubspot_app_base_url=url), store=store)
        client = app.test_client()
        page = requests.get(client.get("/install/hubspot").headers["Location"], timeout=10)
        fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', page.text))
        denied = requests.post(f"{url}/oauth/authorize", data={**fields, "decision": "deny"}, allow_redirects=False, timeout=10)
        resp = client.get(_local(denied.headers["Location"]), headers={"Accept": "application/json"})
        assert resp.status_code == 400 and resp.json["code"] == "install_declined"
        with store.session() as s:
            assert s.execute(select(Installation)).first() is None


@pytest.fixture
def sf(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from tests.fakes.salesforce.server import shared_fake

    fake = shared_fake()
    org = fake.reset()
    callback = f"{PUBLIC}/oauth/salesforce/callback"
    if callback not in fake.oauth_app.redirect_uris:
        fake.oauth_app.redirect_uris = (*fake.oauth_app.redirect_uris, callback)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.ca_bundle))  # the adapters' oauth calls trust the test CA
    return fake, org


def test_salesforce_install_with_pkce_then_rotation_and_uninstall(store: Store, sf) -> None:  # type: ignore[no-untyped-def]
    fake, org = sf
    settings = Settings(testing=True, public_base_url=PUBLIC, salesforce_client_id=fake.oauth_app.client_id,
                        salesforce_client_secret=fake.oauth_app.client_secret, salesforce_login_url=fake.url)
    app = create_app(settings, store=store)
    client = app.test_client()
    authorize = client.get("/install/salesforce?env=production").headers["Location"]
    assert authorize.startswith(f"{fake.url}/services/oauth2/authorize?")
    params = dict(parse_qsl(urlsplit(authorize).query))
    approved = fake.session().post(f"{fake.url}/services/oauth2/authorize", data={**params, "approve": "1"},
                                   allow_redirects=False, timeout=10)
    done = client.get(_local(approved.headers["Location"]), headers={"Accept": "application/json"})
    assert done.status_code == 200, done.json
    row = _only_installation(store)
    assert (row.tenant_id, row.login_host, row.instance_url) == (org.org_id, fake.url, fake.url)

    org.rotate_refresh_tokens = True
    source = token_source_for(row, store=store, settings=settings)
    first = source.current()
    assert first.expires_at is None  # Salesforce sends no expires_in: refresh happens on 401
    second = source.refreshed(first)
    assert second.refresh_token != first.refresh_token and first.refresh_token not in org.refresh_tokens
    assert source.refreshed(first) == source.current()  # a stale caller re-reads, the dead token is never reused

    assert client.post("/uninstall", data={"csrf_token": _admin_csrf(client)}).status_code == 200
    assert second.refresh_token not in org.refresh_tokens  # revoked at Salesforce
    with store.session() as s:
        assert inst.get(s, row.id).status == "uninstalled"


def test_salesforce_replayed_callback_is_refused(store: Store, sf) -> None:  # type: ignore[no-untyped-def]
    fake, _ = sf
    app = create_app(Settings(testing=True, public_base_url=PUBLIC, salesforce_client_id=fake.oauth_app.client_id,
                              salesforce_client_secret=fake.oauth_app.client_secret, salesforce_login_url=fake.url),
                     store=store)
    client = app.test_client()
    params = dict(parse_qsl(urlsplit(client.get("/install/salesforce?env=production").headers["Location"]).query))
    approved = fake.session().post(f"{fake.url}/services/oauth2/authorize", data={**params, "approve": "1"},
                                   allow_redirects=False, timeout=10)
    callback = _local(approved.headers["Location"])
    assert client.get(callback, headers={"Accept": "application/json"}).status_code == 200
    again = client.get(callback, headers={"Accept": "application/json"})
    assert again.status_code == 400 and again.json["code"] == "invalid_state"
    with store.session() as s:
        assert [a.action for a in s.execute(select(AuditEntry)).scalars()].count("installed") == 1
