"""The weekly drift check of every loop of one tenant: measure, record, pause past a threshold."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.store import Store, installation_settings
from connector.store import installations as inst
from connector.store.records import load_records
from connector.store.tables import DecisionRecord, Metric
from crm_adapters.model import Deal, DealStatus, Entity, User, UserRole
from jobs.approvals import proposals
from jobs.engine.drift import measure
from jobs.engine.quality import QualitySettings
from jobs.loops import registry
from jobs.state.pause import pause_loop

logger = logging.getLogger(__name__)


def closed_outcomes(session: Session, installation_id: str, loop: str, now: datetime, days: int = 7) -> list[tuple[float, int]]:
    """(predicted loss probability, lost?) for deals closed in the last `days`, from their last score before closing."""
    since = (now - timedelta(days=days)).date()
    closed = [d for d in load_records(session, installation_id, Entity.DEAL)
              if isinstance(d, Deal) and d.status is not DealStatus.OPEN and d.closed_at and d.closed_at >= since]
    if not closed:
        return []
    by_id = {d.remote_id: d for d in closed}
    rows = session.execute(select(DecisionRecord.target_id, DecisionRecord.payload, DecisionRecord.created_at).where(
        DecisionRecord.installation_id == installation_id, DecisionRecord.loop == loop,
        DecisionRecord.kind == "update_field", DecisionRecord.target_id.in_(list(by_id)),
    ).order_by(DecisionRecord.created_at)).all()
    last: dict[str, float] = {}
    for target_id, payload, _at in rows:
        if isinstance(payload.get("risk_score"), int | float):
            last[target_id] = float(payload["risk_score"]) / 100.0
    return [(p, int(by_id[t].status is DealStatus.LOST)) for t, p in last.items()]


def check_all(store: Store, installation_id: str, loops: list[str], now: datetime) -> list[dict[str, Any]]:
    """Measure every loop; a breach pauses it to draft-only and opens a review task for the manager."""
    reports = []
    with store.session() as session:
        installation = inst.get(session, installation_id)
        quality = QualitySettings.of(installation_settings.read(installation).quality, installation_id)
        for loop in loops:
            outcomes = closed_outcomes(session, installation_id, loop, now)
            report = measure(session, installation_id, loop, now, outcomes, psi_threshold=quality.psi_threshold,
                             brier_threshold=quality.brier_threshold, min_n=quality.min_calibration_n)
            for name, value in (("score_psi", report.score_psi), ("reason_psi", report.reason_psi),
                                ("brier", report.calibration.brier)):
                session.add(Metric(installation_id=installation_id, loop=loop, name=name, at=now, value=float(value),
                                   labels={"n": report.calibration.n if name == "brier" else report.n_current}))
            if report.breached and pause_loop(session, installation, loop, "; ".join(report.breached), now):
                _ask_manager(session, installation_id, loop, report.breached, now)
            reports.append(report.as_dict())
        installation_settings.write(installation, drift_checked_at=now.isoformat())
    return reports


def _ask_manager(session: Session, installation_id: str, loop: str, breached: list[str], now: datetime) -> None:
    body = (f"The {registry.title(loop)} loop now only drafts (nothing is written alone) because:\n"
            + "\n".join(f"- {b}" for b in breached)
            + "\nLook at recent scores on the deal cards; complete this task to let it act alone again.")
    users = [u for u in load_records(session, installation_id, Entity.USER) if isinstance(u, User)]
    manager = next((u.remote_id for u in users if u.role is UserRole.MANAGER), None)
    proposals.open_review(session, installation_id, loop=loop, kind=proposals.DRIFT,
                          title=f"{registry.title(loop)} paused to draft-only: drift", body=body,
                          key=f"drift:{loop}:{now:%Y%m%d%H%M}", manager_id=manager, now=now,
                          diff=[{"op": "resume_autonomy", "loop": loop}])
