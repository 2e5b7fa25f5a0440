"""The fake's OAuth server state: one app (client id/secret), codes, access and refresh tokens.

Access tokens live 1800 s on the fake's clock (HubSpot's 30 minutes); refresh tokens are not
rotated (HubSpot returns the same one); a revoked refresh token answers invalid_grant with
status BAD_REFRESH_TOKEN, as HubSpot does after an uninstall.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.hubspot.rules import app_scopes

ACCESS_TTL = 1800
CODE_TTL = 600
DEFAULT_SCOPES = app_scopes()  # what the app's install config (app-hsmeta.json) asks for


class OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str, legacy_status: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description, self.legacy_status = status, error, description, legacy_status

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "error_description": self.description, "status": self.legacy_status,
                "message": self.description, "correlationId": secrets.token_hex(8)}


@dataclass
class Grant:
    hub_id: int
    user: str
    user_id: int
    scopes: tuple[str, ...]
    refresh_token: str
    revoked: bool = False


@dataclass
class TokenServer:
    client_id: str
    client_secret: str
    clock: Callable[[], float]
    app_id: int = 4242
    access_ttl: int = ACCESS_TTL
    codes: dict[str, tuple[Grant, str, float]] = field(default_factory=dict)  # code -> grant, redirect, expiry
    refresh: dict[str, Grant] = field(default_factory=dict)
    access: dict[str, tuple[Grant, float]] = field(default_factory=dict)  # token -> grant, expiry
    issued: int = 0

    def authorize(self, hub_id: int, redirect_uri: str, *, user: str = "admin@example.com",
                  scopes: tuple[str, ...] = DEFAULT_SCOPES) -> str:
        """What the consent screen does: a single-use code for this portal."""
        grant = Grant(hub_id, user, 9001, scopes, "na1-" + secrets.token_hex(18))
        code = secrets.token_hex(16)
        self.codes[code] = (grant, redirect_uri, self.clock() + CODE_TTL)
        return code

    def grant_for(self, hub_id: int, *, user: str = "admin@example.com",
                  scopes: tuple[str, ...] = DEFAULT_SCOPES) -> Grant:
        """A ready installation (tests that skip the browser), with the app's scopes unless told otherwise."""
        grant = Grant(hub_id, user, 9001, scopes, "na1-" + secrets.token_hex(18))
        self.refresh[grant.refresh_token] = grant
        return grant

    def token(self, form: dict[str, str]) -> dict[str, Any]:
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            raise OAuthError(400, "invalid_client", "missing or unknown client id or secret", "BAD_CLIENT_ID")
        kind = form.get("grant_type")
        if kind == "authorization_code":
            grant = self._redeem(form.get("code", ""), form.get("redirect_uri", ""))
        elif kind == "refresh_token":
            grant = self.refresh.get(form.get("refresh_token", ""))
            if grant is None or grant.revoked:
                raise OAuthError(400, "invalid_grant", "refresh token is invalid, expired or revoked",
                                 "BAD_REFRESH_TOKEN")
        else:
            raise OAuthError(400, "unsupported_grant_type", f"grant_type {kind!r} is not supported", "BAD_GRANT_TYPE")
        return self.issue(grant)

    def _redeem(self, code: str, redirect_uri: str) -> Grant:
        entry = self.codes.pop(code, None)
        if entry is None or entry[2] < self.clock():
            raise OAuthError(400, "invalid_grant", "authorization code is invalid, expired or used", "BAD_AUTH_CODE")
        grant, expected, _ = entry
        if redirect_uri != expected:
            raise OAuthError(400, "invalid_grant", "redirect_uri does not match", "BAD_REDIRECT_URI")
        self.refresh[grant.refresh_token] = grant
        return grant

    def issue(self, grant: Grant) -> dict[str, Any]:
        token = "CJ" + secrets.token_urlsafe(120)[:150]
        self.access[token] = (grant, self.clock() + self.access_ttl)
        self.issued += 1
        return {"token_type": "bearer", "access_token": token, "refresh_token": grant.refresh_token,
                "expires_in": self.access_ttl, "hub_id": grant.hub_id, "scopes": list(grant.scopes),
                "token_use": "access_token", "user_id": grant.user_id}

    def check(self, token: str) -> Grant | str:
        """The grant behind a bearer token, or why it is refused."""
        entry = self.access.get(token)
        if entry is None:
            return "INVALID_AUTHENTICATION"
        grant, expires = entry
        if grant.revoked:
            return "INVALID_AUTHENTICATION"
        if expires < self.clock():
            return "EXPIRED_AUTHENTICATION"
        return grant

    def introspect(self, form: dict[str, str]) -> dict[str, Any]:
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            raise OAuthError(400, "invalid_client", "missing or unknown client id or secret", "BAD_CLIENT_ID")
        token = form.get("token") or form.get("access_token") or form.get("refresh_token") or ""
        if token in self.refresh:
            grant, use, left = self.refresh[token], "refresh_token", None
        else:
            entry = self.access.get(token)
            if entry is None or entry[1] < self.clock() or entry[0].revoked:
                return {"active": False}
            grant, use, left = entry[0], "access_token", int(entry[1] - self.clock())
        body: dict[str, Any] = {"active": not grant.revoked, "token": token, "token_use": use, "token_type": "bearer",
                                "hub_id": grant.hub_id, "user_id": grant.user_id, "user": grant.user,
                                "hub_domain": f"portal{grant.hub_id}.hubspot.example", "app_id": self.app_id,
                                "client_id": self.client_id, "scopes": list(grant.scopes)}
        if left is not None:
            body["expires_in"] = left
        return body

    def revoke(self, form: dict[str, str]) -> None:
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            raise OAuthError(400, "invalid_client", "missing or unknown client id or secret", "BAD_CLIENT_ID")
        token = form.get("token", "")
        grant = self.refresh.get(token) or (self.access[token][0] if token in self.access else None)
        if grant is not None:
            grant.revoked = True

    def expire_all(self) -> None:
        """Every access token issued so far is past its expiry (tests of the refresh path)."""
        for token, (grant, _) in list(self.access.items()):
            self.access[token] = (grant, self.clock() - 1)
