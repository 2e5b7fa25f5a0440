"""`salesloop package`: the CRM packages rendered for a deployment's origin and contact, validated offline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import main
from tests.conftest import require
from ui_extensions import packaging
from ui_extensions.packaging import EXAMPLE_HOST, PackageError, render, validate

ORIGIN = "https://loops.acme.io"


def _parser_installed() -> None:
    require(shutil.which("node") is not None and (packaging.TEMPLATES["hubspot"] / "node_modules").is_dir(),
            "HubSpot's project parser (run ui_extensions/hubspot/check.sh)")


def _text(out: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(out.rglob("*")) if p.is_file() and p.suffix in packaging.TEXT)


def test_the_hubspot_project_is_rendered_for_the_origin_and_passes_hubspots_parser(tmp_path: Path) -> None:
    _parser_installed()
    out = tmp_path / "hubspot"
    render("hubspot", ORIGIN, out, "help@acme.io")
    app = json.loads((out / "src/app/app-hsmeta.json").read_text())["config"]
    assert app["auth"]["redirectUrls"] == [f"{ORIGIN}/oauth/hubspot/callback"]
    assert app["permittedUrls"]["fetch"] == [ORIGIN] and app["support"]["supportEmail"] == "help@acme.io"
    assert f"BACKEND = '{ORIGIN}'" in (out / "src/app/cards/config.js").read_text()
    assert EXAMPLE_HOST not in _text(out) and (out / "hsproject.json").exists() and not (out / "node_modules").exists()
    assert validate("hubspot", out, ORIGIN, "help@acme.io") == []


def test_the_salesforce_metadata_is_rendered_with_the_callback_and_canvas_urls(tmp_path: Path) -> None:
    out = tmp_path / "sf"
    written = render("salesforce", ORIGIN, out)
    text = _text(out)
    assert f"<callbackUrl>{ORIGIN}/oauth/salesforce/callback</callbackUrl>" in text
    assert f"<canvasUrl>{ORIGIN}/cards/salesforce</canvasUrl>" in text and "support@loops.acme.io" in text
    assert EXAMPLE_HOST not in text and len(written) == sum(1 for p in out.rglob("*") if p.is_file())
    assert (out / "force-app/main/default/objects/Activity/fields/Salesloop_Key__c.field-meta.xml").exists()
    assert validate("salesforce", out, ORIGIN, "support@loops.acme.io") == []


def test_validation_catches_a_package_that_points_elsewhere(tmp_path: Path) -> None:
    _parser_installed()
    out = tmp_path / "hubspot"
    render("hubspot", ORIGIN, out)
    meta = out / "src/app/app-hsmeta.json"
    meta.write_text(meta.read_text().replace(f"{ORIGIN}/oauth", "https://elsewhere.io/oauth"))
    problems = validate("hubspot", out, ORIGIN, "support@loops.acme.io")
    assert any("redirect" in p for p in problems)
    sf = tmp_path / "sf"
    render("salesforce", ORIGIN, sf)
    [canvas] = sf.rglob("*.ecaCanvas-meta.xml")
    canvas.write_text(canvas.read_text().replace(ORIGIN, "https://elsewhere.io"))
    assert any("canvasUrl" in p for p in validate("salesforce", sf, ORIGIN, "support@loops.acme.io"))


@pytest.mark.parametrize("origin", ["http://loops.acme.io", "https://loops.acme.io/app", "loops.acme.io",
                                    "https://loops.acme.io?x=1"])
def test_only_a_bare_https_origin_is_accepted(tmp_path: Path, origin: str) -> None:
    with pytest.raises(PackageError):
        render("salesforce", origin, tmp_path / "out")


def test_a_bad_contact_or_a_used_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PackageError):
        render("salesforce", ORIGIN, tmp_path / "a", "not an email")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "keep.txt").write_text("mine")
    with pytest.raises(PackageError):
        render("hubspot", ORIGIN, tmp_path / "b")


def test_an_unknown_use_of_the_example_host_in_a_template_is_refused() -> None:
    with pytest.raises(PackageError):
        packaging._fill(Path("x.json"), '{"docs": "http://salesloop.example.com/docs"}', ORIGIN, "a@b.io")


def test_the_command_writes_and_validates(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["package", "salesforce", "--origin", ORIGIN, "--out", str(tmp_path / "sf"),
                                       "--contact", "ops@acme.io"])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output and "ops@acme.io" in (tmp_path / "sf").rglob("*.eca-meta.xml").__next__().read_text()
    refused = CliRunner().invoke(main, ["package", "hubspot", "--origin", "http://x", "--out", str(tmp_path / "h")])
    assert refused.exit_code != 0 and "bare https" in refused.output
