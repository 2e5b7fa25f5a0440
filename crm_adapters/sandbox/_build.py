"""Turn a batch of drawn leads into deal plans: timelines, contact roles and activities with their text."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np

from crm_adapters.model import Activity, ActivityType, ContactRole, DealContactRole, Direction
from crm_adapters.sandbox import _phrases as P
from crm_adapters.sandbox import _text as T
from crm_adapters.sandbox import _vocab as V
from crm_adapters.sandbox._draw import Leads
from crm_adapters.sandbox._plans import SANDBOX, DealPlan
from crm_adapters.sandbox._qualification import answers
from crm_adapters.sandbox.scenario import Scenario
from crm_adapters.sandbox.truth import DealTruth

DAY = timedelta(days=1)
_WIN_REASONS = ("Strong business case", "Clear ROI", "Champion drove it", "Best fit for their process")
_OTHER_LOSS = ("No decision", "Went dark", "Chose to build in-house", "Lost champion")
_SIGN = {s: i for i, s in enumerate(V.WARNING_SIGNS)}


@dataclass
class Ids:
    """Per-entity counters for numeric-string remote ids, stable across a world's weeks."""

    next: dict[str, int] = field(default_factory=dict)

    def take(self, entity: str) -> str:
        value = self.next.get(entity, 1)
        self.next[entity] = value + 1
        return str(value)


@dataclass
class Directory:
    """Ids and names of the org's people and companies, by index."""

    sdr_ids: list[str]
    bdm_ids: list[str]
    user_names: dict[str, str]
    account_ids: list[str]
    account_names: list[str]
    contact_ids: list[str]
    contact_first: list[str]
    contact_start: np.ndarray  # first contact index of each account
    contact_count: np.ndarray


def build_deals(
    sc: Scenario, leads: Leads, week_start: datetime, d: Directory, ids: Ids, rnd: random.Random,
    versions: tuple[int, int], contacts: np.ndarray | None = None,
) -> tuple[list[DealPlan], list[DealTruth]]:  # fmt: skip
    """Plans and truths for the leads that were not disqualified; `contacts` presets the first contact."""
    plans, truths = [], []
    for i in np.flatnonzero(~leads.disqualified):
        plan, truth = _one(sc, leads, int(i), week_start, d, ids, rnd, versions,
                           None if contacts is None else int(contacts[i]))  # fmt: skip
        plans.append(plan)
        truths.append(truth)
    return plans, truths


