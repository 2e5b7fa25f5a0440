"""Who said what in a deal's calls and emails, as turns, each with the NLP extractor's mentions."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache

from crm_adapters.model import Activity, ActivityType, Direction
from crm_adapters.snapshot import Snapshot
from jobs.loops import texts
from jobs.nlp import Extraction, Mention, Taxonomy, default_taxonomy
from jobs.nlp.reading import is_conversation_email
from jobs.nlp.speakers import split_turns
from jobs.nlp.taxonomy import OBJECTION_IDS

TaxKey = tuple[tuple[str, tuple[str, ...]], ...]  # a tenant's objection phrases, by kind: names a taxonomy
TRANSCRIPTS = "transcripts"  # LoopDefinition.process_group of the loops that extract the same call transcripts


@dataclass(frozen=True, slots=True)
class Turn:
    """One speaker's turn: 'rep' | 'prospect', its text, the objections and questions found in it."""

    speaker: str
    text: str
    at: datetime
    activity_id: str
    objections: frozenset[str] = frozenset()
    questions: frozenset[str] = frozenset()
    pains: frozenset[str] = frozenset()


def is_discovery_call(activity: Activity) -> bool:
    return activity.type is ActivityType.CALL and activity.custom.get("kind") == "discovery_call"


def with_objection_phrases(additions: dict[str, list[str]]) -> TaxKey:
    """The key of the default taxonomy plus a tenant's approved objection phrases (its known objection kinds)."""
    return tuple((kind, tuple(phrases)) for kind, phrases in sorted(additions.items()) if kind in OBJECTION_IDS)


@lru_cache(maxsize=32)
def _taxonomy(key: TaxKey | None) -> Taxonomy | None:
    """The taxonomy a with_objection_phrases key stands for, rebuilt from the key alone (so never lost);
    None when it adds nothing to the default one (whose readings the store holds)."""
    base = default_taxonomy()
    objections = {k: tuple(v) for k, v in base.objections.items()}
    for kind, phrases in key or ():
        objections[kind] = objections.get(kind, ()) + tuple(p for p in phrases if p not in objections.get(kind, ()))
    return None if objections == base.objections else replace(base, objections=objections)


def transcript_turns(snapshot: Snapshot, activity: Activity, tax: TaxKey | None = None) -> list[Turn]:
    """'Rep: ...' / 'Prospect: ...' turns of a call, with the mentions that fall inside each turn."""
    found = texts.transcript(snapshot, activity, _taxonomy(tax)) or Extraction()
    parts = split_turns(activity.transcript)
    starts = [t.offset for t in parts]  # turns do not overlap and come in text order: a mention is in at most one

    def by_turn(mentions: Iterable[Mention]) -> dict[int, set[str]]:
        out: dict[int, set[str]] = {}
        for m in mentions:
            i = bisect_right(starts, m.start) - 1
            if i >= 0 and m.start < starts[i] + len(parts[i].text):
                out.setdefault(i, set()).add(m.id)
        return out

    objections = by_turn(m for m in found.objections if not m.negated)
    questions = by_turn(found.questions)
    pains = by_turn(m for m in found.pains if not m.negated)
    return [Turn(t.speaker, t.text.strip(), activity.occurred_at, activity.remote_id, frozenset(objections.get(i, ())),
                 frozenset(questions.get(i, ())), frozenset(pains.get(i, ())))
            for i, t in enumerate(parts) if t.speaker is not None]


def email_turn(snapshot: Snapshot, activity: Activity, tax: TaxKey | None = None) -> Turn:
    """An email as one turn: inbound = the prospect, otherwise the rep."""
    found = texts.email(snapshot, activity, _taxonomy(tax)) or Extraction()
    speaker = "prospect" if activity.direction is Direction.INBOUND else "rep"
    return Turn(speaker, activity.body.strip(), activity.occurred_at, activity.remote_id,
                frozenset(found.objection_ids()) if speaker == "prospect" else frozenset(), frozenset(found.question_ids()),
                frozenset(found.pain_ids()))


def deal_turns(snapshot: Snapshot, activities: list[Activity], tax: TaxKey | None = None) -> Iterator[Turn]:
    """Turns of a deal's calls and meetings (transcripts) and one-to-one emails, in time order."""
    for activity in sorted(activities, key=lambda a: a.occurred_at):
        if activity.type in (ActivityType.CALL, ActivityType.MEETING) and activity.transcript:
            yield from transcript_turns(snapshot, activity, tax)
        elif is_conversation_email(activity):
            yield email_turn(snapshot, activity, tax)
