"""When a loop learns: on its schedule (the nightly job) or when enough new outcomes arrived, not on every run.

A chain run on demand ("Run the loops now", a webhook's sync) decides with the active version unless
that version is older than a day or the tenant gained outcomes since it learned (closed deals, stage
moves, buyers' replies): enough of them to move a model (at least MIN_NEW, and SHARE of those it saw).
What a version learned from is kept with it (`mark`), so the next run can tell.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from connector.store.tables import ModelVersion
from crm_adapters.model import Direction
from crm_adapters.snapshot import Snapshot
from jobs.state.versions import CONTENT

EVERY = timedelta(hours=20)  # a version a day old is relearned whatever happened (the nightly schedule's slack)
MIN_NEW, SHARE = 20, 0.02


def outcomes(snapshot: Snapshot) -> int:
    """What the loops learn from, counted: closed deals, stage changes, replies from buyers."""
    replies = sum(1 for a in snapshot.activities if a.direction is Direction.INBOUND)
    return len(snapshot.closed_deals()) + len(snapshot.stage_changes) + replies


def due(current: ModelVersion | None, seen_now: int, now: datetime) -> bool:
    """Learn now: no version yet, a version that never said what it saw, one a day old, or enough new outcomes."""
    if current is None:
        return True
    as_of, seen = content(current).get("as_of"), content(current).get("outcomes")
    if not isinstance(as_of, str) or not isinstance(seen, int):
        return True
    if now - datetime.fromisoformat(as_of) >= EVERY:
        return True
    return seen_now - seen >= threshold(seen)


def threshold(seen: int) -> float:
    """How many new outcomes make a version that learned from `seen` of them due again."""
    return max(MIN_NEW, SHARE * seen)


def content(version: ModelVersion) -> Mapping[str, Any]:
    """What a version says it learned from (see `mark`)."""
    found: Mapping[str, Any] = (version.metrics or {}).get(CONTENT) or {}
    return found


def mark(version: ModelVersion, seen: int, now: datetime, records_at: datetime | None = None) -> None:
    """Remember that this version reflects the tenant as of `now` with `seen` outcomes, from the store as it was
    at `records_at` (so a later run can count what changed since without reading the whole snapshot)."""
    metrics = dict(version.metrics or {})
    marks: dict[str, Any] = {"as_of": now.isoformat(), "outcomes": seen}
    if records_at is not None:
        marks["records_at"] = records_at.isoformat()
    metrics[CONTENT] = {**(metrics.get(CONTENT) or {}), **marks}
    version.metrics = metrics
