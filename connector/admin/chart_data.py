"""What each admin chart plots, read from what the loops stored, or the exact reason it is empty.

Each reader returns either the rows to plot or a sentence a person understands ("the deal-risk
loop has learned nothing yet: 12 won and 3 lost deals so far"), never a bare "no data".
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.store.records import load_records
from connector.store.tables import ModelVersion, Proposal, ProposalStatus, VersionKind
from crm_adapters.model import Deal, DealStatus, Entity
from jobs.loops.handoff.readout import ARMS, arm_of

MIN_WEEKLY_CLOSES = 5
_VERDICTS = {"promote": "promote treatment", "revert": "revert to control", "continue": "keep testing",
             "no_experiment": "one playbook in both arms"}  # fewer closed deals in a week and arm: the point is noise, not a rate


@dataclass
class ChartData:
    """Rows to plot, a one-line note under the chart, or why there is nothing to plot."""

    rows: list[Any] = field(default_factory=list)
    note: str = ""
    empty_because: str = ""


def _active(session: Session, installation_id: str, loop: str) -> ModelVersion | None:
    return session.execute(
        select(ModelVersion).where(ModelVersion.installation_id == installation_id, ModelVersion.loop == loop,
                                   ModelVersion.active.is_(True)).order_by(ModelVersion.version.desc()).limit(1)
    ).scalar_one_or_none()


def _pending_playbooks(session: Session, installation_id: str, loop: str) -> int:
    """Playbook changes of one loop waiting for a manager (spot-check reviews are not playbook changes)."""
    kinds = session.execute(select(Proposal.evidence).where(
        Proposal.installation_id == installation_id, Proposal.status == ProposalStatus.PENDING, Proposal.loop == loop)).scalars()
    return sum(1 for evidence in kinds if (evidence or {}).get("type") == "playbook")


def calibration(session: Session, installation_id: str) -> ChartData:
    """The active risk model's reliability bins on its validation split (the newest closed deals)."""
    version = _active(session, installation_id, "deal_risk")
    if version is None:
        return ChartData(empty_because="The deal-risk loop has not run yet: press “Run the loops now”.")
    metrics = version.metrics or {}
    validation = metrics.get("validation") or {}
    bins = validation.get("reliability") or []
    if not bins:
        won, lost = metrics.get("n_won", 0), metrics.get("n_lost", 0)
        return ChartData(empty_because=f"Risk model v{version.version} has no validation split yet: it learns from closed "
                                       f"deals ({won:,} won and {lost:,} lost so far).")
    rows = [(float(b["predicted"]), float(b["observed"]), int(b["n"])) for b in bins]
    n = sum(r[2] for r in rows)
    note = (f"Risk model v{version.version}, {n:,} deal snapshots held out for validation; "
            f"average gap between predicted and observed: {100 * float(validation.get('ece', 0)):.1f} points.")
    return ChartData(rows=rows, note=note)


def weekly_close_rates(session: Session, installation_id: str) -> ChartData:
    """Close rate of control vs treatment by week of close, with each deal's arm as the handoff loop assigns it."""
    version = _active(session, installation_id, "handoff")
    if version is None:
        return ChartData(empty_because="The handoff loop has not run yet: press “Run the loops now”.")
    cfg = (version.state or {}).get("config") or {}
    if "tenant" not in cfg:
        return ChartData(empty_because=f"Handoff v{version.version} holds no experiment settings (no arms assigned).")
    counts: dict[str, dict[date, list[int]]] = {arm: defaultdict(lambda: [0, 0]) for arm in ARMS}
    for deal in load_records(session, installation_id, Entity.DEAL):
        if not isinstance(deal, Deal) or deal.status is DealStatus.OPEN:
            continue
        closed = deal.closed_at or deal.close_date
        if closed is None:
            continue
        arm = arm_of(deal.remote_id, deal.sdr_id, tenant=cfg["tenant"], unit=cfg.get("unit", "sdr"), assigned=cfg.get("arms") or {})
        cell = counts[arm][closed - timedelta(days=closed.weekday())]
        cell[0] += deal.status is DealStatus.WON
        cell[1] += 1
    series = {arm: sorted((week, won / n, n) for week, (won, n) in weeks.items() if n >= MIN_WEEKLY_CLOSES)
              for arm, weeks in counts.items()}
    if not any(series.values()):
        return ChartData(empty_because=f"No week has {MIN_WEEKLY_CLOSES} or more closed deals in an arm yet.")
    closes = {arm: sum(n for _, n in counts[arm].values()) for arm in ARMS}
    note = (f"Each point is one week of closed deals ({closes['control']:,} in control, {closes['treatment']:,} in treatment); "
            f"weeks with fewer than {MIN_WEEKLY_CLOSES} closes in an arm are left out.")
    return ChartData(rows=[(arm, pts) for arm, pts in series.items()], note=note)


def playbook_effects(session: Session, installation_id: str) -> ChartData:
    """Each handoff version's measured close-rate lift of treatment over control (points, 90% interval)."""
    versions = session.execute(
        select(ModelVersion).where(ModelVersion.installation_id == installation_id, ModelVersion.loop == "handoff")
        .order_by(ModelVersion.version)
    ).scalars().all()
    rows = []
    for v in versions:
        close = (((v.metrics or {}).get("readout") or {}).get("comparison") or {}).get("close_rate")
        if not close or not close.get("interval_points"):
            continue
        lo, hi = close["interval_points"]
        verdict = _VERDICTS.get(str(v.metrics["readout"].get("recommendation")), "")
        rows.append((f"v{v.version}{' approved' if v.kind == VersionKind.PLAYBOOK else ''}: {verdict}", float(close.get("net_lift_points", close["lift_points"])), float(lo), float(hi)))
    waiting = _pending_playbooks(session, installation_id, "handoff")
    if not rows:
        why = "The handoff loop has not measured any version yet" if versions else "The handoff loop has not run yet"
        tail = f"; {waiting} playbook proposal{'s' if waiting != 1 else ''} wait for approval." if waiting else "."
        return ChartData(empty_because=why + tail)
    note = "Close-rate lift of the treatment arm over control, in percentage points, with its 90% interval."
    if waiting:
        note += f" {waiting} playbook proposal{'s' if waiting != 1 else ''} wait for approval."
    return ChartData(rows=rows, note=note)


def sequence_posteriors(session: Session, installation_id: str) -> ChartData:
    """Every sequence variant's posterior positive-reply rate (mean and 95% interval)."""
    version = _active(session, installation_id, "sequences")
    if version is None:
        return ChartData(empty_because="The sequences loop has not run yet: press “Run the loops now”.")
    sequences = (version.metrics or {}).get("sequences") or {}
    rows = []
    for name, seq in sorted(sequences.items()):
        for variant, v in sorted((seq.get("variants") or {}).items()):
            state = " (retired)" if v.get("retired") else (" (leading)" if seq.get("leader") == variant else "")
            rows.append((f"{name.replace('_', ' ')} {variant}{state}", float(v["mean"]), float(v["lo"]), float(v["hi"])))
    if not rows:
        return ChartData(empty_because=f"Sequences v{version.version} has seen no sequence sends yet.")
    sends = sum(int(v.get("n", 0)) for seq in sequences.values() for v in (seq.get("variants") or {}).values())
    return ChartData(rows=rows, note=f"{len(sequences)} sequences, {sends:,} sends; a dot is the mean, the bar its 95% interval.")
