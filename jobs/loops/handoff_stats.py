"""The statistics of the handoff loop: beta-binomial posteriors, empirical-Bayes priors and a
Bayesian logistic regression (Gaussian prior, Laplace approximation), all deterministic."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.90  # intervals shown to people
_GRID = np.linspace(0.0, 1.0, 4001)[1:-1]


def seeded(*names: object) -> np.random.Generator:
    """Same names, same draws: figures and decision keys are reproducible."""
    digest = hashlib.sha256("|".join(map(str, names)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


@dataclass(frozen=True, slots=True)
class Beta:
    """A Beta posterior over a rate."""

    a: float
    b: float

    @classmethod
    def posterior(cls, wins: int, trials: int, prior: tuple[float, float] = (1.0, 1.0)) -> Beta:
        if trials < 0 or wins < 0 or wins > trials:
            raise ValueError(f"need 0 <= wins <= trials, got {wins}/{trials}")
        return cls(prior[0] + wins, prior[1] + trials - wins)

    @property
    def mean(self) -> float:
        return self.a / (self.a + self.b)

    def interval(self, level: float = LEVEL) -> tuple[float, float]:
        tail = (1.0 - level) / 2.0
        return float(stats.beta.ppf(tail, self.a, self.b)), float(stats.beta.ppf(1.0 - tail, self.a, self.b))


def prob_greater(x: Beta, y: Beta, margin: float = 0.0) -> float:
    """P(p_x > p_y + margin) by integrating on a fine grid (exact to ~1e-4, no randomness)."""
    density = stats.beta.pdf(_GRID, x.a, x.b)
    below = stats.beta.cdf(np.clip(_GRID - margin, 0.0, 1.0), y.a, y.b)
    below[_GRID - margin <= 0.0] = 0.0
    weights = density / density.sum()
    return float(np.clip((weights * below).sum(), 0.0, 1.0))


def difference(x: Beta, y: Beta, *, draws: int = 40_000, seed: str = "") -> tuple[float, tuple[float, float]]:
    """Posterior mean and 90% interval of p_x - p_y (seeded Monte Carlo)."""
    rng = seeded("difference", seed, x, y)
    delta = rng.beta(x.a, x.b, draws) - rng.beta(y.a, y.b, draws)
    tail = (1.0 - LEVEL) / 2.0
    return float(delta.mean()), (float(np.quantile(delta, tail)), float(np.quantile(delta, 1.0 - tail)))


def eb_prior(counts: Sequence[tuple[int, int]], *, min_strength: float = 4.0, max_strength: float = 400.0) -> tuple[float, float]:
    """Empirical-Bayes Beta prior from (wins, trials) per group: pooled mean, method-of-moments strength.

    Between-group variance beyond binomial noise sets the strength; when there is none (a fair
    team) the prior is strong and shrinks every group to the pool.
    """
    pairs = [(w, n) for w, n in counts if n > 0]
    total = sum(n for _, n in pairs)
    if total == 0:
        return (1.0, 1.0)
    mean = min(max(sum(w for w, _ in pairs) / total, 1e-3), 1 - 1e-3)
    if len(pairs) < 3:
        strength = min_strength
    else:
        rates = np.array([w / n for w, n in pairs])
        sizes = np.array([n for _, n in pairs], dtype=float)
        observed = float(np.average((rates - mean) ** 2, weights=sizes))
        noise = mean * (1 - mean) * len(pairs) / total
        between = observed - noise
        strength = max_strength if between <= 0 else mean * (1 - mean) / between - 1.0
    strength = float(min(max(strength, min_strength), max_strength))
    return (mean * strength, (1 - mean) * strength)


@dataclass(frozen=True)
class LogitFit:
    """MAP coefficients and their Laplace covariance; feature 0 is the intercept."""

    names: tuple[str, ...]
    mean: np.ndarray
    cov: np.ndarray
    n: int

    def sd(self, name: str) -> float:
        i = self.names.index(name)
        return float(np.sqrt(self.cov[i, i]))

    def coef(self, name: str) -> float:
        return float(self.mean[self.names.index(name)])

    def interval(self, name: str, level: float = LEVEL) -> tuple[float, float]:
        z = float(stats.norm.ppf(0.5 + level / 2.0))
        m, s = self.coef(name), self.sd(name)
        return m - z * s, m + z * s

    def prob_positive(self, name: str) -> float:
        return float(stats.norm.cdf(self.coef(name) / max(self.sd(name), 1e-12)))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return _sigmoid(x @ self.mean)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
    return out


def fit_logit(x: np.ndarray, y: np.ndarray, names: Sequence[str], *, prior_sd: float = 0.5,
              intercept_sd: float = 5.0, iterations: int = 50) -> LogitFit:
    """Newton's method on the log posterior with N(0, prior_sd^2) priors: small samples stay near zero."""
    if x.ndim != 2 or x.shape[0] != y.shape[0] or x.shape[1] != len(names):
        raise ValueError(f"shape mismatch: x {x.shape}, y {y.shape}, {len(names)} names")
    precision = np.full(x.shape[1], 1.0 / prior_sd**2)
    precision[0] = 1.0 / intercept_sd**2
    beta = np.zeros(x.shape[1])
    hessian = np.diag(precision)
    for _ in range(iterations):
        p = _sigmoid(x @ beta)
        gradient = x.T @ (y - p) - precision * beta
        hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(precision)
        step = np.linalg.solve(hessian, gradient)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-8:
            break
    p = _sigmoid(x @ beta)
    hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(precision)
    return LogitFit(tuple(names), beta, np.linalg.inv(hessian), int(x.shape[0]))
