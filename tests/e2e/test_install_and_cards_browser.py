"""A real browser through the HubSpot install (fake consent page) and the Salesforce canvas card."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from connector.app import create_app
from connector.settings import Settings
from connector.store import Store
from connector.store import installations as inst
from connector.store.crypto import TokenCipher
from connector.store.installations import InstallationStatus
from connector.store.records import upsert_records
from connector.store.tables import CardData, Installation, Proposal
from crm_adapters.model import Crm, Entity, UserRole
from tests.e2e.conftest import SCREENSHOTS
from tests.factories import a_user
from tests.fakes.hubspot.app import FakeHubSpot
from tests.fakes.hubspot.server import serve

pytestmark = pytest.mark.browser
SF_SECRET = "sf-consumer-secret"
ORG = "00D5e000000AAAAEA4"


@pytest.fixture
def browser(chromium):  # type: ignore[no-untyped-def]
    """The session's one Chromium (tests/e2e/conftest.py): a second Playwright in the same process fails."""
    return chromium


@pytest.fixture
def live(store: Store) -> Iterator[tuple[str, FakeHubSpot, str]]:
    """Our app and the fake HubSpot, both on real sockets; our public URL is the live server's."""
    fake = FakeHubSpot()
    with serve(fake) as hub_url:
        server = make_server("127.0.0.1", 0, None, threaded=True)  # type: ignore[arg-type]
        base = f"http://127.0.0.1:{server.server_port}"
        settings = Settings(testing=True, public_base_url=base, hubspot_client_id=fake.oauth.client_id,
                            hubspot_client_secret=fake.oauth.client_secret, hubspot_base_url=hub_url,
                            hubspot_app_base_url=hub_url, salesforce_client_id="sf", salesforce_client_secret=SF_SECRET)
        server.app = create_app(settings, store=store)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield base, fake, hub_url
        finally:
            server.shutdown()
            thread.join(timeout=5)


def test_an_admin_installs_from_the_hubspot_consent_page(browser, live, store: Store) -> None:  # type: ignore[no-untyped-def]
    base, fake, hub_url = live
    page = browser.new_page()
    page.goto(f"{base}/install/hubspot")
    assert page.url.startswith(f"{hub_url}/oauth/authorize?")
    assert "crm.objects.deals.write" in page.text_content("body")
    page.click("#connect-app")
    page.wait_for_url(f"{base}/admin/**")
    with store.session() as s:
        [row] = s.execute(select(Installation)).scalars().all()
    assert row.tenant_id == str(fake.portal.hub_id) and row.status == "active"
    page.goto(f"{base}/install/hubspot")
    page.click("#cancel")
    assert "install_declined" in page.text_content("body")


def _signed_request(user: str, deal: str) -> str:
    context = {"algorithm": "HMACSHA256", "issuedAt": int(datetime.now(UTC).timestamp()),
               "context": {"user": {"userId": user}, "organization": {"organizationId": ORG},
                           "environment": {"parameters": {"recordId": deal}}}}
    payload = base64.b64encode(json.dumps(context).encode()).decode()
    sig = base64.b64encode(hmac.new(SF_SECRET.encode(), payload.encode(), hashlib.sha256).digest()).decode()
    return f"{sig}.{payload}"


def test_a_manager_sees_the_canvas_card_and_approves(browser, live, store: Store) -> None:  # type: ignore[no-untyped-def]
    base, _, _ = live
    with store.session() as s:
        iid = inst.upsert(s, TokenCipher(b"k" * 32), crm="salesforce", tenant_id=ORG, tokens={"access_token": "x"}).id
        s.add(CardData(installation_id=iid, deal_id="006A", payload={"risk": {
            "score": 77, "level": "high", "scale": {"base": 0.6}, "next_move": "Re-engage the economic buyer",
            "reasons": [{"code": "champion_quiet", "text": "Champion silent for 18 days", "evidence": ["last reply May 3"]}]}}))
        upsert_records(s, iid, Entity.USER, [a_user(role=UserRole.MANAGER, remote_id="005M", crm=Crm.SALESFORCE)])
        s.add(Proposal(id="p1", installation_id=iid, loop="discovery", title="Ask about the budget owner", fingerprint="f",
                       diff=[], evidence={"type": "approval", "decision": {"target": "deal", "target_id": "006A"}}))
    page = browser.new_page()
    page.set_content(f'<form id="sf" method="post" action="{base}/cards/salesforce">'
                     f'<input type="hidden" name="signed_request" value="{_signed_request("005M", "006A")}"></form>')
    with page.expect_navigation():
        page.evaluate("document.getElementById('sf').submit()")
    assert page.text_content("[data-testid=risk-score]") == "77"
    assert page.text_content("[data-testid=risk-level]") == "High"
    assert "Re-engage the economic buyer" in page.text_content("[data-testid=next-move]")
    page.click("text=Approve")
    page.wait_for_selector("text=Proposal approved.")
    assert page.locator("text=Ask about the budget owner").count() == 0
    with store.session() as s:
        assert s.get(Proposal, "p1").status == "approved"


@pytest.mark.parametrize("status", ["missing", InstallationStatus.NEEDS_REAUTH])
def test_the_canvas_of_an_org_salesloop_cannot_serve_is_a_clear_page_with_the_fix(browser, live, store: Store, status) -> None:  # type: ignore[no-untyped-def]
    base, _, _ = live
    if status != "missing":
        with store.session() as s:
            iid = inst.upsert(s, TokenCipher(b"k" * 32), crm="salesforce", tenant_id=ORG, tokens={"access_token": "x"}).id
            inst.set_status(s, iid, status, "CrmAuthError: refresh token revoked")
    page = browser.new_page(viewport={"width": 420, "height": 400})  # about the width of a record page's side panel
    page.set_content(f'<form id="sf" method="post" action="{base}/cards/salesforce">'
                     f'<input type="hidden" name="signed_request" value="{_signed_request("005M", "006A")}"></form>')
    with page.expect_navigation():
        page.evaluate("document.getElementById('sf').submit()")
    link = page.get_by_role("link")
    want = "Install salesloop in Salesforce" if status == "missing" else "Reconnect salesloop to Salesforce"
    assert link.text_content() == want and link.get_attribute("href") == f"{base}/install/salesforce"
    assert page.get_by_role("heading").is_visible() and link.is_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"canvas-card-{'not-installed' if status == 'missing' else 'reconnect'}.png"))
    page.close()
