"""Salesforce web-server OAuth helpers: PKCE authorize URL, code exchange, signature check, refresh, revoke.

Salesforce's token response has no expires_in (refresh on 401 INVALID_SESSION_ID), carries a
`signature` (base64 HMAC-SHA256 of id + issued_at keyed with the client secret) that must be checked
before `id` is trusted, and returns a new refresh_token only when rotation is on. `instance_url`
is taken again from every refresh: it moves (My Domain changes, org migrations).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from crm_adapters.auth import Refresher, Tokens
from crm_adapters.errors import ConfigError, CrmAuthError, CrmBadRequest, CrmUnavailable

logger = logging.getLogger(__name__)

PRODUCTION = "https://login.salesforce.com"
SANDBOX = "https://test.salesforce.com"
DEFAULT_SCOPE = "api refresh_token id"
_MY_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*(--[a-z0-9-]+)?$", re.I)
TIMEOUT_S = 30
SCOPES = tuple(DEFAULT_SCOPE.split())  # what the app asks for: the REST API, a refresh token, the identity URL


def login_host(environment: str = "production", my_domain: str | None = None) -> str:
    """The OAuth host: production, sandbox, a My Domain name ('acme', 'acme--uat'), or an https URL."""
    if my_domain:
        if my_domain.startswith("https://"):
            host = urlsplit(my_domain).netloc
            if not host or host.endswith(".lightning.force.com"):
                raise ConfigError(f"not a usable login host: {my_domain!r} (use the *.my.salesforce.com domain)")
            return f"https://{host}"
        if not _MY_DOMAIN.match(my_domain):
            raise ConfigError(f"not a My Domain name: {my_domain!r}")
        if environment == "sandbox" or "--" in my_domain:
            return f"https://{my_domain}.sandbox.my.salesforce.com"
        return f"https://{my_domain}.my.salesforce.com"
    if environment not in ("production", "sandbox"):
        raise ConfigError(f"environment must be production or sandbox, got {environment!r}")
    return PRODUCTION if environment == "production" else SANDBOX


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge); keep the verifier server-side with the state."""
    verifier = secrets.token_urlsafe(64)[:96]
    return verifier, create_s256_code_challenge(verifier)


def authorize_url(host: str, *, client_id: str, redirect_uri: str, state: str, code_challenge: str,
                  scope: str = DEFAULT_SCOPE, prompt: str | None = None) -> str:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "state": state,
              "scope": scope, "code_challenge": code_challenge, "code_challenge_method": "S256"}
    if prompt:
        params["prompt"] = prompt
    return f"{host.rstrip('/')}/services/oauth2/authorize?{urlencode(params)}"


@dataclass(frozen=True)
class SalesforceGrant:
    """A verified token response."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    instance_url: str
    identity_url: str
    org_id: str
    user_id: str
    issued_at: datetime
    scope: str = ""

    def tokens(self, version: int = 0) -> Tokens:
        return Tokens(access_token=self.access_token, refresh_token=self.refresh_token,
                      instance_url=self.instance_url, version=version)


def verify_signature(body: dict[str, Any], client_secret: str) -> None:
    """Reject a token response whose `signature` does not match id + issued_at (tampered or foreign)."""
    identity, issued_at, signature = body.get("id"), body.get("issued_at"), body.get("signature")
    if not (isinstance(identity, str) and isinstance(issued_at, str) and isinstance(signature, str)):
        raise CrmAuthError("salesforce token response lacks id/issued_at/signature")
    mac = hmac.new(client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(base64.b64encode(mac).decode(), signature):
        raise CrmAuthError("salesforce token response signature does not match: refusing its identity")


def ids_from_identity(url: str) -> tuple[str, str]:
    """(org id, user id) from https://login.salesforce.com/id/<orgId>/<userId>."""
    parts = urlsplit(url).path.strip("/").split("/")
    if len(parts) != 3 or parts[0] != "id" or not parts[1].startswith("00D") or not parts[2].startswith("005"):
        raise CrmAuthError(f"not a Salesforce identity URL: {url[:200]!r}")
    return parts[1], parts[2]


