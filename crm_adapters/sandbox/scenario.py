"""A scenario: every parameter of a simulated sales org (read and validated by scenario_files.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from crm_adapters.sandbox._qualification import QualField, QualNoise


class ScenarioError(ValueError):
    """A scenario file that cannot be used, with the file and key at fault."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One ICP/disqualification condition on an account or lead field."""

    field: str
    op: str
    value: Any

    def matches(self, row: Mapping[str, Any]) -> bool:
        got = row.get(self.field)
        if got is None:
            return False
        op, want = self.op, self.value
        if op == "in":
            return bool(got in want)
        if op == "not_in":
            return bool(got not in want)
        if op == "==":
            return bool(got == want)
        if op == "!=":
            return bool(got != want)
        try:
            return bool({"<": got < want, "<=": got <= want, ">": got > want, ">=": got >= want}[op])
        except TypeError:
            return False

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "op": self.op, "value": self.value}


@dataclass(frozen=True, slots=True)
class Segment:
    name: str
    effect: float
    rules: tuple[Rule, ...]

    def matches(self, row: Mapping[str, Any]) -> bool:
        return all(rule.matches(row) for rule in self.rules)


@dataclass(frozen=True, slots=True)
class Underperformer:
    """A planted weak SDR: one or more causes (`cause` is the first), and an optional extra skill offset."""

    index: int
    cause: str
    fabrication_rate: float | None = None
    meddic_capture_factor: float | None = None
    skill: float = 0.0  # log-odds added to the SDR's drawn skill
    causes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LeadRouting:
    """Leads of one kind sent mostly to some SDRs: of the leads in `partner` (a segment, or "source:<lead
    source>"), a `share` goes to the SDRs at `sdrs` (0-based), the rest are spread evenly as usual. The SDRs'
    skill is untouched, so a flag that ignores the mix they were given would blame them for their leads."""

    sdrs: tuple[int, ...]
    partner: str
    share: float


@dataclass(frozen=True, slots=True)
class EffectChange:
    """A planted effect that changes during the run: from `start_week` (weeks since the world's start) it
    moves in a straight line over `ramp_weeks` from the file's value to `to` (0 weeks: a step), then stays.
    An effect that appears late is one whose file value is 0; one that fades has `to = 0`."""

    target: str  # "<section>.<item>", e.g. "questions.cost_of_inaction" or "segments.education"
    start_week: int
    to: float  # log-odds, already multiplied by effects_scale
    ramp_weeks: int = 0

    def share(self, week: int) -> float:
        """How far (0..1) the effect has moved from its file value to `to` in `week`."""
        if week < self.start_week:
            return 0.0
        if self.ramp_weeks == 0:
            return 1.0
        return min(1.0, (week - self.start_week + 1) / self.ramp_weeks)


CHANGEABLE = ("segments", "lead_sources", "pains", "meddic", "questions", "warning_signs", "objections",
              "pain_alignment")  # sections whose effects [[changes]] may move


@dataclass(frozen=True, slots=True)
class ObjectionSpec:
    weight: float
    effect: float
    responses: dict[str, float]


@dataclass(frozen=True, slots=True)
class SequenceSpec:
    id: str
    steps: int
    variants: dict[str, float]  # variant id -> true reply rate per enrollment


