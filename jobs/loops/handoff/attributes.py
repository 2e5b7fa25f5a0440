"""Categorical deal attributes (qualification fields, lead source, deal type, firmographics) as the
handoff model's columns, and the qualification rules their evidence supports.

Why this shape: a field with k levels gets k-1 columns against one reference level (the most common),
so two-valued fields never produce complementary columns that share one effect; an empty value is
its own level ("unknown"), because an SDR leaving a box empty is information; a level's effect is
read against the rest of the deals (a contrast over the fitted coefficients), not against one other
level or a small pool; interactions enter only when a score test clears a multiplicity-corrected bar.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats  # type: ignore[import-untyped]

from jobs.loops.stats import LEVEL, LogitFit, difference, fit_logit, posterior

UNKNOWN = "unknown"
OTHER = "other"
MIN_LEVEL = 15  # deals a level needs (and the rest need) for a column of its own
MIN_RULE_EFFECT = 0.15  # log-odds a level must move (against the rest) to be worth a rule
MAX_PAIRS = 3
PRIOR_SD = 1.0


def level_of(value: object) -> str:
    """A raw CRM value as a level label: empty or missing is 'unknown' (its own level)."""
    text = "" if value is None else str(value).strip()
    return text if text else UNKNOWN


@dataclass(frozen=True, slots=True)
class FieldCoding:
    """One field's levels: `levels` get columns; `reference` (the most common) and the rare levels do not."""

    field: str
    reference: str
    levels: tuple[str, ...]
    counts: Mapping[str, int]
    qualification: bool = True  # a qualification item (require it) vs a deal attribute (treat as qualified)

    def level(self, value: object) -> str:
        """The coded level of a raw value: rare and unseen values are 'other'."""
        label = level_of(value)
        return label if label in self.counts else OTHER

    def column(self, level: str) -> str:
        return f"{self.field}={level}"

    @property
    def columns(self) -> list[str]:
        return [self.column(v) for v in self.levels]


def code_fields(rows: Sequence[Mapping[str, object]], fields: Sequence[str], *, min_level: int = MIN_LEVEL,
                attributes: Sequence[str] = ()) -> list[FieldCoding]:
    """Codings of the fields that vary enough; levels seen fewer than `min_level` times pool into 'other'."""
    out = []
    for name in fields:
        raw = Counter(level_of(r.get(name)) for r in rows)
        counts: Counter[str] = Counter()
        for level, n in raw.items():
            counts[level if n >= min_level else OTHER] += n
        if len(counts) < 2:
            continue
        reference = max(sorted(counts), key=lambda v: counts[v])
        levels = tuple(v for v in sorted(counts) if v != reference and min_level <= counts[v] <= len(rows) - min_level)
        if levels:
            kept = {v: n for v, n in counts.items() if v != OTHER}
            out.append(FieldCoding(name, reference, levels, kept, qualification=name not in attributes))
    return out


def design(rows: Sequence[Mapping[str, object]], codings: Sequence[FieldCoding],
           pairs: Sequence[tuple[str, str]] = ()) -> tuple[np.ndarray, list[str]]:
    """Intercept, one column per coded level, and the product columns of accepted interactions."""
    names = ["intercept", *(c for f in codings for c in f.columns)]
    index = {n: i for i, n in enumerate(names)}
    x = np.zeros((len(rows), len(names) + len(pairs)))
    x[:, 0] = 1.0
    for r, row in enumerate(rows):
        for coding in codings:
            j = index.get(coding.column(coding.level(row.get(coding.field))))
            if j is not None:
                x[r, j] = 1.0
    for k, (a, b) in enumerate(pairs):
        x[:, len(names) + k] = x[:, index[a]] * x[:, index[b]]
    return x, [*names, *(f"{a} & {b}" for a, b in pairs)]


@dataclass(frozen=True)
class AttributeModel:
    """The fitted model over coded fields, with the data it saw (for contrasts and counts)."""

    codings: tuple[FieldCoding, ...]
    pairs: tuple[tuple[str, str], ...]
    fit: LogitFit
    x: np.ndarray
    y: np.ndarray


