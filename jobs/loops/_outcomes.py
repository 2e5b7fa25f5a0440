"""What happened next to a deal after a moment (a call, an objection): progress, a win, or a stall."""

from __future__ import annotations

from datetime import datetime, timedelta

from crm_adapters.model import Deal, DealStatus
from crm_adapters.snapshot import Snapshot

HORIZON_DAYS = 30


def stage_order(snapshot: Snapshot, stage_id: str) -> int:
    stage = snapshot.stage_by_id.get(stage_id)
    return stage.order if stage is not None else 0


def _is_lost_stage(snapshot: Snapshot, stage_id: str) -> bool:
    stage = snapshot.stage_by_id.get(stage_id)
    return stage is not None and stage.is_closed and not stage.is_won


def stage_at(snapshot: Snapshot, deal: Deal, at: datetime) -> str:
    """The stage a deal was in at a moment, from its history (its current stage when it has none)."""
    history = snapshot.history_for(deal.remote_id)
    before = [c for c in history if c.entered_at <= at]
    if before:
        return before[-1].stage_id
    return history[0].stage_id if history else deal.stage_id


def progressed(snapshot: Snapshot, deal: Deal, at: datetime, now: datetime, days: int = HORIZON_DAYS) -> bool | None:
    """True: won, or moved to a later open/won stage within `days`; False: stalled or lost; None: too early."""
    if deal.status is DealStatus.WON:
        return True
    until = at + timedelta(days=days)
    start = stage_order(snapshot, stage_at(snapshot, deal, at))
    for change in snapshot.history_for(deal.remote_id):
        moved_up = stage_order(snapshot, change.stage_id) > start and not _is_lost_stage(snapshot, change.stage_id)
        if at < change.entered_at <= until and moved_up:
            return True
    if deal.status is DealStatus.LOST or until <= now:
        return False
    return None


def closed_or_stalled(snapshot: Snapshot, deal: Deal, at: datetime, now: datetime, days: int = HORIZON_DAYS) -> bool | None:
    """True: won; False: lost, or open with no stage move in the last `days` (stalled); None: still moving."""
    if deal.status is not DealStatus.OPEN:
        return deal.status is DealStatus.WON
    history = snapshot.history_for(deal.remote_id)
    last_move = max([c.entered_at for c in history if c.entered_at <= now] + [at])
    return False if last_move + timedelta(days=days) <= now else None


def outcome(snapshot: Snapshot, deal: Deal, at: datetime, now: datetime, days: int, mode: str) -> bool | None:
    """The success a loop counts: 'won' (won vs lost or stalled) or 'progress' (a stage up within days, or won)."""
    if mode == "progress":
        return progressed(snapshot, deal, at, now, days)
    if mode == "won":
        return closed_or_stalled(snapshot, deal, at, now, days)
    raise ValueError(f"unknown outcome mode {mode!r}: use 'won' or 'progress'")


def is_early(snapshot: Snapshot, deal: Deal) -> bool:
    """Open deal in the first half of its pipeline's open stages (where discovery still matters)."""
    orders = sorted({s.order for p in snapshot.pipelines if p.remote_id == deal.pipeline_id
                     for s in p.stages if not s.is_closed})
    if not orders:
        return True
    cutoff = orders[(len(orders) - 1) // 2]
    return stage_order(snapshot, deal.stage_id) <= cutoff
