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
from jobs.loops.stats import fit_logit

LEAD_FIELDS = ("employees", "industry", "lead_source", "country")  # what the lead is, not what the SDR did
MIN_LEVEL_DEALS = 20  # a lead kind needs this many closed deals before it gets its own column
PRIOR_SD = 1.0  # log-odds: lead kinds move close rates by up to about 1, and thousands of deals decide
MIX_WORTH = 0.01  # the mix is named when it moves the expected close rate by at least a point
NAMED = 2  # lead kinds named at most


@dataclass(frozen=True)
class LeadTable:
    """Every closed deal's lead kinds as 0/1 columns (first column the intercept) and its outcome."""

    names: tuple[str, ...]
    x: np.ndarray
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
    kinds = [[f"{f}={d.firmographics.get(f)}" for f in LEAD_FIELDS if d.firmographics.get(f)] for d in deals]
    counts: dict[str, int] = {}
    for ks in kinds:
        for k in ks:
            counts[k] = counts.get(k, 0) + 1
    names = ("intercept", *sorted(k for k, c in counts.items() if c >= MIN_LEVEL_DEALS))
    index = {k: j for j, k in enumerate(names)}
    x = np.zeros((len(deals), len(names)))
    x[:, 0] = 1.0
    for i, ks in enumerate(kinds):
        x[i, [index[k] for k in ks if k in index]] = 1.0
    return LeadTable(names, x, np.array([d.won for d in deals], dtype=float))


def expected_for(table: LeadTable, own: Sequence[int], peers: Sequence[int], *, lead_mix: bool = True) -> Expected:
    """What peers (rows `peers` of the table) would close on the leads in rows `own`. Without `lead_mix`,
    or with no lead kinds to go on, it is peers' raw close rate."""
    y = table.won[list(peers)]
    peer_rate = float(y.mean())
    raw = Expected(peer_rate, peer_rate * (1 - peer_rate) / len(y), peer_rate, ())
    if not lead_mix or len(table.names) == 1:
        return raw
    xp, xo = table.x[list(peers)], table.x[list(own)]
    fit = fit_logit(xp, y, table.names, prior_sd=PRIOR_SD)
    p = fit.predict(xo)
    slope = ((p * (1 - p))[:, None] * xo).mean(axis=0)  # d(mean prediction) / d(coefficients)
    rate = float(p.mean())
    return Expected(rate, float(slope @ fit.cov @ slope), peer_rate, _mix(table.names, xo, xp, y, rate - peer_rate))


def _mix(names: Sequence[str], xo: np.ndarray, xp: np.ndarray, y: np.ndarray, worth: float) -> tuple[dict[str, Any], ...]:
    """The lead kinds that make the SDR's mix harder (worth < 0) or easier than peers': share difference
    times how far peers' close rate there sits from their overall rate."""
    if abs(worth) < MIX_WORTH:
        return ()
    own_share, peer_share = xo.mean(axis=0), xp.mean(axis=0)
    rows = []
    for j in range(1, len(names)):
        there = xp[:, j] == 1
        if not there.any():
            continue
        rate_there = float(y[there].mean())
        points = (own_share[j] - peer_share[j]) * (rate_there - float(y.mean()))
        if points * worth > 0 and own_share[j] > peer_share[j]:
            field, level = names[j].split("=", 1)
            rows.append({"field": field, "level": level, "share": round(float(own_share[j]), 3),
                         "peer_share": round(float(peer_share[j]), 3), "peer_rate_there": round(rate_there, 4),
                         "points": round(100 * points, 2)})
    return tuple(sorted(rows, key=lambda r: -abs(r["points"]))[:NAMED])


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
