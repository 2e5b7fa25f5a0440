"""Which SDR-stage signals go with won deals: a shrunk Bayesian logistic regression over closed deals.

Open deals are left out (censored, not lost). Each signal's effect is a log-odds coefficient with a
Laplace-approximation sd; a N(0, 0.5^2) prior keeps rare signals near zero, so small samples
cannot swing the playbook.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from scipy import stats

from jobs.loops.handoff.signals import DealSignals
from jobs.loops.handoff_stats import fit_logit

INTERCEPT = "intercept"
UNCONFIRMED = "handoff:unconfirmed_pain"  # per claimed pain the BDM did not find
DENIED = "handoff:denied_pain"  # per claimed pain the buyer explicitly denied in discovery
COUNTS: dict[str, Callable[[DealSignals], int]] = {UNCONFIRMED: lambda d: len(d.unconfirmed_pains),
                                                   DENIED: lambda d: len(d.denied_pains)}
MIN_SUPPORT = 15
MATURITY_DAYS = 42  # younger deals are left out: the ones already closed are mostly fast losses  # deals with and without a signal before it gets a column
PRIOR_SD = 0.5


def design(deals: Sequence[DealSignals], names: Sequence[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """The 0/1 signal matrix (plus intercept and the unconfirmed-pain count)."""
    feats = [d.features() for d in deals]
    if names is None:
        counts: dict[str, int] = {}
        for f in feats:
            for name in f:
                counts[name] = counts.get(name, 0) + 1
        names = [INTERCEPT, *COUNTS] + sorted(
            n for n, c in counts.items() if c >= MIN_SUPPORT and len(deals) - c >= MIN_SUPPORT)
    index = {n: i for i, n in enumerate(names)}
    x = np.zeros((len(deals), len(names)))
    x[:, 0] = 1.0
    for row, (deal, f) in enumerate(zip(deals, feats, strict=True)):
        for name in f:
            if name in index:
                x[row, index[name]] = 1.0
        for name, count in COUNTS.items():
            if name in index:
                x[row, index[name]] = float(count(deal))
    return x, list(names)


def fit(deals: Sequence[DealSignals], now: datetime | None = None,
        maturity_days: int = MATURITY_DAYS) -> dict[str, Any]:
    """Summary per signal: effect (log-odds), sd, n with / wins with / n without, win-rate points.

    Only deals created `maturity_days` before `now` count: among young deals the closed ones are
    mostly quick losses, which would make whatever changed recently look bad (censoring bias).
    """
    cutoff = now - timedelta(days=maturity_days) if now is not None else None
    closed = [d for d in deals if d.closed and (cutoff is None or (d.created_at is not None and d.created_at <= cutoff))]
    if len(closed) < 2 * MIN_SUPPORT:
        return {"n": len(closed), "wins": sum(d.won for d in closed), "signals": {}}
    x, names = design(closed)
    y = np.array([1.0 if d.won else 0.0 for d in closed])
    model = fit_logit(x, y, names, prior_sd=PRIOR_SD)
    base = model.predict(x)
    signals: dict[str, Any] = {}
    for j, name in enumerate(names):
        if name == INTERCEPT:
            continue
        on = x[:, j] > 0
        lo, hi = model.interval(name)
        signals[name] = {
            "effect": round(model.coef(name), 4), "sd": round(model.sd(name), 4),
            "interval": [round(lo, 4), round(hi, 4)],
            "n_with": int(on.sum()), "wins_with": int(y[on].sum()),
            "n_without": int((~on).sum()), "wins_without": int(y[~on].sum()),
            "points": [round(100 * _points(x, model.mean, j, b), 2) for b in (model.coef(name), lo, hi)],
        }
    return {"n": len(closed), "wins": int(y.sum()), "intercept": round(model.coef(INTERCEPT), 4),
            "mean_p": round(float(base.mean()), 4), "signals": signals}


def _points(x: np.ndarray, beta: np.ndarray, j: int, value: float) -> float:
    """Average change in P(win) when signal j is present vs absent, at coefficient `value`."""
    b = beta.copy()
    b[j] = value
    with_x, without_x = x.copy(), x.copy()
    with_x[:, j], without_x[:, j] = 1.0, 0.0
    if j in (1, 2):  # the count columns: one more unconfirmed / denied pain than now
        with_x[:, j] = x[:, j] + 1.0
        without_x[:, j] = x[:, j]
    p1 = 1 / (1 + np.exp(-(with_x @ b)))
    p0 = 1 / (1 + np.exp(-(without_x @ b)))
    return float((p1 - p0).mean())


def decisive_z(k: int, alpha: float = 0.05) -> float:
    """One-sided z a signal must clear when k signals are looked at (Bonferroni), at least 3."""
    return max(3.0, float(stats.norm.ppf(1.0 - alpha / max(k, 1))))


def contribution(summary: Mapping[str, Any], deal: DealSignals) -> list[tuple[str, float]]:
    """How each present signal moved this deal's predicted log-odds (largest first)."""
    signals = summary.get("signals", {})
    moves = [(name, float(signals[name]["effect"])) for name in deal.features() if name in signals]
    for name, count in COUNTS.items():
        if count(deal) and name in signals:
            moves.append((name, float(signals[name]["effect"]) * count(deal)))
    return sorted(moves, key=lambda m: -abs(m[1]))


def predicted(summary: Mapping[str, Any], deal: DealSignals) -> float | None:
    """P(win) the model gives the deal from its SDR-stage signals."""
    if "intercept" not in summary:
        return None
    z = summary["intercept"] + sum(effect for _, effect in contribution(summary, deal))
    return float(1 / (1 + np.exp(-z)))
