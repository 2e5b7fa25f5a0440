"""OAuth `state` (and other single-use links): signed, short-lived, bound to the browser, usable exactly once.

The state in the URL is an itsdangerous token over a random nonce. The nonce is also kept
in the browser's signed session (so an attacker cannot make a victim finish the attacker's
install) and as a row in oauth_states with anything secret to the flow (the PKCE verifier,
the login host), so nothing sensitive travels in the URL. Consuming the row is one UPDATE
guarded by `used_at IS NULL`: two callbacks with the same state cannot both win.
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import current_app, session
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import update

from connector import web
from connector.errors import ApiError
from connector.store.tables import OAuthState

MAX_AGE_S = 600
_SALT = "salesloop-oauth-state"


class _Serializer(URLSafeTimedSerializer):
    """Timestamps from the app's clock, so expiry is testable without patching time."""

    def __init__(self) -> None:
        super().__init__(current_app.config["SECRET_KEY"], salt=_SALT)

    def make_signer(self, salt: Any = None):  # type: ignore[no-untyped-def]
        signer = super().make_signer(salt)
        signer.get_timestamp = lambda: int(web.now().timestamp())  # type: ignore[method-assign]
        return signer


def issue(crm: str, payload: dict[str, Any]) -> str:
    """A new state for one install attempt; `payload` stays server-side."""
    nonce = remember(crm, payload)
    session[f"oauth_nonce:{crm}"] = nonce
    return _Serializer().dumps({"n": nonce, "c": crm})


def consume(crm: str, state: str | None) -> dict[str, Any]:
    """The payload of a valid, fresh, unused state issued to this browser; ApiError(400) otherwise."""
    if not state:
        raise ApiError(400, "invalid_state", "the install link is missing its state parameter; start the install again")
    serializer = _Serializer()
    try:
        data = serializer.loads(state, max_age=MAX_AGE_S)
    except SignatureExpired:
        raise ApiError(400, "invalid_state", "the install link expired (10 minutes); start the install again") from None
    except BadSignature:
        raise ApiError(400, "invalid_state", "the install state was altered or not issued by salesloop") from None
    if not isinstance(data, dict) or data.get("c") != crm:
        raise ApiError(400, "invalid_state", f"this state was issued for another CRM, not {crm}")
    nonce = str(data.get("n"))
    if session.pop(f"oauth_nonce:{crm}", None) != nonce:
        raise ApiError(400, "invalid_state", "this install was started in another browser or already finished here")
    payload = use_once(crm, nonce)
    if payload is None:
        raise ApiError(400, "invalid_state", "this install link was already used; start the install again")
    return payload


def remember(kind: str, payload: dict[str, Any]) -> str:
    """A fresh nonce of `kind` stored with its server-side payload; `use_once` consumes it."""
    nonce = secrets.token_urlsafe(24)
    with web.store().session() as s:
        s.add(OAuthState(nonce=nonce, crm=kind, payload=payload, created_at=web.now()))
    return nonce


def use_once(kind: str, nonce: str) -> dict[str, Any] | None:
    """The payload of an unused nonce, marking it used in one guarded UPDATE (two racing uses: one wins);
    None when it is unknown or was used already."""
    if not nonce or len(nonce) > 64 or "\x00" in nonce:
        return None
    with web.store().session() as s:
        used = s.execute(
            update(OAuthState).where(OAuthState.nonce == nonce, OAuthState.crm == kind, OAuthState.used_at.is_(None))
            .values(used_at=web.now()).execution_options(synchronize_session=False)
        ).rowcount
        if not used:
            return None
        row = s.get(OAuthState, nonce)
        return dict(row.payload or {}) if row is not None else {}
