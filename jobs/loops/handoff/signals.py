"""What the SDR handed over and what the BDM found, per deal: the handoff loop's raw material.

SDR-stage signals come from the SDR's qualification note and call (claimed pains, MEDDIC,
questions asked, budget/timeline) and the account (firmographics, lead source); the BDM's
discovery call says which claimed pains were real. Text is read once, when stored (jobs.loops.texts).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from crm_adapters.model import Activity, Deal, DealStatus, QualificationAnswer
from crm_adapters.snapshot import Snapshot
from jobs.loops import texts
from jobs.nlp import DERIVED, Extraction

SDR_NOTE, SDR_CALL, DISCOVERY = "sdr_qualification", "sdr_call", "discovery_call"
EMPLOYEE_BANDS = ((0, 50, "<50"), (50, 200, "50-199"), (200, 500, "200-499"), (500, 2000, "500-1999"),
                  (2000, 10**12, "2000+"))


@dataclass(frozen=True)
class DealSignals:
    """One deal seen from the handoff: SDR claims, BDM findings, outcome, with quoted evidence."""

    deal_id: str
    sdr_id: str | None
    owner_id: str | None
    status: DealStatus
    created_at: datetime | None
    closed_on: str | None
    amount: float
    claimed_pains: frozenset[str]
    meddic: frozenset[str]
    questions: frozenset[str]
    budget: str  # confirmed | absent | unknown (SDR stage)
    timeline: str  # set | none | unknown
    firmographics: Mapping[str, str]  # industry, country, employees band, lead_source
    discovered_pains: frozenset[str] | None  # None: no discovery call yet
    denied_pains: frozenset[str] = frozenset()  # claimed, and the buyer said no when the BDM checked
    bdm_budget: str = "unknown"
    bdm_objections: frozenset[str] = frozenset()
    max_stage: int = 1
    evidence: Mapping[str, str] = field(default_factory=dict)  # signal -> quoted sentence
    has_sdr_text: bool = False
    qualification: tuple[QualificationAnswer, ...] = ()  # the CRM's qualification fields (SDR and discovery stage)

    @property
    def won(self) -> bool:
        return self.status is DealStatus.WON

    @property
    def closed(self) -> bool:
        return self.status is not DealStatus.OPEN

    @property
    def unconfirmed_pains(self) -> frozenset[str]:
        """Claimed by the SDR, not found by the BDM (empty until discovery happened)."""
        return frozenset() if self.discovered_pains is None else self.claimed_pains - self.discovered_pains

    def categories(self) -> dict[str, str]:
        """Categorical SDR-stage fields (firmographics, lead source, the SDR's qualification fields): field -> level."""
        out = {k: v or "unknown" for k, v in self.firmographics.items()}
        out.update({a.label: a.level for a in self.qualification if a.stage == "sdr"})
        return out

    def field_contradictions(self) -> list[tuple[QualificationAnswer, QualificationAnswer]]:
        """SDR fields that claimed an item which the BDM's discovery field for the same item answers negatively."""
        found = {a.item: a for a in self.qualification if a.stage == "discovery" and a.level != "unknown"}
        return [(a, found[a.item]) for a in self.qualification
                if a.stage == "sdr" and a.claimed and a.item in found and not found[a.item].claimed]

    def features(self) -> set[str]:
        """Binary SDR-stage signals, named "kind:id" (the playbook model's columns)."""
        out = {f"question:{q}" for q in self.questions} | {f"meddic:{m}" for m in self.meddic}
        out |= {f"pain:{p}" for p in self.claimed_pains}
        if self.budget != "unknown":
            out.add(f"budget:{self.budget}")
        if self.timeline != "unknown":
            out.add(f"timeline:{self.timeline}")
        return out


def employee_band(employees: int | None) -> str:
    if employees is None:
        return ""
    return next(label for lo, hi, label in EMPLOYEE_BANDS if lo <= employees < hi)


def deal_signals(snapshot: Snapshot) -> dict[str, DealSignals]:
    """Signals of every deal that has an SDR, computed once per snapshot."""
    cached = snapshot._cache.get("handoff.signals")
    if isinstance(cached, dict):
        return cached
    out = {d.remote_id: signals_for(snapshot, d) for d in snapshot.deals if d.sdr_id}
    snapshot._cache["handoff.signals"] = out
    return out


def signals_for(snapshot: Snapshot, deal: Deal) -> DealSignals:
    """Read one deal's notes and calls into signals."""
    by_kind: dict[str, list[Activity]] = {SDR_NOTE: [], SDR_CALL: [], DISCOVERY: []}
    for activity in snapshot.activities_for(deal.remote_id):
        kind = str(activity.custom.get("kind", ""))
        if kind in by_kind:
            by_kind[kind].append(activity)
    sdr = [e for a in by_kind[SDR_NOTE] + by_kind[SDR_CALL] for e in texts.extractions(snapshot, a)]
    bdm = [e for a in by_kind[DISCOVERY] for e in texts.extractions(snapshot, a)]
    evidence: dict[str, str] = {}
    claimed = _collect(sdr, "pains", evidence, "pain")
    meddic = {m for m in _collect(sdr, "meddic", evidence, "meddic")}
    questions = _collect(sdr, "questions", evidence, "question", affirmed=False)
    account = snapshot.account_by_id.get(deal.account_id or "")
    firmographics = {
        "industry": (account.industry or "") if account else "",
        "country": (account.country or "") if account else "",
        "employees": employee_band(account.employees) if account else "",
        "lead_source": deal.lead_source or "",
    }
    stage_orders = [s.order for c in snapshot.history_for(deal.remote_id)
                    if (s := snapshot.stage_by_id.get(c.stage_id)) is not None and not s.is_closed]
    return DealSignals(
        deal_id=deal.remote_id, sdr_id=deal.sdr_id, owner_id=deal.owner_id, status=deal.status,
        created_at=deal.created_at, closed_on=deal.closed_at.isoformat() if deal.closed_at else None,
        amount=float(deal.amount or 0), claimed_pains=frozenset(claimed), meddic=frozenset(meddic),
        questions=frozenset(questions), budget=_last_status(sdr, "budget"), timeline=_last_status(sdr, "timeline"),
        firmographics=firmographics,
        discovered_pains=frozenset(_collect(bdm, "pains", {}, "found")) if bdm else None,
        denied_pains=frozenset(p for e in bdm for p in e.denied_pain_ids()) & frozenset(claimed),
        bdm_budget=_last_status(bdm, "budget"),
        bdm_objections=frozenset(o for e in bdm for o in e.objection_ids()),
        max_stage=max(stage_orders, default=_stage_order(snapshot, deal)),
        evidence=evidence, has_sdr_text=bool(sdr), qualification=tuple(deal.qualification),
    )


def _collect(found: Iterable[Extraction], kind: str, evidence: dict[str, str], prefix: str,
             affirmed: bool = True) -> set[str]:
    ids: set[str] = set()
    for extraction in found:
        for m in getattr(extraction, kind):
            if kind == "meddic" and m.value == DERIVED:
                continue
            if kind == "pains" and m.speaker == "rep":
                continue
            if affirmed and not m.affirmed:
                continue
            ids.add(m.id)
            evidence.setdefault(f"{prefix}:{m.id}", m.sentence[:300])
    return ids


def _last_status(found: list[Extraction], kind: str) -> str:
    statuses = [e.budget_status() if kind == "budget" else e.timeline_status() for e in found]
    known = [s for s in statuses if s != "unknown"]
    return known[-1] if known else "unknown"


def _stage_order(snapshot: Snapshot, deal: Deal) -> int:
    stage = snapshot.stage_by_id.get(deal.stage_id)
    return stage.order if stage is not None and not stage.is_closed else 1


def alignment(signals: DealSignals) -> tuple[float, list[str], list[str], list[str]] | None:
    """(score 0-1, matched, claimed-not-found, found-not-claimed); None before discovery.

    Score = matched / (claimed ∪ found): 1 when the SDR's story is the buyer's story.
    """
    if signals.discovered_pains is None:
        return None
    claimed, found = signals.claimed_pains, signals.discovered_pains
    union = claimed | found
    matched = sorted(claimed & found)
    score = 1.0 if not union else len(matched) / len(union)
    return round(score, 3), matched, sorted(claimed - found), sorted(found - claimed)
