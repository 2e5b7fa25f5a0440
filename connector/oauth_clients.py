"""The OAuth HTTP calls the install flow makes, behind one small interface per CRM.

The adapters' own oauth modules (crm_adapters.hubspot.oauth, crm_adapters.salesforce.oauth)
are used when present; until then these form-encoded calls do the same. CRM error bodies
become CrmAuthError/CrmUnavailable with the CRM's error code, never with token values.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from typing import Any

import requests

from crm_adapters.errors import CrmAuthError, CrmBadRequest, CrmUnavailable

logger = logging.getLogger(__name__)
TIMEOUT = 15
HUBSPOT_OAUTH = "/oauth/2026-03"


def _post_form(url: str, data: dict[str, str], *, what: str) -> dict[str, Any]:
    try:
        resp = requests.post(url, data=data, headers={"Accept": "application/json"}, timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise CrmUnavailable(f"{what}: {type(exc).__name__}") from None
    if resp.status_code >= 500:
        raise CrmUnavailable(f"{what}: HTTP {resp.status_code}")
    try:
        body = resp.json() if resp.content else {}
    except ValueError:
        body = {}
    if resp.status_code >= 400:
        code = str(body.get("error") or body.get("status") or resp.status_code)
        detail = str(body.get("error_description") or body.get("message") or "")[:200]
        if code in ("invalid_grant", "invalid_client", "BAD_REFRESH_TOKEN", "BAD_AUTH_CODE", "401"):
            raise CrmAuthError(f"{what}: {code} {detail}".strip())
        raise CrmBadRequest(f"{what}: {code} {detail}".strip())
    return body if isinstance(body, dict) else {}


class HubSpotOAuth:
    """Code exchange, introspection and revocation on HubSpot's date-versioned OAuth endpoints."""

    def __init__(self, base_url: str, client_id: str, client_secret: str) -> None:
        self.base_url, self.client_id, self._secret = base_url.rstrip("/"), client_id, client_secret

    def exchange_code(self, code: str, redirect_uri: str) -> dict[str, Any]:
        return _post_form(f"{self.base_url}{HUBSPOT_OAUTH}/token", {
            "grant_type": "authorization_code", "client_id": self.client_id, "client_secret": self._secret,
            "redirect_uri": redirect_uri, "code": code}, what="HubSpot code exchange")

    def introspect(self, access_token: str) -> dict[str, Any]:
        return _post_form(f"{self.base_url}{HUBSPOT_OAUTH}/token/introspect", {
            "client_id": self.client_id, "client_secret": self._secret, "token": access_token,
            "token_type_hint": "access_token"}, what="HubSpot token introspection")

    def revoke(self, refresh_token: str) -> None:
        _post_form(f"{self.base_url}{HUBSPOT_OAUTH}/token/revoke", {
            "client_id": self.client_id, "client_secret": self._secret, "token": refresh_token,
            "token_type_hint": "refresh_token"}, what="HubSpot token revocation")


class SalesforceOAuth:
    """Web-server flow with PKCE against one login host (production, sandbox or My Domain)."""

    def __init__(self, client_id: str, client_secret: str) -> None:
        self.client_id, self._secret = client_id, client_secret

    def exchange_code(self, login_host: str, code: str, redirect_uri: str, code_verifier: str) -> dict[str, Any]:
        return _post_form(f"{login_host}/services/oauth2/token", {
            "grant_type": "authorization_code", "code": code, "client_id": self.client_id,
            "client_secret": self._secret, "redirect_uri": redirect_uri, "code_verifier": code_verifier},
            what="Salesforce code exchange")

    def signature_ok(self, token: dict[str, Any]) -> bool:
        """base64(HMAC-SHA256(client_secret, id + issued_at)) proves `id` came from Salesforce."""
        sent = str(token.get("signature") or "")
        if not sent or not token.get("id") or not token.get("issued_at"):
            return False
        mac = hmac.new(self._secret.encode(), (str(token["id"]) + str(token["issued_at"])).encode(), hashlib.sha256)
        return hmac.compare_digest(base64.b64encode(mac.digest()).decode(), sent)

    def revoke(self, login_host: str, token: str) -> None:
        _post_form(f"{login_host}/services/oauth2/revoke", {"token": token}, what="Salesforce token revocation")


def pkce_pair(verifier: str) -> tuple[str, str]:
    """(verifier, S256 challenge): base64url(sha256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")
