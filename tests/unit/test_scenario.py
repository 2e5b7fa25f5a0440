"""Scenario files: the shipped ones load, and broken ones fail with the file and key at fault."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_adapters.sandbox import ScenarioError, load_scenario
from crm_adapters.sandbox.scenario_files import SCENARIOS

DEFAULT = (SCENARIOS / "default.toml").read_text()


def test_default_and_no_signal_load() -> None:
    default, null = load_scenario(), load_scenario("no-signal")
    assert default.weeks == 52 and 4800 <= default.expected_deals() <= 5400
    assert default.segments[0].name == "core_mid_market" and default.underperformers
    assert null.effects_scale == 0 and null.underperformers == () and null.noise_sd == 0
    assert all(effect == 0 for _, effect in null.pains.values())
    assert {r for s in null.sequences for r in s.variants.values()} == {0.09, 0.10}


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    assert old in DEFAULT
    path = tmp_path / "broken.toml"
    path.write_text(DEFAULT.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "compliance_risk = { prevalence = 0.20",
            "compliance_risk = { prevalence = 1.20",
            r"\[pains.compliance_risk\] prevalence must be in",
        ),
        ("manual_reporting = {", "manual_reportng = {", r"unknown keys \['manual_reportng'\]"),
        ('op = "<", value = 50', 'op = "~", value = 50', "unknown rule op '~'"),
        ('cause = "pain_misalignment"', 'cause = "lazy"', "cause must be one"),
        ("index = 8", "index = 80", "out of range for 12 SDRs"),
        ("start = 2025-01-06", "start = 2025-01-07", "start must be a date on a Monday"),
        ("sdrs = 12 ", "sdrs = 0 ", r"\[org\] sdrs must be an integer >= 1"),
        ("roi_case = 0.6", "roi_magic = 0.6", "unknown responses"),
        ("[text]", "[txet]", "unknown keys"),
        ("weeks = 52", "weeks = [52", "not valid TOML"),
    ],
)
def test_broken_scenarios_say_what_and_where(tmp_path: Path, old: str, new: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message) as err:
        load_scenario(_broken(tmp_path, old, new))
    assert str(err.value).startswith("broken.toml: ")


def test_missing_file_and_circular_extends(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="not found"):
        load_scenario(tmp_path / "nope.toml")
    loop = tmp_path / "loop.toml"
    loop.write_text('extends = "loop.toml"\n')
    with pytest.raises(ScenarioError, match="circular"):
        load_scenario(loop)
