"""Property tests: every HTTP endpoint answers generated input with 2xx/3xx or a 4xx that says why, never 5xx,
and a webhook answered 200 kept every event. A few dozen examples each here; bench/fuzz.py runs 10,000."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from connector.store import Store
from tests.property import http_targets as t

FAST = settings(max_examples=40, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])


@pytest.fixture
def rig(store: Store) -> t.Rig:
    return t.make_rig(store)


@FAST
@given(case=t.webhook_cases)
def test_webhooks_never_answer_5xx_and_keep_every_event(rig: t.Rig, case: Any) -> None:
    assert t.judge(lambda: t.webhook_case(rig, case)) == t.OK


@FAST
@given(case=t.oauth_cases)
def test_oauth_callbacks_and_installs_refuse_bad_input_with_4xx(rig: t.Rig, case: Any) -> None:
    assert t.judge(lambda: t.oauth_case(rig, case)) == t.OK


@FAST
@given(case=t.hubspot_card_cases)
def test_the_hubspot_card_refuses_bad_signed_input_with_4xx(rig: t.Rig, case: Any) -> None:
    assert t.judge(lambda: t.hubspot_card_case(rig, case)) == t.OK


@FAST
@given(case=t.canvas_cases)
def test_the_canvas_card_refuses_bad_signed_contexts_with_4xx(rig: t.Rig, case: Any) -> None:
    assert t.judge(lambda: t.canvas_case(rig, case)) == t.OK


@FAST
@given(case=t.admin_cases)
def test_admin_forms_and_queries_refuse_bad_input_with_4xx(rig: t.Rig, case: Any) -> None:
    assert t.judge(lambda: t.admin_case(rig, case)) == t.OK


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    """A small `salesloop demo` (SQLite store) and the --serve app's signed-in test client."""
    from rich.console import Console

    from connector.sandbox_serve import demo_app, open_demo
    from connector.settings import Settings
    from jobs.tools.demo import run_demo

    home: Path = tmp_path_factory.mktemp("sandbox-fuzz")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SALESLOOP_HOME", str(home))
        env.setenv("DATABASE_URL", f"sqlite:///{home / 'store.db'}")
        env.setenv("SALESLOOP_LOOP_WORKERS", "1")
        env.delenv("REDIS_URL", raising=False)
        result = run_demo(scenario_path=None, deals=60, seed=3, console=Console(quiet=True))
        settings_, store, crm = open_demo(result["installation_id"], Settings.from_env())
        client = demo_app(settings_, store, crm, result["installation_id"]).test_client()
        yield client, t.csrf_of(client.get("/sandbox/tasks").get_data(as_text=True))
        crm.close()


@FAST
@given(case=t.sandbox_cases)
def test_sandbox_pages_refuse_bad_input_with_4xx(sandbox: tuple[Any, str], case: Any) -> None:
    client, csrf = sandbox
    assert csrf, "the tasks page has a CSRF-protected form"
    assert t.judge(lambda: t.sandbox_case(client, csrf, case)) == t.OK


def test_the_reported_5xx_inputs_get_clear_4xx(rig: t.Rig) -> None:
    """The issue's own examples, each once: a non-ASCII digit timestamp, NUL characters, an array as the
    approve body, Canvas parts that are not objects, a missing issuedAt, policy numbers out of bounds."""
    client = rig.client
    body = b'[{"portalId": 62515, "subscriptionType": "deal.creation", "objectId": "1\\u0000", "occurredAt": 1}]'
    assert t.webhook_case(rig, ("header", body, "\u00b2")) == t.OK
    assert client.post("/webhooks/hubspot", data=body, headers={"X-HubSpot-Request-Timestamp": "\u00b2",
                                                               "X-HubSpot-Signature-v3": "x"}).status_code == 401
    assert t.webhook_case(rig, ("signed", body, None)) == t.OK
    assert t.hubspot_card_case(rig, ("approve", {}, "p-hubspot", b"[1, 2]")) == t.OK
    assert t.hubspot_card_case(rig, ("deal", {"objectId": "d\x001"}, "p", b"")) == t.OK
    for context in ({"organization": "00D"}, {"organization": {"organizationId": t.ORG}, "environment": [1]}):
        assert t.canvas_case(rig, ("card", {"algorithm": "HMACSHA256", "issuedAt": int(t.NOW.timestamp()),
                                            "context": context}, "")) == t.OK
    resp = rig.client.post("/cards/salesforce", data={"signed_request": _canvas({"algorithm": "HMACSHA256"})})
    assert resp.status_code == 401 and "issuedAt" in resp.json["message"]
    stale = _canvas({"algorithm": "HMACSHA256", "issuedAt": int(t.NOW.timestamp()) - 3600})
    assert rig.client.post("/cards/salesforce", data={"signed_request": stale}).status_code == 401
    for count in ("abc", "99999999999999999999"):
        resp = rig.admin.post("/admin/policy", data={"rule_count": count, "csrf_token": rig.csrf})
        assert resp.status_code == 400 and b"number of rules" in resp.data
    resp = rig.admin.post("/admin/policy", data={"rule_count": "0", "id_0": "r", "amount_below_0": "1e999",
                                                 "csrf_token": rig.csrf})
    assert resp.status_code == 400 and b"not an amount" in resp.data
    assert rig.admin.get("/admin/audit", query_string={"loop": "a\x00b"}).status_code == 400


def _canvas(context: dict[str, Any]) -> str:
    import base64
    import hashlib
    import hmac

    payload = base64.b64encode(t.dumps(context)).decode()
    return base64.b64encode(hmac.new(t.SF_SECRET.encode(), payload.encode(), hashlib.sha256).digest()).decode() + \
        "." + payload


def test_an_admin_sign_in_link_works_once(rig: t.Rig) -> None:
    from connector.admin.auth import signed_login_url

    with rig.app.test_request_context():
        link = signed_login_url(rig.installation_id, "admin@acme.test", external=False)
    assert rig.app.test_client().get(link).status_code == 302
    again = rig.app.test_client().get(link)
    assert again.status_code == 401 and "already used" in again.json["message"]
