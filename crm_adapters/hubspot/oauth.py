"""HubSpot OAuth on the date-versioned endpoints (/oauth/2026-03/token, introspect, revoke).

hubspot-api-client 12 only speaks /oauth/v1 (deprecated 2027-02-16), so this is plain
form-encoded HTTP with requests. Framework-neutral: the web side (install routes) and the
token store (refresh under a lock) both call these functions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import requests

from crm_adapters.auth import Refresher, Tokens
from crm_adapters.errors import CrmAuthError, CrmBadRequest, CrmUnavailable

logger = logging.getLogger(__name__)
API_HOST = "https://api.hubapi.com"
APP_HOST = "https://app.hubspot.com"
VERSION = "2026-03"
TIMEOUT_S = 15.0

# Exactly what the adapters call (hubspot research §1.2): deals and companies read/write for
# our fields, contacts read/write because HubSpot gates engagements (tasks, notes, calls) on
# them, owners for users, sales-email-read for email bodies (the NLP reads them), schemas write to
# create our property group and properties. Equal to requiredScopes in ui_extensions/hubspot's app-hsmeta.json.
SCOPES = (
    "oauth", "crm.objects.deals.read", "crm.objects.deals.write", "crm.objects.companies.read",
    "crm.objects.companies.write", "crm.objects.contacts.read", "crm.objects.contacts.write",
    "crm.objects.owners.read", "sales-email-read", "crm.schemas.deals.write", "crm.schemas.companies.write",
)


@dataclass(frozen=True)
class OAuthApp:
    """Our app's credentials and where HubSpot (or the fake) lives."""

    client_id: str
    client_secret: str
    api_host: str = API_HOST
    app_host: str = APP_HOST

    def __repr__(self) -> str:
        return f"OAuthApp(client_id={self.client_id!r}, api_host={self.api_host!r})"


@dataclass(frozen=True)
class Grant:
    """What a code exchange yields: tokens, and which portal installed us."""

    tokens: Tokens
    hub_id: str | None
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class TokenInfo:
    active: bool
    hub_id: str | None = None
    user: str | None = None
    user_id: str | None = None
    hub_domain: str | None = None
    scopes: tuple[str, ...] = ()
    expires_in: int | None = None


def authorize_url(app: OAuthApp, *, redirect_uri: str, scopes: Sequence[str], state: str,
                  optional_scopes: Sequence[str] = ()) -> str:
    """The consent page URL the installing admin is sent to."""
    query = {"client_id": app.client_id, "redirect_uri": redirect_uri, "scope": " ".join(scopes), "state": state}
    if optional_scopes:
        query["optional_scope"] = " ".join(optional_scopes)
    return f"{app.app_host.rstrip('/')}/oauth/authorize?{urlencode(query)}"


def _post(app: OAuthApp, path: str, form: dict[str, str], session: requests.Session | None) -> requests.Response:
    url = f"{app.api_host.rstrip('/')}/oauth/{VERSION}/{path}"
    body = dict(form, client_id=app.client_id, client_secret=app.client_secret)
    try:
        return (session or requests).post(url, data=body, timeout=TIMEOUT_S,
                                          headers={"Accept": "application/json"})
    except requests.RequestException as exc:
        raise CrmUnavailable(f"HubSpot OAuth unreachable: {type(exc).__name__}") from exc


def _json(resp: requests.Response) -> dict[str, Any]:
    try:
        body = resp.json() if resp.content else {}
    except ValueError:
        body = {"message": resp.text[:1000]}
    return body if isinstance(body, dict) else {}


