"""The fake's OAuth endpoints: the consent page, /oauth/{v1,v3,2026-03}/token, introspect, revoke."""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from flask import Flask, Response, redirect, request

from tests.fakes.hubspot.rules import app_scopes
from tests.fakes.hubspot.tokens import OAuthError

if TYPE_CHECKING:
    from tests.fakes.hubspot.app import FakeHubSpot

CONSENT = """<!doctype html><html><head><title>Connect app - HubSpot (fake)</title></head><body>
<h1>Connect salesloop to portal {hub_id}</h1><p>Requested scopes: {scopes}</p>
<form method="post" action="/oauth/authorize">
<input type="hidden" name="client_id" value="{client_id}"><input type="hidden" name="redirect_uri" value="{redirect_uri}">
<input type="hidden" name="state" value="{state}"><input type="hidden" name="hub_id" value="{hub_id}">
<input type="hidden" name="scope" value="{scopes}">
<button id="connect-app" type="submit" name="decision" value="allow">Connect app</button>
<button id="cancel" type="submit" name="decision" value="deny">Cancel</button>
</form></body></html>"""


def _json(body: object, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def register(app: Flask, fake: FakeHubSpot) -> None:
    def _oauth_error(err: OAuthError) -> Response:
        return _json(err.body(), err.status)

    @app.get("/oauth/authorize")
    @app.get("/oauth/<int:hub_id>/authorize")
    def consent(hub_id: int | None = None) -> Response:
        args = request.args
        if args.get("client_id") != fake.oauth.client_id or not args.get("redirect_uri"):
            return Response("<h1>Authorization failed: unknown client_id or missing redirect_uri</h1>", status=400)
        page = CONSENT.format(hub_id=hub_id or fake.portal.hub_id, **{
            k: html.escape(args.get(k, ""), quote=True) for k in ("client_id", "redirect_uri", "state")},
            scopes=html.escape(args.get("scope", ""), quote=True))
        return Response(page, mimetype="text/html")

    @app.post("/oauth/authorize")
    def approve() -> Response:
        form = request.form
        if form.get("client_id") != fake.oauth.client_id:
            return Response("<h1>unknown client</h1>", status=400)
        sep = "&" if "?" in form["redirect_uri"] else "?"
        if form.get("decision") != "allow":
            query = urlencode({"error": "access_denied", "state": form.get("state", "")})
            return redirect(f"{form['redirect_uri']}{sep}{query}", code=302)
        requested = tuple(form.get("scope", "").split())
        undeclared = sorted(set(requested) - set(app_scopes()))
        if undeclared:  # install fails for a scope the app config does not declare (research §1.2)
            return Response(f"<h1>Authorization failed: scopes not declared by the app: {html.escape(str(undeclared))}"
                            "</h1>", status=400)
        with fake.lock:
            code = fake.oauth.authorize(int(form["hub_id"]), form["redirect_uri"], scopes=requested or app_scopes())
        return redirect(f"{form['redirect_uri']}{sep}{urlencode({'code': code, 'state': form.get('state', '')})}",
                        code=302)

    @app.post("/oauth/<any(v1, v3, '2026-03', '2026-09'):version>/token")
    def token(version: str) -> Response:
        try:
            with fake.lock:
                body = fake.oauth.token(request.form.to_dict())
        except OAuthError as err:
            return _oauth_error(err)
        if version == "v1":  # the legacy body: no token_use, no user_id
            body = {k: v for k, v in body.items() if k not in ("token_use", "user_id", "scopes")}
        return _json(body)

    @app.post("/oauth/<any(v3, '2026-03', '2026-09'):version>/token/introspect")
    def introspect(version: str) -> Response:
        try:
            with fake.lock:
                return _json(fake.oauth.introspect(request.form.to_dict()))
        except OAuthError as err:
            return _oauth_error(err)

    @app.post("/oauth/<any(v3, '2026-03', '2026-09'):version>/token/revoke")
    def revoke(version: str) -> Response:
        try:
            with fake.lock:
                fake.oauth.revoke(request.form.to_dict())
        except OAuthError as err:
            return _oauth_error(err)
        return Response(status=200)

    @app.get("/oauth/v1/access-tokens/<token>")
    def access_token_info(token: str) -> Response:
        with fake.lock:
            entry = fake.oauth.access.get(token)
            if entry is None or entry[1] < fake.clock():
                return _oauth_error(OAuthError(404, "invalid_token", "access token not found or expired",
                                               "NOT_FOUND"))
            grant = entry[0]
            return _json({"token": token, "user": grant.user, "hub_domain": f"portal{grant.hub_id}.hubspot.example",
                          "scopes": list(grant.scopes), "hub_id": grant.hub_id, "app_id": fake.oauth.app_id,
                          "expires_in": int(entry[1] - fake.clock()), "user_id": grant.user_id,
                          "token_type": "access"})
