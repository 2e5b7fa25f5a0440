"""POST /webhooks/hubspot: verify, record, de-duplicate, answer fast; the work happens in jobs.

Every delivery is checked against X-HubSpot-Signature-v3 on the public URL and raw body.
Each event is stored once (WebhookEvent unique key), so HubSpot's retries and duplicates
are harmless. Privacy deletions purge the contact at once (a legal duty, not a sync), deal
deletions mark the deal deleted, and everything else becomes one incremental sync request
per installation. A well-signed but malformed body is kept raw with status "malformed".
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from typing import Any

from flask import Blueprint, jsonify, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connector import web
from connector.errors import ApiError
from connector.installations import request_sync
from connector.signatures import SignatureError, public_uri, verify_v3
from connector.store import installations as inst
from connector.store.tables import CardData, CrmRecord, WebhookEvent
from crm_adapters.model import Entity

logger = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)

_ENTITY_BY_PREFIX = {"deal": Entity.DEAL, "contact": Entity.CONTACT, "company": Entity.ACCOUNT}
_ACTIVITY_TYPE_IDS = {"0-4", "0-27", "0-46", "0-47", "0-48", "0-49"}  # task, engagement, note, meeting, call, email
_REQUIRED = ("portalId", "subscriptionType", "objectId", "occurredAt")


@bp.post("/webhooks/hubspot")
def hubspot_webhook():  # type: ignore[no-untyped-def]
    """Verify, store each new event once, act; 200 with counts."""
    body = request.get_data(cache=True)
    _verify(body)
    events = _parse(body)
    store = web.store()
    received, duplicates, syncs = 0, 0, defaultdict(lambda: defaultdict(list))  # type: ignore[var-annotated]
    with store.session() as session:
        for event in events:
            row = _record_event(session, event)
            if row is None:
                duplicates += 1
                continue
            received += 1
            _apply(session, row, event, syncs)
    for installation_id, objects in syncs.items():
        request_sync(web.settings(), store, installation_id, objects)
    return jsonify(received=received, duplicates=duplicates), 200


def _verify(body: bytes) -> None:
    settings = web.settings()
    uri = public_uri(settings.public_base_url, request.environ)
    try:
        verify_v3(settings.hubspot_client_secret, method=request.method, uri=uri, body=body,
                  headers=request.headers, now_ms=web.now_ms())
    except SignatureError as exc:
        logger.warning("rejected HubSpot webhook from %s: %s", request.remote_addr, exc)
        raise ApiError(401, "bad_signature", str(exc)) from None


def _parse(body: bytes) -> list[dict[str, Any]]:
    """A JSON array of event objects with the keys we act on; anything else is kept raw and refused."""
    problem = ""
    try:
        events = json.loads(body)
    except ValueError as exc:
        events, problem = None, f"body is not JSON: {exc}"
    if not problem and not (isinstance(events, list) and all(isinstance(e, dict) for e in events)):
        problem = "body must be a JSON array of event objects"
    if not problem:
        missing = sorted({k for e in events for k in _REQUIRED if e.get(k) in (None, "")})  # type: ignore[union-attr]
        problem = f"events lack {', '.join(missing)}" if missing else ""
    if problem:
        _keep_malformed(body)
        raise ApiError(400, "malformed_webhook", problem)
    return events  # type: ignore[return-value]


def _keep_malformed(body: bytes) -> None:
    key = "malformed:" + hashlib.sha256(body).hexdigest()
    with web.store().session() as session:
        if session.execute(select(WebhookEvent.id).where(
                WebhookEvent.crm == "hubspot", WebhookEvent.event_key == key)).first() is None:
            session.add(WebhookEvent(crm="hubspot", event_key=key, raw=body.decode("utf-8", "backslashreplace"),
                                     status="malformed"))
    logger.warning("kept a malformed HubSpot webhook (%d bytes) as %s", len(body), key[:24])


def event_key(event: dict[str, Any]) -> str:
    """HubSpot's eventId alone is not unique; this tuple is."""
    parts = (event.get("portalId"), event.get("subscriptionId"), event.get("eventId"),
             event.get("occurredAt"), event.get("objectId"), event.get("propertyName"))
    return ":".join("" if p is None else str(p) for p in parts)[:200]


def _record_event(session: Session, event: dict[str, Any]) -> WebhookEvent | None:
    """Insert the event once; None when it was seen before (a retry or a duplicate delivery)."""
    key = event_key(event)
    seen = select(WebhookEvent.id).where(WebhookEvent.crm == "hubspot", WebhookEvent.event_key == key)
    if session.execute(seen).first() is not None:
        return None
    installation = inst.find(session, "hubspot", str(event["portalId"]))
    row = WebhookEvent(crm="hubspot", event_key=key, raw=json.dumps(event, sort_keys=True),
                       installation_id=installation.id if installation else None)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # the same event arrived concurrently on another worker
        return None
    return row


def _apply(session: Session, row: WebhookEvent, event: dict[str, Any], syncs: Any) -> None:
    kind = str(event["subscriptionType"])
    object_id = str(event["objectId"])
    if row.installation_id is None:
        row.status = "ignored"  # unknown portal: kept for inspection, nothing to do
    elif kind == "contact.privacyDeletion":  # honoured even after uninstall, while the data is retained
        purge_contact(session, row.installation_id, object_id)
        row.status = "done"
    elif inst.get(session, row.installation_id).status != "active":
        row.status = "ignored"  # disconnected: no more syncs
    elif kind == "deal.deletion":
        mark_deleted(session, row.installation_id, Entity.DEAL, object_id)
        row.status = "done"
    else:
        entity = _entity_of(event)
        if entity is None:
            row.status = "ignored"
            return
        syncs[row.installation_id][str(entity)].append(object_id)
        row.status = "enqueued"


def _entity_of(event: dict[str, Any]) -> Entity | None:
    kind = str(event["subscriptionType"])
    if kind.startswith("object."):
        return Entity.ACTIVITY if str(event.get("objectTypeId")) in _ACTIVITY_TYPE_IDS else None
    return _ENTITY_BY_PREFIX.get(kind.split(".", 1)[0])


def mark_deleted(session: Session, installation_id: str, entity: Entity, remote_id: str) -> None:
    """A deleted deal leaves the loops' snapshot and its card."""
    row = session.get(CrmRecord, (installation_id, str(entity), remote_id))
    if row is not None:
        row.deleted = True
    card = session.get(CardData, (installation_id, remote_id))
    if card is not None:
        session.delete(card)


def purge_contact(session: Session, installation_id: str, contact_id: str) -> None:
    """GDPR privacy deletion: the contact, its deal roles, and its id on activities are removed."""
    contact = session.get(CrmRecord, (installation_id, str(Entity.CONTACT), contact_id))
    if contact is not None:
        session.delete(contact)
    for rec in session.execute(select(CrmRecord).where(
            CrmRecord.installation_id == installation_id,
            CrmRecord.entity.in_([str(Entity.DEAL_CONTACT_ROLE), str(Entity.ACTIVITY)]))).scalars():
        payload = rec.payload or {}
        if rec.entity == str(Entity.DEAL_CONTACT_ROLE) and str(payload.get("contact_id")) == contact_id:
            session.delete(rec)
        elif contact_id in [str(c) for c in payload.get("contact_ids") or []]:
            rec.payload = {**payload, "contact_ids": [c for c in payload["contact_ids"] if str(c) != contact_id]}
    inst.audit(session, installation_id, "hubspot", "privacy_deletion", {"contact": "purged"})
