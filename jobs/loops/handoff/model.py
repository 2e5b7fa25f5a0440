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

from jobs.loops.handoff.attributes import (
    AttributeModel,
    FieldCoding,
    LevelEffect,
    code_fields,
    level_effects,
    supported_pairs,
)
from jobs.loops.handoff.signals import DealSignals
from jobs.loops.stats import LogitFit, fit_logit

INTERCEPT = "intercept"
UNCONFIRMED = "handoff:unconfirmed_pain"  # per claimed pain the BDM did not find
DENIED = "handoff:denied_pain"  # per claimed pain the buyer explicitly denied in discovery
COUNTS: dict[str, Callable[[DealSignals], int]] = {UNCONFIRMED: lambda d: len(d.unconfirmed_pains),
                                                   DENIED: lambda d: len(d.denied_pains)}
MIN_SUPPORT = 15
MATURITY_DAYS = 42  # younger deals are left out: the ones already closed are mostly fast losses  # deals with and without a signal before it gets a column
PRIOR_SD = 0.5
ATTRIBUTES = ("industry", "country", "employees", "lead_source")  # deal attributes, not qualification answers
FACT_ITEMS = ("upsell",)  # qualification fields that record a fact about the deal: "treat ... as qualified"


def _binary_names(deals: Sequence[DealSignals]) -> list[str]:
    """Present/absent signals seen with and without on at least MIN_SUPPORT deals each."""
    counts: dict[str, int] = {}
    for d in deals:
        for name in d.features():
            counts[name] = counts.get(name, 0) + 1
    return sorted(n for n, c in counts.items() if c >= MIN_SUPPORT and len(deals) - c >= MIN_SUPPORT)


def codings_of(deals: Sequence[DealSignals]) -> list[FieldCoding]:
    """One reference level per categorical field (firmographics, lead source, qualification fields)."""
    rows = [d.categories() for d in deals]
    fields = sorted({f for r in rows for f in r})
    facts = {a.label for d in deals for a in d.qualification if a.item in FACT_ITEMS}
    return code_fields(rows, fields, min_level=MIN_SUPPORT, attributes=(*ATTRIBUTES, *sorted(facts)))


def design(deals: Sequence[DealSignals], names: Sequence[str] | None = None,
           codings: Sequence[FieldCoding] = (), pairs: Sequence[tuple[str, str]] = ()) -> tuple[np.ndarray, list[str]]:
    """Intercept, the count columns, the 0/1 signals, one column per non-reference level, accepted pairs."""
    if names is None:
        names = [INTERCEPT, *COUNTS, *_binary_names(deals), *(c for f in codings for c in f.columns),
                 *(pair_name(a, b) for a, b in pairs)]
    index = {n: i for i, n in enumerate(names)}
    x = np.zeros((len(deals), len(names)))
    x[:, 0] = 1.0
    for row, deal in enumerate(deals):
        for name in columns_of(deal, codings, pairs):
            if name in index:
                x[row, index[name]] = 1.0
        for name, count in COUNTS.items():
            if name in index:
                x[row, index[name]] = float(count(deal))
    return x, list(names)


def with_pairs(x: np.ndarray, names: Sequence[str], pairs: Sequence[tuple[str, str]]) -> tuple[np.ndarray, list[str]]:
    """design(..., pairs=pairs) from design(...) without them, no second pass over the deals: a pair's column is
    the product of its two 0/1 columns (a deal has the pair when it has both halves)."""
    index = {n: j for j, n in enumerate(names)}
    products = [x[:, index[a]] * x[:, index[b]] for a, b in pairs]
    return np.column_stack([x, *products]), [*names, *(pair_name(a, b) for a, b in pairs)]


def pair_name(a: str, b: str) -> str:
    return f"{a} & {b}"


def columns_of(deal: DealSignals, codings: Sequence[FieldCoding], pairs: Sequence[tuple[str, str]] = ()) -> set[str]:
    """The deal's 0/1 columns: its signals, its coded level of each field, the pairs it has both halves of."""
    cats = deal.categories()
    out = deal.features() | {c.column(c.level(cats.get(c.field))) for c in codings}
    return out | {pair_name(a, b) for a, b in pairs if a in out and b in out}


