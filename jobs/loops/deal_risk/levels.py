"""One risk scale: the score, its level and the win chance shown, all from one calibrated probability.

The score is the calibrated probability of losing, in percent (0-100). The level is a function of
that integer score alone, with cut-offs set relative to the tenant's base loss rate b (the share
of its closed deals that were lost), so "High" means a real excess of risk, not a quantile:

    Low     score <= 100 b            no more risk than the tenant's typical deal
    Medium  100 b < score < high      above typical
    High    score >= high             odds of losing at least HIGH_ODDS x the typical deal's

Because the level depends on the score only (one monotone step function), a score never sits in
a level that contradicts it on the card, the field, the deal list or the morning task.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jobs.loops import labels

HIGH_ODDS = 2.0  # High: the odds of losing are at least twice the typical deal's
DEFAULT_BASE = 0.7  # B2B pipelines lose about 70% of deals: the base rate until the tenant has its own
MIN_STAGE_N = 20  # closed-deal moments needed before a stage has its own "typical" win chance


@dataclass(frozen=True)
class RiskScale:
    """Cut-offs on the 0-100 score, derived from the tenant's base loss rate."""

    base: float
    medium: int  # the lowest score that is Medium
    high: int  # the lowest score that is High

    @classmethod
    def for_base_rate(cls, base: float | None) -> RiskScale:
        b = min(max(float(base if base is not None else DEFAULT_BASE), 0.01), 0.98)
        odds = HIGH_ODDS * b / (1 - b)
        medium = math.floor(100 * b) + 1
        high = max(math.ceil(100 * odds / (1 + odds)), medium + 1)
        return cls(round(b, 4), min(medium, 99), min(high, 100))

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> RiskScale:
        if not data or "base" not in data:
            return cls.for_base_rate(None)
        return cls.for_base_rate(float(data["base"]))

    def to_json(self) -> dict[str, Any]:
        return {"base": self.base, "medium": self.medium, "high": self.high}

    def level(self, score: int) -> str:
        """The level of a score: monotone step function of the score alone."""
        return "high" if score >= self.high else "medium" if score >= self.medium else "low"


def score_of(p_loss: float) -> int:
    """The 0-100 score of a calibrated probability of losing."""
    return int(round(100 * min(max(float(p_loss), 0.0), 1.0)))


def stage_win_rates(stages: Sequence[str], lost: Sequence[float]) -> dict[str, dict[str, float]]:
    """Per stage label, the share of closed deals that were won after being in that stage (typical win chance)."""
    counts: dict[str, list[float]] = {}
    for stage, y in zip(stages, lost, strict=True):
        entry = counts.setdefault(str(stage), [0.0, 0.0])
        entry[0] += 1.0 - float(y)
        entry[1] += 1.0
    return {s: {"win": round(w / n, 4), "n": int(n)} for s, (w, n) in sorted(counts.items()) if n >= MIN_STAGE_N and s}


def display(score: int, scale: RiskScale, stage: str, stage_rates: Mapping[str, Any]) -> dict[str, Any]:
    """What the card, field and task show about one score: level, win chance and the stage's typical one."""
    typical = (stage_rates.get(stage) or {}).get("win")
    where = f"deals in {stage}" if typical is not None else "all deals"
    typical = typical if typical is not None else 1.0 - scale.base
    level = scale.level(score)
    return {"level": level, "level_label": labels.level(level), "win_chance": 100 - score,
            "typical_win_chance": int(round(100 * typical)),
            "chance_text": labels.win_chance((100 - score) / 100, typical, where)}
