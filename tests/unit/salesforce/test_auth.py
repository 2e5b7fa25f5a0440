"""OAuth web-server flow against the fake (PKCE S256, signature, refresh with rotation, revoke) and 401 handling."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from crm_adapters.auth import StaticTokens, Tokens
from crm_adapters.errors import ConfigError, CrmAuthError, CrmBadRequest
from crm_adapters.model import Entity
from crm_adapters.salesforce import oauth
from tests.fakes.salesforce.fixtures import adapter_for, tokens_for

REDIRECT = "https://app.example.com/salesforce/callback"


def _consent(fake, verifier_challenge: str, state: str = "st4te") -> str:  # type: ignore[no-untyped-def]
    """Drive the consent page like a browser and return the code from the redirect."""
    url = oauth.authorize_url(fake.url, client_id=fake.oauth_app.client_id, redirect_uri=REDIRECT, state=state,
                              code_challenge=verifier_challenge)
    http = fake.session()
    page = http.get(url)
    assert page.status_code == 200 and "Allow" in page.text
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page.text))
    resp = http.post(f"{fake.url}/services/oauth2/authorize", data={**fields, "approve": "1"}, allow_redirects=False)
    query = parse_qs(urlsplit(resp.headers["Location"]).query)
    assert query["state"] == [state]
    return query["code"][0]


def test_code_exchange_with_pkce_verifies_the_signature_and_reads_the_org(sf_fake):
    verifier, challenge = oauth.pkce_pair()
    code = _consent(sf_fake, challenge)
    grant = oauth.exchange_code(sf_fake.url, code=code, code_verifier=verifier, client_id=sf_fake.oauth_app.client_id,
                                client_secret=sf_fake.oauth_app.client_secret, redirect_uri=REDIRECT,
                                session=sf_fake.session())
    assert grant.org_id == sf_fake.org.org_id and grant.user_id == sf_fake.org.integration_user_id
    assert grant.refresh_token and grant.instance_url == sf_fake.url


def test_wrong_code_verifier_is_refused(sf_fake):
    _, challenge = oauth.pkce_pair()
    code = _consent(sf_fake, challenge)
    with pytest.raises(CrmBadRequest, match="invalid_request"):
        oauth.exchange_code(sf_fake.url, code=code, code_verifier="not-the-verifier", client_id=sf_fake.oauth_app.client_id,
                            client_secret=sf_fake.oauth_app.client_secret, redirect_uri=REDIRECT, session=sf_fake.session())


@responses.activate
def test_tampered_token_response_is_rejected():
    body = {"access_token": "00D!x", "instance_url": "https://acme.my.salesforce.com", "issued_at": "1278448832702",
            "id": "https://login.salesforce.com/id/00Dx0000000BV7zAAA/005x00000012Q9PAAA", "token_type": "Bearer"}
    good = base64.b64encode(hmac.new(b"s3cret", (body["id"] + body["issued_at"]).encode(), hashlib.sha256).digest()).decode()
    tampered = dict(body, signature=good, id="https://login.salesforce.com/id/00Dattacker000000AAA/005x00000012Q9PAAA")
    responses.add(responses.POST, "https://login.salesforce.com/services/oauth2/token", json=tampered)
    with pytest.raises(CrmAuthError, match="signature"):
        oauth.exchange_code(oauth.PRODUCTION, code="c", code_verifier="v", client_id="id", client_secret="s3cret",
                            redirect_uri=REDIRECT)
    oauth.verify_signature(dict(body, signature=good), "s3cret")  # the untampered body passes


def test_refresh_rotates_the_refresh_token_and_takes_instance_url_again(sf_fake):
    tokens = Tokens(access_token="old", refresh_token=sf_fake.issue_refresh_token(), instance_url="https://old.example")
    sf_fake.app.config["INSTANCE_URL"] = sf_fake.url
    grant = oauth.refresh(sf_fake.url, tokens, client_id=sf_fake.oauth_app.client_id,
                          client_secret=sf_fake.oauth_app.client_secret, session=sf_fake.session())
    assert grant.refresh_token != tokens.refresh_token and grant.instance_url == sf_fake.url
    with pytest.raises(CrmAuthError, match="invalid_grant"):  # the old one is dead after rotation
        oauth.refresh(sf_fake.url, tokens, client_id=sf_fake.oauth_app.client_id,
                      client_secret=sf_fake.oauth_app.client_secret, session=sf_fake.session())


def test_refresh_without_rotation_keeps_the_refresh_token(sf_fake):
    sf_fake.org.rotate_refresh_tokens = False
    tokens = Tokens(access_token="old", refresh_token=sf_fake.issue_refresh_token(), instance_url=sf_fake.url)
    grant = oauth.refresh(sf_fake.url, tokens, client_id=sf_fake.oauth_app.client_id,
                          client_secret=sf_fake.oauth_app.client_secret, session=sf_fake.session())
    assert grant.refresh_token == tokens.refresh_token


def test_401_then_refresh_then_success(sf_fake):
    sf_fake.org.insert("Opportunity", {"Name": "a", "StageName": "Prospecting"})
    source = tokens_for(sf_fake)
    adapter = adapter_for(sf_fake, tokens=source)
    sf_fake.org.tokens.clear()  # the session timed out
    deals = [r for b in adapter.read_changes(Entity.DEAL, since=None) for r in b.records]
    assert len(deals) == 1 and source.current().version == 1


def test_invalid_grant_on_refresh_is_crm_auth_error(sf_fake):
    adapter = adapter_for(sf_fake)
    sf_fake.org.tokens.clear()
    sf_fake.org.refresh_tokens.clear()  # the admin revoked the app
    with pytest.raises(CrmAuthError, match="invalid_grant"):
        list(adapter.read_changes(Entity.DEAL, since=None))


def test_second_401_after_refresh_is_crm_auth_error(sf_fake):
    adapter = adapter_for(sf_fake, tokens=StaticTokens(Tokens(access_token="dead", instance_url=sf_fake.url),
                                                       refresher=lambda t: Tokens(access_token="still-dead",
                                                                                  instance_url=sf_fake.url)))
    with pytest.raises(CrmAuthError, match="refused again"):
        adapter.read_pipelines()


def test_revoke(sf_fake):
    refresh = sf_fake.issue_refresh_token()
    assert oauth.revoke(sf_fake.url, refresh, session=sf_fake.session()) is True
    assert oauth.revoke(sf_fake.url, refresh, session=sf_fake.session()) is False


@pytest.mark.parametrize(("env", "domain", "host"), [
    ("production", None, "https://login.salesforce.com"),
    ("sandbox", None, "https://test.salesforce.com"),
    ("production", "acme", "https://acme.my.salesforce.com"),
    ("sandbox", "acme--uat", "https://acme--uat.sandbox.my.salesforce.com"),
])
def test_login_hosts(env, domain, host):
    assert oauth.login_host(env, domain) == host


def test_lightning_domain_and_garbage_are_config_errors():
    with pytest.raises(ConfigError):
        oauth.login_host("production", "https://acme.lightning.force.com")
    with pytest.raises(ConfigError):
        oauth.login_host("production", "acme.evil/..")


def test_identity_url_gives_org_and_user():
    assert oauth.ids_from_identity("https://login.salesforce.com/id/00Dx0000000BV7z/005x00000012Q9P") == (
        "00Dx0000000BV7z", "005x00000012Q9P")
    with pytest.raises(CrmAuthError):
        oauth.ids_from_identity("https://evil.example/foo")
