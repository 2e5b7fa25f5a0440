"""Does the deal's own timeline contradict a risk reason? Checked before any reason is shown.

Deliberately written apart from the signs (signs.py): it reads the raw timeline the way a rep
glancing at the record would (a connected call is contact, a named economic buyer is a buyer), so
a sign whose logic misses a case cannot put a sentence on the card that the activity list refutes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from crm_adapters.model import Activity, ActivityType, ContactRole, Deal, Direction
from crm_adapters.snapshot import Snapshot
from jobs.loops import labels
from jobs.loops.decision import Reason

QUIET_DAYS = 14
MEETING_DAYS = 30
LIVE_OUTCOMES = ("connected", "completed", "answered")


def _live(a: Activity) -> bool:
    """A meeting held or a call that reached someone."""
    outcome = (a.outcome or "").lower()
    if a.type is ActivityType.MEETING:
        return outcome in ("", "completed")
    return a.type is ActivityType.CALL and (outcome in LIVE_OUTCOMES or (not outcome and (a.duration_s or 0) >= 60))


def contradiction(snapshot: Snapshot, deal: Deal, reason: Reason, now: datetime) -> str | None:
    """Why the record refutes this reason (a sentence), or None when the record bears it out."""
    acts = [a for a in snapshot.activities_for(deal.remote_id) if a.occurred_at <= now]
    text = reason.text.lower()
    if reason.code == "no_recent_activity":
        recent = [a for a in acts if a.type is not ActivityType.TASK and a.occurred_at > now - timedelta(days=QUIET_DAYS)]
        return f"{recent[-1].type.value} on {labels.when(recent[-1].occurred_at)}" if recent else None
    if reason.code == "meeting_slipped" and "no meeting" in text:
        live = [a for a in acts if _live(a) and a.occurred_at >= now - timedelta(days=MEETING_DAYS)]
        ahead = [a for a in snapshot.activities_for(deal.remote_id) if a.type is ActivityType.MEETING
                 and (a.start_at or a.occurred_at) > now and (a.outcome or "scheduled").lower() == "scheduled"]
        found = live or ahead
        return f"{found[-1].type.value} on {labels.when(found[-1].occurred_at)}" if found else None
    if reason.code == "champion_quiet":
        champions = set(snapshot.contacts_in_role(deal.remote_id, ContactRole.CHAMPION))
        heard = [a for a in acts if a.direction is Direction.INBOUND and champions & set(a.contact_ids)
                 and a.occurred_at > now - timedelta(days=QUIET_DAYS)]
        return f"the champion wrote or called on {labels.when(heard[-1].occurred_at)}" if heard else None
    if reason.code == "single_threaded":
        return _threads(snapshot, deal, acts, text)
    if reason.code == "proposal_unopened":
        opened = [a for a in acts if a.custom.get("kind") == "proposal" and a.custom.get("opened")]
        return "the proposal was opened" if opened else None
    return None


def _threads(snapshot: Snapshot, deal: Deal, acts: list[Activity], text: str) -> str | None:
    roles = snapshot.roles_by_deal.get(deal.remote_id, [])
    if "no economic buyer" in text and any(r.role in (ContactRole.ECONOMIC_BUYER, ContactRole.DECISION_MAKER) for r in roles):
        return "an economic buyer or decision maker is named on the deal"
    people = {c for a in acts if a.direction is not Direction.INTERNAL for c in a.contact_ids} | {r.contact_id for r in roles}
    if "only" in text and len(people) > 1:
        return f"{len(people)} buyer contacts are on the deal"
    return None
