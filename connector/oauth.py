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
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import requests
from flask import Blueprint, jsonify, redirect, request, url_for
from werkzeug.wrappers import Response

from connector import oauth_state, web
from connector.admin import auth
from connector.errors import ApiError
from connector.installations import redis_for, request_backfill, uninstall
from connector.qualification_setup import suggest_for
from connector.signatures import SignatureError, public_uri, verify_v3
from connector.store import installations as inst
from connector.store.tables import Installation, InstallationStatus
from crm_adapters.auth import Tokens
from crm_adapters.errors import ConfigError, CrmAuthError, CrmError
from crm_adapters.hubspot import oauth as hs_oauth
from crm_adapters.salesforce import oauth as sf_oauth
from jobs.adapters import adapter_for

logger = logging.getLogger(__name__)
bp = Blueprint("oauth", __name__)

HUBSPOT_SCOPES = hs_oauth.SCOPES
SALESFORCE_SCOPES = sf_oauth.SCOPES
_MY_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*(--[a-z0-9-]+)?(\.sandbox)?\.my\.salesforce\.com$")


def _callback_url(crm: str) -> str:
    return web.settings().public_base_url.rstrip("/") + f"/oauth/{crm}/callback"


def hubspot_app() -> hs_oauth.OAuthApp:
    s = web.settings()
    if not s.hubspot_client_id:
        raise ApiError(503, "not_configured", "HubSpot is not configured on this server (HUBSPOT_CLIENT_ID)")
    return hs_oauth.OAuthApp(s.hubspot_client_id, s.hubspot_client_secret, api_host=s.hubspot_base_url,
                             app_host=s.hubspot_app_base_url)


def _salesforce_configured() -> None:
    if not web.settings().salesforce_client_id:
        raise ApiError(503, "not_configured", "Salesforce is not configured on this server (SALESFORCE_CLIENT_ID)")


@contextmanager
def _refused_as_400(crm: str) -> Iterator[None]:
    """A refused code exchange or a forged token response is the installer's problem: 400, nothing stored."""
    try:
        yield
    except CrmAuthError as exc:
        logger.warning("%s install refused: %s", crm, str(exc)[:200])
        code = "bad_signature" if "signature" in str(exc) else "oauth_refused"
        raise ApiError(400, code, f"{crm} refused the install: {str(exc)[:200]}; nothing was stored") from None


@bp.get("/install/hubspot")
def install_hubspot() -> Response:
    """Send the admin to HubSpot's consent screen with our scopes and a fresh state."""
    app = hubspot_app()
    state = oauth_state.issue("hubspot", {})
    return redirect(hs_oauth.authorize_url(app, redirect_uri=_callback_url("hubspot"), scopes=HUBSPOT_SCOPES,
                                           state=state))


@bp.get("/oauth/hubspot/callback")
def hubspot_callback() -> Response:
    _refuse_denied_consent()
    oauth_state.consume("hubspot", request.args.get("state"))
    code = _required_arg("code")
    app = hubspot_app()
    with _refused_as_400("HubSpot"):
        grant = hs_oauth.exchange_code(app, code=code, redirect_uri=_callback_url("hubspot"), now=web.now())
        info = hs_oauth.introspect(app, grant.tokens.access_token)
    hub_id = grant.hub_id or info.hub_id
    if not hub_id:
        raise ApiError(502, "crm_error", "HubSpot did not say which portal was installed (no hub_id)")
    user = str(info.user or info.user_id or "")
    expires_at = grant.tokens.expires_at or web.now() + timedelta(seconds=int(info.expires_in or 1800))
    installation = _store_installation(
        crm="hubspot", tenant_id=str(hub_id), tokens=_token_fields(grant.tokens.access_token, grant.tokens.refresh_token),
        expires_at=expires_at, name=str(info.hub_domain or ""), installed_by=user,
        scopes=" ".join(info.scopes or grant.scopes or HUBSPOT_SCOPES))
    return _after_install(installation, user)


@bp.get("/install/salesforce")
def install_salesforce() -> Response:
    """Web-server flow with PKCE on the org's login host; the verifier stays server-side."""
    _salesforce_configured()
    login_host = _login_host(request.args.get("env", "production"), request.args.get("host", ""))
    verifier, challenge = sf_oauth.pkce_pair()
    state = oauth_state.issue("salesforce", {"login_host": login_host, "code_verifier": verifier})
    return redirect(sf_oauth.authorize_url(
        login_host, client_id=web.settings().salesforce_client_id, redirect_uri=_callback_url("salesforce"),
        state=state, code_challenge=challenge, scope=" ".join(SALESFORCE_SCOPES)))