def _raise_for(resp: requests.Response, what: str) -> None:
    if resp.status_code < 400:
        return
    body = _json(resp)
    error = str(body.get("error") or "")
    legacy = str(body.get("status") or "")
    text = str(body.get("error_description") or body.get("message") or "")[:300]
    if resp.status_code >= 500 or resp.status_code == 429:
        raise CrmUnavailable(f"HubSpot OAuth {what}: {resp.status_code} {text}")
    if error == "invalid_grant" or legacy in ("BAD_REFRESH_TOKEN", "BAD_AUTH_CODE"):
        raise CrmAuthError(f"HubSpot OAuth {what}: {error or legacy}: {text}", uninstalled=legacy == "BAD_REFRESH_TOKEN")
    if error == "invalid_client" or resp.status_code in (401, 403):
        raise CrmAuthError(f"HubSpot OAuth {what}: {error or legacy}: {text}")
    raise CrmBadRequest(f"HubSpot OAuth {what}: {resp.status_code} {error or legacy}: {text}")


def _tokens(body: dict[str, Any], now: datetime, version: int = 0) -> Tokens:
    if not body.get("access_token"):
        raise CrmBadRequest("HubSpot OAuth answered without an access_token")
    expires_in = body.get("expires_in")
    expires_at = now + timedelta(seconds=int(expires_in)) if expires_in is not None else None
    return Tokens(access_token=str(body["access_token"]), refresh_token=body.get("refresh_token"),
                  expires_at=expires_at, version=version)


def exchange_code(app: OAuthApp, *, code: str, redirect_uri: str, code_verifier: str | None = None,
                  now: datetime | None = None, session: requests.Session | None = None) -> Grant:
    """Trade the consent page's code for tokens (single use, short-lived)."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if code_verifier:
        form["code_verifier"] = code_verifier
    resp = _post(app, "token", form, session)
    _raise_for(resp, "code exchange")
    body = _json(resp)
    hub = body.get("hub_id")
    return Grant(tokens=_tokens(body, now or datetime.now(UTC)), hub_id=str(hub) if hub is not None else None,
                 scopes=tuple(body.get("scopes") or ()))


def refresh(app: OAuthApp, tokens: Tokens, *, now: datetime | None = None,
            session: requests.Session | None = None) -> Tokens:
    """New access token; invalid_grant / BAD_REFRESH_TOKEN (revoked, uninstalled) -> CrmAuthError."""
    if not tokens.refresh_token:
        raise CrmAuthError("no refresh token stored: the installation must reconnect")
    resp = _post(app, "token", {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}, session)
    _raise_for(resp, "refresh")
    body = _json(resp)
    fresh = _tokens(body, now or datetime.now(UTC), tokens.version)
    if not fresh.refresh_token:  # HubSpot does not rotate refresh tokens; keep ours when none comes back
        fresh = Tokens(fresh.access_token, tokens.refresh_token, fresh.expires_at, tokens.instance_url, tokens.version)
    logger.info("hubspot access token refreshed, expires at %s", fresh.expires_at)
    return fresh


def introspect(app: OAuthApp, token: str, *, hint: str = "access_token",
               session: requests.Session | None = None) -> TokenInfo:
    """Which portal and user a token belongs to (and whether it is still active)."""
    resp = _post(app, "token/introspect", {"token": token, "token_type_hint": hint}, session)
    _raise_for(resp, "introspect")
    body = _json(resp)
    hub = body.get("hub_id")
    user_id = body.get("user_id")
    return TokenInfo(active=bool(body.get("active")), hub_id=str(hub) if hub is not None else None,
                     user=body.get("user"), user_id=str(user_id) if user_id is not None else None,
                     hub_domain=body.get("hub_domain"), scopes=tuple(body.get("scopes") or ()),
                     expires_in=body.get("expires_in"))


def revoke(app: OAuthApp, token: str, *, hint: str = "refresh_token", session: requests.Session | None = None) -> None:
    """Revoke a token (does not uninstall the app; HubSpot keeps the install)."""
    resp = _post(app, "token/revoke", {"token": token, "token_type_hint": hint}, session)
    _raise_for(resp, "revoke")


def make_refresher(app: OAuthApp, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                   session: requests.Session | None = None) -> Refresher:
    """A `Refresher` for crm_adapters.auth token sources (StaticTokens, the store's locked source)."""
    return lambda tokens: refresh(app, tokens, now=clock(), session=session)
