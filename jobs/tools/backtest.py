"""`salesloop backtest`: the loops' learning run on any CSV of closed opportunities, on held-out deals.

The mapping TOML (jobs/backtest_mapping.py) says what the columns mean. Two splits:
- `time`: rows sorted by the time column; the oldest 80% train (the newest eighth of those picks the
  regularisation and calibration), the newest 20% validate. Nothing is shuffled.
- `cv`: repeated stratified 5-fold cross-validation (seeded), the honest choice when nothing orders
  the rows; the file then needs neither an id nor a time column (the row number serves).
Loops: deal_risk (the risk model against baselines on the same folds), handoff (qualification rules
from the SDR-stage columns), icp (segments of the account columns), or all.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from jobs.loops.deal_risk.features import amount_precision
from jobs.loops.deal_risk.model import FeatureTable
from jobs.tools._backtest_render import render
from jobs.tools.backtest_csv import CsvError, check_ids, read_csv
from jobs.tools.backtest_mapping import BacktestError, DealMapping, Join, load_mapping
from jobs.tools.backtest_risk import risk_backtest, write_predictions
from jobs.tools.backtest_rules import handoff_backtest, icp_backtest
from jobs.tools.backtest_splits import Fold, cv_folds, time_folds

__all__ = ["BacktestError", "DealMapping", "load_mapping", "read_deals", "run_backtest", "command"]
MIN_EACH = 20  # fewer won or lost deals than this cannot say anything
EMPTY = "(empty)"  # how an empty category value reads in tables
LOOPS = ("deal_risk", "handoff", "icp")
SPLITS = ("time", "cv")


def read_deals(deals: Path, mapping: DealMapping) -> tuple[list[dict[str, str]], dict[str, str]]:
    """The CSV rows with joined columns added, and how the file was read; a clear error names missing columns."""
    try:
        main = read_csv(deals, delimiter=mapping.delimiter, encoding=mapping.encoding)
        header, rows = main.header, main.rows
        for join in mapping.joins:
            rows, header = _join(rows, header, join, deals.parent / join.file, mapping)
    except CsvError as exc:
        raise BacktestError(str(exc)) from exc
    missing = {c: why for c, why in mapping.columns().items() if c not in header}
    if missing:
        listed = ", ".join(f"{c!r} ({why})" for c, why in missing.items())
        raise BacktestError(f"{deals.name} has no column {listed}; read with delimiter {main.delimiter!r} and "
                            f"encoding {main.encoding}, its columns are: {', '.join(header)}")
    return rows, {"delimiter": main.delimiter, "encoding": main.encoding}


def _join(rows: list[dict[str, str]], header: list[str], join: Join, path: Path,
          mapping: DealMapping) -> tuple[list[dict[str, str]], list[str]]:
    other = read_csv(path, delimiter=mapping.delimiter, encoding=mapping.encoding)
    absent = [c for c in (join.on, *join.columns) if c not in other.header]
    if absent or join.on not in header:
        raise BacktestError(f"join {join.file.name} on {join.on!r}: missing column(s) "
                            f"{', '.join(absent or [join.on])}")
    clash = [c for c in join.columns if c in header]
    if clash:
        raise BacktestError(f"join {join.file.name}: column(s) {', '.join(clash)} already in the deals CSV")
    index = {r[join.on]: r for r in other.rows}
    empty = dict.fromkeys(join.columns, "")
    out = [{**r, **{c: index.get(r[join.on], empty)[c] for c in join.columns}} for r in rows]
    return out, [*header, *join.columns]


def _time_value(mapping: DealMapping) -> Callable[[str], float]:
    if mapping.closed or mapping.created:
        fmt = mapping.date_format
        return lambda v: (datetime.strptime(v, fmt) if fmt else datetime.fromisoformat(v)).timestamp()
    return lambda v: float(v.replace(",", ""))


def _number(value: str) -> float:
    try:
        x = float(value.replace(",", "")) if value.strip() else math.nan
    except ValueError:
        return math.nan
    return x if math.isfinite(x) else math.nan


def closed_rows(rows: list[dict[str, str]], mapping: DealMapping, *, timed: bool
                ) -> tuple[list[dict[str, str]], list[float], dict[str, int]]:
    """Rows with a won or lost outcome (and a time value when `timed`), their times, and what was skipped."""
    won, lost = set(mapping.won), set(mapping.lost)
    to_time = _time_value(mapping)
    kept, times, skipped = [], [], {"open_or_unknown_outcome": 0, "no_time_value": 0}
    for number, row in enumerate(rows, start=1):
        outcome = row[mapping.outcome].strip()
        if not outcome or (outcome not in won and lost and outcome not in lost):
            skipped["open_or_unknown_outcome"] += 1
            continue
        try:
            times.append(to_time(row[mapping.time_column].strip()) if timed else float(number))
        except (ValueError, OSError):
            skipped["no_time_value"] += 1
            continue
        kept.append({**row, "__row__": f"row {number + 1}"})  # +1: the header is line 1
    return kept, times, skipped


def build_table(kept: list[dict[str, str]], times: list[float], mapping: DealMapping) -> FeatureTable:
    """Closed rows as a feature table (1 = lost); empty categories read '(empty)'."""
    won = set(mapping.won)
    y = np.array([row[mapping.outcome].strip() not in won for row in kept], dtype=float)
    binned = {c: np.array([_number(r[c]) for r in kept]) for c in (*mapping.numeric, *mapping.stage_timing)}
    names = dict.fromkeys((*mapping.categorical, *mapping.qualification, *mapping.attributes, *mapping.firmographic))
    categorical = {c: np.array([r[c].strip() or EMPTY for r in kept], dtype=object) for c in names}
    if mapping.amount:
        amounts = np.array([_number(r[mapping.amount]) for r in kept])
        binned["amount"] = amounts
        categorical["amount_precision"] = amount_precision(amounts)
    ids = [r[mapping.id] if mapping.id else r["__row__"] for r in kept]
    return FeatureTable(ids, {}, binned, categorical, y, np.array(times, dtype=float))


def _folds(table: FeatureTable, split: str, *, folds: int, repeats: int) -> list[Fold]:
    assert table.y is not None
    return time_folds(table.order) if split == "time" else cv_folds(table.y, folds=folds, repeats=repeats)


def _prepare(deals: Path, mapping: DealMapping, split: str) -> tuple[list[dict[str, str]], FeatureTable, dict[str, Any]]:
    if split not in SPLITS:
        raise BacktestError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    if split == "time" and not mapping.timed:
        raise BacktestError("one of closed, created, order or row_order is required for --split time (the backtest trains on "
                            "older deals only); when nothing orders the rows, use --split cv")
    rows, read = read_deals(deals, mapping)
    kept, times, skipped = closed_rows(rows, mapping, timed=split == "time" and bool(mapping.time_column))
    if mapping.id:
        try:
            check_ids(kept, mapping.id)
        except CsvError as exc:
            raise BacktestError(str(exc)) from exc
    table = build_table(kept, times, mapping)
    assert table.y is not None
    n_lost, n_won = int(table.y.sum()), int(len(table) - table.y.sum())
    if min(n_won, n_lost) < MIN_EACH:
        raise BacktestError(f"need at least {MIN_EACH} won and {MIN_EACH} lost deals, found {n_won} won and {n_lost} "
                            f"lost (won values {list(mapping.won)} in column {mapping.outcome!r})")
    head = {"deals": str(deals), "read": read, "split": split, "n": len(table), "n_won": n_won, "n_lost": n_lost,
            "skipped": skipped, "time_order": (mapping.time_column or "row order") if split == "time" else None, "warnings": []}
    return kept, table, head


def run_backtest(deals: Path, mapping_path: Path, *, loop: str = "deal_risk", split: str = "time",
                 baselines: bool = True, folds: int = 5, repeats: int = 2,
                 progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Learn on the training part of every fold, measure on its held-out part; figures per loop."""
    loops = LOOPS if loop == "all" else (loop,)
    if any(name not in LOOPS for name in loops):
        raise BacktestError(f"--loop must be one of {', '.join((*LOOPS, 'all'))}, got {loop!r}")
    mapping = load_mapping(mapping_path)
    progress("reading")
    kept, table, result = _prepare(deals, mapping, split)
    result["mapping"] = str(mapping_path)
    splits = _folds(table, split, folds=folds, repeats=repeats)
    result.update({"n_train": len(splits[0].train), "n_valid": len(splits[0].valid), "folds": len(splits)})
    assert table.y is not None
    won = [not bool(v) for v in table.y]
    if "deal_risk" in loops:
        risk = risk_backtest(table, splits, split=split, baselines=baselines, progress=progress)
        result["warnings"] += risk.pop("warnings")
        result.update(risk)
        result["warnings"] += [f"stage_timing column {c!r} is used: make sure it was measured while deals were open"
                               for c in mapping.stage_timing]
    if "handoff" in loops:
        progress("handoff rules")
        result["handoff"] = handoff_backtest(kept, won, splits, mapping.handoff_fields, attributes=mapping.attributes)
    if "icp" in loops:
        progress("ICP segments")
        result["icp"] = icp_backtest(kept, won, splits, mapping.icp_fields)
    return result


def command(deals: Path, mapping: Path, *, as_json: bool, baselines: bool, loop: str = "deal_risk",
            split: str = "time", predictions: Path | None = None) -> None:
    """What `salesloop backtest` does: run, then print a report (or one JSON object); optionally write predictions."""
    console = Console(stderr=as_json)
    with console.status("backtest", spinner="dots") as status:
        result = run_backtest(deals, mapping, loop=loop, split=split, baselines=baselines,
                              progress=lambda step: status.update(f"backtest: {step}"))
    rows = result.pop("predictions", None)
    if predictions is not None:
        if rows is None:
            raise BacktestError("--predictions needs the deal_risk loop (--loop deal_risk or all)")
        write_predictions(predictions, rows)
        result["predictions_file"] = str(predictions)
    if as_json:
        print(json.dumps(result))
    else:
        render(result, console)
