"""What people see, in a real browser: backfill progress, the rep's card, the manager's approval loop,
the policy editor's error, and keyboard use. The org is small (a few hundred deals) to stay quick."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import select

from connector.admin.auth import signed_login_url
from connector.app import create_app
from connector.sandbox_serve import demo_app, open_demo
from connector.settings import Settings
from connector.store import Store
from connector.store.tables import Installation, ModelVersion, Proposal
from crm_adapters.model import TaskStatus
from crm_adapters.sandbox import SandboxCrm, load_scenario, simulate
from jobs.adapters import SANDBOX_URL_KEY
from jobs.loops import registry
from jobs.sync import sync_installation
from tests.e2e.conftest import live_server

pytestmark = pytest.mark.browser
DEMO_DEALS = 800  # enough closed deals for the discovery/ICP loops to propose a playbook change


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, chromium: Any) -> Iterator[dict[str, Any]]:
    """`salesloop demo --deals 800` in-process, then the --serve app on a free port."""
    from jobs.tools.demo import run_demo

    home = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SALESLOOP_HOME", str(home))
        env.setenv("DATABASE_URL", f"sqlite:///{home / 'store.db'}")
        env.setenv("SALESLOOP_LOOP_WORKERS", "1")  # no forking from a process that serves threads
        env.delenv("REDIS_URL", raising=False)
        result = run_demo(scenario_path=None, deals=DEMO_DEALS, seed=7, console=Console(quiet=True))
        settings, store, crm = open_demo(result["installation_id"], Settings.from_env())
        app = demo_app(settings, store, crm, result["installation_id"])
        with live_server(app) as base:
            yield {"base": base, "store": store, "crm": crm, "installation_id": result["installation_id"]}
        crm.close()


def test_admin_watches_the_backfill_reach_100_percent(page, shot, store: Store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    crm = SandboxCrm.open(f"sqlite:///{tmp_path / 'crm.db'}", "small-org", page_size=40)  # many batches: a moving bar
    crm.load(simulate(load_scenario().scaled(120), seed=3))
    with store.session() as s:
        row = Installation(crm="sandbox", tenant_id="small-org", name="Small org", status="active",
                           settings={SANDBOX_URL_KEY: str(crm.engine.url)})
        s.add(row)
        s.flush()
        installation_id = row.id
    app = create_app(Settings(testing=True), store=store)
    with app.test_request_context():
        login = signed_login_url(installation_id, "admin@small.example", external=False)
    with live_server(app) as base:
        page.goto(base + login)
        assert page.get_attribute("#backfill", "value") == "0"
        report = sync_installation(store, installation_id, crm)
        page.wait_for_function("document.getElementById('backfill').value === 100")
        page.wait_for_selector("#backfill-text:has-text('complete')")  # every object's cursor saved
        assert page.text_content("#backfill-text").startswith("100%")
        shot(page)
    assert report.total > 1000 and report.quarantined == 0


def _risk_cells(page: Any) -> list[int]:
    return [int(t) for t in page.locator("table.deals td.risk").all_text_contents() if t.strip().isdigit()]


def test_a_rep_opens_a_deal_and_sees_score_reasons_and_next_move(page, shot, demo) -> None:  # type: ignore[no-untyped-def]
    page.goto(demo["base"] + "/")
    assert page.url.endswith("/sandbox/deals")
    scores = _risk_cells(page)
    assert len(scores) >= 10 and scores == sorted(scores, reverse=True)  # riskiest first, from the CRM's fields
    shot(page, "list")
    page.locator("table.deals tbody tr").first.locator("a").click()
    card = page.frame_locator("#card")
    score = card.locator("[data-testid=risk-score]").text_content()
    stored = page.locator("#app-fields tr:has(th:text-is('Risk score (0-100)')) td").text_content()
    assert score == str(scores[0]) and round(float(stored)) == scores[0]  # the card and the CRM field agree
    assert card.locator("section[aria-label='Deal risk'] li").count() >= 1  # its reasons
    assert len(card.locator("[data-testid=next-move]").text_content().strip()) > 10
    assert page.locator("h2:has-text('Stage history') + table tbody tr").count() >= 1
    assert page.locator("ol.activities > li").count() >= 1
    page.wait_for_function("document.getElementById('card').offsetHeight > 320")  # the frame grew to its card
    shot(page)


def test_keyboard_only_runs_the_loops(page, shot, demo) -> None:  # type: ignore[no-untyped-def]
    page.goto(demo["base"] + "/sandbox/tasks")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    for _ in range(40):
        if page.evaluate("document.activeElement.id") == "run-loops":
            break
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "run-loops"
    page.keyboard.press("Enter")
    page.wait_for_selector("#run-message.run-done:has-text('Loops ran')", timeout=300_000)
    assert page.evaluate("document.activeElement.id") != "" or page.url.endswith("/sandbox/tasks")
    shot(page, full_page=False)


def _pending_playbook(store: Store, installation_id: str) -> Proposal:
    with store.session() as s:
        rows = s.execute(select(Proposal).where(Proposal.installation_id == installation_id, Proposal.status == "pending",
                                                Proposal.task_remote_id.is_not(None))).scalars().all()
        playbooks = [p for p in rows if (p.evidence or {}).get("type") == "playbook"]
        assert playbooks, f"the demo org proposed no playbook change: {[p.title for p in rows]}"
        s.expunge(playbooks[0])
        return playbooks[0]


def _version(store: Store, installation_id: str, loop: str) -> int:
    with store.session() as s:
        return max(v.version for v in s.execute(select(ModelVersion).where(
            ModelVersion.installation_id == installation_id, ModelVersion.loop == loop, ModelVersion.active.is_(True))).scalars())


def _pending_tasks(store: Store, installation_id: str, crm: Any) -> set[str]:
    """The CRM task of every proposal still waiting for a manager (its task open in the CRM)."""
    open_ids = {t["remote_id"] for t in crm.list_tasks(status=TaskStatus.OPEN)}
    with store.session() as s:
        rows = s.execute(select(Proposal.task_remote_id).where(Proposal.installation_id == installation_id,
                                                               Proposal.status == "pending")).scalars()
        return {str(r) for r in rows if r is not None and str(r) in open_ids}


def test_a_manager_finds_every_pending_approval_on_the_first_screen(page, shot, demo) -> None:  # type: ignore[no-untyped-def]
    pending = _pending_tasks(demo["store"], demo["installation_id"], demo["crm"])
    assert pending
    page.goto(demo["base"] + "/")
    page.get_by_role("link", name="My tasks").click()
    page.wait_for_url("**/sandbox/tasks**")
    height = page.viewport_size["height"]
    rows = page.locator("#waiting tr[data-waiting]")
    rows.first.wait_for()  # locator.all() does not wait for the new page
    assert {r.get_attribute("data-waiting") for r in rows.all()} == pending
    for row in rows.all():  # no scrolling: each one is inside the first screen, with its button
        box = row.bounding_box()
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height, row.text_content()
        assert row.get_by_role("button").is_visible()
    assert page.evaluate("window.scrollY") == 0
    shot(page, "first-screen", full_page=False)


def test_approving_and_running_the_loops_returns_at_once_shows_progress_and_activates_the_version(page, shot, demo) -> None:  # type: ignore[no-untyped-def]
    store, iid = demo["store"], demo["installation_id"]
    proposal = _pending_playbook(store, iid)
    before = _version(store, iid, proposal.loop)
    page.goto(demo["base"] + "/sandbox/tasks")
    page.locator(f"#waiting tr[data-waiting='{proposal.task_remote_id}']").get_by_role("button", name="Approve").click()
    page.wait_for_selector("p.flash:has-text('completed in the CRM')")
    assert page.locator(f"#waiting tr[data-waiting='{proposal.task_remote_id}']").count() == 0
    with page.expect_response(lambda r: r.url.endswith("/sandbox/run") and r.request.method == "POST") as posted:
        page.get_by_role("button", name="Run the loops now").click()
    response = posted.value
    assert response.status == 202 and response.json()["state"] == "running"  # the POST answered before the run ended
    page.wait_for_selector("#run[data-state=running] .run-progress:not([hidden])")
    assert page.get_by_role("button", name="Running the loops…").is_disabled()
    page.wait_for_selector("#run-bar:not([value='0']):not([value='1'])")  # the bar moves with the run's steps
    assert page.text_content("#run-step").strip()
    shot(page, "running", full_page=False)
    page.reload()  # the run survives a reload: the page picks it up where it is
    page.wait_for_selector("#run-message.run-done", timeout=300_000)
    message = page.text_content("#run-message")
    assert "1 approved" in message and f"{registry.title(proposal.loop)} v" in message  # the loop in words
    assert page.get_attribute("#run-bar", "value") == "100"
    after = _version(store, iid, proposal.loop)
    assert after > before
    row = page.locator(f"#versions tr[data-loop='{proposal.loop}']").first
    assert row.locator("td").nth(1).text_content() == f"v{after}" and "Treatment" in row.text_content()
    shot(page, "done", full_page=False)
    page.goto(demo["base"] + "/sandbox/tasks?status=completed")
    assert "approved" in page.locator(f"section[data-task='{proposal.task_remote_id}'] [data-proposal-status]").text_content()
    page.get_by_role("link", name="salesloop admin").click()
    page.get_by_role("link", name="Approvals").click()
    assert page.locator(f"h2:has-text('{proposal.title}')").first.text_content().strip().endswith("approved)")
    active = page.locator(f"#active-versions tr[data-loop='{proposal.loop}']").first
    assert active.locator("td").nth(1).text_content() == f"v{after}" and "Treatment" in active.text_content()


def test_the_admin_charts_show_the_demo_s_own_data(page, shot, demo) -> None:  # type: ignore[no-untyped-def]
    page.goto(demo["base"] + "/sandbox/admin")
    page.get_by_role("link", name="Charts").click()
    charts = page.locator("section.chart")
    assert charts.count() == 5
    for chart in charts.all():
        name = chart.get_attribute("id")
        note = chart.locator("p.note").text_content()
        assert "yet" not in note and "No " not in note, (name, note)
        assert chart.locator("svg circle, svg polyline, svg rect[fill='#1f5fa8'] title").count() >= 1, name
    assert "held out for validation" in page.text_content("#chart-calibration")
    assert page.locator("#chart-handoff-readout svg polyline").count() == 2  # control and treatment
    assert page.locator("#chart-risk-distribution svg rect title").count() == 10  # ten bins of scored deals
    shot(page)


def test_the_policy_editor_rejects_an_invalid_rule_with_a_clear_message(page, shot, demo) -> None:  # type: ignore[no-untyped-def]
    page.goto(demo["base"] + "/sandbox/admin")
    page.get_by_role("link", name="Policy").click()
    rows = page.locator("tbody tr:not(.muted)")
    new = rows.last
    new.locator("input[name^=id_]").fill("cheap-deals-auto")
    new.locator("input[name^=amount_below_]").fill("ten thousand")
    page.get_by_role("button", name="Save policy").click()
    alert = page.get_by_role("alert")
    message = alert.text_content()  # names the rule, the condition, what is expected and the bad value
    assert "cheap-deals-auto" in message and "“amount below” needs a number" in message and "'ten thousand'" in message
    shot(page)


def test_sandbox_forms_refuse_a_post_without_the_csrf_token(page, demo) -> None:  # type: ignore[no-untyped-def]
    page.goto(demo["base"] + "/sandbox/tasks")  # a signed-in session, but the POST carries no token
    response = page.request.post(demo["base"] + "/sandbox/run", form={"next": "/sandbox/tasks"})
    assert response.status == 403 and "CSRF" in response.text()
