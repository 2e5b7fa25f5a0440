"""The extractor's vocabulary as data (TOML files in jobs/nlp/data), so phrases change without code."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).parent / "data"

PAIN_IDS = (
    "manual_reporting", "compliance_risk", "slow_onboarding", "data_silos",
    "cost_pressure", "poor_visibility", "scaling_limits", "security_concerns",
)
MEDDIC_IDS = ("metrics", "economic_buyer", "decision_criteria", "decision_process", "identify_pain", "champion")
OBJECTION_IDS = ("price", "no_budget", "competitor", "not_priority", "authority", "timing")
QUESTION_IDS = (
    "current_process", "success_metrics", "decision_process", "budget_owner", "timeline",
    "cost_of_inaction", "stakeholders", "competing_priorities", "technical_requirements", "past_attempts",
)


def _phrases(table: Mapping[str, Any], section: str, allowed: Sequence[str], where: str) -> dict[str, tuple[str, ...]]:
    """Read `[section.<id>] phrases = [...]`, refusing ids outside the shared vocabulary."""
    out: dict[str, tuple[str, ...]] = {}
    for key, entry in table.get(section, {}).items():
        if key not in allowed:
            raise ValueError(f"{where}: unknown {section} id {key!r} (allowed: {', '.join(allowed)})")
        phrases = entry.get("phrases", [])
        if not isinstance(phrases, list) or not all(isinstance(p, str) and p.strip() for p in phrases):
            raise ValueError(f"{where}: {section}.{key}.phrases must be a list of non-empty strings")
        out[key] = tuple(p.strip() for p in phrases)
    return out


@dataclass(frozen=True)
class Taxonomy:
    """Phrases per id for every kind of mention, plus the cue lists of the negation/hedge rules."""

    pains: Mapping[str, tuple[str, ...]]
    pain_absence: Mapping[str, tuple[str, ...]]  # negated, these ARE the pain ("no visibility")
    pain_exclude: Mapping[str, tuple[str, ...]]  # a pain match inside one of these is not the pain
    objections: Mapping[str, tuple[str, ...]]
    questions: Mapping[str, tuple[str, ...]]
    meddic: Mapping[str, tuple[str, ...]]
    budget_terms: tuple[str, ...]
    budget_problems: tuple[str, ...]
    timeline: tuple[str, ...]
    timeline_negative: tuple[str, ...]
    competitors: tuple[str, ...]
    competitor_generic: tuple[str, ...]
    negation: frozenset[str]
    pseudo_negation: tuple[str, ...]
    post_negation: tuple[str, ...]
    hedges: tuple[str, ...]
    breakers: frozenset[str]
    question_openers: frozenset[str]
    variants: Mapping[str, str] = field(default_factory=dict)
    answers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # denied / confirmed reply openings
    filler: tuple[str, ...] = ()  # note-taking words never part of a proposed phrase ("told me")

    def with_pain_phrases(self, additions: Mapping[str, Sequence[str]]) -> Taxonomy:
        """A copy with extra pain phrases (e.g. approved output of `propose_phrases`)."""
        pains = {k: tuple(v) for k, v in self.pains.items()}
        for pain_id, phrases in additions.items():
            if pain_id not in PAIN_IDS:
                raise ValueError(f"unknown pain id {pain_id!r}")
            pains[pain_id] = pains.get(pain_id, ()) + tuple(p for p in phrases if p not in pains.get(pain_id, ()))
        return _replace(self, pains=pains)

    def key(self) -> tuple[Any, ...]:
        """Hashable identity, so compiled matchers can be cached per taxonomy."""
        return tuple(
            tuple(sorted((k, tuple(v)) for k, v in m.items())) if isinstance(m, Mapping) else
            (tuple(sorted(m)) if isinstance(m, frozenset) else m)
            for m in (self.pains, self.pain_absence, self.pain_exclude, self.post_negation, self.objections, self.questions, self.meddic, self.budget_terms,
                      self.budget_problems, self.timeline, self.timeline_negative, self.competitors,
                      self.competitor_generic, self.negation, self.pseudo_negation, self.hedges,
                      self.breakers, self.question_openers, self.variants, self.answers, self.filler)
        )


def _replace(taxonomy: Taxonomy, **changes: Any) -> Taxonomy:
    return replace(taxonomy, **changes)


def _absence(table: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    unknown = sorted(set(table) - set(PAIN_IDS))
    if unknown:
        raise ValueError(f"pains.toml: unknown pain ids in [absence]/[exclude]: {unknown}")
    return {k: tuple(v) for k, v in table.items()}


def _load(name: str, data_dir: Path) -> dict[str, Any]:
    path = data_dir / name
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from exc


def load_taxonomy(data_dir: Path | None = None) -> Taxonomy:
    """Read pains/objections/questions/signals TOML files; unknown ids are a clear error."""
    root = data_dir or DATA_DIR
    pains = _load("pains.toml", root)
    objections = _load("objections.toml", root)
    questions = _load("questions.toml", root)
    signals = _load("signals.toml", root)
    cues = signals.get("cues", {})
    return Taxonomy(
        pains=_phrases(pains, "pains", PAIN_IDS, "pains.toml"),
        pain_absence=_absence(pains.get("absence", {})),
        pain_exclude=_absence(pains.get("exclude", {})),
        objections=_phrases(objections, "objections", OBJECTION_IDS, "objections.toml"),
        questions=_phrases(questions, "questions", QUESTION_IDS, "questions.toml"),
        meddic=_phrases(signals, "meddic", MEDDIC_IDS, "signals.toml"),
        budget_terms=tuple(signals.get("budget", {}).get("terms", ())),
        budget_problems=tuple(signals.get("budget", {}).get("problem_words", ())),
        timeline=tuple(signals.get("timeline", {}).get("phrases", ())),
        timeline_negative=tuple(signals.get("timeline", {}).get("negative_phrases", ())),
        competitors=tuple(signals.get("competitors", {}).get("names", ())),
        competitor_generic=tuple(signals.get("competitors", {}).get("generic", ())),
        negation=frozenset(w.lower() for w in cues.get("negation", ())),
        pseudo_negation=tuple(cues.get("pseudo_negation", ())),
        post_negation=tuple(str(w).lower() for w in cues.get("post_negation", ())),
        hedges=tuple(cues.get("hedges", ())),
        breakers=frozenset(w.lower() for w in cues.get("breakers", ())),
        question_openers=frozenset(w.lower() for w in cues.get("question_openers", ())),
        variants={str(k).lower(): str(v).lower() for k, v in signals.get("variants", {}).items()},
        answers={k: tuple(str(c).lower() for c in v) for k, v in signals.get("answers", {}).items()},
        filler=tuple(str(w).lower() for w in cues.get("filler", ())),
    )


@cache
def default_taxonomy() -> Taxonomy:
    """The shipped taxonomy, read once."""
    return load_taxonomy()
