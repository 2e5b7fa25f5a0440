"""What peers close on leads like an SDR's own: the yardstick an SDR flag compares with.

An SDR given harder leads (small companies, event leads) closes less whatever their skill. So each SDR is
compared with a small logistic model of the lead's attributes (company size band, industry, country, lead
source) fitted on their peers' closed deals, summed over the SDR's own deals: the close rate peers would
have had on the same leads, with the model's own uncertainty. The difference between that and peers' raw
close rate is what the mix of leads is worth, and the lead kinds behind it are named for the manager.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from jobs.loops.handoff.signals import DealSignals

LEAD_FIELDS = ("employees", "industry", "lead_source", "country")  # what the lead is, not what the SDR did
MIN_LEVEL_DEALS = 20  # a lead kind needs this many closed deals before it gets its own column
PRIOR_SD = 1.0  # log-odds: lead kinds move close rates by up to about 1, and thousands of deals decide
MIX_WORTH = 0.01  # the mix is named when it moves the expected close rate by at least a point
NAMED = 2  # lead kinds named at most


@dataclass(frozen=True)
class LeadTable:
    """Every closed deal's kind of lead (an index into `kinds`: its lead kinds as 0/1 columns, the first the
    intercept) and its outcome. Deals of one kind share a row, so the model is fitted on a few hundred rows."""

    names: tuple[str, ...]
    kinds: np.ndarray  # kinds x columns
    kind: np.ndarray  # per deal, its row in `kinds`
    won: np.ndarray


@dataclass(frozen=True)
class Expected:
    """The close rate peers would have on an SDR's leads, its variance, peers' raw rate, and the lead kinds
    whose over- or under-representation moves it most (plain mappings, JSON-ready)."""

    rate: float
    var: float
    peer_rate: float
    mix: tuple[Mapping[str, Any], ...]


def lead_table(deals: Sequence[DealSignals]) -> LeadTable:
    """Columns for every lead kind seen on at least MIN_LEVEL_DEALS of `deals` (unknown values get none)."""
    kinds = [tuple(f"{f}={d.firmographics.get(f)}" for f in LEAD_FIELDS if d.firmographics.get(f)) for d in deals]
    counts: dict[str, int] = {}
    for ks in kinds:
        for k in ks:
            counts[k] = counts.get(k, 0) + 1
    names = ("intercept", *sorted(k for k, c in counts.items() if c >= MIN_LEVEL_DEALS))
    index = {k: j for j, k in enumerate(names)}
    rows: dict[tuple[int, ...], int] = {}
    kind = np.array([rows.setdefault(tuple(index[k] for k in ks if k in index), len(rows)) for ks in kinds], dtype=int)
    x = np.zeros((len(rows), len(names)))
    x[:, 0] = 1.0
    for cols, r in rows.items():
        x[r, list(cols)] = 1.0
    return LeadTable(names, x, kind, np.array([d.won for d in deals], dtype=float))


def expected_for(table: LeadTable, own: Sequence[int], peers: Sequence[int], *, lead_mix: bool = True) -> Expected:
    """What peers (deals `peers` of the table) would close on the leads of deals `own`. Without `lead_mix`,
    or with no lead kinds to go on, it is peers' raw close rate."""
    return expected_from(table, *kind_counts(table, own), *kind_counts(table, peers), lead_mix=lead_mix)