def _codings_from(summary: Mapping[str, Any]) -> tuple[list[FieldCoding], list[tuple[str, str]]]:
    """The codings a summary was fitted with (JSON-ready in the loop's state)."""
    codings = [FieldCoding(f["field"], f["reference"], tuple(f["levels"]), dict(f["counts"]), f["qualification"])
               for f in summary.get("fields", [])]
    return codings, [(a, b) for a, b in summary.get("pairs", [])]


def fit(deals: Sequence[DealSignals], now: datetime | None = None,
        maturity_days: int = MATURITY_DAYS) -> dict[str, Any]:
    """Summary per signal: effect (log-odds), sd, n with / wins with / n without, win-rate points; per
    categorical level its effect against the rest of the deals (`levels`).

    Only deals created `maturity_days` before `now` count: among young deals the closed ones are
    mostly quick losses, which would make whatever changed recently look bad (censoring bias).
    """
    cutoff = now - timedelta(days=maturity_days) if now is not None else None
    closed = [d for d in deals if d.closed and (cutoff is None or (d.created_at is not None and d.created_at <= cutoff))]
    if len(closed) < 2 * MIN_SUPPORT:
        return {"n": len(closed), "wins": sum(d.won for d in closed), "signals": {}}
    codings = codings_of(closed)
    main = design(closed, codings=codings)
    x, names = with_sdrs(*main, closed)
    y = np.array([1.0 if d.won else 0.0 for d in closed])
    model = fit_logit(x, y, names, prior_sd=PRIOR_SD, gram=sdr_gram(x, names, closed))
    pairs = supported_pairs(x, y, names, model, codings, min_level=MIN_SUPPORT)
    if pairs:
        x, names = with_sdrs(*with_pairs(*main, pairs), closed)
        model = fit_logit(x, y, names, prior_sd=PRIOR_SD, gram=sdr_gram(x, names, closed))
    base = x @ model.mean  # every deal's fitted log-odds: each signal's points move one column of it
    signals = {name: _signal(x, y, model, j, base) for j, name in enumerate(names)
               if name != INTERCEPT and not name.startswith(SDR)}
    rows = [d.categories() for d in closed]
    contrasts = level_effects(AttributeModel(tuple(codings), tuple(pairs), model, x, y), rows)
    return {"n": len(closed), "wins": int(y.sum()), "intercept": round(model.coef(INTERCEPT), 4),
            "mean_p": round(float(model.predict(x).mean()), 4), "signals": signals,
            "fields": [{"field": c.field, "reference": c.reference, "levels": list(c.levels), "counts": dict(c.counts),
                        "qualification": c.qualification} for c in codings],
            "pairs": [list(p) for p in pairs], "levels": [_level(e) for e in contrasts]}


def _signal(x: np.ndarray, y: np.ndarray, model: LogitFit, j: int, base: np.ndarray) -> dict[str, Any]:
    name = model.names[j]
    on = x[:, j] > 0
    lo, hi = model.interval(name)
    rest = base - x[:, j] * model.mean[j]  # every deal's log-odds without signal j
    return {"effect": round(model.coef(name), 4), "sd": round(model.sd(name), 4), "interval": [round(lo, 4), round(hi, 4)],
            "n_with": int(on.sum()), "wins_with": int(y[on].sum()), "n_without": int((~on).sum()),
            "wins_without": int(y[~on].sum()),
            "points": [round(100 * _points(x[:, j], rest, j, b), 2) for b in (model.coef(name), lo, hi)]}


def _level(e: LevelEffect) -> dict[str, Any]:
    """A level against the rest, JSON-ready, with the raw win rates in points."""
    lo, hi = e.effect - 1.645 * e.sd, e.effect + 1.645 * e.sd
    return {"field": e.field, "level": e.level, "effect": round(e.effect, 4), "sd": round(e.sd, 4),
            "interval": [round(lo, 4), round(hi, 4)], "n_with": e.n_with, "wins_with": e.wins_with,
            "n_without": e.n_without, "wins_without": e.wins_without}


SDR = "sdr_adjust:"


