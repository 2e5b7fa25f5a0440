"""The deal-risk warning signs, each computed from the common model "as of" a moment, with its evidence.

Every sign has a severity >= 0: 0 means it does not fire, larger means worse. The same function
serves open deals (as of now) and closed deals (as of a moment before they closed, for learning),
so nothing recorded after `as_of` may be read here.
"""

from __future__ import annotations

import statistics
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from crm_adapters.model import Activity, ActivityType, ContactRole, Deal, Direction
from crm_adapters.snapshot import Snapshot
from jobs.loops import labels, texts
from jobs.loops.deal_risk._timeline import Timeline, timeline

SIGNS: tuple[str, ...] = (
    "no_recent_activity", "champion_quiet", "meeting_slipped", "close_date_pushed",
    "stalled_in_stage", "single_threaded", "proposal_unopened", "risk_language",
)
QUIET_DAYS = 14  # no_recent_activity: silence longer than two working weeks
CHAMPION_MIN_QUIET = 14  # champion_quiet: never before two weeks, whatever their usual latency
DEFAULT_LATENCY = 3.0  # days a contact usually takes to reply when we have no pairs to measure
MEETING_WINDOW = 30  # meeting_slipped: no meeting in the last month and none ahead
PROPOSAL_GRACE = 3  # proposal_unopened: days to give a proposal before it counts as unopened
CAP = 4.0
LANGUAGE_DAYS = 30  # risk_language: the buyer's calls, meetings and emails of the last month


@dataclass(frozen=True, slots=True)
class Sign:
    """One warning sign on one deal: severity (0 = not firing) and a sentence of evidence."""

    code: str
    value: float
    evidence: str = ""

    @property
    def fired(self) -> bool:
        return self.value > 0


@dataclass(frozen=True)
class StageNorms:
    """How long the tenant's deals usually stay in each stage (median and 80th percentile, days)."""

    days: Mapping[str, tuple[float, float]]

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot) -> StageNorms:
        stays: dict[str, list[float]] = {}
        for change in snapshot.stage_changes:
            if change.exited_at is not None:
                stays.setdefault(change.stage_id, []).append(_days(change.exited_at - change.entered_at))
        norms = {}
        for stage_id, values in stays.items():
            if len(values) >= 5:
                values.sort()
                norms[stage_id] = (statistics.median(values), values[int(0.8 * (len(values) - 1))])
        return cls(norms)

    def to_json(self) -> dict[str, list[float]]:
        return {k: [round(a, 2), round(b, 2)] for k, (a, b) in self.days.items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Sequence[float]] | None) -> StageNorms:
        return cls({k: (float(v[0]), float(v[1])) for k, v in (data or {}).items()})


def _days(delta: timedelta) -> float:
    return delta.total_seconds() / 86400.0


def _cap(value: float) -> float:
    return round(min(max(value, 0.0), CAP), 3)


def _when(activity: Activity) -> datetime:
    return activity.start_at or activity.occurred_at


def warning_signs(snapshot: Snapshot, deal: Deal, as_of: datetime, norms: StageNorms) -> dict[str, Sign]:
    """All eight signs for one deal as of a moment, reading only what was known then (the deal's timeline up to it)."""
    line = timeline(snapshot, deal)
    known = line.known(as_of)
    acts = line.acts[:known]
    signs = (
        no_recent_activity(deal, acts, as_of),
        champion_quiet(snapshot, deal, line, known, as_of),
        meeting_slipped(line, known, as_of),
        close_date_pushed(deal, line, known, as_of),
        stalled_in_stage(snapshot, deal, as_of, norms),
        single_threaded(snapshot, deal, acts, as_of),
        proposal_unopened(line, known, as_of),
        risk_language(snapshot, line, known, as_of),
    )
    return {s.code: s for s in signs}


def no_recent_activity(deal: Deal, acts: Sequence[Activity], as_of: datetime) -> Sign:
    done = next((a for a in reversed(acts) if a.type is not ActivityType.TASK), None)
    last = done.occurred_at if done is not None else deal.created_at
    if last is None:
        return Sign("no_recent_activity", 0.0)
    idle = _days(as_of - last)
    if idle <= QUIET_DAYS:
        return Sign("no_recent_activity", 0.0)
    what = f"last: {done.type.value} on {labels.when(last)}" if done is not None else "nothing logged since it was created"
    return Sign("no_recent_activity", _cap(idle / QUIET_DAYS - 1 + 0.25), f"no activity for {labels.days(idle)} ({what})")


