"""The quality gate: evals on generated text, a seeded spot-check sample, and draft-only pauses.

Pure functions; the engine passes in what they need (tenant settings, the source text of
the record a decision is about) and stores what they return. Drift figures (PSI,
calibration) live in jobs/engine/drift.py.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from connector.store.tables import GateStatus
from crm_adapters.model import Entity
from crm_adapters.snapshot import Snapshot
from jobs.approvals import text as proposal_text
from jobs.engine.policy import Autonomy, Verdict
from jobs.loops import labels, registry
from jobs.loops.decision import ActionKind, Decision
from jobs.nlp.pipeline import nlp
from jobs.state.attention import sample


@dataclass(frozen=True, slots=True)
class GateResult:
    status: GateStatus
    autonomy: Autonomy
    reason: str = ""


@dataclass(frozen=True)
class QualitySettings:
    """Per-tenant knobs, from the tenant's settings (InstallationSettings.quality)."""

    sample_rate: float = 0.10
    seed: str = ""
    banned_phrases: tuple[str, ...] = ("guarantee", "guaranteed", "risk-free", "act now")
    max_subject: int = 150
    max_body: int = 4000
    max_field: int = 600
    psi_threshold: float = 0.25
    brier_threshold: float = 0.30
    min_calibration_n: int = 20
    extra_allowed: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, quality: Mapping[str, Any] | None, installation_id: str) -> QualitySettings:
        raw = dict(quality or {})
        raw.setdefault("seed", installation_id)
        for key in ("banned_phrases", "extra_allowed"):
            if key in raw:
                raw[key] = tuple(raw[key])
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def in_sample(seed: str, key: str, rate: float) -> bool:
    """Deterministic per (tenant seed, decision key): re-runs and other workers pick the same sample."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


# --- evals on generated text -------------------------------------------------------------

# A figure, also glued to letters ("x1.83", "v3", "Q4", "10kg", "EUR5000"): `pre`/`suf` are the glued letters,
# `core` the figure itself. Tokens with more than one digit group ("a1b2", CRM ids) are ids, not figures.
_NUMBER = re.compile(
    r"(?<![\w.])(?P<pre>[a-z]+[$€£]?|[$€£])?(?P<core>\d[\d,]*(?:\.\d+)?)"
    r"(?P<suf>\s?(?:%|k|m)(?!\w)|[a-z]+)?(?!\w)",
    re.IGNORECASE,
)
_DATE = re.compile(r"\b(\d{4}-\d{2}-\d{2})(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b")
_TIME = re.compile(r"(?<![\w:.])(?:\d{1,2}:\d{2}(?::\d{2})?(?:\s?[ap]\.?m\.?)?|\d{1,2}\s?[ap]m)(?![\w:])", re.IGNORECASE)
_SMALL_WORDS = frozenset(["a", "an", "the", "and", "or", "but", "if", "then", "of", "to", "in", "on", "at", "by", "for", "with", "from", "this", "that", "these", "those"])
_TEMPLATE_WORDS = frozenset(
    ["Re", "Fwd", "Hi", "Hello", "Dear", "Thanks", "Regards", "Draft", "Review", "Approve", "Reject", "Follow", "Next", "Risk", "Deal", "Call", "Email", "Meeting", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December", "CRM", "MRR", "ARR", "ICP", "SDR", "BDM", "AE", "MEDDIC", "ROI", "Q1", "Q2", "Q3", "Q4", "I", "salesloop"]
)


def generated_texts(decision: Decision) -> dict[str, str]:
    """The text a loop wrote itself (subjects, bodies, text field values), by where it goes."""
    texts: dict[str, str] = {}
    payload = decision.payload if isinstance(decision.payload, Mapping) else {}
    if decision.kind in (ActionKind.CREATE_TASK, ActionKind.CREATE_NOTE, ActionKind.DRAFT_EMAIL, ActionKind.SEND_EMAIL):
        for name in ("subject", "body"):
            if isinstance(payload.get(name), str):
                texts[name] = payload[name]
    elif decision.kind is ActionKind.UPDATE_FIELD:
        for name, value in payload.items():
            if isinstance(value, str) and name not in ("scored_at", "risk_level", "mrr"):
                texts[f"field:{name}"] = value
    return texts


def gated_texts(decision: Decision, verdict: Verdict) -> dict[str, str]:
    """Everything the gate evals: the loop's own text, and the manager's task text when the decision
    becomes a proposal (a playbook change or SDR flag always does; anything that needs approval too)."""
    texts = generated_texts(decision)
    if decision.kind in proposal_text.PROPOSAL_KINDS or verdict.autonomy is Autonomy.NEEDS_APPROVAL:
        texts.update(proposal_text.texts(decision))
    return texts


def source_text(snapshot: Snapshot, decision: Decision, computed: Mapping[str, str] | None = None) -> str:
    """What a generated text may cite: the CRM's data on every record it is about, the loop's evidence,
    and the figures this run computed for those records (`computed`: target id -> their values)."""
    parts: list[str] = [reason.text for reason in decision.reasons]
    parts += [item for reason in decision.reasons for item in reason.evidence]
    related = [(decision.target, decision.target_id)]
    related += [(Entity.DEAL, str(i)) for i in (decision.payload.get("deal_ids") or ())]
    for entity, record_id in related:
        parts.append(record_id)
        parts += _record_text(snapshot, entity, record_id)
        parts.append((computed or {}).get(record_id, ""))
    parts += [u.name for u in snapshot.users]
    parts += [s.label for s in snapshot.stage_by_id.values()]
    return "\n".join(p for p in parts if p)


def _record_text(snapshot: Snapshot, entity: Entity, record_id: str) -> list[str]:
    """The CRM's text about one record (ids are per entity: deal 718 and account 718 differ)."""
    if entity is Entity.USER:
        user = snapshot.user_by_id.get(record_id)
        return [user.name] if user else []
    if entity is Entity.CONTACT:
        contact = snapshot.contact_by_id.get(record_id)
        return [contact.name, contact.title or ""] if contact else []
    parts: list[str] = []
    deal = snapshot.deal_by_id.get(record_id) if entity is Entity.DEAL else None
    account_id = deal.account_id if deal else (record_id if entity is Entity.ACCOUNT else None)
    if deal is not None:
        parts += [deal.name, str(deal.amount or ""), str(deal.close_date or ""), deal.next_step or "", deal.lead_source or ""]
        parts += [a.text for a in snapshot.activities_for(deal.remote_id)]
        parts += [a.occurred_at.date().isoformat() for a in snapshot.activities_for(deal.remote_id)]
        parts += [str(d) for d in (deal.custom.get("close_date_history") or ()) if isinstance(d, str)]
        parts += [snapshot.contact_by_id[r.contact_id].name for r in snapshot.roles_by_deal.get(deal.remote_id, [])
                  if r.contact_id in snapshot.contact_by_id]
        stage = snapshot.stage_by_id.get(deal.stage_id)
        parts.append(stage.label if stage else "")
    account = snapshot.account_by_id.get(account_id or "")
    if account is not None:
        parts += [account.name, account.industry or "", account.country or "", str(account.employees or ""),
                  str(account.annual_revenue or "")]
    return parts


