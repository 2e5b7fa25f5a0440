"""What deal risk keeps between runs: its fitted parts, decoded once, ready to score with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from jobs.loops.deal_risk.levels import RiskScale
from jobs.loops.deal_risk.model import RiskModel
from jobs.loops.deal_risk.signs import StageNorms


@dataclass(frozen=True)
class DealRiskState:
    """The rules, the learned model (None while outcomes are too few) and their blend weight; the stage
    norms and risk levels the scores are read against; recovery moves ranked per warning sign."""

    rules: RiskModel
    model: RiskModel | None = None
    weight: float = 0.0
    mode: str = "rules"
    stage_norms: StageNorms = StageNorms({})
    levels: RiskScale = RiskScale.for_base_rate(None)
    stage_win: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    moves: Mapping[str, Any] = field(default_factory=dict)
    top_signals: tuple[Mapping[str, Any], ...] = ()
    metrics: Mapping[str, Any] = field(default_factory=dict)
    trained_at: str = ""
    model_version: str = ""
    moments: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """From a stored version (every shape deal risk has written: missing parts take their defaults)."""
        model = data.get("model")
        return cls(
            rules=RiskModel.from_json(data["rules"]), model=RiskModel.from_json(model) if model else None,
            weight=float(data.get("weight", 0.0)), mode=str(data.get("mode", "rules")),
            stage_norms=StageNorms.from_json(data.get("stage_norms")), levels=RiskScale.from_json(data.get("levels")),
            stage_win=data.get("stage_win") or {}, moves=data.get("moves") or {}, top_signals=tuple(data.get("top_signals") or ()),
            metrics=data.get("metrics") or {}, trained_at=str(data.get("trained_at", "")),
            model_version=str(data.get("model_version", "")), moments=tuple(data.get("moments") or ()),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "moments": list(self.moments), "weight": self.weight, "mode": self.mode, "rules": self.rules.to_json(),
            "model": self.model.to_json() if self.model else None, "stage_norms": self.stage_norms.to_json(),
            "levels": self.levels.to_json(), "stage_win": self.stage_win, "moves": self.moves,
            "top_signals": [dict(s) for s in self.top_signals], "metrics": self.metrics, "trained_at": self.trained_at,
            "model_version": self.model_version,
        }
