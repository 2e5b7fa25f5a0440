"""The risk model: an additive logistic model over feature groups, or boosted trees, JSON-ready, scored vectorised.

Why this shape: every group (a warning sign, a binned number, a category) adds a contribution
coef * (x - mean) to the log-odds of losing, so a deal's top reasons are its largest
contributions, and scoring a million deals is a few table look-ups per group. Where boosted trees
validate better forward in time (on stretches as long as the model serves before its next refit), the
tenant gets them instead, with the same per-feature contributions from TreeSHAP. Either way the chosen model is refitted on every closed deal,
the newest included, so a base rate that moved between quarters moves the scores (`recalibrate` refits
intercept and slope where a model must stay fixed: evaluation.rolling_recalibrated).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from jobs.loops.deal_risk import _trees as trees_lib
from jobs.loops.deal_risk._pairs import find_pairs

MAX_BINS = 10
MIN_LEVEL = 5  # a category value seen fewer times in training is "other"
C_GRID = (0.03, 0.1, 0.3, 1.0)
C_NONE = 1e-6  # the base-rate model: every coefficient shrunk to nothing, the (unpenalised) intercept kept
CHUNK = 100_000
LR_CRITICAL = 3.84  # chi-square, 1 degree of freedom, 95%: recalibrate only on real evidence
PAIR_ROUNDS = 2


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
    out: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
    return out


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


def pair_name(a: str, b: str) -> str:
    return f"{a} x {b}"


def level_index(spec: Mapping[str, Any], name: str, table: FeatureTable) -> np.ndarray:
    """Each row's level of a bin or category group; the last index means missing or unseen."""
    if spec["kind"] == "bins":
        edges = np.asarray(spec["edges"])
        x = table.binned.get(name)
        if x is None:
            return np.full(len(table), len(edges) + 1)
        idx = np.searchsorted(edges, np.nan_to_num(x, nan=0.0), side="right")
        return np.where(np.isfinite(x), idx, len(edges) + 1)
    levels = spec["levels"]
    col = table.categorical.get(name)
    if col is None:
        return np.full(len(table), len(levels))
    seen, inverse = np.unique(col.astype(str), return_inverse=True)  # vectorised: look up each distinct value once
    lookup = {v: i for i, v in enumerate(levels)}
    return np.array([lookup.get(v, len(levels)) for v in seen.tolist()], dtype=np.int64)[inverse.reshape(-1)]


@dataclass
class _Design:
    """How table columns become model columns: bin edges and category levels learned on training rows."""

    linear: list[str]
    edges: dict[str, list[float]]
    levels: dict[str, list[str]]
    pairs: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def fit(cls, table: FeatureTable, pairs: Sequence[tuple[str, str]] = ()) -> _Design:
        edges = {}
        for name, x in table.binned.items():
            finite = x[np.isfinite(x)]
            qs = np.quantile(finite, np.linspace(0, 1, MAX_BINS + 1)[1:-1]) if finite.size else np.array([])
            edges[name] = [float(v) for v in np.unique(qs)]
        levels = {}
        for name, values in table.categorical.items():
            kept, counts = np.unique(values.astype(str), return_counts=True)
            levels[name] = [str(v) for v, c in zip(kept, counts, strict=True) if c >= MIN_LEVEL]
        return cls(list(table.linear), edges, levels, list(pairs))

    def spec(self, name: str) -> dict[str, Any]:
        """What scoring needs to find a row's level of a bin/category group."""
        if name in self.edges:
            return {"kind": "bins", "edges": self.edges[name]}
        return {"kind": "category", "levels": self.levels[name]}

    def codes(self, table: FeatureTable) -> dict[str, np.ndarray]:
        """Per bin/category group (and pair of them), the level index of each row (last = missing / other)."""
        out = {name: level_index(self.spec(name), name, table) for name in (*self.edges, *self.levels)}
        for a, b in self.pairs:
            out[pair_name(a, b)] = out[a] * self.width(b) + out[b]
        return out

    def width(self, name: str) -> int:
        if name in self.edges:
            return len(self.edges[name]) + 2
        if name in self.levels:
            return len(self.levels[name]) + 1
        a, b = next(p for p in self.pairs if pair_name(*p) == name)
        return self.width(a) * self.width(b)

    def matrix(self, table: FeatureTable) -> tuple[sparse.csr_matrix, np.ndarray, list[tuple[str, int, int]]]:
        """The sparse design matrix, its column means and, per group, its column span.

        Sparse because every bin/category group is one-hot: a row has one non-zero per group, and with pairs
        crossed the dense matrix was mostly zeros (thousands of columns; 1 GB at 80,000 rows). The means
        are those of the dense matrix, bit for bit: the linear block's column means, and count / rows for
        a one-hot column."""
        n = len(table)
        linear = np.column_stack([table.linear[name].astype(float) for name in self.linear]) if self.linear else np.zeros((n, 0))
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        means, spans = [linear.mean(axis=0)], []
        for j, name in enumerate(self.linear):
            spans.append((name, j, j + 1))
        at = len(self.linear)
        for name, idx in self.codes(table).items():
            width = self.width(name)
            rows.append(np.arange(n))
            cols.append(at + idx)
            means.append(np.bincount(idx, minlength=width) / n)
            spans.append((name, at, at + width))
            at += width
        flat = np.repeat(np.arange(n), len(self.linear)), np.tile(np.arange(len(self.linear)), n), linear.reshape(-1)
        x = sparse.csr_matrix((np.concatenate([flat[2], np.ones(n * len(rows))]),
                               (np.concatenate([flat[0], *rows]), np.concatenate([flat[1], *cols]))), shape=(n, at))
        x.eliminate_zeros()
        x.sort_indices()
        return x, np.concatenate(means) if n else np.zeros(at), spans


