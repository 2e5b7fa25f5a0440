"""The card endpoints of both CRMs through the real app: signatures, tenant isolation, approvals."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from connector.app import create_app
from connector.settings import Settings
from connector.signatures import v3_signature
from connector.store import Store
from connector.store import installations as inst
from connector.store.records import upsert_records
from connector.store.tables import AuditEntry, CardData, Proposal
from crm_adapters.model import Crm, Entity, UserRole
from tests.factories import a_user
from ui_extensions.salesforce_card import org_id_18

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
PUBLIC = "https://salesloop.example.com"
HS_SECRET, SF_SECRET = "hs-secret", "sf-consumer-secret"
ORG_A, ORG_B = "00D5e000000AAAAEA4", "00D5e000000BBBBEA4"


@pytest.fixture
def app(store: Store):  # type: ignore[no-untyped-def]
    app = create_app(Settings(testing=True, public_base_url=PUBLIC, hubspot_client_id="c", hubspot_client_secret=HS_SECRET,
                              salesforce_client_id="s", salesforce_client_secret=SF_SECRET), store=store)
    app.extensions["salesloop.clock"] = lambda: NOW
    return app


def _tenant(app, crm: str, tenant: str, score: int, *, deal: str = "d1") -> str:  # type: ignore[no-untyped-def]
    with app.extensions["salesloop.store"].session() as s:
        iid = inst.upsert(s, app.extensions["salesloop.cipher"], crm=crm, tenant_id=tenant, tokens={"access_token": "x"}).id
        s.add(CardData(installation_id=iid, deal_id=deal, payload={"risk": {
            "score": score, "level": "high", "reasons": [{"code": "champion_quiet", "text": f"quiet at {tenant}"}],
            "next_move": "Call the champion"}}))
        upsert_records(s, iid, Entity.USER, [a_user(role=UserRole.MANAGER, remote_id="77", crm=Crm(crm)),
                                             a_user(role=UserRole.AE, remote_id="88", crm=Crm(crm))])
        s.add(Proposal(id=f"p-{tenant}", installation_id=iid, loop="discovery", title=f"Ask budget_owner at {tenant}",
                       fingerprint="f", diff=[{"op": "add", "field": "ask", "value": "budget_owner"}],
                       evidence={"type": "approval", "decision": {"target": "deal", "target_id": deal}}))
        s.add(Proposal(id=f"q-{tenant}", installation_id=iid, loop="icp", title=f"Team-wide change at {tenant}",
                       fingerprint="g", diff=[], evidence={"type": "playbook", "decision": {"target": "user",
                                                                                             "target_id": "playbook:icp"}}))
        return iid


def _hs(client, method: str, path: str, body: bytes = b"", secret: str = HS_SECRET, signed_path: str | None = None):  # type: ignore[no-untyped-def]
    ts = str(int(NOW.timestamp() * 1000))
    sig = v3_signature(secret, method, PUBLIC + (signed_path or path), body, ts)
    return client.open(path, method=method, data=body, content_type="application/json",
                       headers={"X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": ts})


def test_hubspot_card_reads_the_store_for_the_signed_portal(app) -> None:  # type: ignore[no-untyped-def]
    _tenant(app, "hubspot", "111", 81)
    _tenant(app, "hubspot", "222", 12)
    client = app.test_client()
    a = _hs(client, "GET", "/api/hubspot/cards/deal?portalId=111&objectId=d1&userId=88")
    b = _hs(client, "GET", "/api/hubspot/cards/deal?portalId=222&objectId=d1&userId=88")
    assert a.status_code == 200 and b.status_code == 200
    assert a.json["risk"]["score"] == 81 and a.json["risk"]["reasons"][0]["text"] == "quiet at 111"
    assert b.json["risk"]["score"] == 12
    assert a.json["approvals"] == [] and a.json["can_approve"] is False
    assert len(a.data) < 1_000_000


def test_a_portal_id_changed_after_signing_is_refused(app) -> None:  # type: ignore[no-untyped-def]
    _tenant(app, "hubspot", "111", 81)
    _tenant(app, "hubspot", "222", 12)
    resp = _hs(app.test_client(), "GET", "/api/hubspot/cards/deal?portalId=222&objectId=d1&userId=88",
               signed_path="/api/hubspot/cards/deal?portalId=111&objectId=d1&userId=88")
    assert resp.status_code == 401


def test_another_tenants_deal_is_not_visible(app) -> None:  # type: ignore[no-untyped-def]
    _tenant(app, "hubspot", "111", 81)
    _tenant(app, "hubspot", "222", 12, deal="only-b")
    resp = _hs(app.test_client(), "GET", "/api/hubspot/cards/deal?portalId=111&objectId=only-b&userId=77")
    assert resp.status_code == 200 and resp.json["empty"] is True
    assert resp.json["approvals"] == []  # tenant 111's approvals are about its deal d1 or the whole team
    assert resp.json["other_approvals"].startswith("2 other approvals")


def test_a_deal_card_shows_only_the_approvals_about_that_deal(app) -> None:  # type: ignore[no-untyped-def]
    _tenant(app, "hubspot", "111", 81)
    view = _hs(app.test_client(), "GET", "/api/hubspot/cards/deal?portalId=111&objectId=d1&userId=77").json
    assert [p["title"] for p in view["approvals"]] == ["Ask budget_owner at 111"]
    assert view["other_approvals"] == "1 other approval about other deals or the whole team waits in your salesloop tasks."


def test_hubspot_card_unsigned_or_unknown_portal(app) -> None:  # type: ignore[no-untyped-def]
    _tenant(app, "hubspot", "111", 81)
    client = app.test_client()
    assert client.get("/api/hubspot/cards/deal?portalId=111&objectId=d1").status_code == 401
    assert _hs(client, "GET", "/api/hubspot/cards/deal?portalId=111&objectId=d1", secret="wrong").status_code == 401
    resp = _hs(client, "GET", "/api/hubspot/cards/deal?portalId=999&objectId=d1")  # signed, not installed: the card says so
    assert resp.status_code == 200 and resp.json["state"] == "not_installed" and resp.json["empty"] is True


def test_managers_see_and_decide_approvals_idempotently(app) -> None:  # type: ignore[no-untyped-def]
    _tenant(app, "hubspot", "111", 81)
    _tenant(app, "hubspot", "222", 12)
    client = app.test_client()
    view = _hs(client, "GET", "/api/hubspot/cards/deal?portalId=111&objectId=d1&userId=77").json
    assert view["can_approve"] is True and [p["id"] for p in view["approvals"]] == ["p-111"]
    path = "/api/hubspot/cards/proposals/p-111/approve?portalId=111&userId=77"
    first = _hs(client, "POST", path, b'{"reason": "ok"}')
    retry = _hs(client, "POST", path, b'{"reason": "ok"}')  # HubSpot retries once on 5xx/timeouts
    assert first.status_code == 200 and first.json["status"] == "approved" and first.json["repeated"] is False
    assert retry.status_code == 200 and retry.json["repeated"] is True
    flip = _hs(client, "POST", "/api/hubspot/cards/proposals/p-111/reject?portalId=111&userId=77", b"{}")
    assert flip.status_code == 409
    with app.extensions["salesloop.store"].session() as s:
        assert s.get(Proposal, "p-111").decided_by == "hubspot-user:77"
        actions = [a.action for a in s.execute(select(AuditEntry)).scalars()]
    assert actions.count("proposal:approved") == 1


def test_non_managers_and_other_tenants_cannot_decide(app) -> None:  # type: ignore[no-untyped-def]
    _tenant(app, "hubspot", "111", 81)
    _tenant(app, "hubspot", "222", 12)
    client = app.test_client()
    assert _hs(client, "POST", "/api/hubspot/cards/proposals/p-111/approve?portalId=111&userId=88", b"{}").status_code == 403
    other = _hs(client, "POST", "/api/hubspot/cards/proposals/p-222/approve?portalId=111&userId=77", b"{}")
    assert other.status_code == 404
    with app.extensions["salesloop.store"].session() as s:
        assert {p.status for p in s.execute(select(Proposal)).scalars()} == {"pending"}


def _signed_request(org: str, *, user: str = "77", deal: str = "d1", secret: str = SF_SECRET,
                    issued: int | None = None) -> str:
    context = {"algorithm": "HMACSHA256", "issuedAt": issued if issued is not None else int(NOW.timestamp()),
               "userId": user, "client": {"instanceUrl": "https://acme.my.salesforce.com", "oauthToken": "00D!secret"},
               "context": {"user": {"userId": user, "userName": "m@acme.test"},
                           "organization": {"organizationId": org},
                           "environment": {"displayLocation": "PageLayout", "parameters": {"recordId": deal},
                                           "record": {"Id": deal}}}}
    payload = base64.b64encode(json.dumps(context).encode()).decode()
    sig = base64.b64encode(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()).decode()
    return f"{sig}.{payload}"


def test_salesforce_canvas_renders_the_orgs_card(app) -> None:  # type: ignore[no-untyped-def]
    _tenant(app, "salesforce", ORG_A, 81)
    _tenant(app, "salesforce", ORG_B, 12)
    client = app.test_client()
    resp = client.post("/cards/salesforce", data={"signed_request": _signed_request(ORG_A[:15], user="88")})
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert 'data-testid="risk-score">81<' in html and "quiet at " + ORG_A in html and "Call the champion" in html
    assert "12" not in html.split("<body>")[1].split("risk")[0]
    assert "Approve" not in html  # not a manager
    assert "frame-ancestors" in resp.headers["Content-Security-Policy"]
    assert "http" not in "".join(line for line in html.splitlines() if "src=" in line or "href=" in line)
    assert "00D!secret" not in html


@pytest.mark.parametrize("case", ["wrong_secret", "tampered", "no_dot", "stale", "missing"])
def test_salesforce_canvas_refuses_bad_signed_requests(app, case: str) -> None:  # type: ignore[no-untyped-def]
    _tenant(app, "salesforce", ORG_A, 81)
    sr = _signed_request(ORG_A)
    if case == "wrong_secret":
        sr = _signed_request(ORG_A, secret="other")
    elif case == "tampered":
        sig, payload = sr.split(".", 1)
        sr = sig + "." + base64.b64encode(base64.b64decode(payload).replace(ORG_A.encode(), ORG_B.encode())).decode()
    elif case == "no_dot":
        sr = sr.replace(".", "")
    elif case == "stale":
        sr = _signed_request(ORG_A, issued=int(NOW.timestamp()) - 3600)
    data = {} if case == "missing" else {"signed_request": sr}
    resp = app.test_client().post("/cards/salesforce", data=data)
    assert resp.status_code == 401
    assert "quiet at" not in resp.get_data(as_text=True)


def test_salesforce_manager_approves_from_the_canvas(app) -> None:  # type: ignore[no-untyped-def]
    _tenant(app, "salesforce", ORG_A, 81)
    _tenant(app, "salesforce", ORG_B, 12)
    client = app.test_client()
    html = client.post("/cards/salesforce", data={"signed_request": _signed_request(ORG_A)}).get_data(as_text=True)
    assert "Ask budget_owner at " + ORG_A in html and "at " + ORG_B not in html
    token = html.split('name="action_token" value="')[1].split('"')[0]
    done = client.post(f"/cards/salesforce/proposals/p-{ORG_A}/approve", data={"action_token": token})
    assert done.status_code == 200 and "Proposal approved." in done.get_data(as_text=True)
    cross = client.post(f"/cards/salesforce/proposals/p-{ORG_B}/approve", data={"action_token": token})
    assert cross.status_code == 404
    forged = client.post(f"/cards/salesforce/proposals/p-{ORG_A}/reject", data={"action_token": token + "x"})
    assert forged.status_code == 401


def test_org_id_15_to_18() -> None:
    assert org_id_18("00D5e000000AAAA") == "00D5e000000AAAAEA4"  # bits of 0AAAA: 2+4+8+16=30 -> "4"
    assert org_id_18("00D5e000000aaaa") == "00D5e000000aaaaEAA"


def test_crm_text_is_escaped_in_the_canvas_card(app) -> None:  # type: ignore[no-untyped-def]
    iid = _tenant(app, "salesforce", ORG_A, 50)
    with app.extensions["salesloop.store"].session() as s:
        s.get(CardData, (iid, "d1")).payload = {"risk": {"score": 50, "next_move": "<script>alert(1)</script>",
                                                         "reasons": [{"code": "x", "text": "<img src=x onerror=alert(1)>"}]}}
    html = app.test_client().post("/cards/salesforce", data={"signed_request": _signed_request(ORG_A)}).get_data(as_text=True)
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
