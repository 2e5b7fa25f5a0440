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
