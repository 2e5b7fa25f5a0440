"""Vectorised draws: the market, the staff, and each week's leads with their planted outcomes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crm_adapters.sandbox import _vocab as V
from crm_adapters.sandbox._qualification import QualDraw, draw_qualification, field_rules_mask
from crm_adapters.sandbox.playbook import Playbook, rules_mask
from crm_adapters.sandbox.scenario import Scenario

LOST_STAGE_P = np.array([0.3, 0.3, 0.25, 0.15])  # where lost deals die: qualification .. negotiation


@dataclass
class Population:
    """What does not change week to week: accounts, their contacts, SDR traits and arms."""

    employees: np.ndarray
    revenue: np.ndarray
    industry: np.ndarray  # names (object array)
    country: np.ndarray
    segment: np.ndarray  # index into scenario.segments, -1 = none (effects come from the week's scenario)
    contact_start: np.ndarray  # first contact index of each account
    contact_count: np.ndarray
    sdr_skill: np.ndarray
    sdr_fabrication: np.ndarray
    sdr_meddic_factor: np.ndarray
    sdr_arm: np.ndarray  # 0 control, 1 treatment


def population(sc: Scenario, rng: np.random.Generator) -> Population:
    n = sc.accounts
    industries = list(sc.industries)
    countries = list(sc.countries)
    industry = np.array(industries, dtype=object)[rng.choice(len(industries), n, p=_p(sc.industries))]
    country = np.array(countries, dtype=object)[rng.choice(len(countries), n, p=_p(sc.countries))]
    employees = np.maximum(
        1, np.rint(np.exp(rng.normal(np.log(sc.employees_median), sc.employees_sigma, n)))
    ).astype(np.int64)
    revenue = np.rint(employees * sc.revenue_per_employee * np.exp(rng.normal(0.0, 0.4, n)) / 1000) * 1000
    fields = {"employees": employees, "annual_revenue": revenue, "industry": industry, "country": country}
    segment = np.full(n, -1)
    for i in reversed(range(len(sc.segments))):  # first matching segment wins
        segment[rules_mask(sc.segments[i].rules, fields, n, any_of=False)] = i
    lo, hi = sc.contacts_per_account
    count = rng.integers(lo, hi + 1, n)
    start = np.concatenate(([0], np.cumsum(count)[:-1]))
    skill = rng.normal(0.0, sc.sdr_skill_sd, sc.sdrs) if sc.sdr_skill_sd > 0 else np.zeros(sc.sdrs)
    fabrication = np.full(sc.sdrs, sc.fabrication_rate)
    meddic_factor = np.ones(sc.sdrs)
    for u in sc.underperformers:
        if u.fabrication_rate is not None:
            fabrication[u.index] = u.fabrication_rate
        if u.meddic_capture_factor is not None:
            meddic_factor[u.index] = u.meddic_capture_factor
        skill[u.index] += u.skill
    arm = np.zeros(sc.sdrs, dtype=np.int64)
    arm[rng.permutation(sc.sdrs)[: sc.sdrs // 2]] = 1
    return Population(employees, revenue, industry, country, segment, start, count,
                      skill, fabrication, meddic_factor, arm)  # fmt: skip


def _ask_rates(sc: Scenario, pop: Population, sdr: np.ndarray) -> np.ndarray:
    """P(the SDR asks each question): the scenario's rate, shifted (in log-odds) by the SDR's skill for the
    questions a [confounding] table links to skill, so a question can look good only because good SDRs ask it."""
    base = np.array([sc.questions[q][0] for q in V.QUESTIONS])
    if not sc.question_skill_links:
        return base[None, :]
    z = pop.sdr_skill[sdr] / (sc.sdr_skill_sd or 1.0)
    logit = np.log(np.clip(base, 1e-6, 1 - 1e-6) / np.clip(1 - base, 1e-6, 1))[None, :].repeat(len(sdr), axis=0)
    for q, link in sc.question_skill_links.items():
        logit[:, V.QUESTIONS.index(q)] += link * z
    out: np.ndarray = 1.0 / (1.0 + np.exp(-logit))
    return out


def _pain_rates(sc: Scenario, pop: Population, account: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """P(the prospect has each pain): the scenario's prevalence, shifted (in log-odds) inside the segment or
    lead source a [confounding] pains entry ties it to, so one signal travels with another."""
    base = np.array([sc.pains[p][0] for p in V.PAINS])
    if not sc.pain_links:
        return base[None, :]
    names = [s.name for s in sc.segments]
    logit = np.log(np.clip(base, 1e-6, 1 - 1e-6) / np.clip(1 - base, 1e-6, 1))[None, :].repeat(len(account), axis=0)
    for pain, (partner, shift) in sc.pain_links.items():
        if partner.startswith("source:"):
            inside = sources == partner.removeprefix("source:")
        else:
            inside = pop.segment[account] == names.index(partner)
        logit[inside, V.PAINS.index(pain)] += shift
    out: np.ndarray = 1.0 / (1.0 + np.exp(-logit))
    return out


def _routed(sc: Scenario, pop: Population, rng: np.random.Generator, sdr: np.ndarray, account: np.ndarray,
            sources: np.ndarray) -> np.ndarray:
    """The leads' SDRs after [[confounding.lead_routing]]: a share of each named kind of lead goes to the named
    SDRs. Drawn from a copy of the stream jumped twice (qualification fields use one jump), so scenarios
    without routing keep every other draw."""
    if not sc.lead_routing:
        return sdr
    names = [s.name for s in sc.segments]
    draws = np.random.Generator(rng.bit_generator.jumped(2))
    out = sdr.copy()
    for route in sc.lead_routing:
        if route.partner.startswith("source:"):
            inside = sources == route.partner.removeprefix("source:")
        else:
            inside = pop.segment[account] == names.index(route.partner)
        moved = inside & (draws.random(len(sdr)) < route.share)
        out[moved] = np.array(route.sdrs)[draws.integers(0, len(route.sdrs), int(moved.sum()))]
    return out


def _p(weights: dict[str, float]) -> np.ndarray:
    w = np.array(list(weights.values()), dtype=float)
    return w / w.sum()


@dataclass
class Leads:
    """One batch of leads: who, what they said, what was asked, and the planted outcome."""

    n: int
    account: np.ndarray
    source: np.ndarray  # names
    sdr: np.ndarray
    bdm: np.ndarray
    arm: np.ndarray
    offset_s: np.ndarray  # seconds after the week's start the deal was created
    true_pains: np.ndarray  # (n, 8) bool in V.PAINS order
    stated: np.ndarray
    discovered: np.ndarray
    meddic: np.ndarray  # (n, 6)
    asked_sdr: np.ndarray  # (n, 10)
    asked_bdm: np.ndarray
    objection: np.ndarray  # (n, 2) index into V.OBJECTIONS, -1 none
    response: np.ndarray  # (n, 2) response id per objection, "" none
    signs: np.ndarray  # (n, 8) in V.WARNING_SIGNS order
    logit: np.ndarray
    p_win: np.ndarray
    won: np.ndarray
    lost_stage: np.ndarray  # last open stage index reached (0..3); 3 for won deals
    stage_days: np.ndarray  # (n, 4)
    amount: np.ndarray
    disqualified: np.ndarray
    qualification: QualDraw | None = None  # the SDR's qualification fields, when the scenario has them


def draw_leads(
    sc: Scenario,
    pop: Population,
    rng: np.random.Generator,
    n: int,
    playbooks: tuple[Playbook, Playbook],
    *,
    accounts: np.ndarray | None = None,
    sources: np.ndarray | None = None,
    sdrs: np.ndarray | None = None,
) -> Leads:
    """Draw `n` leads; outbound ones come with their account and source preset by the sequences."""
    plain = {k: v for k, v in sc.lead_sources.items() if k != "outbound" and v[0] > 0}
    account = accounts if accounts is not None else rng.integers(0, sc.accounts, n)
    if sources is None:
        sources = np.array(list(plain), dtype=object)[
            rng.choice(len(plain), n, p=_p({k: v[0] for k, v in plain.items()}))
        ]
    sdr = sdrs if sdrs is not None else _routed(sc, pop, rng, rng.integers(0, sc.sdrs, n), account, sources)
    arm = pop.sdr_arm[sdr]
    pb = [playbooks[0], playbooks[1]]
    treat = {a: arm == a for a in (0, 1)}
    true_pains = rng.random((n, len(V.PAINS))) < _pain_rates(sc, pop, account, sources)
    stated = _stated(sc, pop, rng, sdr, true_pains, treat, pb)
    discovered = true_pains & (rng.random(true_pains.shape) < sc.discovery_rate)
    capture = np.array([sc.meddic[m][0] for m in V.MEDDIC])[None, :] * pop.sdr_meddic_factor[sdr][:, None]
    meddic = rng.random((n, len(V.MEDDIC))) < capture
    asked_sdr = rng.random((n, len(V.QUESTIONS))) < _ask_rates(sc, pop, sdr)
    asked_bdm = rng.random((n, len(V.QUESTIONS))) < np.array([sc.questions[q][1] for q in V.QUESTIONS])
    for a in (0, 1):
        for q in pb[a].questions:
            asked_sdr[treat[a], V.QUESTIONS.index(q)] = True
        for m in pb[a].meddic:
            meddic[treat[a], V.MEDDIC.index(m)] = True
    objection, response, obj_effect = _objections(sc, rng, n)
    qual = None  # drawn from a jumped copy of the stream: scenarios without fields keep every other draw
    if sc.qualification:
        qual = draw_qualification(sc.qualification, sc.qualification_noise,
                                  np.random.Generator(rng.bit_generator.jumped()), sdr, sc.sdrs)
    signs = rng.random((n, len(V.WARNING_SIGNS))) < np.array(
        [sc.warning_signs[s][0] for s in V.WARNING_SIGNS]
    )
    logit = (
        np.log(sc.base_win_rate / (1 - sc.base_win_rate))
        + np.array([s.effect for s in sc.segments] + [0.0])[pop.segment[account]]
        + np.array([sc.lead_sources[s][1] for s in sources])
        + true_pains @ np.array([sc.pains[p][1] for p in V.PAINS])
        + (stated & ~true_pains).sum(axis=1) * sc.misaligned_pain_effect
        + meddic @ np.array([sc.meddic[m][1] for m in V.MEDDIC])
        + (asked_sdr | asked_bdm) @ np.array([sc.questions[q][2] for q in V.QUESTIONS])
        + obj_effect
        + signs @ np.array([sc.warning_signs[s][1] for s in V.WARNING_SIGNS])
        + pop.sdr_skill[sdr]
        + (qual.effect if qual is not None else 0.0)
        + (rng.normal(0.0, sc.noise_sd, n) if sc.noise_sd > 0 else 0.0)
    )
    p_win = 1.0 / (1.0 + np.exp(-logit))
    won = rng.random(n) < p_win
    lost_stage = np.where(won, 3, rng.choice(4, n, p=LOST_STAGE_P))
    lost_stage = np.where(
        signs[:, V.WARNING_SIGNS.index("proposal_unopened")], np.maximum(lost_stage, 2), lost_stage
    )
    stage_days = rng.gamma(2.0, np.array(sc.stage_days) / 2.0, (n, 4)) + 0.5
    stalled = signs[:, V.WARNING_SIGNS.index("stalled_in_stage")]
    which = np.floor(rng.random(n) * (lost_stage + 1)).astype(np.int64)
    stage_days[np.arange(n), which] *= np.where(stalled, sc.stall_factor, 1.0)
    amount = np.rint(np.exp(rng.normal(np.log(sc.amount_median), sc.amount_sigma, n)) / 100) * 100
    offset = rng.integers(0, 5, n) * 86400 + rng.integers(8 * 3600, 18 * 3600, n)
    fields = {"employees": pop.employees[account], "annual_revenue": pop.revenue[account],
              "industry": pop.industry[account], "country": pop.country[account], "lead_source": sources}  # fmt: skip
    disq = np.zeros(n, dtype=bool)
    for a in (0, 1):
        disq |= treat[a] & rules_mask(pb[a].disqualify, fields, n, any_of=True)
        if qual is not None:
            disq |= treat[a] & field_rules_mask(pb[a].field_rules, qual.recorded, n)
    return Leads(n, account, sources, sdr, rng.integers(0, sc.bdms, n), arm, offset, true_pains, stated, discovered,
                 meddic, asked_sdr, asked_bdm, objection, response, signs, logit, p_win, won, lost_stage, stage_days,
                 amount, disq, qual)  # fmt: skip


def _stated(sc: Scenario, pop: Population, rng: np.random.Generator, sdr: np.ndarray, true_pains: np.ndarray,
            treat: dict[int, np.ndarray], pb: list[Playbook]) -> np.ndarray:  # fmt: skip
    """What the SDR writes down: true pains minus omissions, plus a made-up one at the SDR's fabrication rate."""
    n = len(sdr)
    fab_rate = pop.sdr_fabrication[sdr].copy()
    for a in (0, 1):
        if pb[a].verify_pains:
            fab_rate[treat[a]] = np.minimum(fab_rate[treat[a]], sc.fabrication_rate)
    keys = np.where(true_pains, -1.0, rng.random(true_pains.shape))
    pick = keys.argmax(axis=1)
    fabricate = (rng.random(n) < fab_rate) & (keys.max(axis=1) >= 0)
    stated = true_pains & ~(rng.random(true_pains.shape) < sc.omission_rate)
    stated[np.arange(n)[fabricate], pick[fabricate]] = True
    return stated


