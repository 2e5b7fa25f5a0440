"""Every HTTP endpoint against generated input: each case is a request and an oracle (4xx or 2xx/3xx with a
clear body, never 5xx; a webhook answered 200 stored every event it carried). Used by tests/property with a
few examples each and by bench/fuzz.py with 10,000."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from flask import Flask
from flask.testing import FlaskClient
from hypothesis import strategies as st
from sqlalchemy import select

from connector.admin.auth import signed_login_url
from connector.app import create_app
from connector.settings import Settings
from connector.signatures import v3_signature
from connector.store import Store
from connector.store import installations as inst
from connector.store.records import upsert_records
from connector.store.tables import CardData, Proposal, WebhookEvent
from connector.webhooks import event_key
from crm_adapters.model import Crm, Entity, UserRole
from tests.factories import a_user
from tests.property.strategies import dumps, json_values, nasty_text, plausible, with_keys

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
PUBLIC = "https://salesloop.example.com"
HS_SECRET, SF_SECRET = "hs-fuzz-secret", "sf-fuzz-secret"
PORTAL, ORG = "62515", "00D5e000000AAAAEA4"
OK, SERVER_ERROR, CRASH, LOST = "ok", "5xx", "crash", "lost"
logger = logging.getLogger(__name__)


@dataclass
class Rig:
    """One app on one store with a HubSpot portal and a Salesforce org installed and an admin signed in."""

    app: Flask
    client: FlaskClient
    admin: FlaskClient
    csrf: str
    installation_id: str


def make_rig(store: Store) -> Rig:
    settings = Settings(testing=True, public_base_url=PUBLIC, hubspot_client_id="c", hubspot_client_secret=HS_SECRET,
                        salesforce_client_id="s", salesforce_client_secret=SF_SECRET)
    app = create_app(settings, store=store)
    app.extensions["salesloop.clock"] = lambda: NOW
    cipher = app.extensions["salesloop.cipher"]
    with store.session() as s:
        ids = []
        for crm, tenant in (("hubspot", PORTAL), ("salesforce", ORG)):
            iid = inst.upsert(s, cipher, crm=crm, tenant_id=tenant, tokens={"access_token": "x"}).id
            upsert_records(s, iid, Entity.USER, [a_user(role=UserRole.MANAGER, remote_id="77", crm=Crm(crm))])
            s.add(CardData(installation_id=iid, deal_id="d1", payload={"risk": {"score": 70, "level": "high"}}))
            s.add(Proposal(id=f"p-{crm}", installation_id=iid, loop="discovery", title="Ask about budget",
                           fingerprint="f", diff=[], evidence={}))
            ids.append(iid)
    admin = app.test_client()
    with app.test_request_context():
        login = signed_login_url(ids[0], "admin@acme.test", external=False)
    admin.get(login)
    with admin.session_transaction() as sess:
        csrf = str(sess["csrf"])
    return Rig(app, app.test_client(), admin, csrf, ids[0])


def judge(run: Callable[[], str]) -> str:
    """A case's outcome: what the oracle said, or 'crash' when the request itself raised."""
    try:
        return run()
    except Exception:  # an exception escaping the app is exactly what this counts
        logger.exception("the case crashed")
        return CRASH


def _status(resp: Any) -> str:
    if resp.status_code >= 500:
        return SERVER_ERROR
    if resp.status_code >= 400 and not resp.data:
        return SERVER_ERROR  # a refusal must say why
    return OK


# ---- HubSpot webhooks ----------------------------------------------------------------------------
_event_values = {"eventId": plausible(st.integers(0, 10**12)), "subscriptionId": plausible(st.integers(0, 10**6)),
                 "portalId": plausible(st.sampled_from([int(PORTAL), PORTAL, 999])),
                 "occurredAt": plausible(st.integers(0, 2 * 10**12)), "objectId": plausible(st.integers(0, 10**12)),
                 "subscriptionType": plausible(st.sampled_from(["deal.propertyChange", "deal.deletion", "contact.creation",
                                                                "contact.privacyDeletion", "company.creation",
                                                                "object.creation"])),
                 "objectTypeId": plausible(st.sampled_from(["0-3", "0-48", "0-4"])), "propertyName": nasty_text,
                 "propertyValue": json_values}
_REQUIRED = ("portalId", "subscriptionType", "objectId", "occurredAt")
webhook_events = st.lists(st.fixed_dictionaries({k: v for k, v in _event_values.items() if k in _REQUIRED},
                                                optional={k: v for k, v in _event_values.items() if k not in _REQUIRED}),
                          max_size=5)