def _ids_of(mask: np.ndarray, vocab: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(vocab[j] for j in np.flatnonzero(mask))


def _one(sc: Scenario, L: Leads, i: int, week_start: datetime, d: Directory, ids: Ids, rnd: random.Random,
         versions: tuple[int, int], first_contact: int | None) -> tuple[DealPlan, DealTruth]:  # fmt: skip
    acc = int(L.account[i])
    sdr_id, bdm_id = d.sdr_ids[int(L.sdr[i])], d.bdm_ids[int(L.bdm[i])]
    deal_id = ids.take("deal")
    created = week_start + timedelta(seconds=int(L.offset_s[i]))
    signs = L.signs[i]
    stages = _stages(L, i, created, ids)
    close = stages[-1][1]
    people = _people(L, i, acc, d, rnd, first_contact)
    roles = _roles(deal_id, people, bool(signs[_SIGN["single_threaded"]]), ids, created, d)
    company = d.account_names[acc]
    objections = tuple(
        (V.OBJECTIONS[int(k)], str(r)) for k, r in zip(L.objection[i], L.response[i], strict=False) if k >= 0
    )
    truth = DealTruth(
        deal_id=deal_id, sdr_id=sdr_id, arm="treatment" if L.arm[i] else "control",
        playbook_version=versions[int(L.arm[i])], p_win=float(L.p_win[i]), won=bool(L.won[i]),
        segment=None, lead_source=str(L.source[i]),
        true_pains=_ids_of(L.true_pains[i], V.PAINS), stated_pains=_ids_of(L.stated[i], V.PAINS),
        discovered_pains=_ids_of(L.discovered[i], V.PAINS), meddic=_ids_of(L.meddic[i], V.MEDDIC),
        questions_sdr=_ids_of(L.asked_sdr[i], V.QUESTIONS), questions_bdm=_ids_of(L.asked_bdm[i], V.QUESTIONS),
        objections=objections, warning_signs=_ids_of(signs, V.WARNING_SIGNS),
    )  # fmt: skip
    ctx = _Ctx(sc, rnd, ids, deal_id, acc, d.account_ids[acc], company, sdr_id, bdm_id, d, people)
    acts = _early_activities(ctx, truth, created)
    acts += _middle_activities(ctx, truth, stages, created, close)
    close_plan = _close_plan(ctx, truth, created, close, acts)
    acts = _quiet(ctx, truth, acts, close)
    acts.sort(key=lambda a: a.occurred_at)
    plan = DealPlan(
        deal_id=deal_id, name=f"{company} - {rnd.choice(('New business', 'Platform', 'Expansion pilot', 'Team plan'))}",
        account_id=d.account_ids[acc], owner_id=bdm_id, sdr_id=sdr_id, lead_source=str(L.source[i]),
        amount=Decimal(int(L.amount[i])), currency=sc.currency, created_at=created, stages=stages,
        close_plan=close_plan, won=bool(L.won[i]), loss_reason=None if L.won[i] else _loss_reason(rnd, truth),
        win_reason=rnd.choice(_WIN_REASONS) if L.won[i] else None,
        custom={"arm": truth.arm, "playbook_version": truth.playbook_version}, activities=acts, roles=roles,
    )  # fmt: skip
    plan.qualification, plan.discovery_qualification = answers(sc.qualification, L.qualification, int(i))
    return plan, truth


@dataclass(slots=True)
class _Ctx:
    sc: Scenario
    rnd: random.Random
    ids: Ids
    deal_id: str
    acc: int
    account_id: str
    company: str
    sdr_id: str
    bdm_id: str
    d: Directory
    people: list[int]  # contact indexes: [champion, economic buyer?, others]

    def act(self, kind: ActivityType, at: datetime, **kw: object) -> Activity:
        return Activity(crm=SANDBOX, remote_id=self.ids.take("activity"), remote_updated_at=at, type=kind,
                        occurred_at=at, deal_ids=(self.deal_id,), account_id=self.account_id, **kw)  # type: ignore[arg-type]  # fmt: skip

    @property
    def champion(self) -> str:
        return self.d.contact_ids[self.people[0]]

    @property
    def first(self) -> str:
        return self.d.contact_first[self.people[0]]


def _stages(L: Leads, i: int, created: datetime, ids: Ids) -> list[tuple[str, datetime, str]]:
    out = [(V.OPEN_STAGES[0], created, ids.take("stage_change"))]
    t = created
    last = int(L.lost_stage[i])
    for k in range(last + 1):
        t = t + timedelta(days=float(L.stage_days[i, k]))
        nxt = V.OPEN_STAGES[k + 1] if k < last else (V.WON_STAGE if L.won[i] else V.LOST_STAGE)
        out.append((nxt, t, ids.take("stage_change")))
    return out


def _people(L: Leads, i: int, acc: int, d: Directory, rnd: random.Random, first: int | None) -> list[int]:
    start, count = int(d.contact_start[acc]), int(d.contact_count[acc])
    pool = list(range(start, start + count))
    rnd.shuffle(pool)
    if first is not None and first in pool:
        pool.remove(first)
        pool.insert(0, first)
    return pool[: 1 + min(2, len(pool) - 1)]


def _roles(
    deal_id: str, people: list[int], single: bool, ids: Ids, at: datetime, d: Directory
) -> list[DealContactRole]:
    """Champion first; an economic buyer (and an evaluator) unless the deal is single-threaded."""
    kinds = [ContactRole.CHAMPION] if single or len(people) == 1 else (
        [ContactRole.CHAMPION, ContactRole.ECONOMIC_BUYER, ContactRole.TECHNICAL_EVALUATOR][: len(people)])  # fmt: skip
    return [DealContactRole(crm=SANDBOX, remote_id=ids.take("role"), remote_updated_at=at, deal_id=deal_id,
                            contact_id=d.contact_ids[p], role=k, role_raw=k.value, is_primary=j == 0)
            for j, (p, k) in enumerate(zip(people, kinds, strict=False))]  # fmt: skip


def _early_activities(c: _Ctx, t: DealTruth, created: datetime) -> list[Activity]:
    """The SDR's call and qualification note, and the BDM's discovery call."""
    rnd, sc = c.rnd, c.sc
    spoken = [p for p in t.stated_pains if p in t.true_pains]
    call_at = created - timedelta(hours=rnd.uniform(2, 40))
    sdr_name, bdm_name = c.d.user_names[c.sdr_id], c.d.user_names[c.bdm_id]
    absent = [p for p in V.PAINS if p not in t.true_pains and p not in t.stated_pains]
    denied = rnd.sample(absent, k=min(len(absent), rnd.choice((0, 0, 1, 1, 2))))
    note = T.sdr_note(rnd, company=c.company, first=c.first, bdm=bdm_name.split()[0], stated=list(t.stated_pains),
                      absent=denied, meddic={m: m in t.meddic for m in V.MEDDIC}, typo_rate=sc.typo_rate,
                      hedge_rate=sc.hedge_rate)  # fmt: skip
    call = T.sdr_call(rnd, company=c.company, first=c.first, rep=sdr_name.split()[0], questions=t.questions_sdr,
                      spoken=spoken)  # fmt: skip
    disc_at = created + timedelta(hours=rnd.uniform(20, 96))
    misclaimed = [p for p in t.stated_pains if p not in t.true_pains and rnd.random() < 0.5]
    disc = T.discovery_call(rnd, company=c.company, first=c.first, rep=bdm_name.split()[0], questions=t.questions_bdm,
                            discovered=t.discovered_pains, denied=misclaimed, objections=t.objections)  # fmt: skip
    contact = (c.champion,)
    return [
        c.act(ActivityType.CALL, call_at, subject=f"Qualification call - {c.company}", transcript=call,
              direction=Direction.OUTBOUND, duration_s=rnd.randint(300, 1200), outcome="connected",
              owner_id=c.sdr_id, contact_ids=contact, custom={"kind": "sdr_call"}),
        c.act(ActivityType.NOTE, created, subject="Qualification notes", body=note, owner_id=c.sdr_id,
              contact_ids=contact, custom={"kind": "sdr_qualification"}),
        c.act(ActivityType.CALL, disc_at, subject=f"Discovery - {c.company}", transcript=disc,
              direction=Direction.OUTBOUND, duration_s=rnd.randint(1500, 3600), outcome="connected",
              owner_id=c.bdm_id, contact_ids=contact, custom={"kind": "discovery_call"}),
    ]  # fmt: skip


def _middle_activities(c: _Ctx, t: DealTruth, stages: list[tuple[str, datetime, str]], created: datetime,
                       close: datetime) -> list[Activity]:  # fmt: skip
    """Meetings per stage (one may slip), the proposal email, and email back-and-forth."""
    rnd, out = c.rnd, []
    slip = "meeting_slipped" in t.warning_signs
    titles = {"102": "Demo", "103": "Proposal review", "104": "Negotiation call"}
    meetings = [(sid, at) for sid, at, _ in stages[1:] if sid in titles]
    slip_at = rnd.randrange(len(meetings)) if slip and meetings else -1
    for j, (sid, at) in enumerate(meetings):
        when = at + timedelta(hours=rnd.uniform(20, 100))
        if j == slip_at:
            outcome = rnd.choice(("rescheduled", "cancelled"))
            out.append(c.act(ActivityType.MEETING, when, subject=titles[sid], outcome=outcome, owner_id=c.bdm_id,
                             start_at=when, contact_ids=(c.champion,), body=rnd.choice(P.RISK_LANGUAGE[:3]) if outcome == "cancelled" else "Prospect asked to move it."))  # fmt: skip
            when = when + timedelta(days=rnd.uniform(5, 12))
        out.append(c.act(ActivityType.MEETING, when, subject=titles[sid], outcome="completed", owner_id=c.bdm_id,
                         start_at=when, end_at=when + timedelta(minutes=45), contact_ids=(c.champion,)))  # fmt: skip
        if sid == "103":
            opened = "proposal_unopened" not in t.warning_signs
            out.append(c.act(ActivityType.EMAIL, at + timedelta(hours=2), subject=f"Proposal for {c.company}",
                             body=f"Hi {c.first}, attached is our proposal.", direction=Direction.OUTBOUND,
                             owner_id=c.bdm_id, contact_ids=(c.champion,), custom={"kind": "proposal", "opened": opened}))  # fmt: skip
    span = (close - created).total_seconds() / 86400
    for _k in range(min(6, max(1, int(span / 9)))):
        at = created + timedelta(days=rnd.uniform(2, max(2.5, span - 1)))
        out.append(c.act(ActivityType.EMAIL, at, subject=f"Re: {c.company}", body=T.check_in(rnd, c.first),
                         direction=Direction.OUTBOUND, owner_id=c.bdm_id, contact_ids=(c.champion,)))  # fmt: skip
        out.append(c.act(ActivityType.EMAIL, at + timedelta(hours=rnd.uniform(1, 30)), subject=f"Re: {c.company}",
                         body=T.reply(rnd, False), direction=Direction.INBOUND, owner_id=c.bdm_id,
                         contact_ids=(c.champion,)))  # fmt: skip
    if "risk_language" in t.warning_signs:
        at = created + (close - created) * rnd.uniform(0.45, 0.7)
        sender = c.d.contact_ids[c.people[-1]]
        out.append(c.act(ActivityType.EMAIL, at, subject=f"Re: {c.company}", body=T.reply(rnd, True),
                         direction=Direction.INBOUND, owner_id=c.bdm_id, contact_ids=(sender,)))  # fmt: skip
    return out


def _close_plan(
    c: _Ctx, t: DealTruth, created: datetime, close: datetime, acts: list[Activity]
) -> list[tuple[datetime, object]]:
    """The planned close date and, for pushed deals, when it moved (with a note each time)."""
    rnd = c.rnd
    planned = (created + DAY * sum(c.sc.stage_days) * 1.1).date()
    plan: list[tuple[datetime, object]] = [(created, planned)]
    if "close_date_pushed" in t.warning_signs:
        for frac in sorted(rnd.uniform(0.3, 0.85) for _ in range(rnd.choice((1, 1, 2)))):
            at = created + (close - created) * frac
            new = plan[-1][1] + DAY * rnd.randint(14, 35)  # type: ignore[operator]
            acts.append(c.act(ActivityType.NOTE, at, subject="Close date changed",
                              body=f"Close date moved from {plan[-1][1]} to {new}. " + rnd.choice(
                                  ("Prospect needs more time.", "Waiting on procurement.", "Pushed by the customer.")),
                              owner_id=c.bdm_id, custom={"kind": "close_date_change", "from": str(plan[-1][1]), "to": str(new)}))  # fmt: skip
            plan.append((at, new))
    return plan


def _quiet(c: _Ctx, t: DealTruth, acts: list[Activity], close: datetime) -> list[Activity]:
    """Silence before the close: nothing at all, or no word from the champion despite check-ins."""
    window = close - DAY * c.sc.quiet_days
    keep_kinds = {"sdr_call", "sdr_qualification", "discovery_call"}
    if "no_recent_activity" in t.warning_signs:
        return [a for a in acts if a.occurred_at <= window or a.custom.get("kind") in keep_kinds]
    if "champion_quiet" in t.warning_signs:
        acts = [a for a in acts if not (a.occurred_at > window and a.direction is Direction.INBOUND
                                         and c.champion in a.contact_ids)]  # fmt: skip
        for k in (0.3, 0.7):
            at = window + (close - window) * k
            acts.append(c.act(ActivityType.EMAIL, at, subject=f"Checking in - {c.company}", body=T.check_in(c.rnd, c.first),
                              direction=Direction.OUTBOUND, owner_id=c.bdm_id, contact_ids=(c.champion,)))  # fmt: skip
    return acts


def _loss_reason(rnd: random.Random, t: DealTruth) -> str:
    if t.objections and rnd.random() < 0.7:
        return P.LOSS_REASONS[t.objections[0][0]]
    if "champion_quiet" in t.warning_signs:
        return "Lost champion"
    return rnd.choice(_OTHER_LOSS)
