"""Install and uninstall, per CRM: OAuth with single-use state (and PKCE on Salesforce).

GET /install/hubspot -> HubSpot's consent screen -> GET /oauth/hubspot/callback:
exchange the code on /oauth/2026-03/token, introspect for the portal and installing user,
store the installation (tenant = portal id, tokens encrypted), provision our properties,
enqueue the first backfill, sign the admin in.
GET /install/salesforce?env=production|sandbox|mydomain&host=... -> the org's login host
with PKCE S256 -> GET /oauth/salesforce/callback: exchange with verifier and secret, check
the response signature before trusting `id`, tenant = org id from the identity URL.
A reinstall or a second admin lands on the same tenant (crm, tenant_id is unique).
"""

from __future__ import annotations

import logging
import re
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlparse

from flask import Blueprint, jsonify, redirect, request, url_for
from werkzeug.wrappers import Response

from connector import oauth_state, web
from connector.errors import ApiError
from connector.installations import request_backfill, uninstall
from connector.oauth_clients import HubSpotOAuth, SalesforceOAuth, pkce_pair
from connector.signatures import SignatureError, public_uri, verify_v3
from connector.store import installations as inst
from connector.store.tables import Installation
from crm_adapters.errors import ConfigError, CrmError

logger = logging.getLogger(__name__)
bp = Blueprint("oauth", __name__)

# Exactly what the adapters call (hubspot research §1.2): deals and companies read/write for
# our fields, contacts read/write because HubSpot gates engagements (tasks, notes, calls) on
# them, owners for users, schemas write to create our property group and properties.
HUBSPOT_SCOPES = (
    "oauth", "crm.objects.deals.read", "crm.objects.deals.write", "crm.objects.companies.read",
    "crm.objects.companies.write", "crm.objects.contacts.read", "crm.objects.contacts.write",
    "crm.objects.owners.read", "crm.schemas.deals.write", "crm.schemas.companies.write",
)
SALESFORCE_SCOPES = ("api", "refresh_token", "id")
_MY_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*(--[a-z0-9-]+)?(\.sandbox)?\.my\.salesforce\.com$")
_ORG_ID = re.compile(r"^00D[A-Za-z0-9]{12}([A-Za-z0-9]{3})?$")


def _callback_url(crm: str) -> str:
    return web.settings().public_base_url.rstrip("/") + f"/oauth/{crm}/callback"


def hubspot_client() -> HubSpotOAuth:
    s = web.settings()
    if not s.hubspot_client_id:
        raise ApiError(503, "not_configured", "HubSpot is not configured on this server (HUBSPOT_CLIENT_ID)")
    return HubSpotOAuth(s.hubspot_base_url, s.hubspot_client_id, s.hubspot_client_secret)


def salesforce_client() -> SalesforceOAuth:
    s = web.settings()
    if not s.salesforce_client_id:
        raise ApiError(503, "not_configured", "Salesforce is not configured on this server (SALESFORCE_CLIENT_ID)")
    return SalesforceOAuth(s.salesforce_client_id, s.salesforce_client_secret)


@bp.get("/install/hubspot")
def install_hubspot() -> Response:
    """Send the admin to HubSpot's consent screen with our scopes and a fresh state."""
    client = hubspot_client()
    state = oauth_state.issue("hubspot", {})
    query = urlencode({"client_id": client.client_id, "redirect_uri": _callback_url("hubspot"),
                       "scope": " ".join(HUBSPOT_SCOPES), "state": state})
    return redirect(f"{web.settings().hubspot_app_base_url.rstrip('/')}/oauth/authorize?{query}")


@bp.get("/oauth/hubspot/callback")
def hubspot_callback() -> Response:
    _refuse_denied_consent()
    oauth_state.consume("hubspot", request.args.get("state"))
    code = _required_arg("code")
    client = hubspot_client()
    token = client.exchange_code(code, _callback_url("hubspot"))
    info = client.introspect(str(token["access_token"]))
    hub_id = token.get("hub_id") or info.get("hub_id")
    if not hub_id:
        raise ApiError(502, "crm_error", "HubSpot did not say which portal was installed (no hub_id)")
    user = str(info.get("user") or info.get("user_id") or "")
    expires_in = int(token.get("expires_in") or info.get("expires_in") or 1800)
    installation = _store_installation(
        crm="hubspot", tenant_id=str(hub_id), tokens=_token_fields(token),
        expires_at=web.now() + timedelta(seconds=expires_in), name=str(info.get("hub_domain") or ""),
        installed_by=user, scopes=" ".join(info.get("scopes") or token.get("scopes") or HUBSPOT_SCOPES))
    return _after_install(installation, user)