def _objections(sc: Scenario, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Up to two objections per discovery call, each with a response picked uniformly by the BDM."""
    kinds = list(V.OBJECTIONS)
    weights = np.array([sc.objections[k].weight if k in sc.objections else 0.0 for k in kinds])
    count = (
        np.minimum(rng.poisson(sc.objection_rate, n), 2) if weights.sum() > 0 else np.zeros(n, dtype=np.int64)
    )
    objection = (
        rng.choice(len(kinds), (n, 2), p=weights / weights.sum())
        if weights.sum() > 0
        else np.zeros((n, 2), np.int64)
    )
    objection = np.where(np.arange(2)[None, :] < count[:, None], objection, -1)
    pick = rng.random((n, 2))
    response = np.full((n, 2), "", dtype=object)
    effect = np.zeros(n)
    for i, kind in enumerate(kinds):
        spec = sc.objections.get(kind)
        if spec is None:
            continue
        names = list(spec.responses)
        effects = np.array([spec.responses[r] for r in names])
        hit = objection == i
        idx = np.minimum((pick * len(names)).astype(np.int64), len(names) - 1)
        response[hit] = np.array(names, dtype=object)[idx[hit]]
        effect += (hit * (spec.effect + effects[idx])).sum(axis=1)
    return objection, response, effect
