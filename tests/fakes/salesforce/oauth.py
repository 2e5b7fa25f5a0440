"""OAuth endpoints of the fake: authorize (consent page, then redirect with code+state), token
(authorization_code with PKCE S256 and client secret; refresh_token with rotation), revoke,
userinfo and the identity URL. Token bodies carry `signature` = base64 HMAC-SHA256(id + issued_at)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, current_app, jsonify, redirect, request

from tests.fakes.salesforce.rest import org

bp = Blueprint("sf_oauth", __name__)


@dataclass
class OAuthApp:
    client_id: str = "fake-consumer-key"
    client_secret: str = "fake-consumer-secret"
    redirect_uris: tuple[str, ...] = ("https://app.example.com/salesforce/callback",)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)


def app_cfg() -> OAuthApp:
    return current_app.config["OAUTH_APP"]  # type: ignore[no-any-return]


def _base() -> str:
    return current_app.config["BASE_URL"]  # type: ignore[no-any-return]


def _error(code: str, description: str, status: int = 400) -> Any:
    return jsonify({"error": code, "error_description": description}), status


@bp.get("/services/oauth2/authorize")
def authorize() -> Any:
    a = request.args
    if a.get("client_id") != app_cfg().client_id:
        return _error("invalid_client_id", "client identifier invalid")
    if a.get("redirect_uri") not in app_cfg().redirect_uris:
        return _error("redirect_uri_mismatch", "redirect_uri must match configuration")
    hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in a.items())
    return (f"<!doctype html><title>Allow Access?</title><h1>Allow Access?</h1><form method=post>{hidden}"
            '<button name="approve" value="1" id="oaapprove">Allow</button>'
            '<button name="approve" value="0" id="oadeny">Deny</button></form>')


@bp.post("/services/oauth2/authorize")
def consent() -> Any:
    f = request.form
    if f.get("redirect_uri") not in app_cfg().redirect_uris or f.get("client_id") != app_cfg().client_id:
        return _error("redirect_uri_mismatch", "redirect_uri must match configuration")
    if f.get("approve") != "1":
        return redirect(f"{f['redirect_uri']}?{urlencode({'error': 'access_denied', 'error_description': 'end-user denied authorization', 'state': f.get('state', '')})}")
    code = "aPrx" + secrets.token_urlsafe(24)
    app_cfg().codes[code] = {"redirect_uri": f["redirect_uri"], "challenge": f.get("code_challenge"),
                             "method": f.get("code_challenge_method"), "scope": f.get("scope", "api refresh_token id")}
    return redirect(f"{f['redirect_uri']}?{urlencode({'code': code, 'state': f.get('state', '')})}")


def sign(identity: str, issued_at: str, secret: str) -> str:
    mac = hmac.new(secret.encode(), (identity + issued_at).encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def token_body(user_id: str, scope: str, *, refresh: str | None) -> dict[str, Any]:
    o = org()
    access = f"{o.org_id[:15]}!AQ{secrets.token_urlsafe(40)}"
    o.tokens[access] = user_id
    identity = f"{_base()}/id/{o.org_id}/{user_id}"
    issued_at = str(int(o.clock().timestamp() * 1000))
    body = {"access_token": access, "signature": sign(identity, issued_at, app_cfg().client_secret), "scope": scope,
            "instance_url": current_app.config.get("INSTANCE_URL") or _base(), "id": identity, "token_type": "Bearer",
            "issued_at": issued_at}
    if refresh:
        body["refresh_token"] = refresh
    return body


@bp.post("/services/oauth2/token")
def token() -> Any:
    f = request.form
    if f.get("client_id") != app_cfg().client_id or f.get("client_secret") != app_cfg().client_secret:
        return _error("invalid_client", "invalid client credentials")
    if f.get("grant_type") == "authorization_code":
        return _code_grant(f)
    if f.get("grant_type") == "refresh_token":
        return _refresh_grant(f.get("refresh_token", ""))
    return _error("unsupported_grant_type", "grant type not supported")


def _code_grant(f: Any) -> Any:
    grant = app_cfg().codes.pop(f.get("code", ""), None)
    if grant is None or grant["redirect_uri"] != f.get("redirect_uri"):
        return _error("invalid_grant", "invalid authorization code")
    verifier = f.get("code_verifier")
    if grant["challenge"]:
        if not verifier:
            return _error("invalid_grant", "invalid code verifier")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if grant["method"] != "S256" or digest != grant["challenge"]:
            return _error("invalid_request", "invalid code verifier")
    scope = grant["scope"]
    refresh = None
    if {"refresh_token", "offline_access"} & set(scope.split()):
        refresh = "5Aep" + secrets.token_urlsafe(30)
        org().refresh_tokens[refresh] = org().integration_user_id
    return jsonify(token_body(org().integration_user_id, scope, refresh=refresh))


def _refresh_grant(refresh: str) -> Any:
    user = org().refresh_tokens.get(refresh)
    if user is None:
        return _error("invalid_grant", "expired access/refresh token")
    new_refresh = None
    if org().rotate_refresh_tokens:
        del org().refresh_tokens[refresh]
        new_refresh = "5Aep" + secrets.token_urlsafe(30)
        org().refresh_tokens[new_refresh] = user
    return jsonify(token_body(user, "api refresh_token id", refresh=new_refresh))


@bp.post("/services/oauth2/revoke")
def revoke() -> Any:
    tok = request.form.get("token", "")
    o = org()
    if tok in o.refresh_tokens:
        del o.refresh_tokens[tok]
        o.tokens.clear()  # revoking a refresh token revokes its access tokens
        return "", 200
    if tok in o.tokens:
        del o.tokens[tok]
        return "", 200
    return _error("invalid_token", "invalid token")


def _bearer_user() -> str | None:
    auth = request.headers.get("Authorization", "")
    return org().tokens.get(auth[7:]) if auth.startswith("Bearer ") else None


def _identity(user_id: str) -> dict[str, Any]:
    o = org()
    user = o.records["User"][user_id]
    rest = f"{current_app.config.get('INSTANCE_URL') or _base()}/services/data/v{{version}}/"
    return {"id": f"{_base()}/id/{o.org_id}/{user_id}", "asserted_user": True, "user_id": user_id,
            "organization_id": o.org_id, "username": user.get("Username"), "display_name": user.get("Name"),
            "email": user.get("Email"), "active": True, "user_type": "STANDARD", "language": "en_US",
            "locale": "en_US", "utcOffset": 0, "urls": {"rest": rest, "sobjects": rest + "sobjects/",
                                                         "query": rest + "query/"}}


@bp.get("/id/<org_id>/<user_id>")
def identity(org_id: str, user_id: str) -> Any:
    if _bearer_user() is None:
        return "Bad_OAuth_Token", 403
    if org_id != org().org_id or user_id not in org().records["User"]:
        return "Bad_Id", 404
    return jsonify(_identity(user_id))


@bp.get("/services/oauth2/userinfo")
def userinfo() -> Any:
    user = _bearer_user()
    if user is None:
        return "Bad_OAuth_Token", 403
    data = _identity(user)
    return jsonify({"sub": data["id"], "user_id": user, "organization_id": data["organization_id"],
                    "preferred_username": data["username"], "name": data["display_name"], "email": data["email"]})


def register(app: Flask) -> None:
    app.register_blueprint(bp)
