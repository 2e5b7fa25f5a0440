"""Which pairs of features interact (GA2M's FAST idea): a few crossed groups keep the model additive.

After the additive fit, each candidate pair is scored by the one-step Newton gain of its crossed
cells on the residuals; the best few that beat a complexity penalty join the model as one more
group each ("Route To Market x amount"), still explained by one contribution per deal.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np

MAX_PAIRS = 4
MAX_CELLS = 400  # a pair with more cells than this is too sparse to learn or to explain
RIDGE = 10.0  # Newton step regulariser: cells with little weight cannot buy a large gain


def find_pairs(codes: Mapping[str, np.ndarray], widths: Mapping[str, int], y: np.ndarray, p: np.ndarray, *,
               limit: int = MAX_PAIRS, exclude: Sequence[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    """The pairs whose crossed cells explain most of what the additive model left, best first.
    codes: per group, each row's level index; widths: per group, its number of levels."""
    g, h = y - p, p * (1 - p)
    scored = []
    for a, b in itertools.combinations(sorted(codes), 2):
        if (a, b) in exclude:
            continue
        width = widths[a] * widths[b]
        if width > MAX_CELLS:
            continue
        cell = codes[a] * widths[b] + codes[b]
        sum_g = np.bincount(cell, weights=g, minlength=width)
        sum_h = np.bincount(cell, weights=h, minlength=width)
        gain = float(np.sum(sum_g**2 / (sum_h + RIDGE)))
        used = int(np.count_nonzero(sum_h))
        if gain > 2.0 * used + 10.0:  # beyond what noise buys with that many cells (AIC-like)
            scored.append((gain - 2.0 * used, a, b))
    scored.sort(reverse=True)
    return [(a, b) for _, a, b in scored[:limit]]