def _post(host: str, path: str, data: dict[str, str], session: requests.Session | None) -> requests.Response:
    http = session or requests.Session()
    try:
        return http.post(f"{host.rstrip('/')}/services/oauth2/{path}", data=data, timeout=TIMEOUT_S,
                         headers={"Accept": "application/json"})
    except (requests.Timeout, requests.ConnectionError) as exc:
        raise CrmUnavailable(f"salesforce oauth {path}: {type(exc).__name__}") from exc


def _token_body(resp: requests.Response, what: str) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        body = {}
    if resp.status_code >= 500:
        raise CrmUnavailable(f"salesforce {what}: HTTP {resp.status_code}")
    if resp.status_code != 200 or "access_token" not in body:
        error = str(body.get("error", f"http_{resp.status_code}"))
        description = str(body.get("error_description", ""))[:200]
        if error in ("invalid_grant", "invalid_client", "invalid_client_id", "inactive_user", "inactive_org"):
            raise CrmAuthError(f"salesforce {what}: {error} ({description})")
        raise CrmBadRequest(f"salesforce {what}: {error} ({description})")
    return body  # type: ignore[no-any-return]


def _grant(body: dict[str, Any], client_secret: str, previous_refresh: str | None) -> SalesforceGrant:
    verify_signature(body, client_secret)
    org_id, user_id = ids_from_identity(body["id"])
    issued = datetime.fromtimestamp(int(body["issued_at"]) / 1000, UTC)
    return SalesforceGrant(access_token=body["access_token"],
                           refresh_token=body.get("refresh_token") or previous_refresh,
                           instance_url=body["instance_url"], identity_url=body["id"], org_id=org_id,
                           user_id=user_id, issued_at=issued, scope=body.get("scope", ""))


def exchange_code(host: str, *, code: str, code_verifier: str, client_id: str, client_secret: str,
                  redirect_uri: str, session: requests.Session | None = None) -> SalesforceGrant:
    """Trade the callback's code for tokens (PKCE verifier and client secret both sent), then verify them."""
    resp = _post(host, "token", {"grant_type": "authorization_code", "code": code, "client_id": client_id,
                                 "client_secret": client_secret, "redirect_uri": redirect_uri,
                                 "code_verifier": code_verifier}, session)
    grant = _grant(_token_body(resp, "code exchange"), client_secret, None)
    logger.info("salesforce install: org %s user %s", grant.org_id, grant.user_id)
    return grant


def refresh(host: str, tokens: Tokens, *, client_id: str, client_secret: str,
            session: requests.Session | None = None) -> SalesforceGrant:
    """New access token; keeps the old refresh token unless rotation sent a new one. invalid_grant -> CrmAuthError."""
    if not tokens.refresh_token:
        raise CrmAuthError("salesforce refresh: no refresh token stored (was refresh_token in the scope?)")
    resp = _post(host, "token", {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token,
                                 "client_id": client_id, "client_secret": client_secret, "format": "json"}, session)
    return _grant(_token_body(resp, "refresh"), client_secret, tokens.refresh_token)


def make_refresher(host: str, *, client_id: str, client_secret: str,
                   session: requests.Session | None = None) -> Refresher:
    """A Refresher for crm_adapters.auth.StaticTokens (and the store's token source)."""

    def _refresh(tokens: Tokens) -> Tokens:
        grant = refresh(host, tokens, client_id=client_id, client_secret=client_secret, session=session)
        return grant.tokens(version=tokens.version)

    return _refresh


def revoke(host: str, token: str, *, session: requests.Session | None = None) -> bool:
    """Revoke a refresh (and with it its access tokens) or access token; False if it was already dead."""
    resp = _post(host, "revoke", {"token": token}, session)
    if resp.status_code >= 500:
        raise CrmUnavailable(f"salesforce revoke: HTTP {resp.status_code}")
    return resp.status_code == 200
