"""The risk model: calibrated on a known signal, blind on noise, trained older -> newer, scored vectorised."""

from __future__ import annotations

import json

import numpy as np

from jobs.loops.deal_risk.evaluation import figures, time_split, validate
from jobs.loops.deal_risk.model import FeatureTable, RiskModel, fit_logistic, predict, score_chunks


def synthetic(n: int, *, signal: float, seed: int = 3) -> FeatureTable:
    """x drives the log-odds of losing with slope `signal`; a category and a number are pure noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.3 + signal * x)))).astype(float)
    return FeatureTable([str(i) for i in range(n)], {"x": x}, {"size": rng.lognormal(10, 1, n)},
                        {"region": rng.choice(np.array(["n", "s", "e", "w"], dtype=object), n)}, y, np.arange(n, dtype=float))


def test_a_known_signal_is_recovered_and_calibrated() -> None:
    model, metrics = validate(synthetic(10000, signal=1.5))
    slope = next(g for g in model.groups if g["name"] == "x")["coef"] * model.calibration[0]
    assert 1.3 < slope < 1.7
    assert metrics["auc"] > 0.8
    assert metrics["ece"] < 0.04
    for row in metrics["reliability"]:
        if row["n"] >= 100:
            assert abs(row["predicted"] - row["observed"]) < 0.08


def test_pure_noise_gives_auc_near_a_half() -> None:
    table = synthetic(4000, signal=0.0, seed=11)
    _, metrics = validate(table)
    assert abs(metrics["auc"] - 0.5) < 0.05
    assert metrics["brier"] <= metrics["brier_constant"] + 0.005


def test_training_is_time_ordered_whatever_the_row_order() -> None:
    table = synthetic(1000, signal=1.0)
    shuffled = table.take(np.random.default_rng(0).permutation(len(table)))
    train, valid = time_split(shuffled)
    assert train.order.max() < valid.order.min()  # type: ignore[union-attr]
    assert len(valid) == 200
    a, _ = validate(table)
    b, _ = validate(shuffled)
    assert a.to_json() == b.to_json()


def test_a_model_survives_json_and_scores_the_same() -> None:
    table = synthetic(800, signal=1.0)
    model = fit_logistic(table, c=1.0)
    again = RiskModel.from_json(json.loads(json.dumps(model.to_json())))
    assert np.allclose(predict(model, table), predict(again, table))


def test_contributions_add_up_to_the_log_odds_and_top_reasons_are_largest() -> None:
    table = synthetic(500, signal=2.0)
    model = fit_logistic(table, c=1.0)
    p, contrib, top, names = score_chunks([(model, 1.0)], table)
    assert np.allclose(np.log(p / (1 - p)), model.base + contrib.sum(axis=1), atol=1e-4)
    assert names == ["x", "size", "region"]
    assert (contrib[np.arange(len(p)), top[:, 0]] >= contrib.max(axis=1) - 1e-6).all()


def test_unseen_categories_and_missing_numbers_score_as_other() -> None:
    table = synthetic(500, signal=1.0)
    model = fit_logistic(table, c=1.0)
    odd = FeatureTable(["a"], {"x": np.array([0.0])}, {"size": np.array([np.nan])}, {"region": np.array(["mars"], dtype=object)})
    assert 0.0 < predict(model, odd)[0] < 1.0


def test_figures_report_auc_brier_and_bins() -> None:
    y = np.array([0, 0, 1, 1], dtype=float)
    out = figures(y, np.array([0.1, 0.2, 0.8, 0.9]))
    assert out["auc"] == 1.0 and out["brier"] == 0.025
    assert sum(r["n"] for r in out["reliability"]) == 4
