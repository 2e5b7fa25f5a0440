"""Baselines the risk model must beat on the same folds and features: majority, logistic regression,
Odoo-style naive Bayes, gradient boosting."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.preprocessing import OneHotEncoder  # type: ignore[import-untyped]

from jobs.loops.deal_risk.model import MAX_BINS, FeatureTable

SMOOTHING = 0.1  # Odoo adds 0.1 to every frequency so an unseen combination is never impossible
MAX_CATEGORIES = 250  # HistGradientBoosting takes at most 255 levels per categorical feature


def majority(train: FeatureTable, valid: FeatureTable) -> np.ndarray:
    """Every deal gets the training loss rate: AUC 0.5, the Brier score to beat."""
    assert train.y is not None
    return np.full(len(valid), float(train.y.mean()))


def _discrete(train: FeatureTable, table: FeatureTable) -> dict[str, np.ndarray]:
    """Every column as strings: categories as they are, numbers in the training quantile bins."""
    out: dict[str, np.ndarray] = {k: v.astype(str) for k, v in table.categorical.items()}
    for name, x in (*table.linear.items(), *table.binned.items()):
        ref = train.linear.get(name, train.binned.get(name))
        assert ref is not None
        finite = ref[np.isfinite(ref)]
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, MAX_BINS + 1)[1:-1])) if finite.size else np.array([])
        out[name] = np.where(np.isfinite(x), np.searchsorted(edges, np.nan_to_num(x), side="right").astype(str), "nan")
    return out


def naive_bayes(train: FeatureTable, valid: FeatureTable) -> np.ndarray:
    """Odoo's predictive lead scoring: per field value, won and lost frequencies multiplied naive-Bayes style."""
    assert train.y is not None
    lost = train.y == 1
    n_lost, n_won = float(lost.sum()), float((~lost).sum())
    score = np.full(len(valid), np.log(n_lost / n_won))  # log prior odds of losing
    tr, va = _discrete(train, train), _discrete(train, valid)
    for name, values in tr.items():
        levels, inverse = np.unique(values, return_inverse=True)
        lost_count = np.bincount(inverse, weights=lost.astype(float), minlength=len(levels)) + SMOOTHING
        won_count = np.bincount(inverse, weights=(~lost).astype(float), minlength=len(levels)) + SMOOTHING
        ratio = np.log(lost_count / (n_lost + SMOOTHING)) - np.log(won_count / (n_won + SMOOTHING))
        lookup = dict(zip(levels.tolist(), ratio.tolist(), strict=True))
        score += np.fromiter((lookup.get(v, 0.0) for v in va[name]), dtype=float, count=len(valid))  # unseen: skipped
    return 1.0 / (1.0 + np.exp(-np.clip(score, -30, 30)))


def logistic_regression(train: FeatureTable, valid: FeatureTable) -> np.ndarray:
    """Plain L2 logistic regression (sklearn defaults) on one-hot levels: categories and number bins alike."""
    assert train.y is not None
    tr, va = _discrete(train, train), _discrete(train, valid)
    names = sorted(tr)
    encoder = OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=5)
    x_train = encoder.fit_transform(np.column_stack([tr[n] for n in names]))
    model = LogisticRegression(max_iter=2000)
    model.fit(x_train, train.y)
    return np.asarray(model.predict_proba(encoder.transform(np.column_stack([va[n] for n in names])))[:, 1])


def _matrix(train: FeatureTable, table: FeatureTable) -> tuple[np.ndarray, list[bool]]:
    cols, is_cat = [], []
    for name in (*train.linear, *train.binned):
        cols.append(table.linear.get(name, table.binned.get(name)).astype(float))  # type: ignore[union-attr]
        is_cat.append(False)
    for name, values in train.categorical.items():
        levels, counts = np.unique(values.astype(str), return_counts=True)
        kept = levels[np.argsort(-counts)][:MAX_CATEGORIES]
        lookup = {v: float(i) for i, v in enumerate(kept)}
        cols.append(np.fromiter((lookup.get(str(v), np.nan) for v in table.categorical[name]), dtype=float, count=len(table)))
        is_cat.append(True)
    return np.column_stack(cols), is_cat


def gradient_boosting(train: FeatureTable, valid: FeatureTable, *, seed: int = 0) -> np.ndarray:
    """sklearn's HistGradientBoostingClassifier on the same columns (native categorical support)."""
    assert train.y is not None
    x_train, is_cat = _matrix(train, train)
    x_valid, _ = _matrix(train, valid)
    model = HistGradientBoostingClassifier(categorical_features=np.array(is_cat), random_state=seed)
    model.fit(x_train, train.y)
    return model.predict_proba(x_valid)[:, 1]


BASELINES = {"majority class": majority, "logistic regression": logistic_regression,
             "naive Bayes (Odoo-style)": naive_bayes, "gradient boosting": gradient_boosting}
