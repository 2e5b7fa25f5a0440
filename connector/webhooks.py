"""POST /webhooks/hubspot: verify, record, de-duplicate, answer fast; the work happens in jobs.

Every delivery is checked against X-HubSpot-Signature-v3 on the public URL and raw body.
A delivery that only asks for syncs (nearly all) costs one INSERT of all its events (ON CONFLICT
DO NOTHING on the unique event key) in autocommit on the thread's own connection, one round trip
with no wait for the disk: the events are hints, the sync's cursors find every change anyway.
HubSpot's retries and duplicates are harmless. The portals are read at most every 2 s per process,
and each tenant's incremental sync is asked for at most once a second per process (one RQ job with
a deterministic id, so waiting asks coalesce). Privacy deletions purge the contact at once (a legal
duty, not a sync) and deal deletions mark the deal deleted, in one transaction with their rows that
waits for the disk. A well-signed but malformed body is kept raw with status "malformed"; odd values
(NUL characters, ids no record can have) are kept and ignored, never a 500.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from redis.exceptions import RedisError
from sqlalchemy import Connection, TextClause, bindparam, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from connector import web
from connector.errors import ApiError
from connector.installations import request_sync
from connector.signatures import SignatureError, public_uri, verify_v3
from connector.store import Store
from connector.store import installations as inst
from connector.store.clean import db_text, key_problem, short_key
from connector.store.tables import (
    CardData,
    CrmRecord,
    Installation,
    InstallationStatus,
    WebhookEvent,
    WebhookStatus,
    new_id,
)
from crm_adapters.model import Entity
from jobs import queues

logger = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)

_ENTITY_BY_PREFIX = {"deal": Entity.DEAL, "contact": Entity.CONTACT, "company": Entity.ACCOUNT}
_ACTIVITY_TYPE_IDS = {"0-4", "0-27", "0-46", "0-47", "0-48", "0-49"}  # task, engagement, note, meeting, call, email
_REQUIRED = ("portalId", "subscriptionType", "objectId", "occurredAt")
MAX_RAW = 1_000_000  # characters of a raw body or event kept (HubSpot sends at most 100 small events)
SYNC_SIGNAL_MS = 1000
TENANT_TTL_S = 2.0


@bp.post("/webhooks/hubspot")
def hubspot_webhook():  # type: ignore[no-untyped-def]
    """Verify, store each new event once, act; 200 with counts."""
    body = request.get_data(cache=True)
    _verify(body)
    events = _parse(body)
    settings, store = web.settings(), web.store()
    redis = _redis(settings.redis_url)
    planned = _plan(store, events)
    if any(status == WebhookStatus.DONE for _, _, status in planned):
        # A purge or a deletion: acted on in the same transaction as the rows, which waits for the disk.
        with store.session() as session:
            fresh = _insert_rows(session.connection(), planned)
            _apply(session, fresh)
            if redis is not None:  # inside the transaction: if Redis fails, nothing is kept and HubSpot retries
                _signal_syncs(redis, _syncs(fresh))
    else:
        # Only hints ("sync soon"): ask first, so if Redis fails nothing is kept and HubSpot retries; then one
        # INSERT in autocommit (a duplicate delivery asks again, at most once a second per tenant: harmless).
        if redis is not None:
            _signal_syncs(redis, _syncs(planned))
        fresh = store.hint_write(lambda conn: _insert_rows(conn, planned))
    if redis is None:
        for installation_id, objects in _syncs(fresh).items():
            request_sync(settings, store, installation_id, objects)
    return jsonify(received=len(fresh), duplicates=len(events) - len(fresh)), 200


def _verify(body: bytes) -> None:
    settings = web.settings()
    uri = public_uri(settings.public_base_url, request.environ)
    try:
        verify_v3(settings.hubspot_client_secret, method=request.method, uri=uri, body=body,
                  headers=request.headers, now_ms=web.now_ms())
    except SignatureError as exc:
        logger.warning("rejected HubSpot webhook from %s: %s", request.remote_addr, exc)
        raise ApiError(401, "bad_signature", str(exc)) from None


def _parse(body: bytes) -> list[Event]:
    """A JSON array of event objects with the keys we act on; anything else is kept raw and refused."""
    problem = ""
    try:
        events = json.loads(body)
    except (ValueError, RecursionError) as exc:
        events, problem = None, f"body is not JSON: {str(exc)[:200]}"
    if not problem and not (isinstance(events, list) and all(isinstance(e, dict) for e in events)):
        problem = "body must be a JSON array of event objects"
    if not problem:
        missing = sorted({k for e in events for k in _REQUIRED if e.get(k) in (None, "")})  # type: ignore[union-attr]
        problem = f"events lack {', '.join(missing)}" if missing else ""
    if not problem:
        try:
            return [Event.of(e) for e in events]  # type: ignore[union-attr]
        except (ValueError, RecursionError) as exc:
            problem = f"an event cannot be kept: {str(exc)[:200]}"
    _keep_malformed(body)
    raise ApiError(400, "malformed_webhook", problem)


def _keep_malformed(body: bytes) -> None:
    key = "malformed:" + hashlib.sha256(body).hexdigest()
    raw = db_text(body[:MAX_RAW].decode("utf-8", "backslashreplace"))
    with web.store().session() as session:
        session.execute(_insert(session.get_bind().dialect.name).values(id=new_id(), crm="hubspot", event_key=key, raw=raw, status=WebhookStatus.MALFORMED,
                                                received_at=web.now()).on_conflict_do_nothing())
    logger.warning("kept a malformed HubSpot webhook (%d bytes) as %s", len(body), key[:24])


def event_key(event: dict[str, Any]) -> str:
    """HubSpot's eventId alone is not unique; this tuple is."""
    parts = (event.get("portalId"), event.get("subscriptionId"), event.get("eventId"),
             event.get("occurredAt"), event.get("objectId"), event.get("propertyName"))
    return short_key(":".join("" if p is None else str(p) for p in parts), 200) or ""


