"""`salesloop backtest`: the deal-risk learning run on any CSV of closed opportunities, forward in time.

The mapping is a TOML file that says what the CSV's columns mean:

    id = "Opportunity Number"          # unique deal id (required)
    closed = "close_date"              # time order: close date (preferred), else
    created = "engage_date"            #   the created date, else
    order = "Opportunity Number"       #   any numeric column that grows with time
    date_format = "%Y-%m-%d"           # optional; ISO 8601 by default
    amount = "Opportunity Amount USD"  # optional: binned, plus how round it is (placeholder amounts)
    numeric = ["employees"]            # numbers, binned on training quantiles
    categorical = ["Region", "sector"] # categories (rarer than 5 training rows -> "other")
    stage_timing = []                  # time-in-stage numbers; allowed only with allow_stage_timing = true,
    allow_stage_timing = false         #   because exports measure them at close: they leak the outcome

    [outcome]
    column = "Opportunity Result"
    won = ["Won"]
    lost = ["Loss"]                    # optional: every other non-empty value; other rows (open deals) are skipped

    [[join]]                           # optional: columns from another CSV, matched on a key
    file = "accounts.csv"              # relative to the deals CSV's folder
    on = "account"                     # key column present in both files
    columns = ["sector", "employees"]

Rows are sorted by the time column; the oldest 80% train (with the newest eighth of those picking
the regularisation and calibration), the newest 20% validate. Nothing is shuffled.
"""

from __future__ import annotations

import csv
import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from jobs.loops.deal_risk.evaluation import figures, time_split, top_signals
from jobs.loops.deal_risk.features import amount_precision
from jobs.loops.deal_risk.model import FeatureTable, fit_recipe, predict
from jobs.tools.risk_baselines import BASELINES

MIN_EACH = 20  # fewer won or lost deals than this cannot say anything


class BacktestError(ValueError):
    """A mapping or CSV the backtest cannot use; the message says what to fix."""


@dataclass(frozen=True)
class Join:
    file: Path
    on: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class DealMapping:
    """What the columns of an opportunities CSV mean (see the module docstring for the TOML)."""

    id: str
    outcome: str
    won: tuple[str, ...]
    lost: tuple[str, ...] = ()
    closed: str | None = None
    created: str | None = None
    order: str | None = None
    date_format: str | None = None
    amount: str | None = None
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    stage_timing: tuple[str, ...] = ()
    joins: tuple[Join, ...] = field(default_factory=tuple)

    @property
    def time_column(self) -> str:
        return self.closed or self.created or self.order or ""

    def columns(self) -> dict[str, str]:
        """Every column the mapping reads, with what it is for."""
        named = {self.id: "id", self.outcome: "outcome", self.time_column: "time order"}
        if self.amount:
            named[self.amount] = "amount"
        for kind, cols in (("numeric", self.numeric), ("categorical", self.categorical), ("stage_timing", self.stage_timing)):
            named.update({c: kind for c in cols})
        return named