def champion_quiet(snapshot: Snapshot, deal: Deal, line: Timeline, known: int, as_of: datetime) -> Sign:
    """Days since the champion last wrote or called in, against their own usual reply latency."""
    if not line.champions:
        return Sign("champion_quiet", 0.0)
    touches = [line.acts[i] for i in line.touch[:bisect_left(line.touch, known)]]
    inbound = [a.occurred_at for a in touches if a.direction is Direction.INBOUND]
    usual = _reply_latency(touches)
    since = inbound[-1] if inbound else (touches[0].occurred_at if touches else deal.created_at)
    if since is None:
        return Sign("champion_quiet", 0.0)
    quiet = _days(as_of - since)
    limit = max(3 * usual, CHAMPION_MIN_QUIET)
    if quiet <= limit:
        return Sign("champion_quiet", 0.0)
    name = _contact_name(snapshot, min(line.champions))
    heard = f"last heard from on {labels.when(since)}" if inbound else "has never replied"
    return Sign("champion_quiet", _cap(quiet / limit),
                f"champion {name} quiet for {labels.days(quiet)} ({heard}; usually replies within {labels.days(max(usual, 1))})")


def _reply_latency(touches: Sequence[Activity]) -> float:
    """Median days between an outbound touch and the contact's next inbound one."""
    gaps, pending = [], None
    for a in touches:
        if a.direction is Direction.OUTBOUND and pending is None:
            pending = a.occurred_at
        elif a.direction is Direction.INBOUND and pending is not None:
            gaps.append(_days(a.occurred_at - pending))
            pending = None
    return max(statistics.median(gaps), 0.5) if gaps else DEFAULT_LATENCY


def _contact_name(snapshot: Snapshot, contact_id: str) -> str:
    contact = snapshot.contact_by_id.get(contact_id)
    return contact.name if contact is not None and contact.name else f"#{contact_id}"


def meeting_slipped(line: Timeline, known: int, as_of: datetime) -> Sign:
    """Meetings rescheduled or cancelled lately, or no meeting nor connected call lately and none scheduled."""
    recent = range(line.since(as_of - timedelta(days=MEETING_WINDOW)), known)  # logged in the last month, by as_of
    slipped = [line.acts[i] for i in recent if line.slipped[i]]
    held = any(line.held[i] for i in recent)
    booked = line.last_booked is not None and line.last_booked > as_of
    value = float(len(slipped)) + (0.0 if held or booked else 1.0)
    if value == 0:
        return Sign("meeting_slipped", 0.0)
    parts = [f"{a.outcome} meeting on {labels.when(_when(a))}" for a in slipped[-2:]]
    if not held and not booked:
        parts.append(f"no meeting or connected call in the last {labels.days(MEETING_WINDOW)} and no meeting scheduled")
    return Sign("meeting_slipped", _cap(value), "; ".join(parts))


def close_date_changes(deal: Deal, line: Timeline, known: int, as_of: datetime) -> list[tuple[date, date]]:
    """Close-date moves (from, to) recorded before `as_of`.

    From close_date_change activities (dated), or deal.custom["close_date_history"] entries that
    are {"at", "from", "to"}; a bare list of ISO dates (oldest first, undated) is read only for an
    open deal, where it is the history up to now.
    """
    moves = [m for i, m in line.moves if i < known]
    if moves:
        return moves
    if line.history_moves is not None:
        return [m for when, m in line.history_moves if when <= as_of]
    return list(line.undated_moves)


def close_date_pushed(deal: Deal, line: Timeline, known: int, as_of: datetime) -> Sign:
    pushes = [(old, new) for old, new in close_date_changes(deal, line, known, as_of) if new > old]
    if not pushes:
        return Sign("close_date_pushed", 0.0)
    total = sum((new - old).days for old, new in pushes)
    text = f"close date pushed {labels.count(len(pushes), 'time')}, {labels.days(total)} in all"
    last = f"last from {labels.when(pushes[-1][0])} to {labels.when(pushes[-1][1])}"
    return Sign("close_date_pushed", _cap(len(pushes) + total / 60), f"{text} ({last})")


