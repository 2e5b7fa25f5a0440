"""Every state has a page: a validly signed card request from an org or portal salesloop cannot serve."""

from __future__ import annotations

from connector.store import installations as inst
from connector.store.installations import InstallationStatus
from tests.integration.test_card_endpoints import ORG_A, PUBLIC, _hs, _signed_request, _tenant, app  # noqa: F401 - fixture


def _status(app, crm: str, tenant: str, status: InstallationStatus) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    with app.extensions["salesloop.store"].session() as s:
        inst.set_status(s, inst.find(s, crm, tenant).id, status, "CrmAuthError: refresh token revoked")


def test_the_canvas_of_an_org_without_salesloop_is_a_page_with_the_install_link(app) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    resp = app.test_client().post("/cards/salesforce", data={"signed_request": _signed_request(ORG_A)})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    assert 'data-state="not_installed"' in html and "salesloop is not installed in this Salesforce org" in html
    assert f'href="{PUBLIC}/install/salesforce"' in html and "Install salesloop in Salesforce" in html
    assert "frame-ancestors https://*.salesforce.com" in resp.headers["Content-Security-Policy"]  # shown inside the record page


def test_the_canvas_of_an_org_that_must_reconnect_links_the_reconnect(app) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    _tenant(app, "salesforce", ORG_A, 81)
    _status(app, "salesforce", ORG_A, InstallationStatus.NEEDS_REAUTH)
    html = app.test_client().post("/cards/salesforce", data={"signed_request": _signed_request(ORG_A)}).get_data(as_text=True)
    assert 'data-state="needs_reconnect"' in html and "needs to be reconnected" in html
    assert "Reconnect salesloop to Salesforce" in html and "quiet at" not in html  # no stale card behind it


def test_an_uninstalled_org_is_offered_the_install_again(app) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    _tenant(app, "salesforce", ORG_A, 81)
    _status(app, "salesforce", ORG_A, InstallationStatus.UNINSTALLED)
    html = app.test_client().post("/cards/salesforce", data={"signed_request": _signed_request(ORG_A)}).get_data(as_text=True)
    assert 'data-state="not_installed"' in html


def test_the_hubspot_card_of_a_portal_that_must_reconnect_says_so_with_the_link(app) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    _tenant(app, "hubspot", "111", 81)
    _status(app, "hubspot", "111", InstallationStatus.NEEDS_REAUTH)
    view = _hs(app.test_client(), "GET", "/api/hubspot/cards/deal?portalId=111&objectId=d1&userId=77").json
    assert view["state"] == "needs_reconnect" and view["empty"] and view["risk"] is None and view["approvals"] == []
    assert view["action"] == {"label": "Reconnect salesloop to HubSpot", "href": f"{PUBLIC}/install/hubspot"}
    assert "HubSpot account" in view["title"] and view["message"]