@dataclass(frozen=True)
class Event:
    """One delivered event, reduced to what ingest needs; `raw` is the event as HubSpot sent it."""

    key: str
    portal: str | None  # None: not a portal id at all
    kind: str
    object_id: str | None  # None: not an id the store can hold (nothing stored can match it)
    type_id: str
    raw: str

    @classmethod
    def of(cls, event: dict[str, Any]) -> Event:
        portal, object_id = str(event["portalId"]), str(event["objectId"])
        return cls(key=event_key(event), portal=portal if portal.isascii() and portal.isdigit() and len(portal) < 20
                   else None, kind=db_text(str(event["subscriptionType"]))[:100],
                   object_id=None if key_problem(object_id) else object_id, type_id=str(event.get("objectTypeId")),
                   raw=json.dumps(event, sort_keys=True)[:MAX_RAW])


Planned = list[tuple[Event, "str | None", str]]  # (event, installation id, status), each event key once


def _plan(store: Store, events: list[Event]) -> Planned:
    """What becomes of each distinct event (the portals come from a per-process cache, read at most every 2 s)."""
    tenants = _installations(store, {e.portal for e in events if e.portal})
    planned: Planned = []
    for event in {e.key: e for e in events}.values():
        installation = tenants.get(event.portal or "")
        planned.append((event, installation[0] if installation else None, _status(event, installation)))
    return planned


def _insert_rows(conn: Connection, planned: Planned) -> Planned:
    """One INSERT ... ON CONFLICT DO NOTHING for the whole delivery; returns the events that were new."""
    if not planned:
        return []
    received = web.now()
    params: dict[str, Any] = {}
    for n, (event, installation_id, status) in enumerate(planned):
        params.update({f"id_{n}": new_id(), f"crm_{n}": "hubspot", f"event_key_{n}": event.key,
                       f"installation_id_{n}": installation_id, f"raw_{n}": event.raw, f"status_{n}": status,
                       f"received_at_{n}": received})
    inserted = set(conn.execute(_insert_statement(len(planned)), params).scalars())
    return [row for row in planned if row[0].key in inserted]


_COLUMNS = ("id", "crm", "event_key", "installation_id", "raw", "status", "received_at")


@lru_cache(maxsize=128)
def _insert_statement(rows: int) -> TextClause:
    """The INSERT of `rows` events as SQL text, built once per size: a delivery's whole database cost is this
    one statement, and SQLAlchemy's insert construct cost more CPU than the rest of the request (measured)."""
    values = ", ".join("(" + ", ".join(f":{c}_{n}" for c in _COLUMNS) + ")" for n in range(rows))
    return text(f"INSERT INTO webhook_events ({', '.join(_COLUMNS)}) VALUES {values} "
                "ON CONFLICT (crm, event_key) DO NOTHING RETURNING event_key").bindparams(
        *[bindparam(f"received_at_{n}", type_=WebhookEvent.__table__.c.received_at.type) for n in range(rows)])


