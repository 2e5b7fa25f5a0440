"""The Salesforce card: a Canvas app on the opportunity page, authenticated by the signed request.

Salesforce POSTs `signed_request` = base64(HMAC-SHA256(consumer secret, payload)) + "." +
payload, where payload is the base64 JSON context. We check the MAC in constant time before
reading anything, take the org from the context (so one org can never see another's data),
and render the card from the store. Approve/reject buttons post back a short-lived token we
signed for this org, user and deal (no Salesforce token ever leaves the iframe's request).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import math
from typing import Any

from flask import Blueprint, current_app, render_template, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from connector import web
from connector.errors import ApiError
from connector.store.clean import key_problem
from ui_extensions import card_data
from ui_extensions.card_states import CardState, installation_or_state

logger = logging.getLogger(__name__)
bp = Blueprint("salesforce_card", __name__, template_folder="templates")
MAX_SKEW_S = 15 * 60
_ACTION_SALT = "salesloop-sf-card-action"


def verify_signed_request(signed_request: str, secret: str, *, now_s: float) -> dict[str, Any]:
    """The decoded Canvas context, or ApiError(401) when it is not signed with our consumer secret."""
    if not secret:
        raise ApiError(503, "not_configured", "Salesforce is not configured on this server")
    sig_b64, dot, payload_b64 = (signed_request or "").partition(".")
    if not dot or not sig_b64 or not payload_b64:
        raise ApiError(401, "bad_signature", "signed_request must be '<signature>.<payload>'")
    expected = base64.b64encode(hmac.new(secret.encode(), payload_b64.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, sig_b64.encode()):
        logger.warning("rejected a Canvas signed request with a bad signature")
        raise ApiError(401, "bad_signature", "the Canvas signed request does not match our consumer secret")
    try:
        context = json.loads(base64.b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        raise ApiError(400, "bad_request", "the Canvas payload is not base64 JSON") from None
    if not isinstance(context, dict) or context.get("algorithm") != "HMACSHA256":
        raise ApiError(401, "bad_signature", "the Canvas payload must use HMACSHA256")
    issued = context.get("issuedAt")
    if not isinstance(issued, int | float) or isinstance(issued, bool) or not math.isfinite(issued):
        raise ApiError(401, "bad_signature", "the Canvas signed request has no numeric issuedAt")
    issued_s = issued / 1000 if issued > 1e11 else issued
    if abs(now_s - issued_s) > MAX_SKEW_S:
        raise ApiError(401, "bad_signature", "the Canvas signed request is stale (issuedAt over 15 minutes away)")
    return context


def org_id_18(org_id: str) -> str:
    """Salesforce's 15 -> 18 character id (case-safe suffix), so both forms find the tenant."""
    if len(org_id) != 15:
        return org_id
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
    suffix = ""
    for chunk in (org_id[0:5], org_id[5:10], org_id[10:15]):
        bits = sum(1 << i for i, ch in enumerate(chunk) if ch.isupper())
        suffix += alphabet[bits]
    return org_id + suffix


def _context_ids(context: dict[str, Any]) -> tuple[str, str, str]:
    """(org id, user id, opportunity id) from the Canvas context."""
    ctx = _part(context, "context")
    org = str(_part(ctx, "organization").get("organizationId") or "")
    user = str(_part(ctx, "user").get("userId") or "")
    env = _part(ctx, "environment")
    deal = str(_part(env, "parameters").get("recordId") or _part(env, "record").get("Id") or "")
    if not org:
        raise ApiError(400, "bad_request", "the Canvas context names no organization")
    if not deal:
        raise ApiError(400, "bad_request", "open this card on an opportunity (no record id in the Canvas context)")
    for name, value in (("organization id", org), ("user id", user or "-"), ("record id", deal)):
        if key_problem(value):
            raise ApiError(400, "bad_request", f"the Canvas context's {name} is not a Salesforce id")
    return org_id_18(org), user, deal


def _part(parent: dict[str, Any], name: str) -> dict[str, Any]:
    """A nested object of the Canvas context; missing is empty, anything but an object is a 400."""
    value = parent.get(name) or {}
    if not isinstance(value, dict):
        raise ApiError(400, "bad_request", f"the Canvas context's {name} is not an object")
    return value


@bp.after_request
def _frame_policy(response):  # type: ignore[no-untyped-def]
    """Only Salesforce may frame the card; nothing loads from anywhere else."""
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors https://*.salesforce.com https://*.force.com https://*.visualforce.com"
    )
    return response


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_ACTION_SALT)


@bp.post("/cards/salesforce")
def canvas_card() -> str:
    context = verify_signed_request(request.form.get("signed_request", ""), web.settings().salesforce_client_secret,
                                    now_s=web.now().timestamp())
    org, user, deal = _context_ids(context)
    return _render(org, user, deal)


def _render(org: str, user: str, deal: str, notice: str = "") -> str:
    with web.store().session() as s:
        installation = installation_or_state(s, "salesforce", org, base_url=web.settings().public_base_url)
        if isinstance(installation, CardState):  # signed by Salesforce, but nothing to show: say why, link the fix
            return render_template("card_state.html", state=installation)
        manager = card_data.is_manager(s, installation.id, user)
        view = card_data.load_view(s, installation.id, deal, manager=manager)
    token = _serializer().dumps({"o": org, "u": user, "d": deal}) if manager else ""
    return render_template("salesforce_card.html", view=view, action_token=token, notice=notice)


@bp.post("/cards/salesforce/proposals/<proposal_id>/<verdict>")
def canvas_decide(proposal_id: str, verdict: str) -> str:
    """A manager's button in the canvas card; the token proves org, user and deal for 15 minutes."""
    if verdict not in ("approve", "reject"):
        raise ApiError(400, "bad_request", "verdict must be approve or reject")
    try:
        data = _serializer().loads(request.form.get("action_token", ""), max_age=MAX_SKEW_S)
    except BadSignature:
        raise ApiError(401, "bad_signature", "this card expired; reload the opportunity page") from None
    org, user, deal = data["o"], data["u"], data["d"]
    with web.store().session() as s:
        installation = card_data.active_installation(s, "salesforce", org)
        if not card_data.is_manager(s, installation.id, user):
            raise ApiError(403, "forbidden", "only managers can approve or reject proposals")
        result = card_data.decide(s, installation.id, proposal_id, approved=verdict == "approve",
                                  by=f"salesforce-user:{user}", reason=request.form.get("reason", "")[:500])
    return _render(org, user, deal, notice=f"Proposal {result['status']}.")