@bp.get("/oauth/salesforce/callback")
def salesforce_callback() -> Response:
    _refuse_denied_consent()
    flow = oauth_state.consume("salesforce", request.args.get("state"))
    code = _required_arg("code")
    _salesforce_configured()
    s = web.settings()
    with _refused_as_400("Salesforce"):  # exchange_code checks the signature before trusting `id`
        grant = sf_oauth.exchange_code(flow["login_host"], code=code, code_verifier=flow["code_verifier"],
                                       client_id=s.salesforce_client_id, client_secret=s.salesforce_client_secret,
                                       redirect_uri=_callback_url("salesforce"))
    installation = _store_installation(
        crm="salesforce", tenant_id=grant.org_id, tokens=_token_fields(grant.access_token, grant.refresh_token),
        expires_at=None, login_host=flow["login_host"], instance_url=grant.instance_url, installed_by=grant.user_id,
        scopes=grant.scope or " ".join(SALESFORCE_SCOPES))
    return _after_install(installation, grant.user_id)


def _login_host(env: str, host: str) -> str:
    """The login host for production, sandbox or a My Domain; only Salesforce hosts (no open redirect)."""
    base = web.settings().salesforce_login_url.rstrip("/")
    if env == "production":
        return base
    if env == "sandbox":
        return sf_oauth.SANDBOX if base == sf_oauth.PRODUCTION else base
    if env == "mydomain":
        host = host.strip().lower().removeprefix("https://").rstrip("/")
        if not _MY_DOMAIN.match(host):
            raise ApiError(400, "bad_request", "host must be your My Domain, e.g. acme.my.salesforce.com")
        return f"https://{host}"
    raise ApiError(400, "bad_request", "env must be production, sandbox or mydomain")


def _refuse_denied_consent() -> None:
    if request.args.get("error"):
        detail = request.args.get("error_description") or request.args.get("error")
        raise ApiError(400, "install_declined", f"the CRM did not grant access: {detail}"[:300])


def _required_arg(name: str) -> str:
    value = request.args.get(name)
    if not value:
        raise ApiError(400, "bad_request", f"the callback has no {name}")
    return value


def _token_fields(access_token: str, refresh_token: str | None) -> dict[str, Any]:
    """Only the secrets go in the encrypted blob; the rest lives in columns."""
    return {"access_token": access_token, "refresh_token": refresh_token}


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
    suggest_for(installation, store=web.store(), settings=web.settings())  # the admin confirms it on the Loops page
    backfill = request_backfill(web.settings(), web.store(), installation.id)
    auth.sign_in(installation.id, user or "admin")
    logger.info("installed %s tenant %s (fields %s, backfill %s)", installation.crm, installation.tenant_id, fields, backfill)
    if request.accept_mimetypes.best == "application/json":
        return jsonify(installation_id=installation.id, crm=installation.crm, tenant_id=installation.tenant_id,
                       fields=fields, backfill=backfill)
    return redirect(url_for("admin.status"))


def provision_fields(installation: Installation) -> str:
    """adapter.ensure_app_fields() (idempotent); a failure is recorded and retried by the backfill job."""

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
        if row is None or row.status == InstallationStatus.UNINSTALLED:
            raise ApiError(404, "not_installed", "this portal has no active salesloop installation")
        installation_id = row.id
    _disconnect(installation_id, actor=f"hubspot-user:{request.args.get('userId', '')}")
    return jsonify(status="uninstalled")


def _disconnect(installation_id: str, *, actor: str) -> None:
    uninstall(web.store(), web.cipher(), installation_id, _revoke, actor=actor, redis=redis_for(web.settings()))


def _revoke(installation: Installation, tokens: Any) -> None:
    refresh = tokens.get("refresh_token") or tokens.get("access_token")
    if installation.crm == "hubspot":
        _hubspot_external_uninstall(tokens)
        hs_oauth.revoke(hubspot_app(), refresh)
    elif installation.crm == "salesforce":
        sf_oauth.revoke(installation.login_host or web.settings().salesforce_login_url, refresh)


def _hubspot_external_uninstall(tokens: Any) -> None:
    """Revoking a token leaves the app installed in HubSpot; this removes it (cards, webhooks) from the portal."""
    app = hubspot_app()
    access = str(tokens.get("access_token") or "")
    for attempt in range(2):
        try:
            resp = requests.delete(f"{app.api_host.rstrip('/')}/appinstalls/2026-03/external-install",
                                   headers={"Authorization": f"Bearer {access}"}, timeout=15)
        except requests.RequestException as exc:
            logger.warning("HubSpot external uninstall unreachable: %s", type(exc).__name__)
            return
        if resp.status_code != 401 or attempt or not tokens.get("refresh_token"):
            break
        access = hs_oauth.refresh(app, Tokens(access, tokens["refresh_token"])).access_token  # expired: once more
    if resp.status_code >= 300:
        logger.warning("HubSpot external uninstall answered %s", resp.status_code)