def load_mapping(path: Path) -> DealMapping:
    """Read and check a mapping TOML; every problem is reported at once."""
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise BacktestError(f"mapping file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise BacktestError(f"mapping file {path} is not valid TOML: {exc}") from exc
    problems: list[str] = []
    known = {"id", "closed", "created", "order", "date_format", "amount", "numeric", "categorical", "stage_timing",
             "allow_stage_timing", "outcome", "join"}
    problems += [f"unknown key {k!r} (known: {', '.join(sorted(known))})" for k in raw if k not in known]
    outcome = raw.get("outcome")
    if not isinstance(outcome, dict) or not outcome.get("column") or not outcome.get("won"):
        problems.append('[outcome] needs column = "..." and won = ["..."]')
        outcome = {}
    if not raw.get("id"):
        problems.append('id = "<column>" is required')
    if not (raw.get("closed") or raw.get("created") or raw.get("order")):
        problems.append("one of closed, created or order is required: the backtest trains on older deals only")
    if raw.get("stage_timing") and not raw.get("allow_stage_timing"):
        problems.append("stage_timing columns are usually measured at close and leak the outcome; "
                        "set allow_stage_timing = true only if your export took them while deals were open")
    if not (raw.get("amount") or raw.get("numeric") or raw.get("categorical") or raw.get("stage_timing")):
        problems.append("no feature columns: name amount, numeric or categorical columns")
    problems += [f"[outcome] has unknown key {k!r}" for k in outcome if k not in ("column", "won", "lost")]
    joins = []
    for j, spec in enumerate(raw.get("join", [])):
        if not isinstance(spec, dict) or not spec.get("file") or not spec.get("on") or not spec.get("columns"):
            problems.append(f"[[join]] #{j + 1} needs file, on and columns")
            continue
        problems += [f"[[join]] #{j + 1} has unknown key {k!r}" for k in spec if k not in ("file", "on", "columns")]
        joins.append(Join(Path(spec["file"]), str(spec["on"]), tuple(spec["columns"])))
    if problems:
        raise BacktestError(f"mapping {path}:\n  - " + "\n  - ".join(problems))
    return DealMapping(
        id=raw["id"], outcome=outcome["column"], won=tuple(map(str, outcome["won"])),
        lost=tuple(map(str, outcome.get("lost", ()))), closed=raw.get("closed"), created=raw.get("created"),
        order=raw.get("order"), date_format=raw.get("date_format"), amount=raw.get("amount"),
        numeric=tuple(raw.get("numeric", ())), categorical=tuple(raw.get("categorical", ())),
        stage_timing=tuple(raw.get("stage_timing", ())), joins=tuple(joins),
    )


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            return list(reader.fieldnames or []), rows
    except FileNotFoundError as exc:
        raise BacktestError(f"CSV file {path} does not exist") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise BacktestError(f"CSV file {path} cannot be read: {exc}") from exc


def read_deals(deals: Path, mapping: DealMapping) -> list[dict[str, str]]:
    """The CSV rows with joined columns added; a clear error names any column the files lack."""
    header, rows = _read_csv(deals)
    for join in mapping.joins:
        rows, header = _join(rows, header, join, deals.parent / join.file)
    missing = {c: why for c, why in mapping.columns().items() if c not in header}
    if missing:
        listed = ", ".join(f"{c!r} ({why})" for c, why in missing.items())
        raise BacktestError(f"{deals.name} has no column {listed}; its columns are: {', '.join(header)}")
    return rows


def _join(rows: list[dict[str, str]], header: list[str], join: Join, path: Path) -> tuple[list[dict[str, str]], list[str]]:
    other_header, other = _read_csv(path)
    absent = [c for c in (join.on, *join.columns) if c not in other_header]
    if absent or join.on not in header:
        raise BacktestError(f"join {join.file.name} on {join.on!r}: missing column(s) "
                            f"{', '.join(absent or [join.on])}")
    clash = [c for c in join.columns if c in header]
    if clash:
        raise BacktestError(f"join {join.file.name}: column(s) {', '.join(clash)} already in the deals CSV")
    index = {r[join.on]: r for r in other}
    empty = dict.fromkeys(join.columns, "")
    out = [{**r, **{c: index.get(r[join.on], empty)[c] for c in join.columns}} for r in rows]
    return out, [*header, *join.columns]


def _time_value(mapping: DealMapping) -> Callable[[str], float]:
    if mapping.closed or mapping.created:
        fmt = mapping.date_format
        return lambda v: (datetime.strptime(v, fmt) if fmt else datetime.fromisoformat(v)).timestamp()
    return float


def _number(value: str) -> float:
    try:
        x = float(value.replace(",", "")) if value.strip() else math.nan
    except ValueError:
        return math.nan
    return x if math.isfinite(x) else math.nan


def build_table(rows: list[dict[str, str]], mapping: DealMapping) -> tuple[FeatureTable, dict[str, int]]:
    """Closed rows with a time value as a feature table (1 = lost); counts of what was skipped and why."""
    won, lost = set(mapping.won), set(mapping.lost)
    to_time = _time_value(mapping)
    kept, times, skipped = [], [], {"open_or_unknown_outcome": 0, "no_time_value": 0}
    for row in rows:
        outcome = row[mapping.outcome].strip()
        if not outcome or (outcome not in won and lost and outcome not in lost):
            skipped["open_or_unknown_outcome"] += 1
            continue
        try:
            times.append(to_time(row[mapping.time_column].strip()))
        except (ValueError, OSError):
            skipped["no_time_value"] += 1
            continue
        kept.append(row)
    y = np.array([row[mapping.outcome].strip() not in won for row in kept], dtype=float)
    binned = {c: np.array([_number(r[c]) for r in kept]) for c in (*mapping.numeric, *mapping.stage_timing)}
    categorical = {c: np.array([r[c].strip() for r in kept], dtype=object) for c in mapping.categorical}
    if mapping.amount:
        amounts = np.array([_number(r[mapping.amount]) for r in kept])
        binned["amount"] = amounts
        categorical["amount_precision"] = amount_precision(amounts)
    table = FeatureTable([r[mapping.id] for r in kept], {}, binned, categorical, y, np.array(times, dtype=float))
    return table, skipped


def run_backtest(deals: Path, mapping_path: Path, *, baselines: bool = True,
                 progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Learn on older deals, measure on newer ones; figures for the model and (optionally) the baselines."""
    mapping = load_mapping(mapping_path)
    progress("reading")
    table, skipped = build_table(read_deals(deals, mapping), mapping)
    assert table.y is not None
    n_lost, n_won = int(table.y.sum()), int(len(table) - table.y.sum())
    if min(n_won, n_lost) < MIN_EACH:
        raise BacktestError(f"need at least {MIN_EACH} won and {MIN_EACH} lost deals, found {n_won} won and {n_lost} lost "
                            f"(won values {list(mapping.won)} in column {mapping.outcome!r})")
    train, valid = time_split(table)
    assert valid.y is not None
    progress("fitting the risk model")
    model = fit_recipe(train)
    result: dict[str, Any] = {
        "deals": str(deals), "mapping": str(mapping_path), "time_order": mapping.time_column,
        "n": len(table), "n_won": n_won, "n_lost": n_lost, "skipped": skipped,
        "n_train": len(train), "n_valid": len(valid),
        "loss_rate_train": round(float(train.y.mean()), 4), "loss_rate_valid": round(float(valid.y.mean()), 4),  # type: ignore[union-attr]
        "models": {"salesloop risk model": figures(valid.y, predict(model, valid))},
        "top_signals": top_signals(model, train),
        "warnings": [f"stage_timing column {c!r} is used: make sure it was measured while deals were open"
                     for c in mapping.stage_timing],
    }
    ours = result["models"]["salesloop risk model"]
    result["signal_found"] = bool(ours["auc_95"] and ours["auc_95"][0] > 0.5)
    if not result["signal_found"]:
        result["warnings"].append(f"no learnable signal: validation AUC {ours['auc']} (95% {ours['auc_95']}) does not beat "
                                  "a coin; the top signals below are noise, act on none of them")
    if baselines:
        for name, baseline in BASELINES.items():
            progress(f"baseline: {name}")
            result["models"][name] = figures(valid.y, baseline(train, valid))
    return result


def command(deals: Path, mapping: Path, *, as_json: bool, baselines: bool) -> None:
    """What `salesloop backtest` does: run, then print a report (or one JSON object)."""
    import json

    from rich.console import Console

    from jobs.tools._backtest_render import render

    console = Console(stderr=as_json)
    with console.status("backtest", spinner="dots") as status:
        result = run_backtest(deals, mapping, baselines=baselines, progress=lambda step: status.update(f"backtest: {step}"))
    if as_json:
        print(json.dumps(result))
    else:
        render(result, console)