webhook_cases = st.one_of(
    st.tuples(st.just("signed"), webhook_events.map(dumps), st.none()),
    st.tuples(st.just("signed"), json_values.map(dumps), st.none()),
    st.tuples(st.just("signed"), st.binary(max_size=64), st.none()),
    st.tuples(st.just("header"), webhook_events.map(dumps), nasty_text),
)


def webhook_case(rig: Rig, case: tuple[str, bytes, str | None]) -> str:
    kind, body, timestamp = case
    ts = str(int(NOW.timestamp() * 1000)) if kind == "signed" else _header(timestamp or "")
    sig = v3_signature(HS_SECRET, "POST", PUBLIC + "/webhooks/hubspot", body, ts)
    resp = rig.client.post("/webhooks/hubspot", data=body, content_type="application/json",
                           headers={"X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": ts})
    verdict = _status(resp)
    if verdict == OK and resp.status_code == 200:
        return _events_kept(rig, json.loads(body))
    if verdict == OK and resp.status_code == 400 and kind == "signed":
        return _malformed_kept(rig, body)
    return verdict


def _header(text: str) -> str:
    """What can arrive in an HTTP header: latin-1 characters (WSGI's reading of any byte), no line breaks."""
    return text.encode("latin-1", "replace").decode("latin-1").replace("\r", " ").replace("\n", " ")


def _events_kept(rig: Rig, events: list[dict[str, Any]]) -> str:
    from connector.store.clean import db_text

    keys = {db_text(event_key(e)) for e in events}
    with rig.app.extensions["salesloop.store"].session() as s:
        found = set(s.execute(select(WebhookEvent.event_key).where(WebhookEvent.event_key.in_(keys))).scalars())
    return OK if found == keys else LOST


def _malformed_kept(rig: Rig, body: bytes) -> str:
    key = "malformed:" + hashlib.sha256(body).hexdigest()
    with rig.app.extensions["salesloop.store"].session() as s:
        kept = s.execute(select(WebhookEvent.id).where(WebhookEvent.event_key == key)).first()
    return OK if kept is not None else LOST


# ---- OAuth ---------------------------------------------------------------------------------------
oauth_cases = st.tuples(
    st.sampled_from(["/oauth/hubspot/callback", "/oauth/salesforce/callback", "/install/hubspot", "/install/salesforce"]),
    with_keys(["state", "code", "error", "error_description", "env", "host"], nasty_text),
)


def oauth_case(rig: Rig, case: tuple[str, dict[str, Any]]) -> str:
    path, params = case
    return _status(rig.client.get(path, query_string=_query(params)))


def _query(params: dict[str, Any]) -> str:
    """A query string with whatever the values are (surrogates included, as a browser would escape them)."""
    return urlencode({k: str(v) for k, v in params.items()}, encoding="utf-8", errors="surrogatepass")


def _form(values: dict[str, Any]) -> dict[str, str]:
    """Form fields as a browser sends them (a lone surrogate cannot be sent: the browser replaces it)."""
    return {str(k).encode("utf-8", "surrogatepass").decode("utf-8", "replace"):
            str(v).encode("utf-8", "surrogatepass").decode("utf-8", "replace") for k, v in values.items()}


# ---- HubSpot app card ----------------------------------------------------------------------------
hubspot_card_cases = st.tuples(
    st.sampled_from(["deal", "approve", "reject", "other"]),
    with_keys(["portalId", "objectId", "userId", "userEmail"], plausible(st.sampled_from([PORTAL, "d1", "77"]), nasty_text)),
    plausible(st.sampled_from(["p-hubspot", "p-salesforce"]), nasty_text.filter(lambda t: "/" not in t and t)),
    st.one_of(st.just(b""), json_values.map(dumps), st.binary(max_size=32)),
)


def hubspot_card_case(rig: Rig, case: tuple[str, dict[str, Any], str, bytes]) -> str:
    action, params, proposal, body = case
    query = _query({"portalId": PORTAL, "userId": "77", **params})
    if action == "deal":
        method, path, body = "GET", "/api/hubspot/cards/deal", b""
    else:
        method, path = "POST", f"/api/hubspot/cards/proposals/{_path(proposal)}/{action}"
    ts = str(int(NOW.timestamp() * 1000))
    sig = v3_signature(HS_SECRET, method, f"{PUBLIC}{path}?{query}", body, ts)
    resp = rig.client.open(f"{path}?{query}", method=method, data=body, content_type="application/json",
                           headers={"X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": ts})
    return _status(resp)


def _path(text: str) -> str:
    from urllib.parse import quote

    return quote(text.encode("utf-8", "surrogatepass"), safe="") or "x"