def fit_attributes(rows: Sequence[Mapping[str, object]], won: Sequence[bool], codings: Sequence[FieldCoding],
                   *, prior_sd: float = PRIOR_SD, max_pairs: int = MAX_PAIRS) -> AttributeModel:
    """Main effects first; then the interactions a score test supports beyond doubt (Bonferroni)."""
    y = np.asarray(won, dtype=float)
    x, names = design(rows, codings)
    fitted = fit_logit(x, y, names, prior_sd=prior_sd)
    pairs = supported_pairs(x, y, names, fitted, codings, max_pairs=max_pairs)
    if pairs:
        x, names = design(rows, codings, pairs)
        fitted = fit_logit(x, y, names, prior_sd=prior_sd)
    return AttributeModel(tuple(codings), tuple(pairs), fitted, x, y)


def supported_pairs(x: np.ndarray, y: np.ndarray, names: Sequence[str], fitted: LogitFit,
                    codings: Sequence[FieldCoding], *, max_pairs: int = MAX_PAIRS,
                    min_level: int = MIN_LEVEL) -> list[tuple[str, str]]:
    """Level pairs of different fields whose product column a score test finds (all pairs counted)."""
    owner = {c: f.field for f in codings for c in f.columns}
    cols = [j for j, n in enumerate(names) if n in owner]
    cand = [(a, b) for i, a in enumerate(cols) for b in cols[i + 1:] if owner[names[a]] != owner[names[b]]]
    z = np.column_stack([x[:, a] * x[:, b] for a, b in cand]) if cand else np.zeros((len(y), 0))
    support = z.sum(axis=0)
    keep = (support >= min_level) & (len(y) - support >= min_level)
    cand, z = [c for c, k in zip(cand, keep, strict=True) if k], z[:, keep]
    if not cand:
        return []
    p = fitted.predict(x)
    w = p * (1 - p)
    score = z.T @ (y - p)
    info = (z * w[:, None]).T @ z
    cross = (x * w[:, None]).T @ z
    information = np.diag(info) - np.sum(cross * (fitted.cov @ cross), axis=0)
    chi = score**2 / np.maximum(information, 1e-12)
    bar = float(stats.chi2.isf(0.05 / len(cand), 1))
    ranked = sorted((float(c), i) for i, c in enumerate(chi) if c > bar)[::-1][:max_pairs]
    return [(names[cand[i][0]], names[cand[i][1]]) for _, i in ranked]


@dataclass(frozen=True, slots=True)
class LevelEffect:
    """A level against the rest of the deals: adjusted log-odds contrast and the raw win rates."""

    field: str
    level: str
    effect: float
    sd: float
    n_with: int
    wins_with: int
    n_without: int
    wins_without: int

    @property
    def z(self) -> float:
        return self.effect / max(self.sd, 1e-12)


def level_effects(model: AttributeModel, rows: Sequence[Mapping[str, object]]) -> list[LevelEffect]:
    """Every level of every coded field (the reference too) against the rest of the deals."""
    out = []
    names = list(model.fit.names)
    for coding in model.codings:
        levels = np.array([coding.level(r.get(coding.field)) for r in rows], dtype=object)
        for level in (coding.reference, *coding.levels):
            out.append(_contrast(model, names, coding, levels, level))
    return out


def _contrast(model: AttributeModel, names: list[str], coding: FieldCoding, levels: np.ndarray,
              level: str) -> LevelEffect:
    """c'beta with c = e_level - sum of the other levels' coefficients weighted by their share of the rest."""
    on = levels == level
    c = np.zeros(len(names))
    if coding.column(level) in names:
        c[names.index(coding.column(level))] = 1.0
    rest = max(int((~on).sum()), 1)
    for other in coding.levels:
        if other != level:
            c[names.index(coding.column(other))] -= float((levels == other).sum()) / rest
    effect = float(c @ model.fit.mean)
    sd = float(np.sqrt(max(c @ model.fit.cov @ c, 1e-12)))
    y = model.y
    return LevelEffect(coding.field, level, effect, sd, int(on.sum()), int(y[on].sum()), int((~on).sum()),
                       int(y[~on].sum()))


