"""The admin page's qualification-field form (one row per CRM field, choices in plain words): a valid mapping
is saved to installation.settings and shown again; a bad one is refused with each problem naming its row,
and the saved mapping stays."""

from __future__ import annotations

from flask import Flask

from connector.store import Store
from connector.store import installations as inst
from crm_adapters.qualification import QualificationMapping
from tests.integration.test_admin_pages import _csrf, _sign_in, app, tenants  # noqa: F401  (fixtures)

ROWS = [{"field": "Budget_Allocated__c", "label": "Budget allocated", "item": "budget", "kind": "picklist"},
        {"field": "Champion__c", "label": "Champion identified", "item": "champion", "kind": "checkbox", "source": "lead"}]


def _rows(rows: list[dict[str, str]]) -> dict[str, str]:
    out = {"q_count": str(len(rows))}
    for i, row in enumerate(rows):
        out.update({f"q_{k}_{i}": v for k, v in row.items()})
    return out


def _post(app: Flask, installation_id: str, rows: list[dict[str, str]]) -> tuple[object, int, str]:  # noqa: F811
    client = app.test_client()
    _sign_in(app, client, installation_id)
    token = _csrf(client.get("/admin/loops").get_data(as_text=True))
    response = client.post("/admin/loops", data={"csrf_token": token, **_rows(rows)})
    return client, response.status_code, response.get_data(as_text=True)


def test_a_valid_mapping_is_saved_and_shown_again(app: Flask, store: Store, tenants: tuple[str, str]) -> None:  # noqa: F811
    client, status, _ = _post(app, tenants[0], ROWS)
    assert status == 302
    with store.session() as s:
        saved = inst.get(s, tenants[0]).settings["qualification"]
    mapping = QualificationMapping.from_settings(saved)
    assert [(f.field, f.label, f.source) for f in mapping.fields] == [
        ("Budget_Allocated__c", "Budget allocated", "deal"), ("Champion__c", "Champion identified", "lead")]
    page = client.get("/admin/loops").get_data(as_text=True)  # type: ignore[attr-defined]
    assert 'value="Budget allocated"' in page and '<option value="budget" selected>Budget confirmed</option>' in page
    assert '<option value="lead" selected>on the converted lead</option>' in page


def test_a_bad_mapping_is_refused_with_every_problem(app: Flask, store: Store, tenants: tuple[str, str]) -> None:  # noqa: F811
    _post(app, tenants[0], ROWS)
    client, status, body = _post(app, tenants[0], [
        {"field": "X__c", "label": "X", "item": "vibes", "kind": "dropdown"},
        {"field": "Y__c", "label": "Y", "item": "budget", "kind": "picklist", "source": "account"}])
    assert status == 400
    assert "Row 1 (X): choose what the field tells." in body and "Row 1 (X): choose what kind of field it is" in body
    assert "Row 2 (Y): choose whether it is on the deal or the converted lead." in body
    assert 'value="X__c"' in body  # the rows come back as submitted
    page = client.get("/admin/loops").get_data(as_text=True)  # type: ignore[attr-defined]
    assert "Budget allocated" in page  # the saved mapping is shown again, unchanged
    with store.session() as s:
        saved = inst.get(s, tenants[0]).settings["qualification"]
    assert [f["field"] for f in saved] == ["Budget_Allocated__c", "Champion__c"]


def test_the_crm_describe_suggests_a_mapping_the_admin_confirms(app: Flask, store: Store, tmp_path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """Suggest: the sandbox CRM's deal fields are described, the mapping is shown unconfirmed (nothing is read
    from it), and saving the form confirms it."""
    from crm_adapters.sandbox import SandboxCrm

    url = f"sqlite:///{tmp_path / 'crm.db'}"
    crm = SandboxCrm.open(url, "acme")
    crm.define_deal_field("Budget_Allocated__c", "Budget allocated", "picklist", ["Yes", "No"])
    crm.define_deal_field("Competitors__c", "Competitors", "multiselect", [("acme", "Acme Corp"), "Globex"])
    crm.define_deal_field("Colour__c", "Colour", "picklist", ["Red", "Blue"])
    crm.close()
    with store.session() as s:
        row = inst.upsert(s, app.extensions["salesloop.cipher"], crm="sandbox", tenant_id="acme", tokens={}, name="Acme")
        row.settings = {"sandbox_url": url}
        installation_id = row.id
    client = app.test_client()
    _sign_in(app, client, installation_id)
    token = _csrf(client.get("/admin/loops").get_data(as_text=True))
    assert client.post("/admin/loops", data={"csrf_token": token, "action": "suggest"}).status_code == 302
    page = client.get("/admin/loops").get_data(as_text=True)
    assert "Suggested from your CRM" in page and "2 qualification fields suggested" in page
    assert 'data-field="Budget_Allocated__c"' in page and 'data-field="Competitors__c"' in page
    assert "Acme Corp, Globex" in page  # the CRM's labels of the options, not the stored values
    assert '<option value="Colour__c">Colour (on the deal)</option>' in page  # not suggested, but can be added
    with store.session() as s:
        settings = inst.get(s, installation_id).settings
    assert "qualification" not in settings  # suggested, not confirmed
    rows = [{"field": "Budget_Allocated__c", "label": "Budget allocated", "item": "budget", "kind": "picklist"},
            {"field": "Competitors__c", "label": "Competitors", "item": "competition", "kind": "multiselect",
             "options": '[["acme", "Acme Corp"], ["Globex", "Globex"]]'}]
    client.post("/admin/loops", data={"csrf_token": _csrf(page), **_rows(rows)})
    with store.session() as s:
        saved = QualificationMapping.from_settings(inst.get(s, installation_id).settings["qualification"])
    assert [(f.field, f.kind, f.options, f.option_labels) for f in saved.fields] == [
        ("Budget_Allocated__c", "picklist", (), ()),
        ("Competitors__c", "multiselect", ("acme", "Globex"), ("Acme Corp", "Globex"))]
    assert "Suggested from your CRM" not in client.get("/admin/loops").get_data(as_text=True)
