"""Beta-binomial arithmetic the learning loops share: pooled priors, intervals, comparisons, bandits.

Everything is deterministic: Monte Carlo draws use a generator seeded from the names involved,
so the same data always gives the same numbers (and the same decision keys).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats  # type: ignore[import-untyped]

LEVEL = 0.90  # interval shown to people
DRAWS = 20_000
MIN_STRENGTH, MAX_STRENGTH = 2.0, 40.0
TOO_FEW = "too few to tell"


def rng_for(*names: object) -> np.random.Generator:
    """A generator seeded by the names, so Monte Carlo figures are reproducible."""
    digest = hashlib.sha256("|".join(map(str, names)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


def fingerprint(obj: Any) -> str:
    """A short stable hash of a JSON-ready object: the identity of a proposal."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Prior:
    """Beta prior as a mean and a strength (pseudo-observations), pooled over the groups."""

    mean: float
    strength: float

    @property
    def alpha(self) -> float:
        return self.mean * self.strength

    @property
    def beta(self) -> float:
        return (1.0 - self.mean) * self.strength


def pooled_prior(counts: Iterable[tuple[int, int]], default_strength: float = 10.0) -> Prior:
    """Empirical-Bayes prior from (successes, trials) per group: pooled mean, method-of-moments strength.

    Rare groups are shrunk towards the pooled rate; the strength is clamped so one group never
    overwhelms the prior and a handful of groups never makes it vanish.
    """
    pairs = [(k, n) for k, n in counts if n > 0]
    total_n = sum(n for _, n in pairs)
    if total_n == 0:
        return Prior(0.5, MIN_STRENGTH)
    mean = min(max(sum(k for k, _ in pairs) / total_n, 1e-3), 1 - 1e-3)
    strength = default_strength
    if len(pairs) >= 3:
        rates = np.array([k / n for k, n in pairs])
        weights = np.array([n for _, n in pairs], dtype=float)
        var = float(np.average((rates - mean) ** 2, weights=weights))
        sampling = mean * (1 - mean) * float(np.mean(1.0 / weights))
        between = var - sampling
        strength = mean * (1 - mean) / between - 1 if between > 1e-9 else MAX_STRENGTH
    return Prior(mean, float(min(max(strength, MIN_STRENGTH), MAX_STRENGTH)))


@dataclass(frozen=True, slots=True)
class Posterior:
    """What we believe about one rate: counts, Beta(alpha, beta), mean and interval."""

    n: int
    k: int
    alpha: float
    beta: float
    mean: float
    lo: float
    hi: float

    def as_dict(self) -> dict[str, Any]:
        return {key: (round(v, 4) if isinstance(v, float) else v) for key, v in asdict(self).items()}


def posterior(k: int, n: int, prior: Prior, level: float = LEVEL) -> Posterior:
    """Beta posterior of k successes in n trials under the prior, with a central interval."""
    a, b = prior.alpha + k, prior.beta + (n - k)
    tail = (1 - level) / 2
    lo, hi = stats.beta.ppf([tail, 1 - tail], a, b)
    return Posterior(n=n, k=k, alpha=a, beta=b, mean=a / (a + b), lo=float(lo), hi=float(hi))


def prob_greater(x: Posterior, y: Posterior, rng: np.random.Generator) -> float:
    """P(rate x > rate y) under independent Beta posteriors."""
    dx = rng.beta(x.alpha, x.beta, DRAWS)
    dy = rng.beta(y.alpha, y.beta, DRAWS)
    return float(np.mean(dx > dy))


def decisive_level(tests: int, alpha: float = 0.05) -> float:
    """Posterior probability a finding needs when `tests` findings are looked for at once (Bonferroni)."""
    return 1.0 - alpha / (2 * max(tests, 1))


def verdict(p_better: float, lift: float, n: int, *, tests: int, min_n: int, min_lift: float) -> str:
    """'better' / 'worse' when decisive, TOO_FEW under the minimum sample, else 'unclear'."""
    if n < min_n:
        return TOO_FEW
    need = decisive_level(tests)
    if p_better >= need and lift >= min_lift:
        return "better"
    if p_better <= 1 - need and lift <= -min_lift:
        return "worse"
    return "unclear"


def thompson(arms: Mapping[str, Posterior], rng: np.random.Generator, draws: int = DRAWS) -> dict[str, Any]:
    """P(best) per arm and the expected loss of picking each, from joint posterior draws."""
    names: Sequence[str] = sorted(arms)
    samples = np.column_stack([rng.beta(arms[a].alpha, arms[a].beta, draws) for a in names])
    best = samples.max(axis=1)
    winners = samples.argmax(axis=1)
    p_best = {a: float(np.mean(winners == i)) for i, a in enumerate(names)}
    loss = {a: float(np.mean(best - samples[:, i])) for i, a in enumerate(names)}
    return {"p_best": p_best, "expected_loss": loss}
