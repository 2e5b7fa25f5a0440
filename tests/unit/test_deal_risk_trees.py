"""Boosted trees for deal risk: chosen only when they validate better, explained by TreeSHAP contributions
keyed by the additive model's feature names, monotone in warning signs, JSON-ready, recalibrated."""

from __future__ import annotations

import json

import numpy as np

from jobs.loops.deal_risk._trees import fit_trees
from jobs.loops.deal_risk.evaluation import figures, rolling_recalibrated, rolling_refit
from jobs.loops.deal_risk.model import (
    FeatureTable,
    RiskModel,
    fit_recipe,
    predict,
    recalibrate,
    score_chunks,
    tree_model,
)


def interacting(n: int, *, seed: int = 5, shift: float = 0.0) -> FeatureTable:
    """Losing depends on an interaction (a big deal in the north) an additive model cannot draw, plus a
    warning sign that only ever adds risk; `shift` moves the base rate for the newest half of the rows."""
    rng = np.random.default_rng(seed)
    sign = rng.random(n) < 0.3
    size = rng.lognormal(10, 1, n)
    region = rng.choice(np.array(["n", "s", "e", "w"], dtype=object), n)
    z = -0.5 + 1.2 * sign + 2.5 * ((size > np.exp(10)) & (region == "n")) - 1.0 * ((size <= np.exp(10)) & (region == "n"))
    z = z + np.where(np.arange(n) >= n // 2, shift, 0.0)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(float)
    return FeatureTable([str(i) for i in range(n)], {"sign": sign.astype(float)}, {"size": size}, {"region": region},
                        y, np.arange(n, dtype=float))


def test_trees_are_chosen_where_they_validate_better_and_explain_with_the_same_names() -> None:
    table = interacting(6000)
    model = fit_recipe(table.take(np.arange(5000)))
    choice = model.meta["choice"]
    assert model.meta["kind"] == "trees" and sum(choice["trees"]) < sum(choice["additive"])
    p, contrib, top, names = score_chunks([(model, 1.0)], table.take(np.arange(5000, 6000)))
    assert names == ["sign", "size", "region"]
    assert np.allclose(np.log(p / (1 - p)), model.logit(contrib / model.calibration[0] * model.calibration[0]), atol=1e-6)
    assert top.shape == (1000, 3)


def test_additive_data_keeps_the_additive_model() -> None:
    rng = np.random.default_rng(2)
    n = 4000
    x = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.3 + 1.0 * x)))).astype(float)
    table = FeatureTable([str(i) for i in range(n)], {"x": x}, {"size": rng.lognormal(10, 1, n)},
                         {"region": rng.choice(np.array(["n", "s"], dtype=object), n)}, y, np.arange(n, dtype=float))
    assert fit_recipe(table).meta["kind"] == "additive"


def test_contributions_add_up_to_the_trees_log_odds() -> None:
    table = interacting(3000)
    model = tree_model(fit_trees(table), table)
    contrib = model.contributions(table)
    raw = np.asarray(model._booster.predict(np.column_stack([table.linear["sign"], table.binned["size"],
                                                             _codes(table)]), raw_score=True))
    assert np.allclose(model.base + contrib.sum(axis=1), raw, atol=1e-6)


def _codes(table: FeatureTable) -> np.ndarray:
    levels = sorted(set(table.categorical["region"].tolist()))
    return np.array([levels.index(v) for v in table.categorical["region"]], dtype=float)


def test_a_warning_sign_never_lowers_the_risk() -> None:
    table = interacting(3000)
    model = tree_model(fit_trees(table), table)
    off = FeatureTable(table.ids, {"sign": np.zeros(len(table))}, table.binned, table.categorical)
    on = FeatureTable(table.ids, {"sign": np.ones(len(table))}, table.binned, table.categorical)
    assert (predict(model, on) >= predict(model, off) - 1e-9).all()


def test_a_tree_model_survives_json_and_scores_the_same() -> None:
    table = interacting(2000)
    model = tree_model(fit_trees(table), table)
    again = RiskModel.from_json(json.loads(json.dumps(model.to_json())))
    assert np.allclose(predict(model, table), predict(again, table))


def test_recalibration_moves_the_intercept_when_the_base_rate_shifts() -> None:
    rng = np.random.default_rng(1)
    raw = rng.normal(size=4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-(raw - 1.0)))).astype(float)  # the newest deals lose less
    a, b = recalibrate(raw, y)
    assert abs(a - 1.0) < 0.15 and -1.25 < b < -0.75
    assert recalibrate(raw, (rng.random(4000) < 1 / (1 + np.exp(-raw))).astype(float)) == (1.0, 0.0)


def test_a_model_with_nothing_to_say_predicts_the_long_run_rate() -> None:
    """Scores unrelated to outcomes, on a window that loses more than usual (a quarter's swing): the slope
    goes to 0 and the intercept to the long-run rate, so calibration is never worse than the base rate."""
    rng = np.random.default_rng(2)
    raw = rng.normal(size=2000) * 1.5
    y = (rng.random(2000) < 0.5).astype(float)
    a, b = recalibrate(raw, y, long_run=0.35)
    assert a == 0.0 and abs(1 / (1 + np.exp(-b)) - 0.35) < 1e-9
    a, b = recalibrate(raw, y)  # no long-run rate given: the window's own
    assert a == 0.0 and abs(1 / (1 + np.exp(-b)) - y.mean()) < 1e-9
    signal = (rng.random(2000) < 1 / (1 + np.exp(-0.5 * raw))).astype(float)  # over-confident scores
    a, _ = recalibrate(raw, signal, long_run=0.35)
    assert 0.3 < a < 0.7  # a real ranking keeps its (shrunk) slope


def test_rolling_recalibration_follows_a_shift_without_looking_ahead() -> None:
    table = interacting(8000, shift=-1.2)
    train, valid = table.take(np.arange(6000)), table.take(np.arange(6000, 8000))
    model = fit_recipe(train.take(np.arange(3000)))  # fitted before the shift
    static = figures(valid.y, predict(model, valid))["ece"]  # type: ignore[arg-type]
    rolling = figures(valid.y, rolling_recalibrated(model, train, valid))["ece"]  # type: ignore[arg-type]
    assert rolling < static and rolling < 0.05


def test_refitting_before_each_stretch_never_lets_a_deal_see_its_own_or_a_later_outcome() -> None:
    """rolling_refit scores the newest fifth as production does: each stretch by a model fitted on every deal
    closed before it, so the fits grow, and none reaches into the stretch it scores."""
    table = interacting(1000, shift=1.0)
    seen: list[tuple[int, int, int]] = []

    def fit_and_score(train: FeatureTable, valid: FeatureTable) -> np.ndarray:
        assert train.order is not None and valid.order is not None
        seen.append((len(train), int(train.order.max()), int(valid.order.min())))
        return np.full(len(valid), float(np.mean(train.y)))  # the base rate of the deals closed before

    y, p = rolling_refit(table, fit_and_score, blocks=4)
    assert len(y) == len(p) == 200 and [n for n, _, _ in seen] == [800, 850, 900, 950]
    assert all(last < first for _, last, first in seen)
    assert p[-1] > p[0]  # the base rate moved (shift) and the later fits learned it from deals already closed