# ---- Salesforce Canvas card ----------------------------------------------------------------------
_context = st.fixed_dictionaries({}, optional={
    "user": plausible(st.fixed_dictionaries({"userId": plausible(st.just("77"))})),
    "organization": plausible(st.fixed_dictionaries({"organizationId": plausible(st.just(ORG))})),
    "environment": plausible(st.fixed_dictionaries({}, optional={
        "parameters": plausible(st.fixed_dictionaries({"recordId": plausible(st.just("d1"))})),
        "record": plausible(st.fixed_dictionaries({"Id": plausible(st.just("d1"))}))})),
})
canvas_cases = st.one_of(
    st.tuples(st.just("card"), st.fixed_dictionaries(
        {"algorithm": plausible(st.just("HMACSHA256"))},
        optional={"issuedAt": plausible(st.just(int(NOW.timestamp()))), "context": plausible(_context)}), st.just("")),
    st.tuples(st.just("card"), json_values, st.just("")),
    st.tuples(st.sampled_from(["approve", "reject"]), json_values, nasty_text),
)


def canvas_case(rig: Rig, case: tuple[str, Any, str]) -> str:
    action, context, text = case
    if action == "card":
        payload = base64.b64encode(dumps(context)).decode()
        sig = base64.b64encode(hmac.new(SF_SECRET.encode(), payload.encode(), hashlib.sha256).digest()).decode()
        resp = rig.client.post("/cards/salesforce", data={"signed_request": f"{sig}.{payload}"})
    else:
        resp = rig.client.post(f"/cards/salesforce/proposals/p-salesforce/{action}",
                               data=_form({"action_token": text, "reason": text}))
    return _status(resp)


# ---- admin pages ---------------------------------------------------------------------------------
_policy_form = with_keys(["rule_count", "id_0", "action_0", "autonomy_0", "amount_below_0", "amount_at_least_0",
                          "mrr_below_0", "stages_0", "loops_0", "delete_0", "id_1", "mrr_at_least_1"], nasty_text)
admin_cases = st.one_of(
    st.tuples(st.just("POST /admin/policy"), _policy_form),
    st.tuples(st.just("POST /admin/loops"), with_keys(["enabled_deal_risk", "schedule_deal_risk", "sdr_roles",
                                                       "champion_role", "sdr_field"], nasty_text)),
    st.tuples(st.just("GET /admin/audit"), with_keys(["loop", "kind", "policy_verdict", "gate_verdict"], nasty_text)),
    st.tuples(st.just("GET /admin/login"), with_keys(["t"], nasty_text)),
    st.tuples(st.sampled_from(["POST /admin/proposals/{x}/approve", "POST /admin/proposals/{x}/{x}",
                               "POST /admin/outbox/{x}/retry", "GET /admin/charts/{x}.svg"]),
              with_keys(["x", "reason"], nasty_text)),
)


def admin_case(rig: Rig, case: tuple[str, dict[str, Any]]) -> str:
    route, values = case
    method, path = route.split(" ")
    path = path.replace("{x}", _path(str(values.get("x", ""))))
    if method == "GET":
        return _status(rig.admin.get(path, query_string=_query(values)))
    return _status(rig.admin.post(path, data={**_form(values), "csrf_token": rig.csrf}))


# ---- the sandbox CRM's pages ---------------------------------------------------------------------
sandbox_cases = st.tuples(
    st.sampled_from(["GET /sandbox/deals", "GET /sandbox/deals/{x}", "GET /sandbox/deals/{x}/card", "GET /sandbox/tasks",
                     "POST /sandbox/deals/{x}/card/proposals/{y}/approve", "POST /sandbox/deals/{x}/card/proposals/{y}/{y}",
                     "POST /sandbox/tasks/{x}/complete", "POST /sandbox/tasks/{x}/{y}", "GET /sandbox/admin"]),
    with_keys(["x", "y", "sort", "status", "owner", "reason", "comment"], nasty_text),
)


def sandbox_case(client: FlaskClient, csrf: str, case: tuple[str, dict[str, Any]]) -> str:
    route, values = case
    method, path = route.split(" ")
    path = path.replace("{x}", _path(str(values.get("x", "")))).replace("{y}", _path(str(values.get("y", ""))))
    if method == "GET":
        return _status(client.get(path, query_string=_query(values)))
    return _status(client.post(path, data={**_form(values), "csrf_token": csrf}))


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    return match.group(1) if match else ""


TARGETS: dict[str, tuple[st.SearchStrategy[Any], Callable[[Rig, Any], str]]] = {
    "webhooks": (webhook_cases, webhook_case),
    "OAuth callbacks and installs": (oauth_cases, oauth_case),
    "HubSpot card": (hubspot_card_cases, hubspot_card_case),
    "Salesforce Canvas card": (canvas_cases, canvas_case),
    "admin pages and forms": (admin_cases, admin_case),
}
