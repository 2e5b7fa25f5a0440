"""The planted ground truth of a simulated org: for tests and benchmarks, never for loops."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class DealTruth:
    """What really drove one deal (SDR-stage signals, discovery, warning signs) and its planted odds."""

    deal_id: str
    sdr_id: str
    arm: str  # control | treatment
    playbook_version: int
    p_win: float
    won: bool  # the drawn outcome (also for deals still open at `now`)
    segment: str | None
    lead_source: str
    true_pains: tuple[str, ...]
    stated_pains: tuple[str, ...]  # in the SDR's note (may include made-up ones)
    discovered_pains: tuple[str, ...]  # uncovered by the BDM in discovery
    meddic: tuple[str, ...]  # elements the SDR captured
    questions_sdr: tuple[str, ...]
    questions_bdm: tuple[str, ...]
    objections: tuple[tuple[str, str], ...]  # (objection type, response id)
    warning_signs: tuple[str, ...]

    @property
    def loss_probability(self) -> float:
        return 1.0 - self.p_win

    @property
    def misaligned_pains(self) -> tuple[str, ...]:
        return tuple(p for p in self.stated_pains if p not in self.true_pains)


@dataclass
class Truth:
    """Planted effects (log-odds of winning) and per-deal truth; README.md documents every key."""

    base_log_odds: float
    pain_effects: dict[str, float]
    misaligned_pain_effect: float
    meddic_effects: dict[str, float]
    lead_source_effects: dict[str, float]
    question_effects: dict[str, float]
    objection_effects: dict[str, float]
    response_effects: dict[str, dict[str, float]]
    warning_signs: dict[str, float]
    icp_segments: list[dict[str, Any]]
    underperforming_sdrs: dict[str, str]  # SDR user id -> cause
    sdr_skill: dict[str, float]
    sequence_reply_rates: dict[str, dict[str, float]]
    arms: dict[str, str]  # SDR user id -> control | treatment
    deals: dict[str, DealTruth] = field(default_factory=dict)
    disqualified: dict[str, int] = field(default_factory=lambda: {"control": 0, "treatment": 0})

    @property
    def effective_questions(self) -> list[str]:
        """Questions that raise win odds, strongest first."""
        return [q for q, e in sorted(self.question_effects.items(), key=lambda kv: -kv[1]) if e > 0]

    @property
    def best_response(self) -> dict[str, str]:
        """The response with the highest effect per objection type."""
        return {k: max(r, key=lambda name: r[name]) for k, r in self.response_effects.items() if r}

    @property
    def better_variant(self) -> dict[str, str]:
        return {s: max(v, key=lambda name: v[name]) for s, v in self.sequence_reply_rates.items() if v}

    @property
    def effects(self) -> dict[str, float]:
        """Every planted effect in one flat dict keyed "kind:id" (e.g. "question:cost_of_inaction")."""
        flat: dict[str, float] = {}
        for kind, table in (("pain", self.pain_effects), ("meddic", self.meddic_effects),
                            ("lead_source", self.lead_source_effects), ("question", self.question_effects),
                            ("objection", self.objection_effects), ("warning_sign", self.warning_signs)):  # fmt: skip
            flat.update({f"{kind}:{k}": v for k, v in table.items()})
        for kind, table in self.response_effects.items():
            flat.update({f"response:{kind}:{r}": v for r, v in table.items()})
        flat.update({f"segment:{s['name']}": s["effect"] for s in self.icp_segments})
        flat["pain_misaligned"] = self.misaligned_pain_effect
        return flat

    def to_dict(self, *, with_deals: bool = True) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "deals"}
        out.update(effective_questions=self.effective_questions, best_response=self.best_response,
                   better_variant=self.better_variant)  # fmt: skip
        if with_deals:
            out["deals"] = {k: {**dataclasses.asdict(v), "loss_probability": v.loss_probability}
                            for k, v in self.deals.items()}  # fmt: skip
        return out
