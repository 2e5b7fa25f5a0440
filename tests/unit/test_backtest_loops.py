"""`salesloop backtest` on exports as people save them: any delimiter and encoding, no id, cross-validation,
per-deal predictions, and the handoff and ICP loops' proposals checked on held-out deals."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import main
from jobs.tools.backtest import BacktestError, run_backtest

MAPPING = """
qualification = ["Budget allocated", "Champion identified"]
attributes = ["Lead source", "Deal type"]
firmographic = ["Región"]
categorical = ["Budget allocated", "Champion identified", "Lead source", "Deal type", "Región"]

[outcome]
column = "Status"
won = ["Won"]
lost = ["Lost"]
"""


def write_export(folder: Path, n: int = 1200, *, delimiter: str = ";", encoding: str = "cp1252", seed: int = 3,
                 ids: bool = False) -> Path:
    """A European Excel export: budget 'Yes' wins, source 'Media' loses, Región Sur loses; 'Champion' is noise."""
    rnd = random.Random(seed)
    path = folder / "export.csv"
    with path.open("w", newline="", encoding=encoding) as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow([*(["Deal Id"] if ids else []), "Budget allocated", "Champion identified", "Lead source",
                         "Deal type", "Región", "Status"])
        for i in range(n):
            budget = rnd.choice(["Yes", "No", ""])
            source = rnd.choice(["Web", "Event", "Media", "Partner"])
            region = rnd.choice(["Norte", "Sur", "Centro"])
            p = 0.35 + (0.25 if budget == "Yes" else 0) - (0.2 if source == "Media" else 0) - (0.15 if region == "Sur" else 0)
            row = [budget, rnd.choice(["Yes", "No", "Unknown"]), source, rnd.choice(["New", "Up-sell"]), region,
                   "Won" if rnd.random() < p else "Lost"]
            writer.writerow([f"D{i % 18}", *row] if ids else row)
    return path


def write_mapping(folder: Path, text: str = MAPPING) -> Path:
    path = folder / "mapping.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_semicolon_cp1252_export_without_id_runs_under_cross_validation(tmp_path: Path) -> None:
    result = run_backtest(write_export(tmp_path), write_mapping(tmp_path), split="cv", folds=3, repeats=2)
    assert result["read"] == {"delimiter": ";", "encoding": "cp1252"}
    assert result["split"] == "cv" and result["folds"] == 6 and result["n"] == 1200 and result["n_valid"] == 400
    models = result["models"]
    assert set(models) == {"salesloop risk model", "majority class", "logistic regression",
                           "naive Bayes (Odoo-style)", "gradient boosting"}
    assert models["salesloop risk model"]["auc"] > 0.6 and models["salesloop risk model"]["repeats"] == 2
    assert all(m["ece"] is not None and m["brier"] > 0 for m in models.values())


def test_time_split_is_refused_without_a_time_order(tmp_path: Path) -> None:
    with pytest.raises(BacktestError, match="use --split cv"):
        run_backtest(write_export(tmp_path), write_mapping(tmp_path), split="time")


def test_a_repeated_id_is_named_with_its_counts(tmp_path: Path) -> None:
    deals = write_export(tmp_path, 448, ids=True)
    with pytest.raises(BacktestError) as caught:
        run_backtest(deals, write_mapping(tmp_path, 'id = "Deal Id"\n' + MAPPING), split="cv")
    assert "'Deal Id' is not unique: 18 distinct values over 448 rows" in str(caught.value)


def test_a_wrong_delimiter_in_the_mapping_is_named(tmp_path: Path) -> None:
    with pytest.raises(BacktestError, match="single column with delimiter ','"):
        run_backtest(write_export(tmp_path), write_mapping(tmp_path, 'delimiter = ","\n' + MAPPING), split="cv")


def test_handoff_proposals_name_the_planted_fields_and_hold_out_of_sample(tmp_path: Path) -> None:
    result = run_backtest(write_export(tmp_path, 3000), write_mapping(tmp_path), loop="handoff", split="cv")
    assert "models" not in result and result["folds"] == 10
    rules = {p["rule"]: p for p in result["handoff"]["proposals"]}
    assert "require Budget allocated = Yes" in rules
    assert "disqualify Lead source = Media" in rules
    assert not any("Champion" in r or "Deal type" in r for r in rules)
    assert result["handoff"]["claimed_sign_held"] is True
    budget = rules["require Budget allocated = Yes"]
    assert budget["win_rate_meets"] > budget["win_rate_fails"] and budget["interval"][0] > 0
    assert "won" in budget["evidence"] and "for the rest" in budget["evidence"]
    assert result["handoff"]["model"]["auc"] > 0.6


def test_icp_proposals_come_from_the_account_columns(tmp_path: Path) -> None:
    result = run_backtest(write_export(tmp_path, 3000), write_mapping(tmp_path), loop="icp", split="cv", repeats=1)
    rules = [p["rule"] for p in result["icp"]["proposals"]]
    assert "disqualify Región = Sur" in rules and all("Región" in r for r in rules)
    assert result["icp"]["claimed_sign_held"] is True


def test_predictions_file_has_every_held_out_deal_with_reasons(tmp_path: Path) -> None:
    deals, mapping, out = write_export(tmp_path, 600), write_mapping(tmp_path), tmp_path / "pred.csv"
    run = CliRunner().invoke(main, ["backtest", "--deals", str(deals), "--mapping", str(mapping), "--split", "cv",
                                    "--loop", "all", "--predictions", str(out), "--json", "--no-baselines"])
    assert run.exit_code == 0, run.output
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    assert figures["predictions_file"] == str(out) and "handoff" in figures and "icp" in figures
    with out.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 600 and len({r["deal"] for r in rows}) == 600
    assert all(0.0 <= float(r["probability_won"]) <= 1.0 for r in rows)
    assert any("Budget allocated = Yes lowers the odds of losing" in r["reasons"] for r in rows)
    assert any("Budget allocated = (empty)" in r["reasons"] for r in rows)


def test_the_report_prints_proposals_and_their_held_out_check(tmp_path: Path) -> None:
    run = CliRunner().invoke(main, ["backtest", "--deals", str(write_export(tmp_path, 2000)), "--mapping",
                                    str(write_mapping(tmp_path)), "--split", "cv", "--loop", "handoff"])
    assert run.exit_code == 0, run.output
    assert "require Budget allocated = Yes" in run.output and "Evidence on the training part" in run.output
    assert "delimiter ';'" in run.output and "ROC AUC" in run.output


def test_the_crm_export_templates_parse_and_name_their_crms_columns() -> None:
    from jobs.tools.backtest_mapping import load_mapping

    folder = Path(__file__).resolve().parents[2] / "jobs" / "tools" / "backtest_mappings" / "templates"
    hubspot = load_mapping(folder / "hubspot-deals-export.toml")
    salesforce = load_mapping(folder / "salesforce-opportunities-export.toml")
    assert (hubspot.id, hubspot.outcome, hubspot.closed) == ("Record ID", "Deal Stage", "Close Date")
    assert (salesforce.id, salesforce.outcome, salesforce.closed) == ("Id", "StageName", "CloseDate")
    assert salesforce.joins[0].on == "AccountId" and "Budget_Allocated__c" in salesforce.qualification
