"""The risk model: an additive logistic model over feature groups, JSON-ready, scored vectorised.

Why this shape: every group (a warning sign, a binned number, a category) adds a contribution
coef * (x - mean) to the log-odds of losing, so a deal's top reasons are its largest
contributions, and scoring a million deals is a few table look-ups per group.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

MAX_BINS = 10
MIN_LEVEL = 5  # a category value seen fewer times in training is "other"
C_GRID = (0.03, 0.1, 0.3, 1.0)
CHUNK = 100_000
LR_CRITICAL = 5.99  # chi-square, 2 degrees of freedom, 95%: recalibrate only on real drift


@dataclass
class FeatureTable:
    """Deals as columns: linear (already scaled, 0 = healthy), numbers to bin, categories."""

    ids: list[str]
    linear: dict[str, np.ndarray] = field(default_factory=dict)
    binned: dict[str, np.ndarray] = field(default_factory=dict)
    categorical: dict[str, np.ndarray] = field(default_factory=dict)
    y: np.ndarray | None = None  # 1 = lost, 0 = won
    order: np.ndarray | None = None  # time order of the outcome (older first)

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, index: np.ndarray) -> FeatureTable:
        """The rows at `index` (an integer array), every column alike."""
        pick = {k: v[index] for k, v in self.linear.items()}, {k: v[index] for k, v in self.binned.items()}
        return FeatureTable(
            [self.ids[i] for i in index], pick[0], pick[1], {k: v[index] for k, v in self.categorical.items()},
            None if self.y is None else self.y[index], None if self.order is None else self.order[index],
        )

    def time_sorted(self) -> FeatureTable:
        if self.order is None:
            raise ValueError("time-ordered training needs an order (close date or order column) for every row")
        return self.take(np.argsort(self.order, kind="stable"))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


@dataclass
class _Design:
    """How table columns become model columns: bin edges and category levels learned on training rows."""

    linear: list[str]
    edges: dict[str, list[float]]
    levels: dict[str, list[str]]

    @classmethod
    def fit(cls, table: FeatureTable) -> _Design:
        edges = {}
        for name, x in table.binned.items():
            finite = x[np.isfinite(x)]
            qs = np.quantile(finite, np.linspace(0, 1, MAX_BINS + 1)[1:-1]) if finite.size else np.array([])
            edges[name] = [float(v) for v in np.unique(qs)]
        levels = {}
        for name, values in table.categorical.items():
            kept, counts = np.unique(values.astype(str), return_counts=True)
            levels[name] = [str(v) for v, c in zip(kept, counts, strict=True) if c >= MIN_LEVEL]
        return cls(list(table.linear), edges, levels)

    def codes(self, table: FeatureTable) -> dict[str, np.ndarray]:
        """Per bin/category group, the level index of each row (last index = missing / other)."""
        out = {}
        for name, e in self.edges.items():
            x = table.binned[name]
            idx = np.searchsorted(np.asarray(e), np.nan_to_num(x, nan=0.0), side="right")
            out[name] = np.where(np.isfinite(x), idx, len(e) + 1)
        for name, lv in self.levels.items():
            lookup = {v: i for i, v in enumerate(lv)}
            out[name] = np.fromiter((lookup.get(str(v), len(lv)) for v in table.categorical[name]), dtype=np.int64,
                                    count=len(table))
        return out

    def width(self, name: str) -> int:
        return len(self.edges[name]) + 2 if name in self.edges else len(self.levels[name]) + 1

    def matrix(self, table: FeatureTable) -> tuple[np.ndarray, list[tuple[str, int, int]]]:
        """The dense design matrix and, per group, its column span."""
        blocks, spans, at = [], [], 0
        for name in self.linear:
            blocks.append(table.linear[name][:, None].astype(float))
            spans.append((name, at, at + 1))
            at += 1
        for name, idx in self.codes(table).items():
            width = self.width(name)
            block = np.zeros((len(table), width))
            block[np.arange(len(table)), idx] = 1.0
            blocks.append(block)
            spans.append((name, at, at + width))
            at += width
        return np.hstack(blocks) if blocks else np.zeros((len(table), 0)), spans


@dataclass
class RiskModel:
    """Additive log-odds model; `groups` hold per-level contributions, already centred on training means."""

    base: float
    groups: list[dict[str, Any]]
    calibration: tuple[float, float] = (1.0, 0.0)
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"base": self.base, "groups": self.groups, "calibration": list(self.calibration), "meta": self.meta}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RiskModel:
        a, b = data.get("calibration", (1.0, 0.0))
        return cls(float(data["base"]), [dict(g) for g in data["groups"]], (float(a), float(b)), dict(data.get("meta", {})))

    @property
    def names(self) -> list[str]:
        return [g["name"] for g in self.groups]

    def contributions(self, table: FeatureTable) -> np.ndarray:
        """Rows x groups matrix of log-odds contributions (after calibration's slope)."""
        out = np.zeros((len(table), len(self.groups)))
        for j, g in enumerate(self.groups):
            out[:, j] = _group_contribution(g, table)
        return out * self.calibration[0]

    def logit(self, contributions: np.ndarray) -> np.ndarray:
        a, b = self.calibration
        return a * self.base + b + contributions.sum(axis=1)


def _group_contribution(group: Mapping[str, Any], table: FeatureTable) -> np.ndarray:
    kind, name = group["kind"], group["name"]
    if kind == "linear":
        x = table.linear.get(name)
        return np.zeros(len(table)) if x is None else group["coef"] * (x - group["mean"])
    values = np.asarray(group["values"])
    if kind == "bins":
        x = table.binned.get(name)
        if x is None:
            return np.full(len(table), values[-1])
        idx = np.searchsorted(np.asarray(group["edges"]), np.nan_to_num(x, nan=0.0), side="right")
        return values[np.where(np.isfinite(x), idx, len(values) - 1)]
    col = table.categorical.get(name)
    if col is None:
        return np.full(len(table), values[-1])
    lookup = {v: i for i, v in enumerate(group["levels"])}
    idx = np.fromiter((lookup.get(str(v), len(values) - 1) for v in col), dtype=np.int64, count=len(table))
    return values[idx]


def fit_logistic(table: FeatureTable, *, c: float) -> RiskModel:
    """Fit L2 logistic regression on the whole table and fold it into centred group contributions."""
    design = _Design.fit(table)
    x, spans = design.matrix(table)
    assert table.y is not None
    clf = LogisticRegression(C=c, max_iter=3000)
    clf.fit(x, table.y)
    coef, means = clf.coef_[0], x.mean(axis=0)
    base = float(clf.intercept_[0] + coef @ means)
    groups = []
    for name, lo, hi in spans:
        if name in design.edges or name in design.levels:
            centred = coef[lo:hi] - float(coef[lo:hi] @ means[lo:hi])
            group: dict[str, Any] = {"name": name, "kind": "bins" if name in design.edges else "category",
                                     "values": [round(float(v), 5) for v in centred]}
            group.update({"edges": design.edges[name]} if name in design.edges else {"levels": design.levels[name]})
        else:
            group = {"name": name, "kind": "linear", "coef": round(float(coef[lo]), 5), "mean": round(float(means[lo]), 5)}
        groups.append(group)
    return RiskModel(base, groups, meta={"c": c, "n": len(table)})


def platt(logits: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Recalibrate log-odds on newer deals (slope, shift), only when a likelihood-ratio test says they drifted."""
    if len(y) < 20 or y.min() == y.max():
        return 1.0, 0.0
    clf = LogisticRegression(C=100.0).fit(logits[:, None], y)
    slope, shift = float(clf.coef_[0][0]), float(clf.intercept_[0])
    if not 0.2 <= slope <= 3.0:  # a wild slope means too few or too odd newer deals: shift only
        slope, shift = 1.0, _logit(float(y.mean())) - _logit(float(_sigmoid(logits).mean()))
    gain = 2 * len(y) * (_log_loss(y, _sigmoid(logits)) - _log_loss(y, _sigmoid(slope * logits + shift)))
    return (slope, shift) if gain > LR_CRITICAL else (1.0, 0.0)


def predict(model: RiskModel, table: FeatureTable) -> np.ndarray:
    return _sigmoid(model.logit(model.contributions(table)))


def fit_recipe(table: FeatureTable, *, holdout: float = 0.125) -> RiskModel:
    """Fit on the older rows, pick C and calibrate on the newest `holdout` share (rows are time-sorted)."""
    n = len(table)
    cut = int(round(n * (1 - holdout)))
    fit_part, cal = table.take(np.arange(cut)), table.take(np.arange(cut, n))
    best: tuple[float, RiskModel] | None = None
    for c in C_GRID:
        model = fit_logistic(fit_part, c=c)
        loss = _log_loss(cal.y, predict(model, cal)) if len(cal) and cal.y is not None else 0.0
        if best is None or loss < best[0]:
            best = (loss, model)
    assert best is not None
    model = best[1]
    if len(cal) and cal.y is not None:
        model.calibration = platt(model.logit(model.contributions(cal)), cal.y)
    model.meta.update({"n_fit": cut, "n_calibration": n - cut})
    return model


def _log_loss(y: np.ndarray | None, p: np.ndarray) -> float:
    assert y is not None
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def score_chunks(parts: Sequence[tuple[RiskModel, float]], table: FeatureTable, top: int = 3
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Blend models (weights sum to 1) on log-odds; return p, contributions, top-k group indexes, names."""
    names = list(dict.fromkeys(n for m, _ in parts for n in m.names))
    col = {n: i for i, n in enumerate(names)}
    n = len(table)
    probs, contribs, tops = np.empty(n), np.empty((n, len(names)), dtype=np.float32), np.empty((n, top), dtype=np.int32)
    for lo in range(0, n, CHUNK):
        chunk = table.take(np.arange(lo, min(lo + CHUNK, n)))
        total = np.zeros((len(chunk), len(names)))
        logit = np.zeros(len(chunk))
        for model, weight in parts:
            c = model.contributions(chunk)
            logit += weight * model.logit(c)
            total[:, [col[m] for m in model.names]] += weight * c
        probs[lo:lo + len(chunk)] = _sigmoid(logit)
        contribs[lo:lo + len(chunk)] = total
        k = min(top, len(names))
        part = np.argpartition(-total, k - 1, axis=1)[:, :k] if k else np.zeros((len(chunk), 0), dtype=np.int64)
        order = np.take_along_axis(total, part, axis=1).argsort(axis=1)[:, ::-1]
        tops[lo:lo + len(chunk), :k] = np.take_along_axis(part, order, axis=1)
    return probs, contribs, tops, names