def _installations(store: Store, portals: set[str]) -> dict[str, tuple[str, str]]:
    """(installation id, status) by portal, read at most every TENANT_TTL_S per process: a busy portal's
    deliveries cost no read, and an uninstall is seen within that time (its syncs check the status again)."""
    cache: dict[str, tuple[float, tuple[str, str] | None]] = current_app.extensions.setdefault(
        "salesloop.webhook_tenants", {})
    now = time.monotonic()
    stale = sorted(p for p in portals if p not in cache or now - cache[p][0] > TENANT_TTL_S)
    if stale:
        query = select(Installation.tenant_id, Installation.id, Installation.status).where(
            Installation.crm == "hubspot", Installation.tenant_id.in_(stale))
        found = {tenant: (iid, status) for tenant, iid, status in store.hint_write(lambda c: c.execute(query).all())}
        cache.update({p: (now, found.get(p)) for p in stale})
    return {p: hit for p in portals if (hit := cache[p][1]) is not None}


def _status(event: Event, installation: tuple[str, str] | None) -> str:
    """What becomes of an event: done (acted on now), enqueued (a sync asked), ignored (kept for inspection)."""
    if installation is None or event.object_id is None:
        return WebhookStatus.IGNORED  # unknown portal, or an id nothing stored can have: kept for inspection
    if event.kind == "contact.privacyDeletion":  # honoured even after uninstall, while the data is retained
        return WebhookStatus.DONE
    if installation[1] != InstallationStatus.ACTIVE:
        return WebhookStatus.IGNORED  # disconnected: no more syncs
    if event.kind == "deal.deletion":
        return WebhookStatus.DONE
    return WebhookStatus.ENQUEUED if _entity_of(event) is not None else WebhookStatus.IGNORED


def _apply(session: Session, fresh: Planned) -> None:
    """Act on the new purges and deletions in the transaction that stores them."""
    for event, installation_id, status in fresh:
        if status != WebhookStatus.DONE or event.object_id is None or installation_id is None:
            continue
        if event.kind == "contact.privacyDeletion":
            purge_contact(session, installation_id, event.object_id)
        else:
            mark_deleted(session, installation_id, Entity.DEAL, event.object_id)


def _syncs(planned: Planned) -> dict[str, dict[str, list[str]]]:
    """The incremental syncs the events ask for: {installation id: {entity: [remote ids]}}."""
    syncs: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for event, installation_id, status in planned:
        if status == WebhookStatus.ENQUEUED and installation_id is not None:
            syncs[installation_id][str(_entity_of(event))].append(event.object_id or "")
    return syncs


def _entity_of(event: Event) -> Entity | None:
    if event.kind.startswith("object."):
        return Entity.ACTIVITY if event.type_id in _ACTIVITY_TYPE_IDS else None
    return _ENTITY_BY_PREFIX.get(event.kind.split(".", 1)[0])


def _insert(dialect: str) -> Any:
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(WebhookEvent)


_clients: dict[tuple[int, str], Any] = {}
_signalled: dict[str, float] = {}  # installation id -> when this process last asked for its sync (monotonic)


def _redis(url: str | None) -> Any:
    """One Redis client per process (a new connection per delivery cost more than the rest of it)."""
    if url is None:
        return None
    key = (os.getpid(), url)  # never share a connection pool across a fork
    if key not in _clients:

        _clients[key] = queues.connect(url)
    return _clients[key]


def _signal_syncs(redis: Any, syncs: dict[str, dict[str, list[str]]]) -> None:
    """Ask for each tenant's incremental sync at most once a second: the first delivery enqueues it (the job id
    dedupes while it waits), the next ones in that second cost one Redis SET instead of an RQ round trip.
    Redis unreachable: 503, so HubSpot retries the delivery (nothing of it is kept yet)."""

    now = time.monotonic()
    for installation_id, objects in syncs.items():
        if now - _signalled.get(installation_id, -1e9) < SYNC_SIGNAL_MS / 1000:
            continue  # this process asked within the second: not even a Redis round trip
        try:
            if redis.set(f"salesloop:webhook-sync:{installation_id}", 1, nx=True, px=SYNC_SIGNAL_MS):
                queues.enqueue_incremental_sync(installation_id, entities=sorted(objects), connection=redis)
        except RedisError as exc:
            logger.warning("webhook refused for a retry: the job queue is unreachable (%s)", type(exc).__name__)
            raise ApiError(503, "queue_unavailable", "the job queue is unreachable; retry this delivery") from None
        _signalled[installation_id] = now


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
