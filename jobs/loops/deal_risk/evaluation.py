"""Time-ordered validation of the risk model: train on older outcomes, measure on newer ones."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score  # type: ignore[import-untyped]

from jobs.loops.deal_risk.model import FeatureTable, RiskModel, _sigmoid, fit_recipe, predict, recalibrate

VALID_SHARE = 0.2
BINS = 10


def auc(y: np.ndarray, p: np.ndarray) -> float | None:
    """ROC AUC, or None when only one class is present."""
    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else None


def brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2))


def reliability(y: np.ndarray, p: np.ndarray, bins: int = BINS) -> list[dict[str, float]]:
    """Equal-width probability bins: how many deals, mean predicted, observed loss rate."""
    idx = np.minimum((p * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        mask = idx == b
        if mask.any():
            out.append({"lo": b / bins, "hi": (b + 1) / bins, "n": int(mask.sum()),
                        "predicted": round(float(p[mask].mean()), 4), "observed": round(float(y[mask].mean()), 4)})
    return out


def calibration_error(y: np.ndarray, p: np.ndarray) -> float:
    """Expected calibration error: mean |predicted - observed| over bins, weighted by their size."""
    rows = reliability(y, p)
    return float(sum(r["n"] * abs(r["predicted"] - r["observed"]) for r in rows) / max(len(y), 1))


def auc_interval(a: float, n_pos: int, n_neg: int) -> tuple[float, float]:
    """95% interval of an AUC (Hanley & McNeil 1982): does the model beat a coin at all?"""
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a)) / max(n_pos * n_neg, 1)
    half = 1.96 * math.sqrt(max(var, 0.0))
    return round(a - half, 4), round(a + half, 4)


def figures(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """AUC (with its 95% interval), Brier, calibration error and the reliability table."""
    a = auc(y, p)
    n_pos = int(y.sum())
    return {"auc": None if a is None else round(a, 4),
            "auc_95": None if a is None else list(auc_interval(a, n_pos, len(y) - n_pos)),
            "brier": round(brier(y, p), 4), "ece": round(calibration_error(y, p), 4), "reliability": reliability(y, p)}


def time_split(table: FeatureTable, share: float = VALID_SHARE) -> tuple[FeatureTable, FeatureTable]:
    """Older rows to train, the newest `share` to validate (sorted by the table's order)."""
    ordered = table.time_sorted()
    cut = int(round(len(ordered) * (1 - share)))
    return ordered.take(np.arange(cut)), ordered.take(np.arange(cut, len(ordered)))


def validate(table: FeatureTable) -> tuple[RiskModel, dict[str, Any]]:
    """Fit the recipe on older deals, score the newer ones; then refit on all for production."""
    train, valid = time_split(table)
    held = fit_recipe(train)
    assert valid.y is not None and train.y is not None
    p = predict(held, valid)
    metrics = figures(valid.y, p)
    metrics.update({"n_train": len(train), "n_valid": len(valid), "loss_rate_train": round(float(train.y.mean()), 4),
                    "loss_rate_valid": round(float(valid.y.mean()), 4),
                    "brier_constant": round(brier(valid.y, np.full(len(valid), float(train.y.mean()))), 4)})
    final = fit_recipe(table.time_sorted())
    return final, metrics


RECENT = 2000  # closed deals the calibration is refitted on
BLOCKS = 10


def rolling_recalibrated(model: RiskModel, train: FeatureTable, valid: FeatureTable, *, recent: int = RECENT,
                         blocks: int = BLOCKS) -> np.ndarray:
    """Validation probabilities as production would give them: the model stays fixed, and before each
    tenth of the validation period its intercept and slope are refitted on the `recent` deals closed
    just before (the older ones from training, then the validation deals already closed). No deal's own
    outcome, nor any later one, calibrates its probability."""
    raw_train = model.logit(model.contributions(train))
    raw_valid = model.logit(model.contributions(valid))
    assert train.y is not None and valid.y is not None
    raw_all, y_all = np.concatenate([raw_train, raw_valid]), np.concatenate([train.y, valid.y])
    out = np.empty(len(valid))
    for part in np.array_split(np.arange(len(valid)), blocks):
        if not len(part):
            continue
        end = len(train) + int(part[0])
        window = slice(max(0, end - recent), end)
        a, b = recalibrate(raw_all[window], y_all[window], long_run=float(y_all[:end].mean()))
        out[part] = _sigmoid(a * raw_valid[part] + b)
    return out


def rolling_refit(table: FeatureTable, fit_and_score: Callable[[FeatureTable, FeatureTable], np.ndarray], *,
                  share: float = VALID_SHARE, blocks: int = BLOCKS) -> tuple[np.ndarray, np.ndarray]:
    """The newest `share` of deals scored as production scores them: before each of `blocks` stretches of the
    held-out period the model is fitted again on every deal closed before it (the loop refits on each learn),
    so no deal's own outcome, nor any later one, reaches its probability. Returns (outcomes, probabilities).
    Why: a single fit scored over a long held-out stretch measures how a model ages unrefitted, which no
    tenant sees; under a regime change (UCI Bank forward in time) that, not the model, decides the ranking."""
    ordered = table.time_sorted()
    assert ordered.y is not None
    cut = int(round(len(ordered) * (1 - share)))
    out = np.empty(len(ordered) - cut)
    for part in np.array_split(np.arange(cut, len(ordered)), blocks):
        if len(part):
            out[part - cut] = fit_and_score(ordered.take(np.arange(int(part[0]))), ordered.take(part))
    return ordered.y[cut:], out


def top_signals(model: RiskModel, table: FeatureTable, k: int = 10) -> list[dict[str, Any]]:
    """Groups ranked by how much they move deals' odds (mean |contribution|), with their riskiest level."""
    contrib = model.contributions(table)
    spread = np.abs(contrib).mean(axis=0)
    out = []
    for j in np.argsort(-spread)[:k]:
        group = model.groups[j]
        out.append({"signal": group["name"], "mean_abs_logodds": round(float(spread[j]), 4),
                    "riskiest": _riskiest(group), "safest": _riskiest(group, worst=False)})
    return out


def _riskiest(group: dict[str, Any], worst: bool = True) -> str:
    """The level of a group that raises (or lowers) the odds of losing most, as text."""
    if group["kind"] == "tree":
        return "per deal (boosted trees: see each deal's contributions)"
    if group["kind"] == "linear":
        raises = group["coef"] > 0
        return ("higher" if raises == worst else "lower") + f" ({group['coef']:+.2f}/unit)"
    values = group["values"]
    j = int(np.argmax(values) if worst else np.argmin(values))
    if group["kind"] == "pair":
        (_, a), (_, b) = group["parts"]
        width_b = _width(b)
        label = f"{level_label(a, j // width_b)} & {level_label(b, j % width_b)}"
    else:
        label = level_label(group, j)
    return f"{label} ({values[j]:+.2f})"


def _width(spec: dict[str, Any]) -> int:
    return len(spec["edges"]) + 2 if spec["kind"] == "bins" else len(spec["levels"]) + 1


def level_label(spec: dict[str, Any], j: int) -> str:
    """A bin or category level as people read it."""
    if spec["kind"] == "category":
        return spec["levels"][j] if j < len(spec["levels"]) else "other"
    edges = spec["edges"]
    if j == len(edges) + 1:
        return "missing"
    if not edges:
        return "any"
    if j == 0:
        return f"< {edges[0]:g}"
    if j >= len(edges):
        return f">= {edges[-1]:g}"
    return f"{edges[j - 1]:g}..{edges[j]:g}"