def with_sdrs(x: np.ndarray, names: list[str], deals: Sequence[DealSignals]) -> tuple[np.ndarray, list[str]]:
    """Centred one-hot columns per SDR (with enough deals): a signal that good SDRs capture is judged
    within SDRs, not credited with their skill (the confounded trap). Not reported as signals."""
    counts: dict[str, int] = {}
    for d in deals:
        if d.sdr_id:
            counts[str(d.sdr_id)] = counts.get(str(d.sdr_id), 0) + 1
    sdrs = sorted(s for s, c in counts.items() if c >= MIN_SUPPORT)
    if len(sdrs) < 2:
        return x, names
    column = {s: k for k, s in enumerate(sdrs)}
    block = np.zeros((len(deals), len(sdrs)))
    for row, d in enumerate(deals):
        k = column.get(str(d.sdr_id))
        if k is not None:
            block[row, k] = 1.0
    return np.hstack([x, block - block.mean(axis=0)]), [*names, *(f"{SDR}{s}" for s in sdrs)]


def sdr_gram(x: np.ndarray, names: Sequence[str], deals: Sequence[DealSignals]) -> Callable[[np.ndarray], np.ndarray]:
    """x' diag(w) x for a design whose last columns are with_sdrs' centred one-hot block S = B - 1 m': the signal
    columns A as a dense product, the rest from per-SDR sums (B' W B is diagonal). The dense product costs rows x
    columns^2, and the SDR columns grow with the team, so it was cubic in the tenant; this is rows x signals^2."""
    k = sum(1 for n in names if n.startswith(SDR))
    q = len(names) - k
    a = x[:, :q]
    column = {n[len(SDR):]: j for j, n in enumerate(names[q:])}
    group = np.array([column.get(str(d.sdr_id), -1) for d in deals], dtype=np.int64)
    mine = group >= 0  # deals of an SDR with a column
    group, a_mine = group[mine], a[mine]
    means = np.bincount(group, minlength=k) / len(deals)  # with_sdrs' block.mean(axis=0)

    def sums(values: np.ndarray) -> np.ndarray:
        """B' values: per SDR column, the sum over that SDR's deals (one pass over the rows per column)."""
        return np.bincount(group, weights=values, minlength=k)

    def gram(w: np.ndarray) -> np.ndarray:
        aw = a * w[:, None]
        w_mine = w[mine]
        bw, a_w = sums(w_mine), a.T @ w
        a_b = np.array([sums(a_mine[:, j] * w_mine) for j in range(q)]).reshape(q, k)  # A' W B
        out = np.empty((q + k, q + k))
        out[:q, :q] = aw.T @ a
        out[:q, q:] = a_b - np.outer(a_w, means)
        out[q:, :q] = out[:q, q:].T
        out[q:, q:] = np.diag(bw) - np.outer(bw, means) - np.outer(means, bw) + w.sum() * np.outer(means, means)
        return out

    return gram


def _points(column: np.ndarray, rest: np.ndarray, j: int, value: float) -> float:
    """Average change in P(win) when signal j is present vs absent, at coefficient `value`. `column` is the
    signal's own column, `rest` every deal's log-odds without it: one column moves, so no copy of the design
    (two copies per signal and bound made this quadratic in the number of SDR columns on big tenants)."""
    if j in (1, 2):  # the count columns: one more unconfirmed / denied pain than now
        with_z, without_z = rest + (column + 1.0) * value, rest + column * value
    else:
        with_z, without_z = rest + value, rest
    p1 = 1 / (1 + np.exp(-with_z))
    p0 = 1 / (1 + np.exp(-without_z))
    return float((p1 - p0).mean())


def decisive_z(k: int, alpha: float = 0.05) -> float:
    """One-sided z a signal must clear when k signals are looked at (Bonferroni), at least 3."""
    return max(3.0, float(stats.norm.ppf(1.0 - alpha / max(k, 1))))


def contribution(summary: Mapping[str, Any], deal: DealSignals) -> list[tuple[str, float]]:
    """How each present signal moved this deal's predicted log-odds (largest first)."""
    signals = summary.get("signals", {})
    codings, pairs = _codings_from(summary)
    moves = [(name, float(signals[name]["effect"])) for name in columns_of(deal, codings, pairs) if name in signals]
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
