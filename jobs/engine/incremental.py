"""How much an on-demand chain reads: nothing, the deals that changed, or the whole snapshot.

A run "Run the loops now" or after a webhook's sync needs the whole snapshot only when some loop must learn, a
manager's verdict or a new version changed a loop's state, or a loop that looks at the whole tenant is due (once
a day: weekly proposals, ICP segments, the morning lists). Otherwise the loops that score each deal from its
own records and the learned state (PER_DEAL) rescore the deals whose records changed since their last run, and
no other loop runs; when no record changed, nothing is read at all.

Each run keeps, on its LoopRun, the moment it read the store (`records_at`); a record synced after that moment
(records.upsert_records moves `synced_at` only when the payload changed) is what the next run has not seen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.store import related
from connector.store.tables import LoopRun, LoopRunStatus
from crm_adapters.model import Entity
from jobs.engine import learning
from jobs.loops.decision import Decision
from jobs.state import versions

# Loops whose decisions about a deal depend only on that deal's records (the deal, its stage changes, activities
# and their readings, roles, account and contacts) and the loop's learned state: deal risk's features are per deal,
# and the tenant-wide figures it compares with (stage norms, stage win rates, risk levels, moves) are in its state;
# handoff reads each deal's own notes and calls. tests/unit/engine/test_per_deal_loops.py holds them to it. Their
# decisions about no deal in particular (an owner's at-risk list, playbook proposals) wait for a whole-snapshot run.
PER_DEAL = frozenset({"deal_risk", "handoff"})
RECORDS_AT = "records_at"  # in LoopRun.stats: when that run read the store (ISO, UTC)


@dataclass(frozen=True)
class Scope:
    """What this run reads and which loops run: deals None means the whole snapshot."""

    records_at: datetime
    loops: tuple[str, ...]
    deals: frozenset[str] | None = None
    why: str = "whole snapshot"
    skipped: dict[str, str] = field(default_factory=dict)  # loop -> why it did not run

    @property
    def whole(self) -> bool:
        return self.deals is None


def whole(records_at: datetime, loops: Mapping[str, Any], why: str) -> Scope:
    return Scope(records_at, tuple(loops), None, why)


def scope(session: Session, installation_id: str, loops: Mapping[str, Any], now: datetime, *, approvals_settled: bool,
          records_at: datetime | None = None) -> Scope:
    """The least this on-demand run must read to leave every loop's output current."""
    records_at = records_at or datetime.now(UTC)
    if approvals_settled:
        return whole(records_at, loops, "a manager's verdict was read")
    last: dict[str, datetime] = {}
    for name in loops:
        current = versions.active(session, installation_id, name)
        run = _last_run(session, installation_id, name)
        seen_at = _seen_at(run)
        if current is None or run is None or seen_at is None:
            return whole(records_at, loops, f"{name} has no earlier run to start from")
        if (run.stats or {}).get("version") != versions.label(current):
            return whole(records_at, loops, f"{name} has a new version")
        if _learning_due(session, installation_id, current, now):
            return whole(records_at, loops, f"{name} is due to learn")
        if name not in PER_DEAL and now - datetime.fromisoformat(str((run.stats or {}).get("as_of"))) >= learning.EVERY:
            return whole(records_at, loops, f"{name} looks at the whole tenant and is due")
        last[name] = seen_at
    per_deal = [n for n in loops if n in PER_DEAL]
    others = {n: "looks at the whole tenant; runs when due" for n in loops if n not in PER_DEAL}
    if not per_deal:
        return Scope(records_at, (), frozenset(), "nothing is due", others)
    deals = related.touched_deals(session, installation_id, min(last[n] for n in per_deal))
    if deals is None:
        return whole(records_at, loops, "users or pipelines changed")
    if not deals:
        return Scope(records_at, (), frozenset(), "nothing changed", others | dict.fromkeys(per_deal, "nothing changed"))
    return Scope(records_at, tuple(per_deal), frozenset(deals), f"{len(deals)} changed deals", others)


def only_changed(decisions: list[Decision], deals: frozenset[str]) -> list[Decision]:
    """A partial snapshot's decisions about the changed deals themselves; lists that need every deal (an owner's
    at-risk list) wait for the run that reads the whole snapshot."""
    return [d for d in decisions if d.target_id in deals and d.target is Entity.DEAL]


def _last_run(session: Session, installation_id: str, loop: str) -> LoopRun | None:
    return session.execute(select(LoopRun).where(
        LoopRun.installation_id == installation_id, LoopRun.loop == loop, LoopRun.status == LoopRunStatus.DONE,
    ).order_by(LoopRun.started_at.desc()).limit(1)).scalars().first()


def _seen_at(run: LoopRun | None) -> datetime | None:
    value = (run.stats or {}).get(RECORDS_AT) if run is not None else None
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _learning_due(session: Session, installation_id: str, current: Any, now: datetime) -> bool:
    """learning.due without the whole snapshot: the outcomes gained since the version learned are at most the
    outcome records changed since it read the store, so a small count proves it is not due."""
    content = learning.content(current)
    as_of, seen, records_at = content.get("as_of"), content.get("outcomes"), content.get(RECORDS_AT)
    if not isinstance(as_of, str) or not isinstance(seen, int) or not isinstance(records_at, str):
        return True
    if now - datetime.fromisoformat(as_of) >= learning.EVERY:
        return True
    gained = related.changed_count(session, installation_id, datetime.fromisoformat(records_at))
    return gained >= learning.threshold(seen)
