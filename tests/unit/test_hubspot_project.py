"""The HubSpot project agrees with the backend: the same scopes, and routes for every URL it names."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

from connector.app import create_app
from connector.oauth import HUBSPOT_SCOPES
from connector.settings import Settings

PROJECT = Path(__file__).resolve().parents[2] / "ui_extensions" / "hubspot"


def _app_meta() -> dict:  # type: ignore[type-arg]
    return json.loads((PROJECT / "src" / "app" / "app-hsmeta.json").read_text())


def _routes() -> set[tuple[str, str]]:
    app = create_app(Settings(testing=True, database_url="sqlite://"))
    return {(r.rule, m) for r in app.url_map.iter_rules() for m in r.methods or ()}


def test_the_app_declares_exactly_the_scopes_the_install_asks_for() -> None:
    auth = _app_meta()["config"]["auth"]
    assert auth["requiredScopes"] == list(HUBSPOT_SCOPES)
    assert auth["optionalScopes"] == [] and auth["conditionallyRequiredScopes"] == []


def test_redirect_and_fetch_urls_point_at_our_routes() -> None:
    config = _app_meta()["config"]
    backend = re.search(r"BACKEND = '([^']+)'", (PROJECT / "src/app/cards/config.js").read_text()).group(1)  # type: ignore[union-attr]
    assert config["permittedUrls"]["fetch"] == [backend]
    routes = _routes()
    for url in config["auth"]["redirectUrls"]:
        assert url.startswith(backend) and (urlsplit(url).path, "GET") in routes
    card = (PROJECT / "src/app/cards/DealLoopCard.jsx").read_text()
    assert ("/api/hubspot/cards/deal", "GET") in routes and "'/api/hubspot/cards/deal'" in card
    assert ("/api/hubspot/cards/proposals/<proposal_id>/<verdict>", "POST") in routes
    assert "/api/hubspot/cards/proposals/" in card


def test_webhook_subscriptions_reach_our_endpoint_and_are_all_understood() -> None:
    from connector.webhooks import _ENTITY_BY_PREFIX

    hooks = json.loads((PROJECT / "src/app/webhooks/webhooks-hsmeta.json").read_text())["config"]
    assert (urlsplit(hooks["settings"]["targetUrl"]).path, "POST") in _routes()
    for sub in hooks["subscriptions"]["legacyCrmObjects"]:
        assert sub["subscriptionType"].split(".")[0] in _ENTITY_BY_PREFIX, sub
        assert not sub.get("propertyName", "").startswith("salesloop"), "never subscribe to our own writes (echo)"
    assert {"subscriptionType": "contact.privacyDeletion", "active": True} in hooks["subscriptions"]["hubEvents"]