def kind_counts(table: LeadTable, deals: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(deals, wins) per kind of lead among these deals of the table: whole numbers, so sums of them are exact."""
    kind = table.kind[list(deals)]
    size = len(table.kinds)
    return (np.bincount(kind, minlength=size).astype(float),
            np.bincount(kind, weights=table.won[list(deals)], minlength=size))


def expected_from(table: LeadTable, n_own: np.ndarray, _own_wins: np.ndarray, n_peer: np.ndarray, wins: np.ndarray,
                  *, lead_mix: bool = True) -> Expected:
    """expected_for from the counts per kind of lead (kind_counts): an SDR's peers are the team less the SDR, so
    a caller can subtract counts instead of gathering every peer's deals once per SDR (quadratic in the team)."""
    deals = float(n_peer.sum())
    peer_rate = float(wins.sum()) / deals
    raw = Expected(peer_rate, peer_rate * (1 - peer_rate) / deals, peer_rate, ())
    if not lead_mix or len(table.names) == 1:
        return raw
    mean, cov = _fit_counts(table.kinds, wins, n_peer)
    p = 1.0 / (1.0 + np.exp(-np.clip(table.kinds @ mean, -30, 30)))
    share = n_own / n_own.sum()
    slope = (share * p * (1 - p)) @ table.kinds  # d(expected rate) / d(coefficients)
    rate = float(share @ p)
    mix = _mix(table.names, share @ table.kinds, (n_peer / n_peer.sum()) @ table.kinds,
               _rates_there(table.kinds, wins, n_peer), peer_rate, rate - peer_rate)
    return Expected(rate, float(slope @ cov @ slope), peer_rate, mix)


def _fit_counts(x: np.ndarray, wins: np.ndarray, n: np.ndarray, iterations: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Binomial logistic regression on (wins, deals) per kind of lead, N(0, PRIOR_SD^2) priors on the lead
    kinds (the intercept nearly free): Newton's method, then the Laplace covariance."""
    precision = np.full(x.shape[1], 1.0 / PRIOR_SD**2)
    precision[0] = 1.0 / 25.0
    beta = np.zeros(x.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ beta, -30, 30)))
        hessian = (x * (n * p * (1 - p))[:, None]).T @ x + np.diag(precision)
        step = np.linalg.solve(hessian, x.T @ (wins - n * p) - precision * beta)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-8:
            break
    p = 1.0 / (1.0 + np.exp(-np.clip(x @ beta, -30, 30)))
    hessian = (x * (n * p * (1 - p))[:, None]).T @ x + np.diag(precision)
    return beta, np.linalg.inv(hessian)


def _rates_there(x: np.ndarray, wins: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Peers' raw close rate among deals with each lead kind (NaN where they have none)."""
    deals = n @ x
    with np.errstate(invalid="ignore", divide="ignore"):
        out: np.ndarray = (wins @ x) / deals
    return out


def _mix(names: Sequence[str], own_share: np.ndarray, peer_share: np.ndarray, rate_there: np.ndarray,
         peer_rate: float, worth: float) -> tuple[dict[str, Any], ...]:
    """The lead kinds that make the SDR's mix harder (worth < 0) or easier than peers': the SDR's extra share
    of them times how far peers' close rate there sits from their overall rate."""
    if abs(worth) < MIX_WORTH:
        return ()
    rows: list[dict[str, Any]] = []
    for j in range(1, len(names)):
        if not np.isfinite(rate_there[j]) or own_share[j] <= peer_share[j]:
            continue
        points = (own_share[j] - peer_share[j]) * (rate_there[j] - peer_rate)
        if points * worth > 0:
            field, level = names[j].split("=", 1)
            rows.append({"field": field, "level": level, "share": round(float(own_share[j]), 3),
                         "peer_share": round(float(peer_share[j]), 3), "peer_rate_there": round(float(rate_there[j]), 4),
                         "points": round(100 * float(points), 2)})
    return tuple(sorted(rows, key=lambda r: -abs(float(r["points"])))[:NAMED])


def lead_words(field: str, level: str) -> str:
    """A lead kind in a manager's words: "companies with fewer than 50 employees", "event leads"."""
    if field == "employees":
        if level.startswith("<"):
            return f"companies with fewer than {level[1:]} employees"
        return f"companies with {level.replace('-', ' to ').replace('+', ' or more')} employees"
    if field == "lead_source":
        return f"{level} leads"
    if field == "country":
        return f"companies in {level}"
    return f"{level} companies"


def mix_text(flag: Mapping[str, Any]) -> str:
    """One sentence on how the SDR's leads differ from peers' when that moves the yardstick (else empty)."""
    mix, points = flag.get("mix") or [], float(flag.get("mix_points") or 0.0)
    if abs(points) < 100 * MIX_WORTH:
        return ""
    kinds = "; ".join(f"{100 * m['share']:.0f}% {lead_words(m['field'], m['level'])} (peers "
                      f"{100 * m['peer_share']:.0f}%), where peers close {100 * m['peer_rate_there']:.0f}%" for m in mix)
    harder = "harder" if points > 0 else "easier"
    return (f"Their leads were {harder} than peers': peers close {100 * flag['raw_peer_rate']:.0f}% of all their "
            f"deals but would close {100 * flag['peer_rate']:.0f}% of leads like these"
            f"{': ' + kinds if kinds else ''}. ")
