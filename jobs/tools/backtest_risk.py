"""The deal-risk loop in a backtest: the risk model and the baselines on the same folds, and per-deal reasons."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jobs.loops.deal_risk.evaluation import figures, top_signals
from jobs.loops.deal_risk.model import FeatureTable, RiskModel, fit_recipe, predict
from jobs.tools.backtest_splits import Fold
from jobs.tools.risk_baselines import BASELINES

OURS = "salesloop risk model"
REASONS = 3
MIN_REASON = 0.05  # log-odds: smaller moves are not worth a reason


def risk_backtest(table: FeatureTable, folds: Sequence[Fold], *, split: str, baselines: bool,
                  progress: Callable[[str], None]) -> dict[str, Any]:
    """Out-of-fold P(lost) per model and repeat; figures averaged over repeats; the last model's top signals."""
    assert table.y is not None
    repeats = max(f.repeat for f in folds) + 1
    names = [OURS, *(BASELINES if baselines else ())]
    held: dict[str, np.ndarray] = {n: np.full((repeats, len(table)), np.nan) for n in names}
    predictions: list[dict[str, Any]] = []
    model: RiskModel | None = None
    for k, fold in enumerate(folds):
        progress(f"fitting the risk model, fold {k + 1} of {len(folds)}")
        train, valid = table.take(fold.train), table.take(fold.valid)
        model = fit_recipe(train, horizon=len(valid) / len(train) if split == "time" else None)  # what it will serve
        held[OURS][fold.repeat, fold.valid] = predict(model, valid)
        if fold.repeat == 0:
            predictions += deal_reasons(model, valid, held[OURS][0, fold.valid])
        for name in names[1:]:
            held[name][fold.repeat, fold.valid] = BASELINES[name](train, valid)
    scored = folds[0].valid if split == "time" else np.arange(len(table))
    models = {n: _averaged(table.y[scored], p[:, scored]) for n, p in held.items()}
    ours = models[OURS]
    found = bool(ours["auc_95"] and ours["auc_95"][0] > 0.5)
    warnings = [] if found else [
        f"no learnable signal: held-out AUC {ours['auc']} (95% {ours['auc_95']}) does not beat a coin; the top "
        "signals below are noise, act on none of them"]
    first = folds[0]
    assert model is not None
    return {"models": models, "top_signals": top_signals(model, table.take(first.train)), "signal_found": found,
            "loss_rate_train": round(float(table.y[first.train].mean()), 4),
            "loss_rate_valid": round(float(table.y[first.valid].mean()), 4),
            "warnings": warnings, "predictions": predictions}


def _averaged(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """Figures of the first repeat; AUC, Brier and calibration error averaged over repeats (with the AUC's spread)."""
    each = [figures(y, row) for row in p]
    out = dict(each[0])
    if len(each) > 1:
        for key in ("auc", "brier", "ece"):
            values = [f[key] for f in each if f[key] is not None]
            out[key] = round(float(np.mean(values)), 4) if values else None
        aucs = [f["auc"] for f in each if f["auc"] is not None]
        out["auc_sd"] = round(float(np.std(aucs)), 4) if aucs else None
        out["repeats"] = len(each)
    return out


def deal_reasons(model: RiskModel, valid: FeatureTable, p_lost: np.ndarray) -> list[dict[str, Any]]:
    """Each held-out deal: its probability of winning and the columns that moved it most, in words."""
    contrib = model.contributions(valid)
    out = []
    for i in range(len(valid)):
        order = np.argsort(-np.abs(contrib[i]))[:REASONS]
        reasons = [_reason(model.groups[j], valid, i, float(contrib[i, j])) for j in order
                   if abs(contrib[i, j]) >= MIN_REASON]
        assert valid.y is not None
        out.append({"row": valid.ids[i], "outcome": "lost" if valid.y[i] else "won",
                    "p_win": round(1.0 - float(p_lost[i]), 4), "reasons": reasons})
    return out


def _shown(name: str, table: FeatureTable, i: int) -> str:
    """A column and this deal's value of it, as people read it."""
    if name in table.categorical:
        return f"{name} = {table.categorical[name][i]}"
    if name in table.binned:
        x = table.binned[name][i]
        return f"{name} = {x:g}" if np.isfinite(x) else f"{name} missing"
    return name


def _reason(group: dict[str, Any], table: FeatureTable, i: int, value: float) -> str:
    parts = [part[0] for part in group["parts"]] if group["kind"] == "pair" else [group["name"]]
    shown = " with ".join(_shown(name, table, i) for name in parts)
    direction = "raises" if value > 0 else "lowers"
    return f"{shown} {direction} the odds of losing (x{np.exp(value):.2f})"


def write_predictions(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """One line per held-out deal: id, outcome, probability of winning, reasons separated by '; '."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["deal", "outcome", "probability_won", "reasons"])
        for r in rows:
            writer.writerow([r["row"], r["outcome"], f"{r['p_win']:.4f}", "; ".join(r["reasons"])])
