"""Section-by-section parsing of a scenario file into a validated `Scenario`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from typing import Any

from crm_adapters.sandbox import _vocab as V
from crm_adapters.sandbox._qualification import parse_qualification
from crm_adapters.sandbox.scenario import (
    CHANGEABLE,
    EffectChange,
    LeadRouting,
    ObjectionSpec,
    Rule,
    Scenario,
    ScenarioError,
    Segment,
    SequenceSpec,
    Underperformer,
)


class _Parser:
    """Walks the TOML tree with the key path at hand, so every error names what is wrong where."""

    def __init__(self, filename: str) -> None:
        self.filename = filename

    def fail(self, where: str, message: str) -> ScenarioError:
        return ScenarioError(f"{self.filename}: [{where}] {message}")

    def table(self, raw: Mapping[str, Any], key: str, where: str = "") -> dict[str, Any]:
        path = f"{where}.{key}" if where else key
        value = raw.get(key)
        if not isinstance(value, dict):
            raise self.fail(path, "missing table" if value is None else "must be a table")
        return value

    def num(
        self, raw: Mapping[str, Any], key: str, where: str, lo: float = -math.inf, hi: float = math.inf
    ) -> float:
        value = raw.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(where, f"{key} must be a number, got {value!r}")
        if not lo <= value <= hi:
            raise self.fail(where, f"{key} must be in [{lo}, {hi}], got {value}")
        return float(value)

    def count(self, raw: Mapping[str, Any], key: str, where: str, lo: int = 0) -> int:
        value = raw.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise self.fail(where, f"{key} must be an integer >= {lo}, got {value!r}")
        return value

    def known(
        self, raw: Mapping[str, Any], allowed: tuple[str, ...], where: str, complete: bool = True
    ) -> None:
        unknown = sorted(set(raw) - set(allowed))
        if unknown:
            raise self.fail(where, f"unknown keys {unknown}; expected {list(allowed)}")
        missing = sorted(set(allowed) - set(raw))
        if complete and missing:
            raise self.fail(where, f"missing keys {missing}")

    def tables(self, raw: Any, key: str) -> list[tuple[str, dict[str, Any]]]:
        """An array of tables ([[key]]), each with its place for error messages."""
        if not isinstance(raw, list):
            raise self.fail(key, f"must be an array of tables [[{key}]]")
        out = []
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                raise self.fail(f"{key}[{i}]", "must be a table")
            out.append((f"{key}[{i}]", item))
        return out

    def shares(self, raw: Any, where: str) -> dict[str, float]:
        if not isinstance(raw, dict) or not raw:
            raise self.fail(where, "must be a non-empty table of name = weight")
        out = {str(k): self.num(raw, k, where, 0.0) for k in raw}
        if sum(out.values()) <= 0:
            raise self.fail(where, "weights must not all be zero")
        return out


SECTIONS = (
    "world", "org", "outcome", "firmographics", "segments", "lead_sources", "pains", "pain_alignment",
    "meddic", "questions", "sdr_skill", "objections", "sequences", "warning_signs", "timing", "text",
)  # fmt: skip
OPTIONAL = ("confounding", "changes")


def parse_all(p: _Parser, raw: dict[str, Any]) -> Scenario:
    """Every section, checked for unknown and missing keys and ranges."""
    optional = (*OPTIONAL, "qualification")
    p.known({k: v for k, v in raw.items() if k not in optional}, SECTIONS, "top level")
    unknown = sorted(set(raw) - set(SECTIONS) - set(optional))
    if unknown:
        raise p.fail("top level", f"unknown keys {unknown}; expected {list(SECTIONS + optional)}")
    world, org, outcome = p.table(raw, "world"), p.table(raw, "org"), p.table(raw, "outcome")
    p.known(world, ("name", "start", "weeks", "seed", "currency"), "world")
    org = dict(org)
    team_scale = p.num(org, "team_scale", "org", 0.1, 20.0) if "team_scale" in org else 1.0
    org.pop("team_scale", None)
    p.known(org, ("managers", "sdrs", "bdms", "accounts", "contacts_per_account", "leads_per_week"), "org")
    p.known(
        outcome, ("base_win_rate", "noise_sd", "effects_scale", "amount_median", "amount_sigma"), "outcome"
    )
    scale = p.num(outcome, "effects_scale", "outcome", 0.0, 10.0)
    start = world.get("start")
    if not isinstance(start, date) or start.weekday() != 0:
        raise p.fail("world", f"start must be a date on a Monday, got {start!r}")
    currency = world.get("currency")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isupper():
        raise p.fail("world", f"currency must be an ISO 4217 code, got {currency!r}")
    cpa = org.get("contacts_per_account")
    if not (
        isinstance(cpa, list)
        and len(cpa) == 2
        and all(isinstance(x, int) for x in cpa)
        and 1 <= cpa[0] <= cpa[1]
    ):
        raise p.fail("org", f"contacts_per_account must be [min, max] with 1 <= min <= max, got {cpa!r}")
    align = p.table(raw, "pain_alignment")
    p.known(
        align,
        ("fabrication_rate", "omission_rate", "discovery_rate", "misaligned_pain_effect"),
        "pain_alignment",
    )
    objections = p.table(raw, "objections")
    p.known(objections, ("rate", "types"), "objections")
    seq = p.table(raw, "sequences")
    p.known(seq, ("enrollments_per_week", "positive_share", "meeting_rate", "list"), "sequences")
    timing, text = p.table(raw, "timing"), p.table(raw, "text")
    p.known(timing, ("stage_days", "stall_factor", "quiet_days"), "timing")
    p.known(text, ("typo_rate", "hedge_rate"), "text")
    stage_days = timing.get("stage_days")
    if not (
        isinstance(stage_days, list)
        and len(stage_days) == 4
        and all(isinstance(x, int | float) and x > 0 for x in stage_days)
    ):
        raise p.fail("timing", f"stage_days must be 4 positive numbers, got {stage_days!r}")
    firm = p.table(raw, "firmographics")
    p.known(
        firm,
        ("industries", "countries", "employees_median", "employees_sigma", "revenue_per_employee"),
        "firmographics",
    )
    sdrs = p.count(org, "sdrs", "org", 1)
    sc = Scenario(
        name=str(world.get("name") or p.filename),
        source=p.filename,
        start=start,
        weeks=p.count(world, "weeks", "world", 1),
        seed=p.count(world, "seed", "world", 0),
        currency=currency,
        managers=p.count(org, "managers", "org", 1),
        sdrs=sdrs,
        bdms=p.count(org, "bdms", "org", 1),
        accounts=p.count(org, "accounts", "org", 1),
        contacts_per_account=(cpa[0], cpa[1]),
        leads_per_week=p.num(org, "leads_per_week", "org", 0.0),
        base_win_rate=p.num(outcome, "base_win_rate", "outcome", 0.001, 0.999),
        noise_sd=p.num(outcome, "noise_sd", "outcome", 0.0, 5.0),
        effects_scale=scale,
        amount_median=p.num(outcome, "amount_median", "outcome", 1.0),
        amount_sigma=p.num(outcome, "amount_sigma", "outcome", 0.0, 3.0),
        industries=p.shares(firm.get("industries"), "firmographics.industries"),
        countries=p.shares(firm.get("countries"), "firmographics.countries"),
        employees_median=p.num(firm, "employees_median", "firmographics", 1.0),
        employees_sigma=p.num(firm, "employees_sigma", "firmographics", 0.0, 4.0),
        revenue_per_employee=p.num(firm, "revenue_per_employee", "firmographics", 0.0),
        segments=_segments(p, raw.get("segments", []), scale),
        lead_sources=_pairs(p, raw, "lead_sources", ("share", "effect"), None, scale, (0.0, None)),
        pains=_pairs(p, raw, "pains", ("prevalence", "effect"), V.PAINS, scale, (0.0, 1.0)),
        fabrication_rate=p.num(align, "fabrication_rate", "pain_alignment", 0.0, 1.0),
        omission_rate=p.num(align, "omission_rate", "pain_alignment", 0.0, 1.0),
        discovery_rate=p.num(align, "discovery_rate", "pain_alignment", 0.0, 1.0),
        misaligned_pain_effect=scale * p.num(align, "misaligned_pain_effect", "pain_alignment", -5.0, 5.0),
        meddic=_pairs(p, raw, "meddic", ("capture", "effect"), V.MEDDIC, scale, (0.0, 1.0)),
        questions=_questions(p, p.table(raw, "questions"), scale),
        sdr_skill_sd=0.0,
        underperformers=(),
        objection_rate=p.num(objections, "rate", "objections", 0.0, 5.0),
        objections=_objections(p, p.table(objections, "types", "objections"), scale),
        enrollments_per_week=p.num(seq, "enrollments_per_week", "sequences", 0.0),
        positive_share=p.num(seq, "positive_share", "sequences", 0.0, 1.0),
        meeting_rate=p.num(seq, "meeting_rate", "sequences", 0.0, 1.0),
        sequences=_sequences(p, p.table(seq, "list", "sequences")),
        warning_signs=_pairs(p, raw, "warning_signs", ("rate", "effect"), V.WARNING_SIGNS, scale, (0.0, 1.0)),
        stage_days=(float(stage_days[0]), float(stage_days[1]), float(stage_days[2]), float(stage_days[3])),
        stall_factor=p.num(timing, "stall_factor", "timing", 1.0, 20.0),
        quiet_days=p.num(timing, "quiet_days", "timing", 1.0, 120.0),
        typo_rate=p.num(text, "typo_rate", "text", 0.0, 0.5),
        hedge_rate=p.num(text, "hedge_rate", "text", 0.0, 1.0),
    )
    skill_sd, under = _skill(p, p.table(raw, "sdr_skill"), sdrs)
    confounding = raw.get("confounding", {})
    links = _links(p, confounding)
    if "outbound" not in sc.lead_sources:
        raise p.fail("lead_sources", "needs an 'outbound' entry (the effect of leads from sequences)")
    if sum(share for name, (share, _) in sc.lead_sources.items() if name != "outbound") <= 0:
        raise p.fail("lead_sources", "shares of non-outbound sources must not all be zero")

    fields, noise = parse_qualification(p, raw.get("qualification"), scale)
    sc = replace(sc, sdr_skill_sd=skill_sd, underperformers=under, question_skill_links=links,
                 qualification=fields, qualification_noise=noise)
    sc = replace(sc, changes=_changes(p, raw.get("changes", []), sc, scale),
                 pain_links=_pain_links(p, confounding.get("pains", {}), sc),
                 lead_routing=_routing(p, confounding.get("lead_routing", []), sc, round(sc.sdrs * team_scale)))
    return _team_scaled(sc, team_scale) if team_scale != 1.0 else sc


def _team_scaled(sc: Scenario, factor: float) -> Scenario:
    """A team `factor` times the size (SDRs, BDMs, managers) with the leads, accounts and enrolments to match."""

    def grow(n: int) -> int:
        return max(1, round(n * factor))

    return replace(sc, team_scale=factor, sdrs=grow(sc.sdrs), bdms=grow(sc.bdms), managers=grow(sc.managers),
                   accounts=grow(sc.accounts), leads_per_week=sc.leads_per_week * factor,
                   enrollments_per_week=sc.enrollments_per_week * factor)


def _links(p: _Parser, raw: Any) -> dict[str, float]:
    """[confounding] questions = { id = log-odds per sd of SDR skill }: who asks a question depends on skill."""
    if not isinstance(raw, dict):
        raise p.fail("confounding", "must be a table")
    p.known(raw, ("questions", "pains", "lead_routing"), "confounding", complete=False)
    table = raw.get("questions", {})
    if not isinstance(table, dict):
        raise p.fail("confounding.questions", "must be a table of question = log-odds per sd of skill")
    p.known(table, V.QUESTIONS, "confounding.questions", complete=False)
    return {q: p.num(table, q, "confounding.questions", -5.0, 5.0) for q in table}


def _changes(p: _Parser, raw: Any, sc: Scenario, scale: float) -> tuple[EffectChange, ...]:
    """[[changes]] effect = "questions.cost_of_inaction", from_week = 40, to = 0.6, ramp_weeks = 6: an effect
    that appears, grows, fades or flips during the run (weeks since the world's start)."""
    out = []
    for where, spec in p.tables(raw, "changes"):
        p.known(spec, ("effect", "from_week", "to", "ramp_weeks"), where, complete=False)
        target = spec.get("effect")
        if not isinstance(target, str) or target.split(".", 1)[0] not in CHANGEABLE or "." not in target:
            raise p.fail(where, f"effect must be '<section>.<name>' with a section in {list(CHANGEABLE)}, got {target!r}")
        section, item = target.split(".", 1)
        known = _effect_names(sc, section)
        if item not in known:
            raise p.fail(where, f"no effect {item!r} in [{section}]; expected one of {sorted(known)}")
        start = p.count(spec, "from_week", where)
        ramp = p.count(spec, "ramp_weeks", where) if "ramp_weeks" in spec else 0
        out.append(EffectChange(target, start, scale * p.num(spec, "to", where, -5.0, 5.0), ramp))
    return tuple(out)


def _effect_names(sc: Scenario, section: str) -> set[str]:
    if section == "segments":
        return {s.name for s in sc.segments}
    if section == "pain_alignment":
        return {"misaligned_pain_effect"}
    return set(getattr(sc, section))


def _pain_links(p: _Parser, raw: Any, sc: Scenario) -> dict[str, tuple[str, float]]:
    """[confounding] pains = { manual_reporting = { with = "core_mid_market", log_odds = 1.5 } }: a pain more
    (or less) common in one segment or lead source ("source:referral"), so its signal travels with the other's."""
    where = "confounding.pains"
    if not isinstance(raw, dict):
        raise p.fail(where, "must be a table of pain = { with, log_odds }")
    p.known(raw, V.PAINS, where, complete=False)
    segments = {s.name for s in sc.segments}
    sources = {f"source:{name}" for name in sc.lead_sources}
    out = {}
    for pain, spec in raw.items():
        at = f"{where}.{pain}"
        if not isinstance(spec, dict):
            raise p.fail(at, "must be a table { with, log_odds }")
        p.known(spec, ("with", "log_odds"), at)
        partner = spec["with"]
        if partner not in segments | sources:
            raise p.fail(at, f"with must be a segment or 'source:<lead source>', one of {sorted(segments | sources)}, "
                             f"got {partner!r}")
        out[pain] = (str(partner), p.num(spec, "log_odds", at, -5.0, 5.0))
    return out


def _routing(p: _Parser, raw: Any, sc: Scenario, sdrs: int) -> tuple[LeadRouting, ...]:
    """[[confounding.lead_routing]] sdrs = [1, 6], with = "too_small", share = 0.6: of the leads in a segment
    or lead source ("source:event"), that share goes to those SDRs (indices into the team after team_scale)."""
    segments = {s.name for s in sc.segments}
    sources = {f"source:{name}" for name in sc.lead_sources if name != "outbound"}
    out = []
    for where, spec in p.tables(raw, "confounding.lead_routing"):
        p.known(spec, ("sdrs", "with", "share"), where)
        chosen = spec["sdrs"]
        if not (isinstance(chosen, list) and chosen and all(isinstance(i, int) and 0 <= i < sdrs for i in chosen)):
            raise p.fail(where, f"sdrs must be a non-empty list of SDR indices from 0 to {sdrs - 1}, got {chosen!r}")
        partner = spec["with"]
        if partner not in segments | sources:
            raise p.fail(where, f"with must be a segment or 'source:<lead source>', one of {sorted(segments | sources)}, "
                                f"got {partner!r}")
        out.append(LeadRouting(tuple(chosen), str(partner), p.num(spec, "share", where, 0.0, 1.0)))
    return tuple(out)


def _pairs(
    p: _Parser, raw: dict[str, Any], key: str, names: tuple[str, str], vocab: tuple[str, ...] | None, scale: float,
    first_range: tuple[float, float | None],
) -> dict[str, tuple[float, float]]:  # fmt: skip
    table = p.table(raw, key)
    if vocab is not None:
        p.known(table, vocab, key)
    out = {}
    lo, hi = first_range
    for item, spec in table.items():
        where = f"{key}.{item}"
        if not isinstance(spec, dict):
            raise p.fail(where, f"must be a table with {list(names)}")
        p.known(spec, names, where)
        out[item] = (p.num(spec, names[0], where, lo, hi if hi is not None else float("inf")),
                     scale * p.num(spec, names[1], where, -5.0, 5.0))  # fmt: skip
    return out


def _questions(p: _Parser, table: dict[str, Any], scale: float) -> dict[str, tuple[float, float, float]]:
    p.known(table, V.QUESTIONS, "questions")
    out = {}
    for qid, spec in table.items():
        where = f"questions.{qid}"
        if not isinstance(spec, dict):
            raise p.fail(where, "must be a table with sdr, bdm, effect")
        p.known(spec, ("sdr", "bdm", "effect"), where)
        out[qid] = (p.num(spec, "sdr", where, 0.0, 1.0), p.num(spec, "bdm", where, 0.0, 1.0),
                    scale * p.num(spec, "effect", where, -5.0, 5.0))  # fmt: skip
    return out


def _rule(p: _Parser, raw: Any, where: str) -> Rule:
    if not isinstance(raw, dict):
        raise p.fail(where, f"a rule must be a table {{field, op, value}}, got {raw!r}")
    p.known(raw, ("field", "op", "value"), where)
    if raw["field"] not in V.RULE_FIELDS:
        raise p.fail(where, f"unknown rule field {raw['field']!r}; expected one of {list(V.RULE_FIELDS)}")
    if raw["op"] not in V.RULE_OPS:
        raise p.fail(where, f"unknown rule op {raw['op']!r}; expected one of {list(V.RULE_OPS)}")
    value = raw["value"]
    if raw["op"] in ("in", "not_in") and not isinstance(value, list):
        raise p.fail(where, f"op {raw['op']!r} needs a list value, got {value!r}")
    return Rule(raw["field"], raw["op"], tuple(value) if isinstance(value, list) else value)


def _segments(p: _Parser, raw: Any, scale: float) -> tuple[Segment, ...]:
    out = []
    for where, seg in p.tables(raw, "segments"):
        p.known(seg, ("name", "effect", "rules"), where)
        rules = seg.get("rules")
        if not isinstance(rules, list) or not rules:
            raise p.fail(where, "rules must be a non-empty array")
        out.append(Segment(str(seg["name"]), scale * p.num(seg, "effect", where, -5.0, 5.0),
                           tuple(_rule(p, r, f"{where}.rules[{j}]") for j, r in enumerate(rules))))  # fmt: skip
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise p.fail("segments", f"segment names must be unique, got {names}")
    return tuple(out)


def _objections(p: _Parser, types: dict[str, Any], scale: float) -> dict[str, ObjectionSpec]:
    p.known(types, V.OBJECTIONS, "objections.types")
    out = {}
    for kind, spec in types.items():
        where = f"objections.types.{kind}"
        if not isinstance(spec, dict):
            raise p.fail(where, "must be a table")
        p.known(spec, ("weight", "effect", "responses"), where)
        responses = spec.get("responses")
        if not isinstance(responses, dict) or not responses:
            raise p.fail(where, "responses must be a non-empty table of response = effect")
        bad = sorted(set(responses) - set(V.RESPONSES))
        if bad:
            raise p.fail(where, f"unknown responses {bad}; expected some of {list(V.RESPONSES)}")
        out[kind] = ObjectionSpec(p.num(spec, "weight", where, 0.0), scale * p.num(spec, "effect", where, -5.0, 5.0),
                                  {r: scale * p.num(responses, r, where, -5.0, 5.0) for r in responses})  # fmt: skip
    return out


def _sequences(p: _Parser, table: dict[str, Any]) -> tuple[SequenceSpec, ...]:
    out = []
    for sid, spec in table.items():
        where = f"sequences.list.{sid}"
        if not isinstance(spec, dict):
            raise p.fail(where, "must be a table")
        p.known(spec, ("steps", "variants"), where)
        variants = spec.get("variants")
        if not isinstance(variants, dict) or len(variants) < 1:
            raise p.fail(where, "variants must be a table of variant = reply rate")
        rates = {str(v): p.num(variants, v, where, 0.0, 1.0) for v in variants}
        out.append(SequenceSpec(sid, p.count(spec, "steps", where, 1), rates))
    return tuple(out)


def _skill(p: _Parser, table: dict[str, Any], sdrs: int) -> tuple[float, tuple[Underperformer, ...]]:
    p.known(table, ("sd", "underperformers"), "sdr_skill", complete=False)
    sd = p.num(table, "sd", "sdr_skill", 0.0, 3.0)
    out = []
    for i, raw in enumerate(table.get("underperformers", [])):
        where = f"sdr_skill.underperformers[{i}]"
        if not isinstance(raw, dict):
            raise p.fail(where, "must be a table")
        p.known(raw, ("index", "cause", "fabrication_rate", "meddic_capture_factor", "skill"), where, complete=False)
        index = p.count(raw, "index", where)
        if index >= sdrs:
            raise p.fail(where, f"index {index} is out of range for {sdrs} SDRs")
        causes = raw.get("cause")
        causes = causes if isinstance(causes, list) and causes else [causes]
        bad = [c for c in causes if c not in V.UNDERPERFORMANCE_CAUSES]
        if bad:
            raise p.fail(where, f"cause must be one (or a list) of {list(V.UNDERPERFORMANCE_CAUSES)}, got {bad!r}")
        values = {}
        for cause in causes:
            needs = "fabrication_rate" if cause == "pain_misalignment" else "meddic_capture_factor"
            values[needs] = p.num(raw, needs, where, 0.0, 1.0)
        skill = p.num(raw, "skill", where, -5.0, 5.0) if "skill" in raw else 0.0
        out.append(Underperformer(index, causes[0], **values, skill=skill, causes=tuple(causes)))
    return sd, tuple(out)