def stage_at(snapshot: Snapshot, deal: Deal, as_of: datetime) -> tuple[str, datetime | None]:
    """The stage a deal was in at a moment and when it entered it (its history, else the deal itself)."""
    line = timeline(snapshot, deal)
    known = line.stages_known(as_of)
    entered: datetime | None
    if known:
        stage_id, entered = line.stages[known - 1].stage_id, line.stages[known - 1].entered_at
    elif deal.is_closed:
        return "", None  # its current stage is the outcome: never read it for a past moment
    else:
        stage_id, entered = deal.stage_id, deal.created_at
    stage = snapshot.stage_by_id.get(stage_id)
    if deal.is_closed and stage is not None and stage.is_closed:
        return "", None
    return stage_id, entered


def stalled_in_stage(snapshot: Snapshot, deal: Deal, as_of: datetime, norms: StageNorms) -> Sign:
    stage_id, entered = stage_at(snapshot, deal, as_of)
    usual = norms.days.get(stage_id)
    if entered is None or usual is None:
        return Sign("stalled_in_stage", 0.0)
    days = _days(as_of - entered)
    median, p80 = usual
    if days <= max(p80, 7.0):
        return Sign("stalled_in_stage", 0.0)
    stage = snapshot.stage_by_id.get(stage_id)
    label = stage.label if stage is not None else stage_id
    text = f"{labels.days(days)} in {label}; deals usually leave it in {labels.days(median)} (80% within {labels.days(p80)})"
    return Sign("stalled_in_stage", _cap(days / max(p80, 7.0)), text)


def single_threaded(snapshot: Snapshot, deal: Deal, acts: Sequence[Activity], as_of: datetime) -> Sign:
    """One buyer contact at most (roles named by then, people touched), and/or no economic buyer named."""
    roles = [r for r in snapshot.roles_by_deal.get(deal.remote_id, [])
             if r.remote_updated_at is None or r.remote_updated_at <= as_of]
    engaged = {c for a in acts if a.direction is not Direction.INTERNAL for c in a.contact_ids} | {r.contact_id for r in roles}
    buyers = [r for r in roles if r.role in (ContactRole.ECONOMIC_BUYER, ContactRole.DECISION_MAKER)]
    thin, no_buyer = len(engaged) <= 1, not buyers
    parts = []
    if thin:
        parts.append(f"only {labels.count(len(engaged), 'buyer contact')} involved")
    if no_buyer:
        parts.append("no economic buyer or decision maker named")
    return Sign("single_threaded", float(thin) + float(no_buyer), "; ".join(parts))


def proposal_unopened(line: Timeline, known: int, as_of: datetime) -> Sign:
    sent = [a for a in (line.acts[i] for i in line.proposals[:bisect_left(line.proposals, known)])
            if _days(as_of - a.occurred_at) >= PROPOSAL_GRACE]
    if not sent or any(bool(a.custom.get("opened")) for a in sent):
        return Sign("proposal_unopened", 0.0)
    last = sent[-1].occurred_at
    return Sign("proposal_unopened", 1.0, f"proposal sent on {labels.when(last)} not opened after {labels.days(_days(as_of - last))}")


def risk_language(snapshot: Snapshot, line: Timeline, known: int, as_of: datetime) -> Sign:
    """Risk phrases (not negated) in the buyer's recent words: calls, meetings and replies of the last month.

    Older calls (discovery) are left out: objections raised early are the objection loop's business;
    a warning sign is talk of delay, holds, reorgs or doubt while the deal should be closing.
    """
    recent = range(line.since(as_of - timedelta(days=LANGUAGE_DAYS)), known)
    found = [(line.acts[i], h) for i in recent if line.voiced[i] for h in texts.risk(snapshot, line.acts[i])]
    if not found:
        return Sign("risk_language", 0.0)
    quotes = "; ".join(f'{h.label} ({a.type.value} on {labels.when(a.occurred_at)}): "{h.sentence[:100]}"' for a, h in found[:2])
    return Sign("risk_language", _cap(len(found)), quotes)
