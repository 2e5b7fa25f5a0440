"""Admin sign-in by the CRM's own identity: no password database.

An admin arrives either straight from the OAuth install callback (which calls `sign_in`)
or through a signed, short-lived, single-use link made by `signed_login_url` (from the CRM card or the
app's settings link). The session is signed by Flask, scoped to one installation, and every
POST carries a CSRF token.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, current_app, request, session, url_for
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from connector.oauth_state import remember, use_once

LINK_MAX_AGE_S = 600
_LINK_KIND = "admin-link"  # a sign-in link works once: its nonce is consumed like an OAuth state
_SALT = "salesloop-admin-login"
F = TypeVar("F", bound=Callable[..., Any])


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def signed_login_url(installation_id: str, user: str, *, role: str = "admin", external: bool = True) -> str:
    """A link that signs `user` in to `installation_id` once, within the next ten minutes."""
    nonce = remember(_LINK_KIND, {"i": installation_id})
    token = _serializer().dumps({"i": installation_id, "u": user, "r": role, "n": nonce})
    return url_for("admin.login", t=token, _external=external)


def sign_in(installation_id: str, user: str, role: str = "admin") -> None:
    """Start a session for one tenant (a fresh session: no fixation)."""
    session.clear()
    session["installation_id"] = installation_id
    session["user"] = user
    session["role"] = role
    session["csrf"] = secrets.token_urlsafe(24)
    session.permanent = True


def sign_in_from_token(token: str) -> None:
    try:
        data = _serializer().loads(token, max_age=LINK_MAX_AGE_S)
    except SignatureExpired:
        abort(401, "this sign-in link has expired; open salesloop again from your CRM")
    except BadSignature:
        abort(401, "this sign-in link is not valid")
    if not isinstance(data, dict) or use_once(_LINK_KIND, str(data.get("n") or "")) != {"i": data.get("i")}:
        abort(401, "this sign-in link was already used; open salesloop again from your CRM for a new one")
    sign_in(data["i"], data["u"], data.get("r", "admin"))


def current_installation_id() -> str:
    installation_id = session.get("installation_id")
    if not installation_id:
        abort(401, "sign in from your CRM: open salesloop from the app's settings or a deal card")
    return str(installation_id)


def login_required(view: F) -> F:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        current_installation_id()
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return str(session["csrf"])


def check_csrf() -> None:
    """Every state-changing request must echo the session's CSRF token (form field or header)."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    expected = session.get("csrf") or ""
    if not expected or not hmac.compare_digest(str(sent), str(expected)):
        abort(403, "the form expired or did not come from this site (CSRF check failed); reload the page and try again")