@dataclass(frozen=True, slots=True)
class Rule:
    """A qualification rule in the CRM's own labels: require / treat as qualified / disqualify field = level."""

    op: str  # require | qualify | disqualify
    field: str
    level: str

    def meets(self, row: Mapping[str, object]) -> bool:
        """Does a deal pass the rule (kept or favoured by it)?"""
        match = level_of(row.get(self.field)) == self.level
        return not match if self.op == "disqualify" else match

    @property
    def text(self) -> str:
        if self.op == "require":
            return f"require {self.field} = {self.level}"
        if self.op == "qualify":
            return f"treat {self.field} = {self.level} deals as qualified"
        if self.level == UNKNOWN:
            return f"disqualify deals where {self.field} is unknown"
        return f"disqualify {self.field} = {self.level}"


def decisive_z(tests: int, alpha: float = 0.05) -> float:
    """One-sided z a contrast must clear when `tests` contrasts are looked at once (Bonferroni), at least 3."""
    return max(3.0, float(stats.norm.ppf(1.0 - alpha / max(tests, 1))))


def propose_rules(effects: Sequence[LevelEffect], codings: Sequence[FieldCoding], *,
                  min_effect: float = MIN_RULE_EFFECT) -> list[tuple[Rule, LevelEffect]]:
    """At most one rule per field: its strongest level whose sign is beyond doubt and whose size matters."""
    qualifying = {c.field: c.qualification for c in codings}
    bar = decisive_z(len(effects))
    best: dict[str, tuple[Rule, LevelEffect]] = {}
    for e in effects:
        if e.level == OTHER or abs(e.z) < bar or abs(e.effect) < min_effect:
            continue
        if e.effect > 0 and e.level == UNKNOWN:
            continue  # "require the field to be empty" is no rule anyone would follow
        op = "disqualify" if e.effect < 0 else "require" if qualifying.get(e.field, True) else "qualify"
        held = best.get(e.field)
        if held is None or abs(e.z) > abs(held[1].z):
            best[e.field] = (Rule(op, e.field, e.level), e)
    return sorted(best.values(), key=lambda pair: -abs(pair[1].z))


def rule_outcome(rule: Rule, rows: Sequence[Mapping[str, object]], won: Sequence[bool],
                 seed: str = "") -> dict[str, object]:
    """What following the rule meant on these deals: win rate of those that meet it vs those that do not."""
    meets = np.array([rule.meets(r) for r in rows], dtype=bool)
    y = np.asarray(won, dtype=bool)
    n_in, k_in, n_out, k_out = int(meets.sum()), int(y[meets].sum()), int((~meets).sum()), int(y[~meets].sum())
    out: dict[str, object] = {"rule": rule.text, "n_meets": n_in, "wins_meets": k_in, "n_fails": n_out,
                              "wins_fails": k_out, "win_rate_meets": _rate(k_in, n_in),
                              "win_rate_fails": _rate(k_out, n_out), "difference": None, "interval": None,
                              "level": LEVEL, "claimed_sign_held": None}
    if n_in and n_out:
        mean, (lo, hi) = difference(posterior(k_in, n_in), posterior(k_out, n_out), seed=seed + rule.text)
        out.update(difference=round(mean, 4), interval=[round(lo, 4), round(hi, 4)], claimed_sign_held=mean > 0)
    return out


def _rate(wins: int, n: int) -> float | None:
    return round(wins / n, 4) if n else None


def evidence_line(rule: Rule, e: LevelEffect) -> str:
    """The rule's evidence in plain words: both win rates with their counts and the adjusted effect."""
    inside, outside = _rate(e.wins_with, e.n_with), _rate(e.wins_without, e.n_without)
    lo, hi = e.effect - 1.645 * e.sd, e.effect + 1.645 * e.sd
    return (f"{e.field} = {e.level}: won {e.wins_with} of {e.n_with} ({100 * (inside or 0):.0f}%) vs "
            f"{e.wins_without} of {e.n_without} ({100 * (outside or 0):.0f}%) for the rest; adjusted odds x"
            f"{np.exp(e.effect):.2f} (90% interval x{np.exp(lo):.2f} to x{np.exp(hi):.2f})")
