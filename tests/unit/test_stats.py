"""The one statistics kit: e-values that stay valid under weekly looks, e-BH by hand, verdicts, power."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from jobs.loops.stats import (
    TOO_FEW,
    carried,
    e_bh,
    e_gap,
    e_normal,
    e_threshold,
    judge,
    needed_n,
    posterior,
    rng_for,
)


def test_e_value_is_below_one_at_no_effect_and_grows_with_evidence() -> None:
    assert e_normal(0.0, 0.2) < 1.0
    assert e_normal(0.5, 0.2) > e_normal(0.5, 0.3) > 1.0  # the same effect, more data: more evidence
    assert e_normal(-0.5, 0.2) < 1.0 and e_normal(-0.5, 0.2, direction=-1) > 1.0


@pytest.mark.parametrize("sd", [0.1, 0.3, 1.0])
def test_null_e_value_has_expectation_one(sd: float) -> None:
    """E[e] = 1 when the effect is zero: integrate the e-value against the estimate's null density."""
    mean, _ = integrate.quad(lambda z: e_normal(z * sd, sd) * stats.norm.pdf(z), -np.inf, np.inf, limit=400)
    assert mean == pytest.approx(1.0, abs=1e-3)


def test_weekly_looks_at_a_null_cross_the_bar_in_at_most_alpha_of_runs() -> None:
    """52 looks at a growing sample with no effect: Ville's inequality keeps crossings of 1/alpha <= alpha,
    where a fixed-sample z test peeked at weekly would cross far more often."""
    rng = rng_for("weekly-null")
    runs, crossed, naive = 600, 0, 0
    for _ in range(runs):
        a = rng.random((52, 30)) < 0.2
        b = rng.random((52, 30)) < 0.2
        ka, kb = np.cumsum(a.sum(axis=1)), np.cumsum(b.sum(axis=1))
        ns = 30 * np.arange(1, 53)
        es = [abs(e_gap(int(x), int(n), int(y), int(n))) for x, y, n in zip(ka, kb, ns, strict=True)]
        crossed += max(es) >= 20
        zs = [(x - y) / n / np.sqrt(0.16 * 2 / n) for x, y, n in zip(ka, kb, ns, strict=True)]
        naive += max(abs(v) for v in zs) >= 1.96
    assert crossed / runs <= 0.05
    assert naive / runs > 0.2


def test_e_bh_by_hand() -> None:
    # K = 4 candidates at alpha 0.05: the k strongest are discoveries if the k-th has e >= 4 / (0.05 k)
    assert e_threshold(4, 2) == 40.0
    assert e_bh({"a": 90.0, "b": 45.0, "c": 2.0, "d": 0.5}) == {"a", "b"}
    assert e_bh({"a": 75.0, "b": 30.0}, tests=4) == set()  # 75 < 80 for one, 30 < 40 for two
    assert e_bh({"a": 81.0, "b": 30.0}, tests=4) == {"a"}


def test_judge_needs_sample_size_lift_and_evidence() -> None:
    cells = {"strong": (1e4, 0.10, 300), "weak": (3.0, 0.10, 300), "tiny": (1e4, 0.01, 300), "few": (1e4, 0.2, 5),
             "bad": (-1e4, -0.10, 300)}
    out = judge(cells, min_n=8, min_lift=0.03)
    assert out == {"strong": "better", "weak": "unclear", "tiny": "unclear", "few": TOO_FEW, "bad": "worse"}


def test_gap_evidence_sign_follows_the_rates() -> None:
    assert e_gap(60, 200, 30, 200) > 20
    assert e_gap(30, 200, 60, 200) < -20
    assert abs(e_gap(30, 200, 31, 200)) < 2


def test_carried_keeps_the_weekly_record() -> None:
    first = carried(None, 3.0)
    second = carried(first, 5.0)
    assert second == {"e_value": 5.0, "looks": 2, "e_history": [3.0, 5.0]}
    assert len(carried({"looks": 30, "e_history": list(range(12))}, 1.0)["e_history"]) == 12


def test_needed_n_shrinks_with_a_bigger_gap() -> None:
    small, big = needed_n(0.03, 0.25, threshold=20), needed_n(0.10, 0.25, threshold=20)
    assert small is not None and big is not None and big < small
    assert needed_n(0.001, 0.25, threshold=20, cap=500) is None


def test_posterior_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError):
        posterior(5, 3)
