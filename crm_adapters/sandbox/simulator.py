"""A seeded, deterministic B2B sales org: common-model records plus the planted truth behind them."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from crm_adapters.codec import gc_paused
from crm_adapters.model import (
    Account,
    Activity,
    Contact,
    Deal,
    DealContactRole,
    DealStatus,
    Pipeline,
    Record,
    StageChange,
    User,
)
from crm_adapters.sandbox import _vocab as V
from crm_adapters.sandbox._build import Ids, build_deals
from crm_adapters.sandbox._draw import draw_leads, population
from crm_adapters.sandbox._people import people, pipeline
from crm_adapters.sandbox._plans import DealPlan
from crm_adapters.sandbox._sequences import run_sequences
from crm_adapters.sandbox.playbook import Playbook
from crm_adapters.sandbox.scenario import Scenario
from crm_adapters.sandbox.scenario_files import load_scenario
from crm_adapters.sandbox.truth import Truth
from crm_adapters.snapshot import Snapshot

logger = logging.getLogger(__name__)
ARMS = ("control", "treatment")


@dataclass
class SimulatedOrg:
    """The org's records as of `now` and the truth that produced them."""

    scenario: Scenario
    seed: int
    now: datetime
    users: list[User]
    accounts: list[Account]
    contacts: list[Contact]
    deals: list[Deal]
    roles: list[DealContactRole]
    stage_changes: list[StageChange]
    activities: list[Activity]
    pipelines: list[Pipeline]
    truth: Truth = field(repr=False)

    def records(self) -> Iterator[Record]:
        """Every synced record, in the sync order of `Entity`."""
        for group in (self.users, self.accounts, self.contacts, self.deals, self.roles, self.stage_changes,
                      self.activities):  # fmt: skip
            yield from group

    def snapshot(self) -> Snapshot:
        return Snapshot(users=tuple(self.users), accounts=tuple(self.accounts), contacts=tuple(self.contacts),
                        deals=tuple(self.deals), roles=tuple(self.roles), stage_changes=tuple(self.stage_changes),
                        activities=tuple(self.activities), pipelines=tuple(self.pipelines))  # fmt: skip

    def counts(self) -> dict[str, int]:
        return {"users": len(self.users), "accounts": len(self.accounts), "contacts": len(self.contacts),
                "deals": len(self.deals), "roles": len(self.roles), "stage_changes": len(self.stage_changes),
                "activities": len(self.activities)}  # fmt: skip


def simulate(scenario: Scenario | str | Path | None = None, *, seed: int | None = None,
             weeks: int | None = None) -> SimulatedOrg:  # fmt: skip
    """The scenario's whole time span (or `weeks`) with no playbook: the baseline org."""
    world = SimulatedWorld(scenario, seed=seed)
    world.advance(weeks if weeks is not None else world.scenario.weeks)
    return world.org()