@dataclass
class RiskModel:
    """Additive log-odds model; `groups` hold per-level contributions, already centred on training means."""

    base: float
    groups: list[dict[str, Any]]
    calibration: tuple[float, float] = (1.0, 0.0)
    meta: dict[str, Any] = field(default_factory=dict)
    trees: dict[str, Any] | None = None  # a boosted-tree model: booster text, column layout (groups are its columns)
    _booster: Any = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (a learned state coming back from a forked loop worker) without the booster: it is
        rebuilt from `trees` when next used."""
        return {**self.__dict__, "_booster": None}

    def to_json(self) -> dict[str, Any]:
        out = {"base": self.base, "groups": self.groups, "calibration": list(self.calibration), "meta": self.meta}
        return {**out, "trees": self.trees} if self.trees else out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RiskModel:
        a, b = data.get("calibration", (1.0, 0.0))
        return cls(float(data["base"]), [dict(g) for g in data["groups"]], (float(a), float(b)), dict(data.get("meta", {})),
                   dict(data["trees"]) if data.get("trees") else None)

    @property
    def names(self) -> list[str]:
        return [g["name"] for g in self.groups]

    def contributions(self, table: FeatureTable) -> np.ndarray:
        """Rows x groups matrix of log-odds contributions (after calibration's slope)."""
        if self.trees is not None:
            if self._booster is None:
                self._booster = trees_lib.booster_of(self.trees)
            shap, _ = trees_lib.tree_contributions(self._booster, self.trees["spec"], table)
            return shap * self.calibration[0]
        out = np.zeros((len(table), len(self.groups)))
        for j, g in enumerate(self.groups):
            out[:, j] = _group_contribution(g, table)
        return out * self.calibration[0]

    def logit(self, contributions: np.ndarray) -> np.ndarray:
        a, b = self.calibration
        out: np.ndarray = a * self.base + b + contributions.sum(axis=1)
        return out


def _group_contribution(group: Mapping[str, Any], table: FeatureTable) -> np.ndarray:
    kind, name = group["kind"], group["name"]
    if kind == "linear":
        x = table.linear.get(name)
        return np.zeros(len(table)) if x is None else np.asarray(group["coef"] * (x - group["mean"]), dtype=float)
    values = np.asarray(group["values"])
    if kind == "pair":
        (a, spec_a), (b, spec_b) = group["parts"]
        width_b = len(spec_b["edges"]) + 2 if spec_b["kind"] == "bins" else len(spec_b["levels"]) + 1
        picked: np.ndarray = values[level_index(spec_a, a, table) * width_b + level_index(spec_b, b, table)]
        return picked
    single: np.ndarray = values[level_index(group, name, table)]
    return single


def fit_logistic(table: FeatureTable, *, c: float, pairs: Sequence[tuple[str, str]] = ()) -> RiskModel:
    """Fit L2 logistic regression on the whole table and fold it into centred group contributions."""
    design = _Design.fit(table, pairs)
    x, means, spans = design.matrix(table)
    assert table.y is not None
    clf = LogisticRegression(C=c, max_iter=3000)
    with threadpool_limits(1):  # L-BFGS's small vector steps: BLAS threads only wait for each other (3x slower on 2 cores)
        clf.fit(x, table.y)
    coef = clf.coef_[0]
    base = float(clf.intercept_[0] + coef @ means)
    groups = []
    for name, lo, hi in spans:
        centred = [round(float(v), 5) for v in coef[lo:hi] - float(coef[lo:hi] @ means[lo:hi])]
        if name in design.edges or name in design.levels:
            group: dict[str, Any] = {"name": name, **design.spec(name), "values": centred}
        elif name not in design.linear:
            a, b = next(p for p in design.pairs if pair_name(*p) == name)
            group = {"name": name, "kind": "pair", "parts": [[a, design.spec(a)], [b, design.spec(b)]], "values": centred}
        else:
            group = {"name": name, "kind": "linear", "coef": round(float(coef[lo]), 5), "mean": round(float(means[lo]), 5)}
        groups.append(group)
    return RiskModel(base, groups, meta={"c": c, "n": len(table)})


def recalibrate(raw: np.ndarray, y: np.ndarray, *, long_run: float | None = None) -> tuple[float, float]:
    """Intercept and slope on the log-odds, refitted on the newest closed deals; identity unless it clearly helps.

    Both move: a shift in the base rate between training and now (a quarter that loses more) is an
    intercept, an over- or under-confident model is a slope. A likelihood-ratio test (2 degrees of
    freedom, 95%) keeps the identity when the newest deals do not clearly ask for a change. When the
    model's ranking does not clearly beat the base rate on those deals (slope test, 1 degree of
    freedom), the slope goes to 0: a model with nothing to say predicts the `long_run` rate (every
    closed deal so far; the newest alone swing with the quarter), so it is never worse than the base rate.
    """
    if len(y) < 20 or y.min() == y.max():
        return 1.0, 0.0
    fit = LogisticRegression(C=1e4, max_iter=1000).fit(raw[:, None], y)
    a, b = float(fit.coef_[0][0]), float(fit.intercept_[0])
    a = min(max(a, 0.0), 2.0)
    rate = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
    if 2 * len(y) * (_log_loss(y, np.full(len(y), rate)) - _log_loss(y, _sigmoid(a * raw + b))) <= LR_CRITICAL:
        rate = float(np.clip(rate if long_run is None else long_run, 1e-6, 1 - 1e-6))
        return 0.0, float(np.log(rate / (1 - rate)))
    gain = 2 * len(y) * (_log_loss(y, _sigmoid(raw)) - _log_loss(y, _sigmoid(a * raw + b)))
    return (a, b) if gain > LR_CRITICAL_2 else (1.0, 0.0)


LR_CRITICAL_2 = 5.99  # chi-square, 2 degrees of freedom, 95%


def tree_model(trees: dict[str, Any], table: FeatureTable) -> RiskModel:
    """A RiskModel around a boosted-tree model: one group per column, base = the trees' expected log-odds."""
    booster = trees_lib.booster_of(trees)
    _, base = trees_lib.tree_contributions(booster, trees["spec"], table.take(np.arange(min(len(table), 1))))
    groups = [{"name": c, "kind": "tree"} for c in trees_lib.columns(trees["spec"])]
    return RiskModel(float(base[0]) if len(base) else 0.0, groups, meta={"kind": "trees", "rounds": trees["rounds"]},
                     trees=trees, _booster=booster)


def predict(model: RiskModel, table: FeatureTable) -> np.ndarray:
    return _sigmoid(model.logit(model.contributions(table)))


def _pairs_left(table: FeatureTable, p: np.ndarray, crossed: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """find_pairs over this table's additive groups (the design it would be fitted with)."""
    assert table.y is not None
    design = _Design.fit(table)
    codes = design.codes(table)
    return find_pairs(codes, {name: design.width(name) for name in codes}, table.y, p, exclude=crossed)


def fit_recipe(table: FeatureTable, *, holdout: float = 0.125, pairs: bool = True, trees: bool = True,
               horizon: float | None = None) -> RiskModel:
    """Pick C and interacting pairs by fitting on the older rows and judging on the newest `holdout` share, and
    additive vs boosted trees on forward stretches as long as `horizon` (the share of these rows the model will
    serve before it is refitted; `stretches`); then refit those choices on every row.

    Why refit: when the world drifts (a new quarter, new macro conditions) the newest deals are the ones most
    like the open pipeline; a model that only ever learned from the older rows cannot score what they show
    (UCI Bank forward in time, additive: AUC 0.60 fitted on the older 7/8, 0.76 refitted on all). Where no
    model beats the base rate on the newest share, the model is the base rate (no signal, no reasons)."""
    n = len(table)
    cut = int(round(n * (1 - holdout)))
    fit_part, cal = table.take(np.arange(cut)), table.take(np.arange(cut, n))
    best: tuple[float, RiskModel] | None = None
    for c in C_GRID:
        model = fit_logistic(fit_part, c=c)
        loss = _log_loss(cal.y, predict(model, cal)) if len(cal) else 0.0
        if best is None or loss < best[0]:
            best = (loss, model)
    assert best is not None
    if len(cal) and _no_better_than_base_rate(best[0], fit_part, cal):
        model = fit_logistic(table, c=C_NONE)
        model.meta.update({"kind": "base rate", "n_fit": n, "n_chosen_on": cut, "n_calibration": n - cut, "pairs": []})
        return model
    crossed: list[tuple[str, str]] = []
    for _ in range(PAIR_ROUNDS if pairs and len(cal) else 0):  # residuals of the last fit: new pairs each round
        more = [p for p in _pairs_left(fit_part, predict(best[1], fit_part), crossed) if p not in crossed]
        if not more:
            break
        model = fit_logistic(fit_part, c=best[1].meta["c"], pairs=[*crossed, *more])
        loss = _log_loss(cal.y, predict(model, cal))
        if loss >= best[0]:
            break
        best, crossed = (loss, model), [*crossed, *more]
    choice: dict[str, Any] = _choose(best[1], table, crossed, horizon) if trees and len(cal) else {"kind": "additive"}
    model = best[1]
    if choice["kind"] == "trees":
        model = tree_model(trees_lib.fit_trees(table, rounds=choice["choice"]["rounds"]), table)
    elif len(cal) and cal.y is not None:
        # The newest deals are in the refit, so they move the intercept and slope themselves; recalibrating
        # on them again (in-sample) made calibration worse forward in time on IBM (0.049 -> 0.074) and Bank.
        model = _refit(model, table, crossed)
    model.meta.update(choice)
    model.meta.update({"n_fit": n, "n_chosen_on": cut, "n_calibration": n - cut,
                       "pairs": [g["name"] for g in model.groups if g["kind"] == "pair"]})
    return model


def _no_better_than_base_rate(loss: float, fit_part: FeatureTable, cal: FeatureTable) -> bool:
    """Does the best additive model fail to beat the older rows' loss rate on the newest ones (a likelihood-ratio
    margin)? Then any spread it gives is noise (a data set with no signal: Maven's calibration error 0.034 vs
    the base rate's 0.024 forward in time)."""
    assert fit_part.y is not None and cal.y is not None
    constant = _log_loss(cal.y, np.full(len(cal), float(fit_part.y.mean())))
    return 2 * len(cal) * (constant - loss) <= LR_CRITICAL


def _refit(model: RiskModel, table: FeatureTable, crossed: Sequence[tuple[str, str]]) -> RiskModel:
    """The chosen model again on every row: the same C and pairs, or the same number of boosting rounds."""
    if model.trees is not None:
        return tree_model(trees_lib.fit_trees(table, rounds=int(model.trees["rounds"])), table)
    return fit_logistic(table, c=model.meta["c"], pairs=crossed)


def stretches(n: int, horizon: float | None) -> list[tuple[int, int]]:
    """The forward stretches additive vs trees are judged on, oldest first, the newest ending at row n.

    Each is as long as the model will serve before it is refitted (`horizon`, a share of the training rows: the
    held-out part in a backtest, the closes between two learns in production), at least the newest 1/16 (fewer
    deals judge nothing) and at most a quarter; at most STRETCHES of them, together at most half the rows."""
    share = min(max(horizon or 0.0, MIN_STRETCH_SHARE), MAX_STRETCH_SHARE)
    size, count = int(n * share), min(STRETCHES, int(MAX_JUDGED / share + 1e-9))
    return [(n - k * size, n - (k - 1) * size) for k in range(count, 0, -1)]


STRETCHES = 3
MIN_STRETCH_SHARE = 1 / 16
MAX_STRETCH_SHARE = 1 / 4
MAX_JUDGED = 1 / 2  # the oldest stretch starts no earlier than half-way: its trees need rows to learn from


def _choose(additive: RiskModel, table: FeatureTable, crossed: Sequence[tuple[str, str]],
            horizon: float | None) -> dict[str, Any]:
    """Additive or boosted trees, judged as they will be used: on each forward stretch (`stretches`) both are
    fitted on every row before it and scored on it, so neither has seen the deals that judge it and both have
    seen the deals just before, as the final refit will. The trees' rounds are chosen on the older stretches'
    pooled loss, never on the newest. The trees must win clearly on the pooled loss and on the newest stretch (the
    older ones chose their rounds, which flatters them there) and lose clearly on none (likelihood-ratio margins),
    else the simpler additive model stays; requiring a win on each would let a few hundred deals' noise in one
    stretch overrule the rest.

    Why more than one stretch, each as long as the model serves: under a regime change the newest weeks favour
    trees that learn each period's own rate, which does not carry over a longer stretch (UCI Bank forward in
    time: trees win on the newest 1/16 of training, the additive model over a stretch as long as the held-out
    fifth, and there AUC 0.76 vs 0.67)."""
    n, y = len(table), table.y
    spans = stretches(n, horizon)
    if y is None or len(spans) < 2 or any(len(np.unique(y[a:b])) < 2 for a, b in spans) or spans[0][0] < 200:
        return {"kind": "additive"}
    before = [table.take(np.arange(a)) for a, _ in spans]
    judged = [table.take(np.arange(a, b)) for a, b in spans]
    curves = [trees_lib.loss_curve(fit, on, patience=CURVE_PATIENCE) for fit, on in zip(before[:-1], judged[:-1], strict=True)]
    common = min(len(c) for c in curves)
    weights = np.array([b - a for a, b in spans[:-1]], dtype=float)
    rounds = int(np.argmin(sum(w * c[:common] for w, c in zip(weights, curves, strict=True)))) + 1
    newest = trees_lib.loss_curve(before[-1], judged[-1], rounds=rounds)
    tree_loss = [float(c[rounds - 1]) for c in (*curves, newest)]
    add_loss = [_log_loss(on.y, predict(_refit(additive, fit, crossed), on)) for fit, on in zip(before, judged, strict=True)]
    sizes = [b - a for a, b in spans]
    gains = [2 * m * (a - t) for m, a, t in zip(sizes, add_loss, tree_loss, strict=True)]
    clear = sum(gains) > LR_CRITICAL and gains[-1] > LR_CRITICAL  # the newest: the one stretch the rounds never saw
    kind = "trees" if clear and min(gains) >= -VETO else "additive"
    return {"kind": kind, "choice": {"rounds": rounds, "stretches": [list(s) for s in spans],
            "additive": [round(v, 5) for v in add_loss], "trees": [round(v, 5) for v in tree_loss]}}


CURVE_PATIENCE = 100  # rounds past a stretch's best before boosting on it stops
VETO = LR_CRITICAL  # a stretch where the trees lose by more than this likelihood-ratio margin keeps the additive model


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

