"""A deal's history indexed once per snapshot, so each sign reads "as of a moment" by bisection.

Why: a closed deal is featurised at five moments (MOMENTS and the recovery-move midpoint) and every
sign used to filter the deal's whole activity list again at each one (`occurred_at <= as_of`), parse
its close-date moves again and look its champions up again. Activities and stage changes come oldest
first (Snapshot's indexes), so what was known by a moment is a prefix, and a recent window is a slice;
everything that does not depend on the moment (flags per activity, parsed moves, champions) is
computed here once per deal.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from crm_adapters.model import Activity, ActivityType, ContactRole, Deal, Direction, StageChange
from crm_adapters.snapshot import Snapshot

_CACHE = "deal_risk.timelines"  # Snapshot._cache key: deal id -> Timeline
SLIPPED = ("rescheduled", "cancelled", "canceled")
HELD = ("completed", "scheduled")
Move = tuple[date, date]


@dataclass(frozen=True, slots=True)
class Timeline:
    """One deal's activities (oldest first) with per-activity facts, its stage history and close-date moves."""

    acts: Sequence[Activity]
    times: list[datetime]  # occurred_at of each activity, for bisection
    touch: list[int]  # indexes of the activities with a champion on them
    champions: frozenset[str]
    slipped: list[bool]  # a meeting rescheduled or cancelled
    held: list[bool]  # a meeting held (or still scheduled) or a call that reached the buyer
    last_booked: datetime | None  # the latest start of a meeting still scheduled, whenever it was logged
    proposals: list[int]  # indexes of the proposals sent
    voiced: list[bool]  # the buyer's words: a call's or meeting's text, or an inbound email's
    moves: list[tuple[int, Move]]  # close-date moves logged as activities: (index, (from, to))
    history_moves: list[tuple[datetime, Move]] | None  # deal.custom's dated history, when every entry is a mapping
    undated_moves: list[Move]  # deal.custom's bare list of dates (read for an open deal only)
    stages: Sequence[StageChange]
    entered: list[datetime]

    def known(self, as_of: datetime) -> int:
        """How many activities were logged by `as_of` (they are the first ones)."""
        return bisect_right(self.times, as_of)

    def since(self, start: datetime) -> int:
        """The first activity logged at or after `start`."""
        return bisect_left(self.times, start)

    def stages_known(self, as_of: datetime) -> int:
        return bisect_right(self.entered, as_of)


def timeline(snapshot: Snapshot, deal: Deal) -> Timeline:
    """The deal's timeline, built on first use and kept with the snapshot."""
    memo: dict[str, Timeline] = snapshot._cache.setdefault(_CACHE, {})  # type: ignore[assignment]
    found = memo.get(deal.remote_id)
    if found is None:
        found = memo[deal.remote_id] = _build(snapshot, deal)
    return found


def _build(snapshot: Snapshot, deal: Deal) -> Timeline:
    acts = snapshot.activities_for(deal.remote_id)
    champions = frozenset(snapshot.contacts_in_role(deal.remote_id, ContactRole.CHAMPION))
    booked = [a.start_at or a.occurred_at for a in acts
              if a.type is ActivityType.MEETING and (a.outcome or "scheduled").lower() == "scheduled"]
    history = list(deal.custom.get("close_date_history", ()) or ())
    stages = snapshot.history_for(deal.remote_id)
    return Timeline(
        acts=acts, times=[a.occurred_at for a in acts],
        touch=[i for i, a in enumerate(acts) if champions and not champions.isdisjoint(a.contact_ids)],
        champions=champions,
        slipped=[a.type is ActivityType.MEETING and (a.outcome or "").lower() in SLIPPED for a in acts],
        held=[(a.type is ActivityType.MEETING and (a.outcome or "completed").lower() in HELD) or connected_call(a)
              for a in acts],
        last_booked=max(booked) if booked else None,
        proposals=[i for i, a in enumerate(acts) if a.custom.get("kind") == "proposal"],
        voiced=[_voiced(a) for a in acts],
        moves=[(i, m) for i, a in enumerate(acts) if a.custom.get("kind") == "close_date_change"
               for m in [_parse(a.custom, a.occurred_at)] if m is not None],
        history_moves=_dated(history) if history and all(isinstance(e, Mapping) for e in history) else None,
        undated_moves=[] if deal.is_closed else _undated(history),
        stages=stages, entered=[c.entered_at for c in stages],
    )


def connected_call(activity: Activity) -> bool:
    """A call that reached the buyer: a live conversation counts as contact, like a meeting held."""
    if activity.type is not ActivityType.CALL:
        return False
    outcome = (activity.outcome or "").lower()
    return outcome in ("connected", "completed", "answered") or (not outcome and (activity.duration_s or 0) >= 60)


def _voiced(a: Activity) -> bool:
    """The buyer's words: a call's or meeting's text, or an inbound email's."""
    return bool(a.transcript or a.body) and (
        a.type in (ActivityType.CALL, ActivityType.MEETING) or (a.type is ActivityType.EMAIL and a.direction is Direction.INBOUND))


def _parse(entry: Any, at: datetime | None = None) -> Move | None:
    """A close-date move (from, to) from an activity's custom fields or a history entry; None if unreadable or
    undated (a naive timestamp cannot be placed in time). The entry's own date is checked by the caller."""
    when = _when(entry, at)
    if when is None:
        return None
    try:
        old = date.fromisoformat(str(entry.get("from") or entry.get("old"))[:10])
        new = date.fromisoformat(str(entry.get("to") or entry.get("new"))[:10])
    except (TypeError, ValueError):
        return None
    return old, new


def _when(entry: Any, at: datetime | None) -> datetime | None:
    if not isinstance(entry, Mapping):
        return None
    try:
        when = at or datetime.fromisoformat(str(entry.get("at") or entry.get("changed_at")))
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo is not None else None


def _dated(history: list[Any]) -> list[tuple[datetime, Move]]:
    out = []
    for entry in history:
        when, move = _when(entry, None), _parse(entry)
        if when is not None and move is not None:
            out.append((when, move))
    return out


def _undated(history: list[Any]) -> list[Move]:
    """A bare list of ISO dates, oldest first: the moves between consecutive ones."""
    if not history or not all(isinstance(e, str) for e in history):
        return []
    try:
        dates = [date.fromisoformat(e[:10]) for e in history]
    except ValueError:
        return []
    return list(zip(dates, dates[1:], strict=False))
