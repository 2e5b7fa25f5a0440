"""The SFDX project agrees with the code: the fields the adapter writes, the FLS, the ECA and the Canvas card."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from crm_adapters.salesforce._mapping import APP_FIELD_NAMES, TASK_KEY
from crm_adapters.salesforce._writes import PERMISSION_SET, SOBJECT, field_specs
from crm_adapters.writes import APP_FIELDS

ROOT = Path(__file__).resolve().parents[2] / "ui_extensions" / "salesforce"
SRC = ROOT / "force-app" / "main" / "default"
NS = "{http://soap.sforce.com/2006/04/metadata}"
ROOT_TAG = {  # file suffix -> metadata root element
    ".field-meta.xml": "CustomField", ".permissionset-meta.xml": "PermissionSet",
    ".eca-meta.xml": "ExternalClientApplication", ".ecaGlblOauth-meta.xml": "ExtlClntAppGlobalOauthSettings",
    ".ecaOauth-meta.xml": "ExtlClntAppOauthSettings", ".ecaOauthPlcy-meta.xml": "ExtlClntAppOauthConfigurablePolicies",
    ".ecaPlcy-meta.xml": "ExtlClntAppConfigurablePolicies", ".ecaCanvas-meta.xml": "ExtlClntAppCanvasSettings",
}
FIELD_TYPES = {"number": "Number", "enumeration": "Picklist", "text": "LongTextArea", "datetime": "DateTime"}


def _parse(path: Path) -> ET.Element:
    return ET.parse(path).getroot()


def _text(el: ET.Element, tag: str) -> str | None:
    child = el.find(NS + tag)
    return child.text if child is not None else None


def _fields() -> dict[str, ET.Element]:
    """'Object.Field__c' -> its CustomField; task fields are Activity fields (Salesforce keeps them there)."""
    out = {}
    for path in SRC.glob("objects/*/fields/*.field-meta.xml"):
        obj = path.parent.parent.name
        out[f"{obj}.{path.name.removesuffix('.field-meta.xml')}"] = _parse(path)
    return out


def test_sfdx_project_json() -> None:
    project = json.loads((ROOT / "sfdx-project.json").read_text())
    assert project["sourceApiVersion"] == "66.0"  # a string: ECA types need API 66+
    assert [p["path"] for p in project["packageDirectories"] if p.get("default")] == ["force-app"]


def test_every_metadata_file_is_well_formed_and_has_the_right_root() -> None:
    files = [p for p in SRC.rglob("*") if p.is_file()]
    assert len(files) >= 15
    for path in files:
        suffix = next((s for s in ROOT_TAG if path.name.endswith(s)), None)
        assert suffix is not None, f"unknown metadata file suffix: {path.relative_to(ROOT)}"
        assert _parse(path).tag == NS + ROOT_TAG[suffix], path


def test_fields_are_exactly_what_the_adapter_provisions() -> None:
    specs = dict(field_specs())
    fields = _fields()
    assert set(fields) == set(specs)
    for full, meta in specs.items():
        el = fields[full]
        assert _text(el, "fullName") == full.split(".")[1]
        assert _text(el, "label") == meta["label"] and _text(el, "type") == meta["type"], full
        for key in ("precision", "scale", "length", "visibleLines"):
            if key in meta:
                assert _text(el, key) == str(meta[key]), (full, key)
        for key in ("externalId", "unique", "caseSensitive"):
            if meta.get(key):
                assert _text(el, key) == "true", (full, key)
        if meta["type"] == "Picklist":
            values = [_text(v, "fullName") for v in el.iter(NS + "value")]
            assert values == [v["fullName"] for v in meta["valueSet"]["valueSetDefinition"]["value"]]
            assert _text(el.find(NS + "valueSet"), "restricted") == "true"


def test_every_app_field_has_its_field_on_the_right_object() -> None:
    fields = _fields()
    for spec in APP_FIELDS:
        el = fields[f"{SOBJECT[spec.entity]}.{APP_FIELD_NAMES[spec.field]}"]
        assert _text(el, "label") == spec.label
        assert _text(el, "type") == FIELD_TYPES[spec.kind]
        if spec.options:
            assert [_text(v, "fullName") for v in el.iter(NS + "value")] == list(spec.options)
    assert f"Activity.{TASK_KEY}" in fields and not (SRC / "objects" / "Task").exists()
    assert (SRC / "objects" / "Activity" / "fields" / f"{TASK_KEY}.field-meta.xml").exists()


def test_the_permission_set_grants_read_and_edit_on_every_field() -> None:
    ps = _parse(SRC / "permissionsets" / f"{PERMISSION_SET}.permissionset-meta.xml")
    granted = {_text(fp, "field"): (_text(fp, "readable"), _text(fp, "editable")) for fp in ps.iter(NS + "fieldPermissions")}
    assert granted == {full: ("true", "true") for full in _fields()}


def _eca(name: str) -> ET.Element:
    [path] = SRC.glob(f"*/{name}")
    return _parse(path)


def test_the_external_client_app_is_wired_to_our_routes_with_pkce() -> None:
    from connector.app import create_app
    from connector.oauth import SALESFORCE_SCOPES
    from connector.settings import Settings

    header = _parse(SRC / "externalClientApps" / "Salesloop.eca-meta.xml")
    name = "Salesloop"
    for path in SRC.glob("extlClnt*/*"):
        assert _text(_parse(path), "externalClientApplication") == name, path
    glbl, canvas = _eca("*.ecaGlblOauth-meta.xml"), _eca("*.ecaCanvas-meta.xml")
    assert _text(header, "distributionState") == "Packageable"
    assert _text(glbl, "isPkceRequired") == "true" and _text(glbl, "isRefreshTokenRotationEnabled") == "true"
    assert _text(glbl, "isSecretRequiredForRefreshToken") == "true"
    callback, canvas_url = urlsplit(_text(glbl, "callbackUrl") or ""), urlsplit(_text(canvas, "canvasUrl") or "")
    assert callback.scheme == canvas_url.scheme == "https" and callback.netloc == canvas_url.netloc
    assert _text(canvas, "accessMethod") == "Post"  # the signed request arrives as a POST
    assert "PageLayout" in [c.text for c in canvas.iter(NS + "canvasLocationOptions")]
    scopes = {s.strip() for s in (_text(_eca("*.ecaOauth-meta.xml"), "commaSeparatedOauthScopes") or "").split(",")}
    assert scopes == {{"api": "Api", "refresh_token": "RefreshToken", "id": "Basic"}[s] for s in SALESFORCE_SCOPES}
    app = create_app(Settings(testing=True, database_url="sqlite://"))
    rules = {(r.rule, m) for r in app.url_map.iter_rules() for m in r.methods or ()}
    assert (callback.path, "GET") in rules and (canvas_url.path, "POST") in rules


@pytest.mark.parametrize("broken", ["<CustomField><label>x</labl></CustomField>", "<CustomFeld/>"])
def test_the_checks_catch_broken_xml(tmp_path: Path, broken: str) -> None:
    path = tmp_path / "X__c.field-meta.xml"
    path.write_text(broken)
    with pytest.raises((ET.ParseError, AssertionError)):
        assert _parse(path).tag == NS + "CustomField"