class SimulatedWorld:
    """A world run forward week by week; treatment SDRs follow the treatment playbook from then on."""

    def __init__(self, scenario: Scenario | str | Path | None = None, *, seed: int | None = None) -> None:
        self.scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        sc = self.scenario
        self.seed = sc.seed if seed is None else seed
        self.start = datetime.combine(sc.start, time(0, 0), tzinfo=UTC)
        self.week = 0
        self._pop = population(sc, np.random.default_rng([self.seed, 1_000_000]))
        self.users, self.accounts, self.contacts, self._dir = people(
            sc, self._pop, random.Random(self.seed), self.start
        )
        self.pipelines = [pipeline()]
        self._ids = Ids()
        self.plans: list[DealPlan] = []
        self.loose: list[Activity] = []  # sequence emails, replies and booked meetings
        self.playbooks: dict[str, Playbook] = {arm: Playbook() for arm in ARMS}
        self.arms = {sid: ARMS[int(self._pop.sdr_arm[i])] for i, sid in enumerate(self._dir.sdr_ids)}
        self.truth = _truth(sc, self._pop, self._dir.sdr_ids, self.arms)

    @property
    def now(self) -> datetime:
        return self.start + timedelta(weeks=self.week)

    def advance(
        self, weeks: int = 1, playbooks: Mapping[str, Mapping[str, Any] | Playbook | None] | None = None
    ) -> None:
        """Simulate `weeks` more weeks; `playbooks` ({"control": ..., "treatment": ...}) apply from now on."""
        if weeks < 0:
            raise ValueError(f"weeks must be >= 0, got {weeks}")
        if playbooks is not None:
            unknown = set(playbooks) - set(ARMS)
            if unknown:
                raise ValueError(f"playbooks are keyed by arm {ARMS}, got {sorted(unknown)}")
            self.playbooks.update({arm: Playbook.parse(pb) for arm, pb in playbooks.items()})
        with gc_paused():
            for _ in range(weeks):
                self._one_week()
                self.week += 1
        if self.scenario.changes:  # the truth is the world as it is now (effects that change over time)
            for key, value in _effects(self.scenario.at_week(self.week)).items():
                setattr(self.truth, key, value)

    def _one_week(self) -> None:
        sc, week_start = self.scenario.at_week(self.week), self.now
        rng = np.random.default_rng([self.seed, self.week])
        rnd = random.Random(self.seed * 1_000_003 + self.week)
        pbs = (self.playbooks["control"], self.playbooks["treatment"])
        versions = (pbs[0].version, pbs[1].version)
        acts, booked = run_sequences(sc, rng, rnd, week_start, self._dir, self._ids)
        self.loose.extend(acts)
        n = int(rng.poisson(sc.leads_per_week))
        for leads, contacts in (
            (draw_leads(sc, self._pop, rng, n, pbs), None),
            (draw_leads(sc, self._pop, rng, len(booked.account), pbs, accounts=booked.account,
                        sources=np.full(len(booked.account), "outbound", dtype=object), sdrs=booked.sdr), booked.contact),
        ):  # fmt: skip
            plans, truths = build_deals(sc, leads, week_start, self._dir, self._ids, rnd, versions, contacts)
            self.plans.extend(plans)
            for plan, t in zip(plans, truths, strict=False):
                seg = int(self._pop.segment[int(plan.account_id) - 1])
                self.truth.deals[t.deal_id] = replace(t, segment=sc.segments[seg].name if seg >= 0 else None)
            for a in (0, 1):
                self.truth.disqualified[ARMS[a]] += int((leads.disqualified & (leads.arm == a)).sum())

    def org(self) -> SimulatedOrg:
        """Every record as the CRM shows it now."""
        with gc_paused():
            return self._org()

    def _org(self) -> SimulatedOrg:
        now = self.now
        deals, changes, acts, roles = [], [], [], []
        for plan in self.plans:
            deals.append(plan.deal_at(now))
            changes.extend(plan.stage_changes_at(now))
            acts.extend(plan.activities_at(now))
            roles.extend(plan.roles)
        acts.extend(a for a in self.loose if a.occurred_at <= now)
        return SimulatedOrg(self.scenario, self.seed, now, list(self.users), list(self.accounts), list(self.contacts),
                            deals, roles, changes, acts, list(self.pipelines), self.truth)  # fmt: skip

    def readout(self, since_week: int = 0) -> dict[str, dict[str, float]]:
        """Per arm, deals created since `since_week`: count, closed, won, close rate and mean planted p(win)."""
        cutoff, now = self.start + timedelta(weeks=since_week), self.now
        out: dict[str, dict[str, float]] = {}
        for arm in ARMS:
            plans = [
                p for p in self.plans if p.created_at >= cutoff and self.truth.deals[p.deal_id].arm == arm
            ]
            closed = [p for p in plans if p.closed_at <= now]
            won = sum(p.won for p in closed)
            p_win = [self.truth.deals[p.deal_id].p_win for p in plans]
            out[arm] = {"deals": len(plans), "closed": len(closed), "won": won,
                        "close_rate": won / len(closed) if closed else 0.0,
                        "mean_p_win": float(np.mean(p_win)) if p_win else 0.0,
                        "disqualified": self.truth.disqualified[arm]}  # fmt: skip
        return out

    def oracle_playbook(self, version: int = 1) -> dict[str, Any]:
        return oracle_playbook(self.truth, version=version)


def oracle_playbook(truth: Truth, *, version: int = 1) -> dict[str, Any]:
    """The best playbook the planted truth allows: helpful questions and MEDDIC, bad segments out, real pains."""
    rules = [s["rules"][0] for s in truth.icp_segments if s["effect"] < 0 and len(s["rules"]) == 1]
    return {
        "version": version,
        "questions": truth.effective_questions,
        "meddic": [m for m, e in truth.meddic_effects.items() if e > 0],
        "disqualify": rules,
        "verify_pains": truth.misaligned_pain_effect < 0,
        "weights": {f"question:{q}": truth.question_effects[q] for q in truth.effective_questions},
    }


def _effects(sc: Scenario) -> dict[str, Any]:
    """The planted effects of one week's world, keyed as `Truth` keeps them."""
    return {
        "pain_effects": {p: sc.pains[p][1] for p in V.PAINS},
        "misaligned_pain_effect": sc.misaligned_pain_effect,
        "meddic_effects": {m: sc.meddic[m][1] for m in V.MEDDIC},
        "lead_source_effects": {s: e for s, (_, e) in sc.lead_sources.items()},
        "question_effects": {q: sc.questions[q][2] for q in V.QUESTIONS},
        "objection_effects": {k: o.effect for k, o in sc.objections.items()},
        "response_effects": {k: dict(o.responses) for k, o in sc.objections.items()},
        "warning_signs": {s: sc.warning_signs[s][1] for s in V.WARNING_SIGNS},
        "icp_segments": [{"name": s.name, "effect": s.effect, "rules": [r.as_dict() for r in s.rules]}
                         for s in sc.segments],
    }


def _truth(sc: Scenario, pop: Any, sdr_ids: list[str], arms: dict[str, str]) -> Truth:
    return Truth(
        base_log_odds=float(np.log(sc.base_win_rate / (1 - sc.base_win_rate))),
        **_effects(sc.at_week(0)),
        underperforming_sdrs={sdr_ids[u.index]: u.cause for u in sc.underperformers},
        sdr_skill={sid: float(pop.sdr_skill[i]) for i, sid in enumerate(sdr_ids)},
        sequence_reply_rates={s.id: dict(s.variants) for s in sc.sequences},
        arms=dict(arms),
    )  # fmt: skip


__all__ = ["SimulatedOrg", "SimulatedWorld", "simulate", "oracle_playbook", "DealStatus"]
