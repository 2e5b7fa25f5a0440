"""The words of a tenant's activities as the loops read them: what was extracted when the text was stored.

The engine hands the loops a ReadSnapshot: the snapshot plus each activity's stored ActivityReading
(jobs.nlp.reading, read once at sync, keyed by taxonomy version). A loop asks here for an activity's
extractions and never runs the extractor over text the store already read. A plain Snapshot (tests,
benches, backtests), an activity with no current reading, or a tenant's own taxonomy (approved objection
phrases) is read here on first use and kept with the snapshot for the rest of the run: the same answer,
computed later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from crm_adapters.model import Activity
from crm_adapters.snapshot import Snapshot
from jobs.nlp import Extraction, Taxonomy
from jobs.nlp.reading import ActivityReading, Reader, covers_written, risk_text
from jobs.nlp.risk_language import RiskHit, risk_hits

_MEMO = "texts.read"  # Snapshot._cache key: what this run read itself, per (what, activity id)


@dataclass(frozen=True)
class ReadSnapshot(Snapshot):
    """A snapshot with its activities' stored readings (activity id -> reading of the current taxonomy)."""

    readings: Mapping[str, ActivityReading] = field(default_factory=dict, compare=False, repr=False)


def stored(snapshot: Snapshot, activity: Activity) -> ActivityReading | None:
    return snapshot.readings.get(activity.remote_id) if isinstance(snapshot, ReadSnapshot) else None


def extractions(snapshot: Snapshot, activity: Activity) -> list[Extraction]:
    """What a person wrote, then the call's transcript: each text of the activity that has any, extracted."""
    found = [written(snapshot, activity), transcript(snapshot, activity)]
    return [e for e in found if e is not None]


def written(snapshot: Snapshot, activity: Activity) -> Extraction | None:
    reading = stored(snapshot, activity)
    if reading is not None and covers_written(activity):
        return reading.written
    return _memo(snapshot, ("written", activity.remote_id), lambda r: r.written(activity, any_type=True))


def transcript(snapshot: Snapshot, activity: Activity, taxonomy: Taxonomy | None = None) -> Extraction | None:
    """The transcript, speaker-aware; a taxonomy other than the default one is read here, not stored."""
    reading = stored(snapshot, activity) if _is_default(taxonomy) else None
    if reading is not None:
        return reading.transcript
    return _memo(snapshot, ("transcript", activity.remote_id), lambda r: r.transcript(activity), taxonomy)


def email(snapshot: Snapshot, activity: Activity, taxonomy: Taxonomy | None = None) -> Extraction | None:
    """A conversation email's body as one turn (not speaker-aware)."""
    reading = stored(snapshot, activity) if _is_default(taxonomy) else None
    if reading is not None and reading.email is not None:
        return reading.email
    return _memo(snapshot, ("email", activity.remote_id), lambda r: r.extractor.run(activity.body, speaker_aware=False),
                 taxonomy)


def risk(snapshot: Snapshot, activity: Activity) -> tuple[RiskHit, ...]:
    """Counted risk phrases (not negated, the buyer's lines) in a call's, meeting's or email's text."""
    reading = stored(snapshot, activity)
    if reading is not None and reading.risk is not None:
        return reading.risk
    memo: dict[tuple[str, ...], Any] = snapshot._cache.setdefault(_MEMO, {})  # type: ignore[assignment]
    key = ("risk", activity.remote_id)
    if key not in memo:
        memo[key] = tuple(risk_hits(risk_text(activity) or activity.transcript or activity.body))
    found: tuple[RiskHit, ...] = memo[key]
    return found


def _is_default(taxonomy: Taxonomy | None) -> bool:
    """None stands for the default taxonomy (the one stored readings were read with)."""
    return taxonomy is None


def _memo(snapshot: Snapshot, key: tuple[str, str], read: Any, taxonomy: Taxonomy | None = None) -> Extraction | None:
    """Read once per run and snapshot, with one compiled Reader per taxonomy."""
    tax_key = "default" if taxonomy is None else str(id(taxonomy))
    memo: dict[tuple[str, ...], Any] = snapshot._cache.setdefault(_MEMO, {})  # type: ignore[assignment]
    full = (tax_key, *key)
    if full not in memo:
        reader = memo.get(("reader", tax_key))
        if reader is None:
            reader = memo[("reader", tax_key)] = Reader(None if tax_key == "default" else taxonomy)
        memo[full] = read(reader)
    found: Extraction | None = memo[full]
    return found
