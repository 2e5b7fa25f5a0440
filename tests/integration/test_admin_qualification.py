"""The admin page's qualification-field form: a valid mapping is saved to installation.settings and shown
again; a bad one is refused with every problem named, and the saved mapping stays."""

from __future__ import annotations

from flask import Flask

from connector.store import Store
from connector.store import installations as inst
from crm_adapters.qualification import QualificationMapping
from tests.integration.test_admin_pages import _csrf, _sign_in, app, tenants  # noqa: F401  (fixtures)

LINES = "Budget_Allocated__c; Budget allocated; budget; picklist\nChampion__c; Champion identified; champion; checkbox; lead"


def _post(app: Flask, installation_id: str, text: str) -> tuple[object, str]:  # noqa: F811
    client = app.test_client()
    _sign_in(app, client, installation_id)
    token = _csrf(client.get("/admin/loops").get_data(as_text=True))
    response = client.post("/admin/loops", data={"csrf_token": token, "qualification": text})
    return client, response.status_code


def test_a_valid_mapping_is_saved_and_shown_again(app: Flask, store: Store, tenants: tuple[str, str]) -> None:  # noqa: F811
    client, status = _post(app, tenants[0], LINES)
    assert status == 302
    with store.session() as s:
        saved = inst.get(s, tenants[0]).settings["qualification"]
    mapping = QualificationMapping.from_settings(saved)
    assert [(f.field, f.label, f.source) for f in mapping.fields] == [
        ("Budget_Allocated__c", "Budget allocated", "deal"), ("Champion__c", "Champion identified", "lead")]
    page = client.get("/admin/loops").get_data(as_text=True)  # type: ignore[attr-defined]
    assert "Budget_Allocated__c; Budget allocated; budget; picklist; deal; sdr" in page


def test_a_bad_mapping_is_refused_with_every_problem(app: Flask, store: Store, tenants: tuple[str, str]) -> None:  # noqa: F811
    _post(app, tenants[0], LINES)
    client, status = _post(app, tenants[0], "X__c; X; vibes; dropdown\nY__c; Y; budget; picklist; account")
    assert status == 302
    page = client.get("/admin/loops").get_data(as_text=True)  # type: ignore[attr-defined]
    assert "item &#39;vibes&#39; is not one of" in page and "kind &#39;dropdown&#39;" in page
    assert "source &#39;account&#39;" in page
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
    crm.define_deal_field("Competitors__c", "Competitors", "multiselect", ["Acme", "Globex"])
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
    assert "Budget_Allocated__c; Budget allocated; budget; picklist; deal; sdr" in page
    assert "Competitors__c; Competitors; competition; multiselect; deal; sdr; Acme | Globex" in page
    assert "Colour__c" not in page
    with store.session() as s:
        settings = inst.get(s, installation_id).settings
    assert "qualification" not in settings  # suggested, not confirmed
    text = ("Budget_Allocated__c; Budget allocated; budget; picklist; deal; sdr\n"
            "Competitors__c; Competitors; competition; multiselect; deal; sdr; Acme | Globex")
    client.post("/admin/loops", data={"csrf_token": _csrf(page), "qualification": text})
    with store.session() as s:
        saved = QualificationMapping.from_settings(inst.get(s, installation_id).settings["qualification"])
    assert [(f.field, f.kind, f.options) for f in saved.fields] == [
        ("Budget_Allocated__c", "picklist", ()), ("Competitors__c", "multiselect", ("Acme", "Globex"))]
    assert "Suggested from your CRM" not in client.get("/admin/loops").get_data(as_text=True)
