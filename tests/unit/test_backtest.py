"""`salesloop backtest` on a CSV written here: figures forward in time, clear errors on bad mappings."""

from __future__ import annotations

import csv
import json
import random
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import main
from jobs.tools.backtest import BacktestError, load_mapping, run_backtest

MAPPING = """
id = "Id"
closed = "Closed"
created = "Created"
amount = "Amount"
categorical = ["Region", "Noise"]

[outcome]
column = "Result"
won = ["Won"]
lost = ["Lost"]

[[join]]
file = "accounts.csv"
on = "Account"
columns = ["Sector"]
"""


def write_deals(folder: Path, n: int = 900, *, signal: bool = True, seed: int = 5) -> Path:
    """Deals closing one a day; region West loses far more often when `signal` is on; some still open."""
    rnd = random.Random(seed)
    start = date(2024, 1, 1)
    with (folder / "accounts.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Account", "Sector"])
        writer.writerows([[f"A{i}", rnd.choice(["retail", "tech"])] for i in range(30)])
    path = folder / "deals.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Id", "Created", "Closed", "Result", "Region", "Noise", "Amount", "Account"])
        for i in range(n):
            region = rnd.choice(["East", "West", "North"])
            p_lost = (0.85 if region == "West" else 0.35) if signal else 0.5
            result = "Open" if i % 20 == 0 else "Lost" if rnd.random() < p_lost else "Won"
            closed = start + timedelta(days=i)
            writer.writerow([f"D{i}", (closed - timedelta(days=40)).isoformat(), closed.isoformat(), result, region,
                             rnd.choice("abc"), rnd.randrange(1000, 90000), f"A{rnd.randrange(30)}"])
    return path


def write_mapping(folder: Path, text: str = MAPPING) -> Path:
    path = folder / "mapping.toml"
    path.write_text(text)
    return path


def test_backtest_learns_forward_in_time_and_beats_the_majority(tmp_path: Path) -> None:
    result = run_backtest(write_deals(tmp_path), write_mapping(tmp_path))
    assert result["n"] == 855 and result["skipped"]["open_or_unknown_outcome"] == 45
    assert result["n_train"] == 684 and result["n_valid"] == 171
    ours, majority = result["models"]["salesloop risk model"], result["models"]["majority class"]
    assert ours["auc"] > 0.68 and ours["brier"] < majority["brier"]
    assert result["signal_found"] is True and ours["auc_95"][0] > 0.5 and not result["warnings"]
    assert {"naive Bayes (Odoo-style)", "gradient boosting"} <= set(result["models"])
    assert result["top_signals"][0]["signal"] == "Region"
    assert result["top_signals"][0]["riskiest"].startswith("West")
    assert sum(r["n"] for r in ours["reliability"]) == 171


def test_backtest_finds_nothing_in_noise(tmp_path: Path) -> None:
    result = run_backtest(write_deals(tmp_path, 1600, signal=False), write_mapping(tmp_path), baselines=False)
    assert abs(result["models"]["salesloop risk model"]["auc"] - 0.5) < 0.08
    assert result["signal_found"] is False and "no learnable signal" in result["warnings"][0]


def test_the_command_prints_one_json_object(tmp_path: Path) -> None:
    deals, mapping = write_deals(tmp_path), write_mapping(tmp_path)
    out = CliRunner().invoke(main, ["backtest", "--deals", str(deals), "--mapping", str(mapping), "--json", "--no-baselines"])
    assert out.exit_code == 0, out.output
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert list(figures["models"]) == ["salesloop risk model"]


def test_the_command_prints_tables(tmp_path: Path) -> None:
    out = CliRunner().invoke(main, ["backtest", "--deals", str(write_deals(tmp_path)), "--mapping",
                                    str(write_mapping(tmp_path)), "--no-baselines"])
    assert out.exit_code == 0, out.output
    assert "ROC AUC" in out.output and "Reliability" in out.output and "Top signals" in out.output


@pytest.mark.parametrize(("broken", "message"), [
    (MAPPING.replace('column = "Result"', 'column = "Outcome"'), "no column 'Outcome' (outcome)"),
    (MAPPING.replace('won = ["Won"]', ""), "[outcome] needs column"),
    (MAPPING.replace('closed = "Closed"\ncreated = "Created"\n', ""), "one of closed, created, order or row_order is required"),
    (MAPPING.replace('id = "Id"', 'id = "Id"\nstage_timing = ["Days"]'), "leak the outcome"),
    (MAPPING + 'stage_timing = ["Days"]\n', "[[join]] #1 has unknown key 'stage_timing'"),
    (MAPPING.replace('id = "Id"', 'id = "Id"\ncolour = "x"'), "unknown key 'colour'"),
    (MAPPING.replace('"Sector"', '"Industry"'), "missing column(s) Industry"),
    ("id = [", "not valid TOML"),
])
def test_a_bad_mapping_gets_a_clear_error(tmp_path: Path, broken: str, message: str) -> None:
    deals, mapping = write_deals(tmp_path, 100), write_mapping(tmp_path, broken)
    with pytest.raises(BacktestError) as caught:
        run_backtest(deals, mapping)
    assert message in str(caught.value)
    out = CliRunner().invoke(main, ["backtest", "--deals", str(deals), "--mapping", str(mapping)])
    assert out.exit_code == 1 and message in out.output and "Traceback" not in out.output


def test_too_few_outcomes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BacktestError, match="need at least 20 won and 20 lost"):
        run_backtest(write_deals(tmp_path, 30), write_mapping(tmp_path))


def test_shipped_mappings_parse() -> None:
    folder = Path(__file__).resolve().parents[2] / "jobs" / "tools" / "backtest_mappings"
    mappings = {p.stem: load_mapping(p) for p in folder.glob("*.toml")}
    assert set(mappings) >= {"ibm-sales-win-loss", "maven-crm-sales-opportunities", "uci-bank-marketing"}
    bank = mappings["uci-bank-marketing"]
    assert "duration" not in bank.columns() and bank.row_order and bank.id is None  # duration leaks the outcome
    assert mappings["ibm-sales-win-loss"].id is None  # its opportunity numbers repeat
    ibm = mappings["ibm-sales-win-loss"]
    assert not ibm.stage_timing and not any("Days" in c or "Ratio" in c or "Stage" in c for c in ibm.columns())
    assert "close_value" not in mappings["maven-crm-sales-opportunities"].columns()