@dataclass(frozen=True, slots=True)
class Scenario:
    """A whole simulated world; effects are already multiplied by `effects_scale`."""

    name: str
    source: str
    start: date
    weeks: int
    seed: int
    currency: str
    managers: int
    sdrs: int
    bdms: int
    accounts: int
    contacts_per_account: tuple[int, int]
    leads_per_week: float
    base_win_rate: float
    noise_sd: float
    effects_scale: float
    amount_median: float
    amount_sigma: float
    industries: dict[str, float]
    countries: dict[str, float]
    employees_median: float
    employees_sigma: float
    revenue_per_employee: float
    segments: tuple[Segment, ...]
    lead_sources: dict[str, tuple[float, float]]  # source -> (share, effect)
    pains: dict[str, tuple[float, float]]  # pain -> (prevalence, effect)
    fabrication_rate: float
    omission_rate: float
    discovery_rate: float
    misaligned_pain_effect: float
    meddic: dict[str, tuple[float, float]]  # element -> (capture, effect)
    questions: dict[str, tuple[float, float, float]]  # id -> (sdr ask, bdm ask, effect)
    sdr_skill_sd: float
    underperformers: tuple[Underperformer, ...]
    objection_rate: float
    objections: dict[str, ObjectionSpec]
    enrollments_per_week: float
    positive_share: float
    meeting_rate: float
    sequences: tuple[SequenceSpec, ...]
    warning_signs: dict[str, tuple[float, float]]  # sign -> (rate, effect)
    stage_days: tuple[float, float, float, float]
    stall_factor: float
    quiet_days: float
    typo_rate: float
    hedge_rate: float
    qualification: tuple[QualField, ...] = ()  # qualification fields the SDR fills (crm_adapters/sandbox/_qualification.py)
    qualification_noise: QualNoise = QualNoise()
    team_scale: float = 1.0  # the SDR/BDM/manager counts, leads, accounts and enrolments are already scaled by it
    question_skill_links: dict[str, float] = dataclasses.field(default_factory=dict)  # question -> log-odds of
    # the SDR asking it per sd of SDR skill: a signal good SDRs capture (confounded with skill)
    changes: tuple[EffectChange, ...] = ()  # planted effects that change during the run ([[changes]])
    pain_links: dict[str, tuple[str, float]] = dataclasses.field(default_factory=dict)  # pain -> (segment
    # or "source:<lead source>", log-odds added to the pain's prevalence there): a signal that travels with another
    lead_routing: tuple[LeadRouting, ...] = ()  # [[confounding.lead_routing]]: harder (or easier) leads for some SDRs

    def at_week(self, week: int) -> Scenario:
        """The world as it is in `week` (weeks since the start): every [[changes]] entry applied."""
        if not self.changes:
            return self
        sc = self
        for change in self.changes:
            share = change.share(week)
            if share > 0:
                sc = _moved(sc, change, share)
        return sc

    def scaled(self, deals: int) -> Scenario:
        """The same world with volumes (leads, accounts, staff, enrollments) scaled to about `deals` deals."""
        factor = deals / max(self.expected_deals(), 1.0)

        def grow(n: int) -> int:
            return max(1, round(n * factor))

        return dataclasses.replace(
            self,
            leads_per_week=self.leads_per_week * factor,
            enrollments_per_week=self.enrollments_per_week * factor,
            accounts=grow(self.accounts),
            sdrs=max(self.sdrs, grow(self.sdrs)),
            bdms=max(self.bdms, grow(self.bdms)),
            managers=max(self.managers, grow(self.managers)),
        )

    def expected_deals(self) -> float:
        """Leads plus outbound meetings expected over `weeks`."""
        seq_rate = sum(sum(s.variants.values()) / len(s.variants) for s in self.sequences) / max(
            len(self.sequences), 1
        )
        outbound = self.enrollments_per_week * seq_rate * self.positive_share * self.meeting_rate
        return (self.leads_per_week + outbound) * self.weeks


def _moved(sc: Scenario, change: EffectChange, share: float) -> Scenario:
    """`sc` with one effect moved `share` of the way from its current value to `change.to`."""
    section, item = change.target.split(".", 1)

    def towards(now: float) -> float:
        return now + share * (change.to - now)

    if section == "segments":
        segs = tuple(dataclasses.replace(s, effect=towards(s.effect)) if s.name == item else s for s in sc.segments)
        return dataclasses.replace(sc, segments=segs)
    if section == "pain_alignment":
        return dataclasses.replace(sc, misaligned_pain_effect=towards(sc.misaligned_pain_effect))
    if section == "questions":
        ask_sdr, ask_bdm, effect = sc.questions[item]
        return dataclasses.replace(sc, questions={**sc.questions, item: (ask_sdr, ask_bdm, towards(effect))})
    if section == "objections":
        spec = dataclasses.replace(sc.objections[item], effect=towards(sc.objections[item].effect))
        return dataclasses.replace(sc, objections={**sc.objections, item: spec})
    table: dict[str, tuple[float, float]] = getattr(sc, section)
    rate, effect = table[item]
    return dataclasses.replace(sc, **{section: {**table, item: (rate, towards(effect))}})
