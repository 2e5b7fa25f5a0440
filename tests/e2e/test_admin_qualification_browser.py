"""The Loops page's qualification fields in a real browser, without JavaScript doing the work: the CRM's
fields are suggested, the admin changes rows with plain-word dropdowns, adds one and removes one, saves,
reloads and reads the mapping back in plain words; a row left incomplete is refused, naming the row."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.admin.auth import signed_login_url
from connector.app import create_app
from connector.settings import Settings
from connector.store import Store
from connector.store import installations as inst
from connector.store.tables import Installation
from crm_adapters.qualification import QualificationMapping
from crm_adapters.sandbox import SandboxCrm
from jobs.adapters import SANDBOX_URL_KEY
from tests.e2e.conftest import live_server

pytestmark = pytest.mark.browser
SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")


@pytest.fixture
def admin_page(page: Any, store: Store, tmp_path: Path) -> Iterator[tuple[Any, str, str]]:
    """A sandbox CRM whose admin defined a few deal fields; our admin signed in on the Loops page."""
    crm = SandboxCrm.open(f"sqlite:///{tmp_path / 'crm.db'}", "acme")
    crm.define_deal_field("budget_allocated", "Budget allocated", "picklist", ["Yes", "No"])
    crm.define_deal_field("eb_known", "Economic buyer known", "checkbox")
    crm.define_deal_field("competitors", "Competitors", "multiselect", [("acme_corp", "Acme Corp"), ("globex", "Globex Inc.")])
    crm.define_deal_field("top_concern", "Top concern", "picklist", [("cost", "Cost pressure"), ("growth", "Growth")])
    crm.define_deal_field("colour", "Colour", "picklist", ["Red", "Blue"])
    with store.session() as s:
        row = Installation(crm="sandbox", tenant_id="acme", name="Acme", status="active",
                           settings={SANDBOX_URL_KEY: str(crm.engine.url)})
        s.add(row)
        s.flush()
        installation_id = row.id
    crm.close()
    app = create_app(Settings(testing=True), store=store)
    with app.test_request_context():
        login = signed_login_url(installation_id, "admin@acme.example", external=False)
    with live_server(app) as base:
        page.goto(base + login)
        page.get_by_role("link", name="Loops").click()
        yield page, base, installation_id


def _row(page: Any, field: str) -> Any:
    return page.locator(f"#qualification tbody tr[data-field='{field}']")


def _saved(store: Store, installation_id: str) -> QualificationMapping:
    with store.session() as s:
        return QualificationMapping.from_settings(inst.get(s, installation_id).settings.get("qualification"))


def test_an_admin_maps_fields_in_plain_words_and_reads_them_back(admin_page, shot, store: Store) -> None:  # type: ignore[no-untyped-def]
    page, _, installation_id = admin_page
    page.get_by_role("button", name="Suggest qualification fields from the CRM").click()
    assert page.locator("#qualification-suggested").is_visible()
    assert _row(page, "budget_allocated").locator("select[name^=q_item_] option:checked").text_content() == "Budget confirmed"
    assert _row(page, "competitors").locator(".choices").text_content() == "Acme Corp, Globex Inc."  # labels, not values
    assert _row(page, "colour").count() == 0  # nothing in its name says qualification: not suggested
    shot(page, "suggested")

    eb = _row(page, "eb_known")
    eb.locator("select[name^=q_item_]").select_option(label="Economic buyer identified")
    eb.locator("select[name^=q_stage_]").select_option(label="by the BDM in discovery")
    _row(page, "competitors").get_by_role("checkbox").check()  # remove this row
    new = page.locator("#qualification tbody tr").last
    new.get_by_label("Add a field").fill("top_concern")  # one of the CRM's fields, offered in the list
    new.locator("select[name^=q_item_]").select_option(label="Pain named")
    page.get_by_role("button", name="Save loops and mappings").click()
    assert page.get_by_role("status").text_content() == "Loops and mappings saved."

    page.reload()
    assert not page.locator("#qualification-suggested").count()  # confirmed now
    fields = page.locator("#qualification tbody tr[data-field]:not([data-field=''])")
    assert [fields.nth(i).get_attribute("data-field") for i in range(fields.count())] == [
        "budget_allocated", "eb_known", "top_concern"]
    eb = _row(page, "eb_known")
    assert eb.locator("select[name^=q_item_] option:checked").text_content() == "Economic buyer identified"
    assert eb.locator("select[name^=q_stage_] option:checked").text_content() == "by the BDM in discovery"
    assert _row(page, "top_concern").get_by_label(re.compile("shown as")).input_value() == "Top concern"
    table_words = page.locator("#qualification").evaluate(
        "t => { const c = t.cloneNode(true); c.querySelectorAll('.muted').forEach(e => e.remove());"
        " return [c.innerText, ...[...c.querySelectorAll('option:checked')].map(o => o.text)].join(' '); }")
    assert not SNAKE.findall(table_words), "the mapping reads in plain words, with no stored item names"
    shot(page, "saved")

    mapping = _saved(store, installation_id)
    assert [(f.field, f.item, f.stage, f.kind) for f in mapping.fields] == [
        ("budget_allocated", "budget", "sdr", "picklist"), ("eb_known", "economic_buyer", "discovery", "checkbox"),
        ("top_concern", "identify_pain", "sdr", "picklist")]


def test_an_incomplete_row_is_refused_and_named(admin_page, shot, store: Store) -> None:  # type: ignore[no-untyped-def]
    page, _, installation_id = admin_page
    new = page.locator("#qualification tbody tr").last
    new.get_by_label("Add a field").fill("Mystery__c")  # not a field the CRM described, and no choice made
    new.get_by_label(re.compile("Shown as")).fill("Mystery")
    page.get_by_role("button", name="Save loops and mappings").click()
    alert = page.get_by_role("alert").text_content()
    assert "Nothing was saved" in alert
    assert "Row 1 (Mystery): choose what the field tells." in alert
    assert "Row 1 (Mystery): choose what kind of field it is" in alert
    assert page.locator("#qualification tbody tr").last.get_by_label("Add a field").input_value() == "Mystery__c"  # kept
    shot(page)
    assert _saved(store, installation_id).fields == ()