@bp.get("/install/salesforce")
def install_salesforce() -> Response:
    """Web-server flow with PKCE on the org's login host; the verifier stays server-side."""
    client = salesforce_client()
    login_host = _login_host(request.args.get("env", "production"), request.args.get("host", ""))
    verifier, challenge = pkce_pair(secrets.token_urlsafe(64))
    state = oauth_state.issue("salesforce", {"login_host": login_host, "code_verifier": verifier})
    query = urlencode({"response_type": "code", "client_id": client.client_id,
                       "redirect_uri": _callback_url("salesforce"), "scope": " ".join(SALESFORCE_SCOPES),
                       "state": state, "code_challenge": challenge, "code_challenge_method": "S256"})
    return redirect(f"{login_host}/services/oauth2/authorize?{query}")


@bp.get("/oauth/salesforce/callback")
def salesforce_callback() -> Response:
    _refuse_denied_consent()
    flow = oauth_state.consume("salesforce", request.args.get("state"))
    code = _required_arg("code")
    client = salesforce_client()
    token = client.exchange_code(flow["login_host"], code, _callback_url("salesforce"), flow["code_verifier"])
    if not client.signature_ok(token):
        logger.warning("Salesforce token response failed its signature check; nothing stored")
        raise ApiError(400, "bad_signature", "Salesforce's token response signature does not match; nothing was stored")
    org_id, user_id = _ids_from_identity_url(str(token["id"]))
    if not token.get("instance_url", "").startswith("https://") and not web.settings().testing:
        raise ApiError(502, "crm_error", "Salesforce returned no https instance_url")
    installation = _store_installation(
        crm="salesforce", tenant_id=org_id, tokens=_token_fields(token), expires_at=None,
        login_host=flow["login_host"], instance_url=str(token["instance_url"]), installed_by=user_id,
        scopes=str(token.get("scope") or " ".join(SALESFORCE_SCOPES)))
    return _after_install(installation, user_id)


def _login_host(env: str, host: str) -> str:
    """The login host for production, sandbox or a My Domain; only Salesforce hosts (no open redirect)."""
    base = web.settings().salesforce_login_url.rstrip("/")
    if env == "production":
        return base
    if env == "sandbox":
        return "https://test.salesforce.com" if base == "https://login.salesforce.com" else base
    if env == "mydomain":
        host = host.strip().lower().removeprefix("https://").rstrip("/")
        if not _MY_DOMAIN.match(host):
            raise ApiError(400, "bad_request", "host must be your My Domain, e.g. acme.my.salesforce.com")
        return f"https://{host}"
    raise ApiError(400, "bad_request", "env must be production, sandbox or mydomain")


def _ids_from_identity_url(identity: str) -> tuple[str, str]:
    parts = urlparse(identity).path.strip("/").split("/")
    if len(parts) != 3 or parts[0] != "id" or not _ORG_ID.match(parts[1]):
        raise ApiError(502, "crm_error", "Salesforce's identity URL does not name an org")
    return parts[1], parts[2]


def _refuse_denied_consent() -> None:
    if request.args.get("error"):
        detail = request.args.get("error_description") or request.args.get("error")
        raise ApiError(400, "install_declined", f"the CRM did not grant access: {detail}"[:300])


def _required_arg(name: str) -> str:
    value = request.args.get(name)
    if not value:
        raise ApiError(400, "bad_request", f"the callback has no {name}")
    return value


def _token_fields(token: dict[str, Any]) -> dict[str, Any]:
    """Only the secrets go in the encrypted blob; the rest lives in columns."""
    if not token.get("access_token"):
        raise ApiError(502, "crm_error", "the CRM's token response has no access_token")
    return {"access_token": token["access_token"], "refresh_token": token.get("refresh_token")}


