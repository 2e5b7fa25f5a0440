"""The boosted-tree risk model (LightGBM): as strong as gradient boosting, explained by TreeSHAP.

Why: on real exports the additive model trails gradient boosting by about a point of AUC. Trees
close that gap; LightGBM's built-in TreeSHAP (`pred_contrib`) gives each deal exact per-feature
log-odds contributions, keyed by the same feature names as the additive model's groups, so the
card's reasons come from whichever model is active. Warning signs (the linear columns, 0 = healthy)
are monotone: more of a warning sign never lowers the risk. The booster travels as its text dump
inside the JSON state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import lightgbm as lgb
import numpy as np


class FeatureTable(Protocol):
    """The columns the trees read (deal_risk.model.FeatureTable; a protocol, so the packages form no cycle)."""

    linear: dict[str, np.ndarray]
    binned: dict[str, np.ndarray]
    categorical: dict[str, np.ndarray]
    y: np.ndarray | None

    def __len__(self) -> int: ...

PARAMS: dict[str, Any] = {
    "objective": "binary", "learning_rate": 0.05, "num_leaves": 15, "min_data_in_leaf": 40,
    "feature_fraction": 0.9, "bagging_fraction": 0.9, "bagging_freq": 1, "lambda_l2": 1.0,
    "cat_smooth": 20.0, "min_data_per_group": 40, "max_cat_to_onehot": 8, "verbose": -1, "seed": 7,
    "num_threads": 1, "deterministic": True, "force_col_wise": True,
}
MAX_ROUNDS = 600
PATIENCE = 40
MIN_LEVEL = 5


def layout(table: FeatureTable) -> dict[str, Any]:
    """Columns (linear, then numbers, then categories) and the category levels seen in training."""
    levels = {}
    for name, values in table.categorical.items():
        kept, counts = np.unique(values.astype(str), return_counts=True)
        levels[name] = [str(v) for v, c in zip(kept, counts, strict=True) if c >= MIN_LEVEL]
    return {"linear": list(table.linear), "numbers": list(table.binned), "levels": levels}


def columns(spec: Mapping[str, Any]) -> list[str]:
    return [*spec["linear"], *spec["numbers"], *spec["levels"]]


def matrix(spec: Mapping[str, Any], table: FeatureTable) -> np.ndarray:
    """Rows x columns as floats; a category is its level's index, unseen or missing is NaN."""
    cols: list[np.ndarray] = []
    n = len(table)
    for name in spec["linear"]:
        x = table.linear.get(name)
        cols.append(np.zeros(n) if x is None else x.astype(float))
    for name in spec["numbers"]:
        x = table.binned.get(name)
        cols.append(np.full(n, np.nan) if x is None else x.astype(float))
    for name, levels in spec["levels"].items():
        col = table.categorical.get(name)
        lookup = {v: float(i) for i, v in enumerate(levels)}
        if col is None:
            cols.append(np.full(n, np.nan))
            continue
        seen, inverse = np.unique(col.astype(str), return_inverse=True)
        cols.append(np.array([lookup.get(v, np.nan) for v in seen.tolist()])[inverse.reshape(-1)])
    return np.column_stack(cols) if cols else np.zeros((n, 0))


def fit_trees(train: FeatureTable, stop_on: FeatureTable | None = None, *, rounds: int = 0) -> dict[str, Any]:
    """Boost on `train`, stopping on `stop_on` (newer deals) when given, else after `rounds` (0: the most
    allowed); the JSON-ready tree model."""
    spec, params, data = _training(train)
    rounds, valid_sets = rounds or MAX_ROUNDS, []
    callbacks: list[Callable[..., Any]] = []
    if stop_on is not None and stop_on.y is not None and len(stop_on) and 0 < stop_on.y.sum() < len(stop_on):
        valid_sets = [lgb.Dataset(matrix(spec, stop_on), stop_on.y, reference=data)]
        callbacks = [lgb.early_stopping(PATIENCE, verbose=False)]
    booster = lgb.train(params, data, num_boost_round=rounds, valid_sets=valid_sets, callbacks=callbacks)
    best = booster.best_iteration or booster.current_iteration()
    return {"booster": booster.model_to_string(num_iteration=best), "spec": spec, "rounds": int(best)}


def _training(train: FeatureTable) -> tuple[dict[str, Any], dict[str, Any], lgb.Dataset]:
    """The column layout, the parameters (warning signs monotone) and the training set of a boosting run."""
    assert train.y is not None
    spec = layout(train)
    names = columns(spec)
    monotone = [1] * len(spec["linear"]) + [0] * (len(names) - len(spec["linear"]))
    categorical = list(range(len(spec["linear"]) + len(spec["numbers"]), len(names)))
    params = {**PARAMS, "monotone_constraints": monotone, "monotone_constraints_method": "advanced"}
    data = lgb.Dataset(matrix(spec, train), train.y, feature_name=names, categorical_feature=categorical,
                       free_raw_data=False)
    return spec, params, data


def booster_of(trees: Mapping[str, Any]) -> lgb.Booster:
    """The booster parsed from its text dump (the caller keeps it for the model's lifetime)."""
    return lgb.Booster(model_str=trees["booster"])


def tree_contributions(booster: lgb.Booster, spec: Mapping[str, Any], table: FeatureTable
                       ) -> tuple[np.ndarray, np.ndarray]:
    """TreeSHAP: rows x columns log-odds contributions, and each row's base value (expected raw score)."""
    raw = booster.predict(matrix(spec, table), pred_contrib=True)
    out = np.asarray(raw, dtype=float)
    return out[:, :-1], out[:, -1]


def loss_curve(train: FeatureTable, valid: FeatureTable, *, rounds: int = MAX_ROUNDS, patience: int = 0) -> np.ndarray:
    """Log loss on `valid` (newer deals) after each boosting round on `train`, up to `rounds` (or `patience` rounds
    past its best): what a choice of the number of rounds is judged on, without keeping the model."""
    assert valid.y is not None
    spec, params, data = _training(train)
    held = lgb.Dataset(matrix(spec, valid), valid.y, reference=data)
    seen: dict[str, Any] = {}
    callbacks: list[Callable[..., Any]] = [lgb.record_evaluation(seen)]
    if patience:
        callbacks.append(lgb.early_stopping(patience, verbose=False))
    lgb.train({**params, "metric": "binary_logloss"}, data, num_boost_round=rounds, valid_sets=[held],
              valid_names=["valid"], callbacks=callbacks)
    return np.asarray(seen["valid"]["binary_logloss"], dtype=float)
