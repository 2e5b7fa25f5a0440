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
    demo["app"].config["SANDBOX_DEALS_PER_PAGE"] = 10  # every open deal is on some page, none cut off
    seen: list[str] = []
    for page in range(1, 100):
        html = client.get(f"/sandbox/deals?page={page}").get_data(as_text=True)
        seen += re.findall(r'<tr data-deal="([^"]+)">', html)
        if "Next →" not in html:
            break
    del demo["app"].config["SANDBOX_DEALS_PER_PAGE"]
    assert seen[: len(ids)] == ids and len(seen) == len(set(seen)) == len(ids)


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


def _waiting(store: Any, iid: str, crm: Any) -> set[str]:
    """Task ids of every proposal still waiting for a manager whose CRM task is open."""
    open_ids = {t["remote_id"] for t in crm.list_tasks(status=TaskStatus.OPEN)}
    with store.session() as s:
        rows = s.execute(select(Proposal.task_remote_id).where(Proposal.installation_id == iid, Proposal.status == "pending")).scalars()
        return {str(r) for r in rows if r is not None and str(r) in open_ids}


def test_every_decision_waiting_is_listed_first_and_the_rest_is_paged(demo: dict[str, Any]) -> None:
    client = demo["app"].test_client()
    waiting = _waiting(demo["store"], demo["installation_id"], demo["crm"])
    assert len(waiting) >= 3
    html = client.get("/sandbox/tasks").get_data(as_text=True)
    assert set(re.findall(r'<tr data-waiting="([^"]+)">', html)) == waiting
    assert set(re.findall(r'data-task="([^"]+)"', html)[: len(waiting)]) == waiting  # decisions first in the list too
    demo["app"].config["SANDBOX_TASKS_PER_PAGE"] = per_page = 2  # a small org's tasks over several pages
    html = client.get("/sandbox/tasks?owner=all").get_data(as_text=True)
    cards = re.findall(r'data-task="([^"]+)"', html)
    assert len(cards) == per_page and set(cards) <= waiting  # decisions first
    total = int(re.search(r"Tasks 1–2 of ([\d,]+)", html).group(1).replace(",", ""))
    assert total == len(demo["crm"].list_tasks(status=TaskStatus.OPEN)) > per_page and "Page 1 of" in html
    second = re.findall(r'data-task="([^"]+)"', client.get("/sandbox/tasks?owner=all&page=2").get_data(as_text=True))
    assert second and not set(second) & set(cards)
    last = client.get("/sandbox/tasks?owner=all&page=999").get_data(as_text=True)  # past the end: the last page
    assert f"of {total:,}" in last and "← Previous" in last and "Next →" not in last
    other = client.get("/sandbox/tasks?owner=all&kind=other").get_data(as_text=True)
    assert "data-waiting" not in other and not set(re.findall(r'data-task="([^"]+)"', other)) & waiting
    del demo["app"].config["SANDBOX_TASKS_PER_PAGE"]


def test_run_the_loops_returns_before_the_run_ends_and_reports_it_to_the_end(demo: dict[str, Any]) -> None:
    from connector.loop_runs import ThreadRunner

    client = demo["app"].test_client()
    token = _token(client.get("/sandbox/tasks").get_data(as_text=True))
    started = client.post("/sandbox/run", data={"csrf_token": token}, headers={"Accept": "application/json"})
    assert started.status_code == 202 and started.json["state"] == "running" and not started.json["finished"]
    again = client.post("/sandbox/run", data={"csrf_token": token}, headers={"Accept": "application/json"})
    assert again.json["run_id"] == started.json["run_id"]  # pressing twice runs once
    runner = demo["app"].extensions["salesloop.runs"]
    assert isinstance(runner, ThreadRunner)
    runner.wait(demo["installation_id"])
    status = client.get("/sandbox/run.json").json
    assert status["state"] == "done" and status["percent"] == 100 and status["finished"]
    assert status["message"].startswith("Loops ran") and "still waiting" in status["message"]
    page = client.get("/sandbox/tasks").get_data(as_text=True)  # a reload shows where the run ended
    assert status["message"] in page and 'data-state="done"' in page
    plain = client.post("/sandbox/run", data={"csrf_token": token, "next": "//evil.example/"})
    assert plain.status_code == 302 and plain.headers["Location"].endswith("/sandbox/tasks")
    runner.wait(demo["installation_id"])


def test_every_admin_chart_draws_the_demo_s_own_data(demo: dict[str, Any]) -> None:
    from connector.admin import readouts

    with demo["store"].session() as s:
        drawn = {name: readouts.chart_data_for(s, demo["installation_id"], name) for name in readouts.CHARTS}
    for name, data in drawn.items():
        assert data.rows and not data.empty_because and data.note, (name, data.empty_because)
    assert len(drawn["handoff-readout"].rows) == 2 and all(len(points) >= 3 for _, points in drawn["handoff-readout"].rows)
    client = demo["app"].test_client()
    client.get("/sandbox/admin", follow_redirects=True)
    page = client.get("/admin/charts").get_data(as_text=True)
    assert page.count("<svg") == len(readouts.CHARTS) and "held out for validation" in page
