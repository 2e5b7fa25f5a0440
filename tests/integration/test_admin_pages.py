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
from connector.store.tables import CardData, CrmRecord, DecisionRecord, Proposal, SyncCursor


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
    assert "cheap-sends" in response.get_data(as_text=True) and "“MRR below” needs a number of 0 or more" in response.get_data(as_text=True)


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


def test_policy_rules_name_loops_and_actions_in_words(app: Flask, store: Store, tenants: tuple[str, str]) -> None:
    """A rule's loops are typed and shown by their names ("SDR to BDM handoff"), stored by their keys."""
    from jobs.engine import policy

    client = app.test_client()
    _sign_in(app, client, tenants[0])
    token = _csrf(client.get("/admin/policy").get_data(as_text=True))
    client.post("/admin/policy", data={"csrf_token": token, "rule_count": "0", "id_0": "handoff-notes",
                                       "action_0": "create_note", "autonomy_0": "needs_approval",
                                       "loops_0": "SDR to BDM handoff, deal_risk"})
    with store.session() as s:
        assert policy.load_rules(s, tenants[0])[0]["when"] == {"loops": ["handoff", "deal_risk"]}
    page = client.get("/admin/policy").get_data(as_text=True)
    assert 'value="SDR to BDM handoff, Deal risk"' in page
    assert '<option value="create_note" selected>Note</option>' in page
    assert '<option value="needs_approval" selected>Needs approval</option>' in page


def test_risk_distribution_chart_is_svg_of_the_tenants_scores(app: Flask, store: Store, tenants: tuple[str, str]) -> None:
    a, _ = tenants
    with store.session() as s:
        for i, score in enumerate((12, 15, 55, 91)):
            s.add(CardData(installation_id=a, deal_id=str(i), payload={"risk": {"score": score}}, updated_at=datetime.now(UTC)))
    client = app.test_client()
    _sign_in(app, client, a)
    svg = client.get("/admin/charts/risk-distribution.svg").get_data(as_text=True)
    assert svg.startswith("<svg") and "10-20: 2" in svg and "90-100: 1" in svg


def test_an_empty_chart_says_exactly_why(app: Flask, store: Store, tenants: tuple[str, str]) -> None:
    from connector.store.tables import ModelVersion

    a, _ = tenants
    client = app.test_client()
    _sign_in(app, client, a)
    page = client.get("/admin/charts").get_data(as_text=True)
    notes = re.findall(r'<p class="note">([^<]*)</p>', page)
    assert page.count("<svg") == 5 and sum("has not run yet" in n for n in notes) == 4 and "No deal has a risk score yet" in notes[0]
    with store.session() as s:  # a risk model that learned from too few closed deals to hold any out
        s.add(ModelVersion(installation_id=a, loop="deal_risk", version=1, kind="model", state={}, active=True, arm="all",
                           metrics={"n_won": 3, "n_lost": 4}))
        s.add(Proposal(installation_id=a, loop="handoff", title="Require a champion", fingerprint="g", diff=["x"],
                       evidence={"type": "playbook"}))
    svg = client.get("/admin/charts/calibration.svg").get_data(as_text=True)
    assert "no validation split yet" in svg and "3 won and 4 lost" in svg
    assert "1 playbook proposal wait" in client.get("/admin/charts/playbook-versions.svg").get_data(as_text=True)


def test_run_the_loops_from_the_status_page_returns_at_once_with_a_status_to_poll(app: Flask, store: Store, tenants: tuple[str, str]) -> None:
    a, _ = tenants
    client = app.test_client()
    _sign_in(app, client, a)
    page = client.get("/admin/").get_data(as_text=True)
    assert 'id="run-loops"' in page and client.get("/admin/run.json").json["state"] == "idle"
    started = client.post("/admin/run", data={"csrf_token": _csrf(page)}, headers={"Accept": "application/json"})
    assert started.status_code == 202 and started.json["state"] in ("running", "queued")
    runner = app.extensions["salesloop.runs"]
    runner.wait(a)  # a HubSpot tenant with no reachable HubSpot: the run ends, and says how
    status = client.get("/admin/run.json").json
    assert status["finished"] and status["message"]


def test_the_approvals_page_lists_every_waiting_proposal_first(app: Flask, store: Store, tenants: tuple[str, str]) -> None:
    a, _ = tenants
    with store.session() as s:
        s.add(Proposal(installation_id=a, loop="handoff", title="Old change still waiting", fingerprint="w", diff=["x"],
                       created_at=datetime(2025, 1, 1, tzinfo=UTC)))
        for i in range(120):  # many newer decided ones must not push it off the page
            s.add(Proposal(installation_id=a, loop="icp", title=f"Decided change {i}", fingerprint=f"d{i}", diff=["x"],
                           status="rejected", created_at=datetime(2026, 1, 1, tzinfo=UTC)))
    client = app.test_client()
    _sign_in(app, client, a)
    page = client.get("/admin/approvals").get_data(as_text=True)
    assert "Old change still waiting" in page and page.index("Old change still waiting") < page.index("Decided change")


def test_the_audit_log_names_records_as_people_know_them(app: Flask, store: Store, tenants: tuple[str, str]) -> None:
    a, _ = tenants
    with store.session() as s:
        s.add(CrmRecord(installation_id=a, entity="deal", remote_id="209", payload={"name": "Globex renewal"}, payload_hash="x"))
        for target_id in ("209", "404"):
            s.add(DecisionRecord(installation_id=a, loop="deal_risk", kind="update_field", target="deal", target_id=target_id,
                                 key=f"k{target_id}", reasons=[{"text": "Champion silent for 3 weeks"}],
                                 created_at=datetime(2026, 12, 1, tzinfo=UTC)))
    client = app.test_client()
    _sign_in(app, client, a)
    page = client.get("/admin/audit").get_data(as_text=True)
    assert ">Globex renewal</td>" in page and ">Deal no longer in the CRM</td>" in page
    assert "deal 209<" not in page and "Champion silent for 3 weeks" in page
