"""The admin pages through Flask's test client: sign-in by signed link, tenant scope, CSRF, policy editor."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient

from connector.admin.auth import signed_login_url
from connector.app import create_app
from connector.settings import Settings
from connector.store import Store
from connector.store import installations as inst
from connector.store.tables import CardData, Proposal, SyncCursor


@pytest.fixture
def app(store: Store) -> Flask:
    return create_app(Settings(testing=True, public_base_url="http://localhost"), store=store)


@pytest.fixture
def tenants(app: Flask, store: Store) -> tuple[str, str]:
    cipher = app.extensions["salesloop.cipher"]
    with store.session() as s:
        a = inst.upsert(s, cipher, crm="hubspot", tenant_id="111", tokens={"access_token": "x"}, name="Acme portal")
        b = inst.upsert(s, cipher, crm="hubspot", tenant_id="222", tokens={"access_token": "y"}, name="Other portal")
        return a.id, b.id


def _sign_in(app: Flask, client: FlaskClient, installation_id: str, user: str = "admin@acme.test") -> None:
    with app.test_request_context():
        url = signed_login_url(installation_id, user, external=False)
    assert client.get(url).status_code == 302


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


def test_pages_need_a_signed_in_tenant(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/admin/").status_code == 401
    assert client.get("/admin/login?t=forged").status_code == 401


def test_status_shows_backfill_progress_from_the_store(app: Flask, store: Store, tenants: tuple[str, str]) -> None:
    a, _ = tenants
    with store.session() as s:
        s.add(SyncCursor(installation_id=a, entity="deal", cursor=None, records_synced=250, estimated_total=1000))
    client = app.test_client()
    _sign_in(app, client, a)
    page = client.get("/admin/").get_data(as_text=True)
    assert "Acme portal" in page and "25% · 250 of about 1000" in page
    assert client.get("/admin/progress.json").json["percent"] == 25


def test_one_tenant_never_sees_another(app: Flask, store: Store, tenants: tuple[str, str]) -> None:
    a, b = tenants
    with store.session() as s:
        s.add(Proposal(installation_id=b, loop="handoff", title="Secret change of tenant B", fingerprint="f", diff=["x"]))
    client = app.test_client()
    _sign_in(app, client, a)
    assert "Secret change of tenant B" not in client.get("/admin/approvals").get_data(as_text=True)


def test_post_without_csrf_token_is_refused(app: Flask, tenants: tuple[str, str]) -> None:
    client = app.test_client()
    _sign_in(app, client, tenants[0])
    response = client.post("/admin/policy", data={"rule_count": "0"})
    assert response.status_code == 403


def test_policy_editor_rejects_invalid_rule_with_a_clear_message(app: Flask, tenants: tuple[str, str]) -> None:
    client = app.test_client()
    _sign_in(app, client, tenants[0])
    token = _csrf(client.get("/admin/policy").get_data(as_text=True))
    response = client.post("/admin/policy", data={"csrf_token": token, "rule_count": "0", "id_0": "cheap-sends",
                                                   "action_0": "send_email", "autonomy_0": "auto", "mrr_below_0": "-5"})
    assert response.status_code == 400
    assert "cheap-sends" in response.get_data(as_text=True) and "non-negative number" in response.get_data(as_text=True)


def test_policy_editor_saves_a_valid_rule(app: Flask, store: Store, tenants: tuple[str, str]) -> None:
    from jobs.engine import policy

    client = app.test_client()
    _sign_in(app, client, tenants[0])
    token = _csrf(client.get("/admin/policy").get_data(as_text=True))
    response = client.post("/admin/policy", data={"csrf_token": token, "rule_count": "0", "id_0": "cheap-sends",
                                                   "action_0": "send_email", "autonomy_0": "auto", "mrr_below_0": "500"})
    assert response.status_code == 302
    with store.session() as s:
        rules = policy.load_rules(s, tenants[0])
    assert rules == [{"id": "cheap-sends", "action": "send_email", "autonomy": "auto", "when": {"mrr_below": 500}}]


def test_risk_distribution_chart_is_svg_of_the_tenants_scores(app: Flask, store: Store, tenants: tuple[str, str]) -> None:
    a, _ = tenants
    with store.session() as s:
        for i, score in enumerate((12, 15, 55, 91)):
            s.add(CardData(installation_id=a, deal_id=str(i), payload={"risk": {"score": score}}, updated_at=datetime.now(UTC)))
    client = app.test_client()
    _sign_in(app, client, a)
    svg = client.get("/admin/charts/risk-distribution.svg").get_data(as_text=True)
    assert svg.startswith("<svg") and "10-20: 2" in svg and "90-100: 1" in svg
