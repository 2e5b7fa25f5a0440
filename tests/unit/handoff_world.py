"""A small hand-built org for the handoff tests: deals with SDR notes, SDR calls and discovery calls
whose outcomes follow effects the test chooses (plain data, seeded)."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from crm_adapters.model import ActivityType, DealStatus, UserRole
from crm_adapters.snapshot import Snapshot
from tests.factories import T0, a_deal, a_pipeline, a_stage_change, a_user, an_account, an_activity

PAIN_TEXT = {
    "manual_reporting": "they build every report by hand in spreadsheets",
    "compliance_risk": "they are worried about failing the next audit",
    "data_silos": "data lives in five systems that don't talk to each other",
    "poor_visibility": "leadership has no visibility into the pipeline",
}
SPOKEN = {
    "manual_reporting": "We still build every report by hand in Excel.",
    "compliance_risk": "Compliance is a big worry, the regulator keeps asking questions.",
    "data_silos": "Our data sits in five different tools and none of them talk to each other.",
    "poor_visibility": "Leadership has no visibility into how the team is doing.",
}
QUESTION_TEXT = {
    "cost_of_inaction": "What happens if you don't fix this?",
    "timeline": "What's your timeline?",
    "current_process": "Can you walk me through your current process?",
}


@dataclass
class DealSpec:
    """One deal to build: what the SDR claimed/asked, what discovery found, the outcome."""

    sdr: str
    claimed: tuple[str, ...] = ()
    true: tuple[str, ...] = ()
    asked: tuple[str, ...] = ()
    meddic_eb: bool = False
    budget_note: str = ""
    discovery_lines: tuple[str, ...] = ()
    status: DealStatus = DealStatus.OPEN
    created_days: int = 0
    extra: Mapping[str, object] = field(default_factory=dict)


def note_for(spec: DealSpec) -> str:
    parts = ["Qualified Acme."]
    if spec.claimed:
        parts.append("Main pain: " + " and ".join(PAIN_TEXT[p] for p in spec.claimed) + ".")
    if spec.meddic_eb:
        parts.append("EB identified: the COO holds the budget.")
    if spec.budget_note:
        parts.append(spec.budget_note)
    parts.append("Handing over to Sam.")
    return " ".join(parts)


def call_for(spec: DealSpec) -> str:
    lines = ["Rep: Hi, thanks for taking the call.", "Prospect: Sure, go ahead."]
    for q in spec.asked:
        lines += [f"Rep: {QUESTION_TEXT[q]}", "Prospect: Hard to say exactly."]
    return "\n".join(lines)


def discovery_for(spec: DealSpec) -> str:
    lines = ["Rep: Thanks for joining.", "Prospect: Happy to."]
    lines += [f"Prospect: {SPOKEN[p]}" for p in spec.true]
    lines += list(spec.discovery_lines)
    return "\n".join(lines)


def build(specs: list[DealSpec], sdr_ids: list[str] | None = None) -> Snapshot:
    """A snapshot with one deal per spec, its three texts, stage history and SDR users."""
    sdrs = {s.sdr for s in specs} | set(sdr_ids or ())
    users = [a_user(UserRole.SDR, remote_id=s) for s in sorted(sdrs)] + [a_user(UserRole.AE, remote_id="bdm1")]
    account = an_account()
    records: list[object] = [*users, account]
    for spec in specs:
        created = T0 + timedelta(days=spec.created_days)
        closed = spec.status is not DealStatus.OPEN
        stage = {"won": "105", "lost": "106", "open": "102"}[spec.status.value]
        deal = a_deal(stage_id=stage, status=spec.status, sdr_id=spec.sdr, owner_id="bdm1", account_id=account.remote_id,
                      created_at=created, **({"closed_at": (created + timedelta(days=30)).date()} if closed else {}),
                      **dict(spec.extra))
        did = deal.remote_id
        records += [deal, a_stage_change(did, "101", created, exited_at=created + timedelta(days=5)),
                    a_stage_change(did, "102", created + timedelta(days=5))]
        records.append(an_activity(ActivityType.NOTE, did, created, body=note_for(spec), owner_id=spec.sdr,
                                   custom={"kind": "sdr_qualification"}))
        records.append(an_activity(ActivityType.CALL, did, created, transcript=call_for(spec), owner_id=spec.sdr,
                                   custom={"kind": "sdr_call"}))
        records.append(an_activity(ActivityType.CALL, did, created + timedelta(days=6), transcript=discovery_for(spec),
                                   owner_id="bdm1", custom={"kind": "discovery_call"}))
    return Snapshot.of(records, pipelines=[a_pipeline()])


def random_specs(n: int, *, seed: int, sdrs: list[str], win: Callable[[DealSpec], float],
                 ask_rate: float = 0.4, fabricate: Mapping[str, float] | None = None) -> list[DealSpec]:
    """n closed deals; each SDR asks cost_of_inaction at ask_rate; `win(spec)` is P(win)."""
    rnd = random.Random(seed)
    pains = list(PAIN_TEXT)
    out = []
    for i in range(n):
        sdr = sdrs[i % len(sdrs)]
        true = tuple(p for p in pains if rnd.random() < 0.35)
        claimed = list(true)
        if rnd.random() < (fabricate or {}).get(sdr, 0.0):
            claimed += [p for p in pains if p not in true][:1]
        asked = tuple(q for q, r in (("cost_of_inaction", ask_rate), ("timeline", 0.5)) if rnd.random() < r)
        spec = DealSpec(sdr=sdr, claimed=tuple(claimed), true=true, asked=asked, created_days=i % 120)
        spec.status = DealStatus.WON if rnd.random() < win(spec) else DealStatus.LOST
        out.append(spec)
    return out
