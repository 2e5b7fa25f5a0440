"""What is read from one activity's text, once, when it is stored: the extractions every loop uses.

    reader = Reader()                        # compiles the default taxonomy's matchers once
    found = reader.read(activity)            # ActivityReading: written / transcript / email / risk
    row = found.to_json()                    # stored per activity under reader.version
    ActivityReading.from_json(row) == found

The loops read these instead of the text (the text is kept only to quote evidence, and every Mention
carries its sentence and character offsets). A change to the taxonomy, the risk phrases or the extractor
changes `taxonomy_version()`, and stored readings of another version are read again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from crm_adapters.model import Activity, ActivityType, Direction
from jobs.nlp.extract import TURN_MEMO, Extraction, Extractor, Mention
from jobs.nlp.risk_language import PHRASES_FILE, RiskHit, risk_hits
from jobs.nlp.taxonomy import Taxonomy, default_taxonomy

READER_VERSION = 1  # bump when what is read from an activity (or how) changes without a data file changing
RISK_MEMO = 20_000  # texts whose risk hits a Reader remembers (cleared when full)
_KINDS = ("pains", "meddic", "budget", "timeline", "competitors", "objections", "questions")
_VOICED = (ActivityType.CALL, ActivityType.MEETING)
_WRITTEN = (ActivityType.NOTE, ActivityType.CALL, ActivityType.MEETING)


def taxonomy_version(taxonomy: Taxonomy | None = None) -> str:
    """Names what a stored reading was read with: the taxonomy, the risk phrases and this module's rules."""
    tax = taxonomy or default_taxonomy()
    digest = hashlib.sha1(repr((READER_VERSION, tax.key())).encode())
    digest.update(PHRASES_FILE.read_bytes())
    return digest.hexdigest()[:16]


def written_text(activity: Activity) -> str:
    """What a person wrote: subject and body (a call's transcript is read on its own)."""
    return "\n".join(part for part in (activity.subject, activity.body) if part)


def risk_text(activity: Activity) -> str:
    """The buyer's words a warning sign reads: a call's or meeting's text, an inbound email; else ""."""
    voiced = activity.type in _VOICED or (activity.type is ActivityType.EMAIL and activity.direction is Direction.INBOUND)
    return (activity.transcript or activity.body) if voiced else ""


def is_conversation_email(activity: Activity) -> bool:
    """A one-to-one email (not a sequence step) with a body: the objection and discovery loops' turns."""
    return activity.type is ActivityType.EMAIL and bool(activity.body.strip()) and "sequence" not in activity.custom


@dataclass(frozen=True, slots=True)
class ActivityReading:
    """One activity's extractions: None where that text is empty or is not read for this kind of activity."""

    written: Extraction | None = None  # subject + body, speaker-aware (notes, calls, meetings)
    transcript: Extraction | None = None  # the call's or meeting's transcript, speaker-aware
    email: Extraction | None = None  # a conversation email's body as one turn
    risk: tuple[RiskHit, ...] | None = None  # counted risk phrases in risk_text (None: not a buyer's text)

    def to_json(self) -> dict[str, Any]:
        """Compact JSON: each mention as a list in Mention's field order."""
        out: dict[str, Any] = {}
        for name in ("written", "transcript", "email"):
            found = getattr(self, name)
            if found is not None:
                out[name] = _extraction_json(found)
        if self.risk is not None:
            out["risk"] = [_values(h) for h in self.risk]
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any], strings: dict[str, str] | None = None) -> ActivityReading:
        """`strings`, shared over a whole load, keeps one copy of each repeated string (ids, phrases, quoted
        sentences): a tenant's readings repeat them across millions of mentions."""
        strings = {} if strings is None else strings

        def extraction(name: str) -> Extraction | None:
            value = data.get(name)
            return _extraction_from(value, strings) if value is not None else None

        risk = data.get("risk")
        return cls(extraction("written"), extraction("transcript"), extraction("email"),
                   tuple(RiskHit(*_shared(h, strings)) for h in risk) if risk is not None else None)


def _extraction_json(found: Extraction) -> dict[str, Any]:
    out: dict[str, Any] = {k: [_values(m) for m in getattr(found, k)] for k in _KINDS if getattr(found, k)}
    if found.speakers:
        out["speakers"] = list(found.speakers)
    return out


def _values(item: Mention | RiskHit) -> list[Any]:
    """A mention's or risk hit's fields in order: dataclasses.astuple without its deep copy (~10% of reading)."""
    return [getattr(item, name) for name in _FIELD_NAMES[type(item)]]


_FIELD_NAMES = {cls: tuple(f.name for f in fields(cls)) for cls in (Mention, RiskHit)}


def _extraction_from(data: Mapping[str, Any], strings: dict[str, str]) -> Extraction:
    if not data:
        return _EMPTY
    parts: dict[str, Any] = {k: tuple(Mention(*_shared(m, strings)) for m in data.get(k, ())) for k in _KINDS}
    return Extraction(**parts, speakers=tuple(_shared(data.get("speakers", ()), strings)))


_EMPTY = Extraction()  # immutable: every reading that found nothing in a text shares it


def _shared(values: Sequence[Any], strings: dict[str, str]) -> list[Any]:
    """The values with each string replaced by the first equal one seen (one object instead of many)."""
    return [strings.setdefault(v, v) if type(v) is str else v for v in values]


class Reader:
    """One compiled extractor for many activities (compiling the matchers costs ~10 ms)."""

    def __init__(self, taxonomy: Taxonomy | None = None, *, memo: bool = True) -> None:
        """memo: remember what recurring turns and risk texts held (identical readings; off only to measure)."""
        self.taxonomy = taxonomy or default_taxonomy()
        self.version = taxonomy_version(self.taxonomy)
        self.extractor = Extractor(self.taxonomy, memo=TURN_MEMO if memo else 0)
        self.memo = memo
        self._risks: dict[str, tuple[RiskHit, ...]] = {}  # text -> hits: templated emails recur across a tenant

    def read(self, activity: Activity) -> ActivityReading:
        return ActivityReading(self.written(activity), self.transcript(activity), self.email(activity), self.risk(activity))

    def read_all(self, activities: Sequence[Activity]) -> dict[str, ActivityReading]:
        return {a.remote_id: self.read(a) for a in activities}

    def written(self, activity: Activity, *, any_type: bool = False) -> Extraction | None:
        """Notes, calls and meetings (any_type: whatever the activity is, for a loop asking of an email)."""
        text = written_text(activity) if any_type or activity.type in _WRITTEN else ""
        return self.extractor.run(text, speaker_aware=True) if text else None

    def transcript(self, activity: Activity) -> Extraction | None:
        return self.extractor.run(activity.transcript, speaker_aware=True) if activity.transcript else None

    def email(self, activity: Activity) -> Extraction | None:
        return self.extractor.run(activity.body, speaker_aware=False) if is_conversation_email(activity) else None

    def risk(self, activity: Activity) -> tuple[RiskHit, ...] | None:
        text = risk_text(activity)
        if not text:
            return None
        found = self._risks.get(text)
        if found is None:
            found = tuple(risk_hits(text))
            if len(self._risks) >= RISK_MEMO:
                self._risks.clear()
            if self.memo:
                self._risks[text] = found
        return found


def covers_written(activity: Activity) -> bool:
    """Whether a stored reading's `written` answers for this activity (else a loop reads it itself)."""
    return activity.type in _WRITTEN
