"""The one statistics kit of the learning loops: seeded draws, Beta posteriors, empirical-Bayes priors,
P(A > B), Thompson sampling, a shrunk logistic regression, and always-valid evidence (e-values).

Everything is deterministic: Monte Carlo draws use a generator seeded from the names involved, and
P(A > B) integrates on a grid, so the same data always gives the same numbers (and decision keys).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats  # type: ignore[import-untyped]

LEVEL = 0.90  # interval shown to people
DRAWS = 20_000
MIN_STRENGTH, MAX_STRENGTH = 2.0, 40.0
TOO_FEW = "too few to tell"
_GRID = np.linspace(0.0, 1.0, 4001)[1:-1]

ALPHA = 0.05  # the false-discovery rate every loop promises across the candidates it looks at, at any look
TAU_LOG_ODDS = 0.5  # the size of effect the evidence is tuned to find (log-odds), as the logistic prior
TAU_POINTS = (0.025, 0.05, 0.10, 0.20, 0.40)  # gaps between two rates: an even mix over scales (2.5 to 40 points)


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


FLAT = Prior(0.5, 2.0)  # Beta(1, 1)


def pooled_prior(counts: Iterable[tuple[int, int]], *, default_strength: float = 10.0,
                 min_strength: float = MIN_STRENGTH, max_strength: float = MAX_STRENGTH) -> Prior:
    """Empirical-Bayes prior from (successes, trials) per group: pooled mean, method-of-moments strength.

    The spread between groups beyond binomial noise sets the strength (few groups: `default_strength`);
    no spread beyond noise gives `max_strength`, so every group is shrunk towards the pool.
    """
    pairs = [(k, n) for k, n in counts if n > 0]
    total_n = sum(n for _, n in pairs)
    if total_n == 0:
        return Prior(0.5, min_strength)
    mean = min(max(sum(k for k, _ in pairs) / total_n, 1e-3), 1 - 1e-3)
    strength = default_strength
    if len(pairs) >= 3:
        rates = np.array([k / n for k, n in pairs])
        weights = np.array([n for _, n in pairs], dtype=float)
        observed = float(np.average((rates - mean) ** 2, weights=weights))
        between = observed - mean * (1 - mean) * len(pairs) / total_n
        strength = mean * (1 - mean) / between - 1 if between > 1e-9 else max_strength
    return Prior(mean, float(min(max(strength, min_strength), max_strength)))


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

    def interval(self, level: float = LEVEL) -> tuple[float, float]:
        """Central interval at `level` (the stored lo/hi are at LEVEL)."""
        tail = (1.0 - level) / 2.0
        lo, hi = stats.beta.ppf([tail, 1.0 - tail], self.alpha, self.beta)
        return float(lo), float(hi)


def posterior(k: int, n: int, prior: Prior = FLAT, level: float = LEVEL) -> Posterior:
    """Beta posterior of k successes in n trials under the prior, with a central interval."""
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= successes <= trials, got {k}/{n}")
    a, b = prior.alpha + k, prior.beta + (n - k)
    tail = (1 - level) / 2
    lo, hi = stats.beta.ppf([tail, 1 - tail], a, b)
    return Posterior(n=n, k=k, alpha=a, beta=b, mean=a / (a + b), lo=float(lo), hi=float(hi))


def prob_greater(x: Posterior, y: Posterior, margin: float = 0.0) -> float:
    """P(rate x > rate y + margin) under independent Beta posteriors, on a fine grid (exact to ~1e-4)."""
    density = stats.beta.pdf(_GRID, x.alpha, x.beta)
    below = stats.beta.cdf(np.clip(_GRID - margin, 0.0, 1.0), y.alpha, y.beta)
    below[_GRID - margin <= 0.0] = 0.0
    weights = density / density.sum()
    return float(np.clip((weights * below).sum(), 0.0, 1.0))


def difference(x: Posterior, y: Posterior, *, draws: int = 40_000, seed: str = "") -> tuple[float, tuple[float, float]]:
    """Posterior mean and 90% interval of rate x - rate y (seeded Monte Carlo)."""
    rng = rng_for("difference", seed, x.alpha, x.beta, y.alpha, y.beta)
    delta = rng.beta(x.alpha, x.beta, draws) - rng.beta(y.alpha, y.beta, draws)
    tail = (1.0 - LEVEL) / 2.0
    return float(delta.mean()), (float(np.quantile(delta, tail)), float(np.quantile(delta, 1.0 - tail)))


def thompson(arms: Mapping[str, Posterior], rng: np.random.Generator, draws: int = DRAWS) -> dict[str, Any]:
    """P(best) per arm and the expected loss of picking each, from joint posterior draws."""
    names: Sequence[str] = sorted(arms)
    samples = np.column_stack([rng.beta(arms[a].alpha, arms[a].beta, draws) for a in names])
    best = samples.max(axis=1)
    winners = samples.argmax(axis=1)
    p_best = {a: float(np.mean(winners == i)) for i, a in enumerate(names)}
    loss = {a: float(np.mean(best - samples[:, i])) for i, a in enumerate(names)}
    return {"p_best": p_best, "expected_loss": loss}


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
              intercept_sd: float = 5.0, iterations: int = 50,
              gram: Callable[[np.ndarray], np.ndarray] | None = None) -> LogitFit:
    """Newton's method on the log posterior with N(0, prior_sd^2) priors: small samples stay near zero.

    gram(w) = x' diag(w) x, the Hessian's data part: the dense product by default (rows x columns^2 each step);
    a caller whose design has structure (one-hot blocks) passes a faster one with the same value."""
    gram = gram or (lambda w: (x * w[:, None]).T @ x)
    if x.ndim != 2 or x.shape[0] != y.shape[0] or x.shape[1] != len(names):
        raise ValueError(f"shape mismatch: x {x.shape}, y {y.shape}, {len(names)} names")
    precision = np.full(x.shape[1], 1.0 / prior_sd**2)
    precision[0] = 1.0 / intercept_sd**2
    beta = np.zeros(x.shape[1])
    for _ in range(iterations):
        p = _sigmoid(x @ beta)
        gradient = x.T @ (y - p) - precision * beta
        hessian = gram(p * (1 - p)) + np.diag(precision)
        step = np.linalg.solve(hessian, gradient)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-8:
            break
    p = _sigmoid(x @ beta)
    hessian = gram(p * (1 - p)) + np.diag(precision)
    return LogitFit(tuple(names), beta, np.linalg.inv(hessian), int(x.shape[0]))


def e_normal(estimate: float, sd: float, *, direction: int = 1, tau: float | Sequence[float] = TAU_LOG_ODDS) -> float:
    """Always-valid e-value that an effect lies on the `direction` side of zero.

    A one-sided normal-mixture likelihood ratio (half-normal mixing with sd `tau`) on an estimate with
    standard error `sd`: under "no effect" its expectation is at most 1 at every weekly look (the
    estimate is a running, approximately Gaussian statistic), so by Ville's inequality it crosses
    1/alpha with probability at most alpha however often we look. Evidence accumulates as sd shrinks.
    Several taus: their average, itself an e-value, within a factor len(tau) of the best one.
    """
    if sd <= 0 or not np.isfinite(sd) or not np.isfinite(estimate):
        return 1.0
    if not isinstance(tau, float | int):
        return float(np.mean([e_normal(estimate, sd, direction=direction, tau=t) for t in tau]))
    r = tau**2 / sd**2
    z = direction * estimate / sd
    log_e = (np.log(2.0) - 0.5 * np.log1p(r) + z * z * r / (2 * (1 + r))
             + float(stats.norm.logcdf(z * np.sqrt(r / (1 + r)))))
    return float(np.exp(min(log_e, 700.0)))


def z_needed(bar: float, sd: float, *, tau: float | Sequence[float] = TAU_LOG_ODDS) -> float:
    """How many standard errors from zero an estimate with standard error `sd` must sit for
    `e_normal` to reach `bar` (bisection; e_normal rises with z): the bar in the units people know."""
    lo, hi = 0.0, 40.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if e_normal(mid * sd, sd, tau=tau) >= bar else (mid, hi)
    return hi


def e_gap(k1: int, n1: int, k0: int, n0: int, *, tau: float | Sequence[float] = TAU_POINTS) -> float:
    """Signed e-value for rate 1 vs rate 0 (positive: evidence rate 1 is higher; negative: lower)."""
    if n1 == 0 or n0 == 0:
        return 1.0
    pooled = (k1 + k0 + 1) / (n1 + n0 + 2)
    sd = float(np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0)))
    gap = k1 / n1 - k0 / n0
    up, down = e_normal(gap, sd, tau=tau), e_normal(gap, sd, direction=-1, tau=tau)
    return up if up >= down else -down


def e_threshold(tests: int, discoveries: int = 1, alpha: float = ALPHA) -> float:
    """The e-value the k-th strongest of `tests` candidates needs under e-BH (K / (alpha k))."""
    return max(tests, 1) / (alpha * max(discoveries, 1))


def e_bh(evidence: Mapping[str, float], *, tests: int | None = None, alpha: float = ALPHA) -> set[str]:
    """e-BH (Wang & Ramdas): the candidates whose e-values are discoveries at false-discovery rate alpha.

    Valid under any dependence between the candidates; `tests` counts every candidate looked at,
    including those left out of `evidence` (they count as e = 0).
    """
    k_all = tests if tests is not None else len(evidence)
    ranked = sorted(evidence.items(), key=lambda kv: -kv[1])
    found = 0
    for k, (_, e) in enumerate(ranked, start=1):
        if e >= e_threshold(k_all, k, alpha):
            found = k
    return {name for name, _ in ranked[:found]}


def judge(cells: Mapping[str, tuple[float, float, int]], *, min_n: int, min_lift: float,
          alpha: float = ALPHA) -> dict[str, str]:
    """Verdict per candidate from (signed e-value, lift, n): 'better' / 'worse' for e-BH discoveries whose
    lift is big enough to matter, TOO_FEW under the minimum sample, else 'unclear'."""
    eligible = {name: abs(e) for name, (e, lift, n) in cells.items()
                if n >= min_n and abs(lift) >= min_lift and (e > 0) == (lift > 0)}
    found = e_bh(eligible, tests=len(cells), alpha=alpha)
    out = {}
    for name, (e, _, n) in cells.items():
        out[name] = TOO_FEW if n < min_n else ("better" if e > 0 else "worse") if name in found else "unclear"
    return out


def carried(previous: Mapping[str, Any] | None, e_value: float, keep: int = 12) -> dict[str, Any]:
    """The running record of one candidate's e-value across weekly looks (JSON-ready, for versioned state)."""
    history = [*list((previous or {}).get("e_history", [])), round(float(e_value), 4)][-keep:]
    return {"e_value": round(float(e_value), 4), "looks": int((previous or {}).get("looks", 0)) + 1,
            "e_history": history}


def needed_n(gap: float, rate: float, *, threshold: float, tau: float | Sequence[float] = TAU_POINTS,
             cap: int = 5000) -> int | None:
    """Deals an SDR needs before a true `gap` (points below a pool at `rate`) would typically clear
    `threshold` (the e-value reaches it when the observed gap equals the true one); None past `cap`."""
    var = max(rate * (1 - rate), 1e-6)
    n = 5
    while n <= cap:
        if e_normal(gap, float(np.sqrt(var / n)), tau=tau) >= threshold:
            return n
        n = int(n * 1.1) + 1
    return None
