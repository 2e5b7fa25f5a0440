"""The HubSpot app card's backend: hubspot.fetch calls, each proven by the v3 signature.

The portal, user and deal come from the signed query string, so a caller can only ever read
the tenant whose portal id HubSpot signed. Reads come from the store only.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, jsonify, request
from werkzeug.wrappers import Response

from connector import web
from connector.errors import ApiError
from connector.signatures import SignatureError, public_uri, verify_v3
from connector.store.clean import db_text
from ui_extensions import card_data
from ui_extensions.card_states import CardState, installation_or_state

logger = logging.getLogger(__name__)
bp = Blueprint("hubspot_card", __name__, url_prefix="/api/hubspot/cards")


def _verified() -> tuple[str, str]:
    """(portalId, userId) from a request HubSpot signed; 401 otherwise."""
    settings = web.settings()
    try:
        verify_v3(settings.hubspot_client_secret, method=request.method,
                  uri=public_uri(settings.public_base_url, request.environ), body=request.get_data(cache=True),
                  headers=request.headers, now_ms=web.now_ms())
    except SignatureError as exc:
        logger.warning("rejected HubSpot card call: %s", exc)
        raise ApiError(401, "bad_signature", str(exc)) from None
    portal_id = request.args.get("portalId", "")
    if not portal_id.isdigit():
        raise ApiError(400, "bad_request", "portalId is required")
    return portal_id, request.args.get("userId", "")


@bp.get("/deal")
def deal_card() -> Response:
    portal_id, user_id = _verified()
    deal_id = request.args.get("objectId", "")
    if not deal_id:
        raise ApiError(400, "bad_request", "objectId (the deal id) is required")
    with web.store().session() as s:
        installation = installation_or_state(s, "hubspot", portal_id, base_url=web.settings().public_base_url)
        if isinstance(installation, CardState):  # signed by HubSpot, but nothing to show: the card says why, with the fix
            return jsonify(installation.to_view())
        manager = card_data.is_manager(s, installation.id, user_id, request.args.get("userEmail"))
        view = card_data.load_view(s, installation.id, deal_id, manager=manager)
    return jsonify(view)


@bp.post("/proposals/<proposal_id>/<verdict>")
def decide(proposal_id: str, verdict: str) -> Response:
    """Approve or reject from the card; managers only, idempotent under HubSpot's one retry."""
    portal_id, user_id = _verified()
    if verdict not in ("approve", "reject"):
        raise ApiError(400, "bad_request", "verdict must be approve or reject")
    body = _json_object()
    with web.store().session() as s:
        installation = card_data.active_installation(s, "hubspot", portal_id)
        if not card_data.is_manager(s, installation.id, user_id, request.args.get("userEmail")):
            raise ApiError(403, "forbidden", "only managers can approve or reject proposals")
        result = card_data.decide(s, installation.id, proposal_id, approved=verdict == "approve",
                                  by=f"hubspot-user:{user_id}", reason=db_text(str(body.get("reason") or ""))[:500])
    return jsonify(result)


def _json_object() -> dict[str, Any]:
    """The request's JSON body as an object (empty when there is none); any other JSON is a 400."""
    if not request.get_data(cache=True):
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", 'the body must be a JSON object such as {"reason": "..."}')
    return body
