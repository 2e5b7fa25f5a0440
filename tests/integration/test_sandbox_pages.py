"""The sandbox CRM's pages without a browser: what they read, CSRF, clear refusals, and that production never serves them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import select

from connector.app import create_app
from connector.sandbox_serve import demo_app, open_demo
from connector.settings import Settings
from connector.store.tables import ModelVersion, Proposal
from crm_adapters.model import Entity, TaskStatus
from ui_extensions.cards import card_view


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`salesloop demo --deals 800` in-process (SQLite store), and the --serve app's test client."""
    from jobs.tools.demo import run_demo

    home: Path = tmp_path_factory.mktemp("sandbox-pages")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SALESLOOP_HOME", str(home))
        env.setenv("DATABASE_URL", f"sqlite:///{home / 'store.db'}")
        env.setenv("SALESLOOP_LOOP_WORKERS", "1")
        env.delenv("REDIS_URL", raising=False)
        result = run_demo(scenario_path=None, deals=800, seed=7, console=Console(quiet=True))
        settings, store, crm = open_demo(result["installation_id"], Settings.from_env())
        yield {"app": demo_app(settings, store, crm, result["installation_id"]), "store": store, "crm": crm,
               "installation_id": result["installation_id"]}
        crm.close()


def _token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has a CSRF-protected form"
    return match.group(1)


def test_the_production_app_never_serves_the_sandbox_pages() -> None:
    app = create_app(Settings(testing=True, database_url="sqlite://"))
    assert not [r for r in app.url_map.iter_rules() if r.rule.startswith("/sandbox")]
    assert app.test_client().get("/sandbox/deals").status_code == 404


def test_the_deal_list_is_sorted_by_the_risk_the_app_wrote_into_the_crm(demo: dict[str, Any]) -> None:
    client = demo["app"].test_client()
    html = client.get("/sandbox/deals").get_data(as_text=True)
    ids = re.findall(r'<tr data-deal="([^"]+)">', html)
    assert len(ids) >= 20
    scores = [demo["crm"].app_field_values(Entity.DEAL, i).get("risk_score") for i in ids]
    scored = [s for s in scores if s is not None]
    assert len(scored) >= 20 and scored == sorted(scored, reverse=True) and scores[: len(scored)] == scored
    assert client.get("/sandbox/deals?sort=name").status_code == 200
    assert client.get("/sandbox/deals/no-such-deal").status_code == 404


def test_posts_without_the_csrf_token_are_refused(demo: dict[str, Any]) -> None:
    client = demo["app"].test_client()
    client.get("/sandbox/tasks")
    task = demo["crm"].list_tasks(status=TaskStatus.OPEN)[0]
    response = client.post(f"/sandbox/tasks/{task['remote_id']}/complete", data={"comment": "ok"})
    assert response.status_code == 403
    assert demo["crm"].list_tasks(status=TaskStatus.OPEN)[0]["remote_id"] == task["remote_id"]  # nothing changed


def test_a_rejection_needs_a_reason_and_an_unknown_task_says_so(demo: dict[str, Any]) -> None:
    client = demo["app"].test_client()
    token = _token(client.get("/sandbox/tasks").get_data(as_text=True))
    task = demo["crm"].list_tasks(status=TaskStatus.OPEN)[0]
    page = client.post(f"/sandbox/tasks/{task['remote_id']}/reject", data={"csrf_token": token, "comment": " "},
                       follow_redirects=True).get_data(as_text=True)
    assert "Give a reason to reject" in page and 'role="alert"' in page
    assert {t["remote_id"] for t in demo["crm"].list_tasks(status=TaskStatus.OPEN)} >= {task["remote_id"]}
    page = client.post("/sandbox/tasks/999999/complete", data={"csrf_token": token}, follow_redirects=True).get_data(as_text=True)
    assert "Task 999999 is not in this CRM" in page


def test_approving_in_the_sandbox_card_activates_the_new_playbook_version(demo: dict[str, Any]) -> None:
    store, iid, client = demo["store"], demo["installation_id"], demo["app"].test_client()
    with store.session() as s:
        proposal = next(p for p in s.execute(select(Proposal).where(Proposal.installation_id == iid, Proposal.status == "pending"))
                        .scalars() if (p.evidence or {}).get("type") == "playbook")
        pid, loop = proposal.id, proposal.loop
    deal = re.findall(r'<tr data-deal="([^"]+)">', client.get("/sandbox/deals").get_data(as_text=True))[0]
    card = client.get(f"/sandbox/deals/{deal}/card").get_data(as_text=True)
    assert 'data-testid="risk-score"' in card
    assert pid not in card and 'data-testid="other-approvals"' in card  # a team-wide change is not about this deal (issue 14)
    card = client.get("/sandbox/tasks").get_data(as_text=True)  # the session's CSRF token, from a page with forms
    refused = client.post(f"/sandbox/deals/{deal}/card/proposals/{pid}/reject", data={"csrf_token": _token(card)})
    assert refused.status_code == 400 and "Say why you reject it" in refused.get_data(as_text=True)
    done = client.post(f"/sandbox/deals/{deal}/card/proposals/{pid}/approve", data={"csrf_token": _token(card)})
    assert done.status_code == 200 and "Proposal approved." in done.get_data(as_text=True)
    with store.session() as s:
        assert s.get(Proposal, pid).status == "approved"
        active = s.execute(select(ModelVersion).where(ModelVersion.installation_id == iid, ModelVersion.loop == loop,
                                                      ModelVersion.active.is_(True))).scalars().all()
    assert {v.arm for v in active} == {"control", "treatment"}
    again = client.post(f"/sandbox/deals/{deal}/card/proposals/{pid}/reject", data={"csrf_token": _token(card), "reason": "no"})
    assert again.status_code == 409 and "already approved" in again.get_data(as_text=True)


def test_the_card_drops_evidence_that_repeats_its_reason_and_diff_lines_without_a_field() -> None:
    view = card_view({"risk": {"score": 80, "reasons": [{"code": "x", "text": "No meeting", "evidence": ["No meeting", "last 2026-05-01"]}]}},
                     deal_id="1", viewer_is_manager=True,
                     proposals=[{"id": "p", "title": "Spot-check", "diff": [{"decision_id": "d1"}, {"op": "add", "field": "ask", "value": "timeline"}]}])
    assert view["risk"]["reasons"][0]["evidence"] == ["last 2026-05-01"]
    assert view["approvals"][0]["changes"] == ["Ask: add Timeline"]
