"""What the handoff loop keeps between runs: the experiment's two playbooks, what it learned, its readouts."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from jobs.loops.handoff.flags import MARGIN
from jobs.loops.handoff.model import MATURITY_DAYS
from jobs.loops.handoff.playbook import BASELINE

DEFAULTS: dict[str, Any] = {"tenant": "default", "unit": "sdr", "postmortem_days": 28, "arms": {},
                            "maturity_days": MATURITY_DAYS, "flag_margin": MARGIN}


def _baseline_books() -> dict[str, dict[str, Any]]:
    return {"control": copy.deepcopy(BASELINE), "treatment": copy.deepcopy(BASELINE)}


@dataclass(frozen=True)
class HandoffState:
    """The tenant's config (arm hashing, unit, look-backs), the control and treatment playbooks, the
    experiment (start, evidence bar), approvals history, per-signal running evidence and raised bars;
    once learned: the signal model, SDR arms and flags, the experiment's readout and its series."""

    config: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULTS))
    playbooks: Mapping[str, Mapping[str, Any]] = field(default_factory=_baseline_books)
    experiment: Mapping[str, Any] = field(default_factory=lambda: {"started_at": None})
    history: tuple[Mapping[str, Any], ...] = ()
    readouts: tuple[Mapping[str, Any], ...] = ()
    evidence: Mapping[str, Any] = field(default_factory=dict)
    bars: Mapping[str, float] = field(default_factory=dict)
    model: Mapping[str, Any] | None = None  # the rest is None/empty until the first learn
    sdr_arms: Mapping[str, str] = field(default_factory=dict)
    flags: tuple[Mapping[str, Any], ...] = ()
    readout: Mapping[str, Any] | None = None
    learned_at: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """From a stored version; a missing part takes what a fresh state has (as learn always filled it)."""
        fresh = cls()
        return cls(config=dict(data.get("config") or fresh.config), playbooks=dict(data.get("playbooks") or fresh.playbooks),
                   experiment=dict(data.get("experiment") or fresh.experiment), history=tuple(data.get("history") or ()),
                   readouts=tuple(data.get("readouts") or ()), evidence=dict(data.get("evidence") or {}),
                   bars=dict(data.get("bars") or {}), model=data.get("model"), sdr_arms=dict(data.get("sdr_arms") or {}),
                   flags=tuple(data.get("flags") or ()), readout=data.get("readout"), learned_at=data.get("learned_at"))

    def to_json(self) -> dict[str, Any]:
        """The stored shape: what learn adds is written once it has run."""
        out: dict[str, Any] = {
            "config": dict(self.config), "playbooks": dict(self.playbooks), "experiment": dict(self.experiment),
            "history": [dict(h) for h in self.history], "readouts": [dict(r) for r in self.readouts],
            "evidence": dict(self.evidence), "bars": dict(self.bars)}
        if self.learned_at is not None:
            out.update(model=self.model, sdr_arms=dict(self.sdr_arms), flags=[dict(f) for f in self.flags],
                       readout=self.readout, learned_at=self.learned_at)
        return out