def computed_values(decisions: Iterable[Decision], now_text: str) -> dict[str, str]:
    """Per target, the figures the loop computed this run (scores, levels, dates): a text may cite them."""
    out: dict[str, list[str]] = {}
    for decision in decisions:
        values = out.setdefault(decision.target_id, [now_text])
        values += [str(v) for v in _scalars(decision.payload)]
    return {k: " ".join(v) for k, v in out.items()}


def _scalars(value: Any) -> Iterable[Any]:
    if isinstance(value, Mapping):
        for v in value.values():
            yield from _scalars(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _scalars(v)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield value


def eval_text(text: str, source: str, settings: QualitySettings) -> list[str]:
    """Problems with one generated text: invented numbers or names, banned phrases."""
    problems: list[str] = []
    haystack = source.lower()
    allowed = {a.lower() for a in settings.extra_allowed}
    for day in set(_DATE.findall(text)):
        if day not in source:
            problems.append(f"date {day!r} is not in the source data")
    text_without_dates = _TIME.sub(" ", _DATE.sub(" ", text))  # a time of day is not a figure about the deal
    known = _source_figures(source)
    for match in _NUMBER.finditer(text_without_dates):
        number, token = _figure(match), match.group().strip()
        count = _ordinary_count(number) and not _multiplier(match)  # "3rd", "Q4", "v2" read as counts; "5x" is a claim
        if number in allowed or token.lower() in allowed or count or _grounded(number, known):
            continue
        if _glued(match) and _verbatim(token, source):  # an id or label the data has ("v2" of a version it names)
            continue
        problems.append(f"number {token!r} is not in the source data")
    for name in proper_names(text):
        if name.lower() not in haystack and name.lower() not in allowed:
            problems.append(f"name {name!r} is not in the source data")
    lowered = text.lower()
    problems += [f"banned phrase {phrase!r}" for phrase in settings.banned_phrases if phrase.lower() in lowered]
    return problems


@lru_cache(maxsize=8)
def _source_figures(source: str) -> frozenset[float]:
    """Every figure of a source, worked out once for the texts of one decision (its subject, body, proposal)."""
    return frozenset(_values(_figure(m) for m in _NUMBER.finditer(source)))


def _figure(match: re.Match[str]) -> str:
    """The figure of a match: its currency and multiplier stay ($5,000, 10k, 12%), glued letters go (x1.83 -> 1.83)."""
    pre, suf = match.group("pre") or "", match.group("suf") or ""
    keep_suf = suf if not _glued_part(suf) else ""
    return _norm_number(pre.lstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") + match.group("core") + keep_suf)


def _glued_part(part: str) -> bool:
    return part.strip().lower() not in ("", "%", "k", "m")


def _glued(match: re.Match[str]) -> bool:
    return _glued_part(match.group("suf") or "") or any(c.isalpha() for c in match.group("pre") or "")


def _multiplier(match: re.Match[str]) -> bool:
    return (match.group("pre") or "").lower() == "x" or (match.group("suf") or "").lower() == "x"


def _verbatim(token: str, source: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(token)}(?!\w)", source, re.IGNORECASE) is not None


def _norm_number(raw: str) -> str:
    return re.sub(r"[\s,$€£]", "", raw).lower().rstrip(".")


def _value(number: str) -> float | None:
    try:
        return float(number.rstrip("%km"))
    except ValueError:
        return None


def _values(numbers: Iterable[str]) -> set[float]:
    """Every figure of the source, also as a percentage when it is a share (0.68 -> 68)."""
    out: set[float] = set()
    for number in numbers:
        value = _value(number)
        if value is None:
            continue
        value = value / 100 if number.endswith("%") else value
        out.add(round(value, 4))
        if 0 <= value <= 1:
            out.update({round(value * 100, 1), float(round(value * 100))})
    return out


def _grounded(number: str, known: frozenset[float]) -> bool:
    value = _value(number)
    if value is None:
        return False
    return round(value, 4) in known or (number.endswith("%") and round(value / 100, 4) in known)


def _ordinary_count(number: str) -> bool:
    """Small counts (3 days, 2 calls) are how sentences read, not claims about the deal."""
    return number.isdigit() and int(number) <= 31


def proper_names(text: str) -> list[str]:
    """Runs of capitalised tokens (people, companies); a lone capitalised word that opens a line,
    a sentence or a clause (after "->", ":", "-") is how sentences start, not a name."""
    names: list[str] = []
    for line in text.splitlines():
        for sentence in nlp()(line).sents:
            names += _runs(list(sentence))
    return names


def _runs(tokens: list[Any]) -> list[str]:
    runs: list[list[Any]] = []
    current: list[Any] = []
    for i, token in enumerate(tokens):
        capitalised = token.text[:1].isupper() and token.is_alpha and token.text not in _TEMPLATE_WORDS
        if capitalised and token.lower_ not in _SMALL_WORDS:
            current.append((i, token))
            continue
        if current:
            runs.append(current)
        current = []
    if current:
        runs.append(current)
    names = []
    for run in runs:
        first_index, first = run[0]
        opens = first_index == 0 or not tokens[first_index - 1].is_alpha
        if opens and (first.is_stop or len(run) == 1):
            run = run[1:] if first.is_stop else []
        if run:
            names.append(" ".join(t.text for _, t in run))
    return names


def length_problems(texts: Mapping[str, str], settings: QualitySettings) -> list[str]:
    limits = {"subject": settings.max_subject, "body": settings.max_body,
              "proposal:title": settings.max_subject, "proposal:body": settings.max_body}
    return [
        f"{where} is {len(text)} characters, over the limit of {limits.get(where, settings.max_field)}"
        for where, text in texts.items()
        if len(text) > limits.get(where, settings.max_field)
    ]


# --- the gate -----------------------------------------------------------------------------


def gate(
    decision: Decision, verdict: Verdict, source: str, settings: QualitySettings, *, paused: bool = False
) -> GateResult:
    """Apply evals, the draft-only pause and the spot-check sample to one policy verdict."""
    if verdict.autonomy is Autonomy.FORBIDDEN:
        return GateResult(GateStatus.NOT_APPLICABLE, Autonomy.FORBIDDEN, verdict.rule)
    texts = gated_texts(decision, verdict)
    problems = length_problems(texts, settings)
    for where, text in texts.items():
        problems += [f"{where}: {p}" for p in eval_text(text, source, settings)]
    if problems:
        return GateResult(GateStatus.BLOCKED, verdict.autonomy, "; ".join(problems)[:1000])
    if verdict.autonomy is Autonomy.AUTO and paused and decision.kind is not ActionKind.UPDATE_CARD:
        return GateResult(GateStatus.DOWNGRADED, Autonomy.DRAFT, "loop paused to draft-only by a drift check")
    if verdict.autonomy is Autonomy.AUTO and is_crm_write(decision) and in_sample(
        settings.seed, decision.key, settings.sample_rate
    ):
        return GateResult(GateStatus.SAMPLED, Autonomy.AUTO, f"spot-check sample ({settings.sample_rate:.0%})")
    return GateResult(GateStatus.PASSED, verdict.autonomy)


def is_crm_write(decision: Decision) -> bool:
    return decision.kind in (ActionKind.UPDATE_FIELD, ActionKind.CREATE_TASK, ActionKind.CREATE_NOTE, ActionKind.SEND_EMAIL)


def paused_loops(paused: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Loops a drift check dropped to draft-only, with why (InstallationSettings.paused)."""
    return dict(paused or {})


@dataclass(frozen=True)
class Sampled:
    """One autonomous write picked for a manager's spot-check."""

    record_id: str  # the DecisionRecord
    key: str  # the decision key (what the deterministic sample hashes)
    loop: str
    kind: str
    target: str  # the record's name as people know it
    summary: str


def spot_check_digest(items: Sequence[Sampled], seed: str, size: int, admin_url: str) -> tuple[list[Sampled], str]:
    """The weekly spot-check: a deterministic sample of at most `size` writes, each with a link; the rest are counted.

    Same seed and same writes, same sample (the smallest hashes of seed and key), whatever the run order."""
    by_key = {i.key: i for i in items}
    chosen = [by_key[k] for k in sample(by_key, seed, size)]
    link = f"{admin_url}/admin/audit?id=" if admin_url else ""
    lines = ["salesloop wrote these alone; please check that each one is right:"]
    lines += [f"- {registry.title(i.loop)}, {labels.phrase(i.kind)} on {i.target}: {i.summary}"
              + (f" ({link}{i.record_id})" if link else "") for i in chosen]
    more = len(items) - len(chosen)
    if more > 0:
        where = f"{admin_url}/admin/audit?gate_verdict=spot_check" if admin_url else "the salesloop audit page"
        lines.append(f"{labels.count(more, 'more write')} sampled this run are listed on {where}.")
    return chosen, "\n".join(lines)