def _store_installation(*, crm: str, tenant_id: str, tokens: dict[str, Any], expires_at: Any, **fields: Any) -> Installation:
    with web.store().session() as s:
        installation = inst.upsert(s, web.cipher(), crm=crm, tenant_id=tenant_id, tokens=tokens,
                                   expires_at=expires_at, **fields)
        inst.audit(s, installation.id, f"user:{fields.get('installed_by') or 'unknown'}", "oauth_granted",
                   {"scopes": fields.get("scopes", "")})
        return installation


def _after_install(installation: Installation, user: str) -> Response:
    """Provision our CRM fields, enqueue the backfill, sign the admin in, show the status page."""
    fields = provision_fields(installation)
    backfill = request_backfill(web.settings(), web.store(), installation.id)
    from connector.admin import auth

    auth.sign_in(installation.id, user or "admin")
    logger.info("installed %s tenant %s (fields %s, backfill %s)", installation.crm, installation.tenant_id, fields, backfill)
    if request.accept_mimetypes.best == "application/json":
        return jsonify(installation_id=installation.id, crm=installation.crm, tenant_id=installation.tenant_id,
                       fields=fields, backfill=backfill)
    return redirect(url_for("admin.status"))


def provision_fields(installation: Installation) -> str:
    """adapter.ensure_app_fields() (idempotent); a failure is recorded and retried by the backfill job."""
    from jobs.adapters import adapter_for

    try:
        adapter = adapter_for(installation, store=web.store(), settings=web.settings())
        report = adapter.ensure_app_fields()  # type: ignore[attr-defined]
        outcome, detail = "provisioned", {"created": list(report.created), "existing": list(report.existing),
                                          "missing_permissions": list(report.missing_permissions)}
    except (ConfigError, CrmError, AttributeError) as exc:
        outcome, detail = "pending", {"error": type(exc).__name__, "message": str(exc)[:300]}
        logger.warning("field provisioning for %s deferred: %s", installation.id, type(exc).__name__)
    with web.store().session() as s:
        inst.audit(s, installation.id, "system", f"fields_{outcome}", detail)
    return outcome


@bp.post("/uninstall")
def uninstall_from_admin() -> Response:
    """The signed-in admin disconnects their own installation (session-scoped, CSRF-checked)."""
    from connector.admin import auth

    auth.check_csrf()
    installation_id = auth.current_installation_id()
    _disconnect(installation_id, actor="admin")
    return jsonify(status="uninstalled", installation_id=installation_id)


@bp.post("/api/hubspot/uninstall")
def uninstall_from_hubspot() -> Response:
    """The app's settings in HubSpot disconnect the portal; the v3 signature proves the caller."""
    settings = web.settings()
    try:
        verify_v3(settings.hubspot_client_secret, method="POST", uri=public_uri(settings.public_base_url, request.environ),
                  body=request.get_data(), headers=request.headers, now_ms=web.now_ms())
    except SignatureError as exc:
        logger.warning("rejected HubSpot uninstall call: %s", exc)
        raise ApiError(401, "bad_signature", str(exc)) from None
    with web.store().session() as s:
        row = inst.find(s, "hubspot", request.args.get("portalId", ""))
        if row is None or row.status == "uninstalled":
            raise ApiError(404, "not_installed", "this portal has no active salesloop installation")
        installation_id = row.id
    _disconnect(installation_id, actor=f"hubspot-user:{request.args.get('userId', '')}")
    return jsonify(status="uninstalled")


def _disconnect(installation_id: str, *, actor: str) -> None:
    uninstall(web.store(), web.cipher(), installation_id, _revoke, actor=actor)


def _revoke(installation: Installation, tokens: Any) -> None:
    refresh = tokens.get("refresh_token") or tokens.get("access_token")
    if installation.crm == "hubspot":
        hubspot_client().revoke(refresh)
    elif installation.crm == "salesforce":
        salesforce_client().revoke(installation.login_host or web.settings().salesforce_login_url, refresh)
