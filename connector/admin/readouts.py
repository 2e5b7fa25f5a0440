"""What the admin pages show, read from the store: progress, budget, spot checks, chart data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.admin import charts
from connector.store import installation_settings
from connector.store.tables import CardData, DecisionRecord, Installation, Metric, ModelVersion, SyncCursor
from jobs.loops.decision import ActionKind

ACTIONS = [kind.value for kind in ActionKind]
CHARTS = {
    "risk-distribution": "Risk distribution of open deals",
    "calibration": "Calibration of the risk model (closed deals, validation split)",
    "handoff-readout": "Control vs treatment close rate by week",
    "playbook-versions": "Playbook versions and their measured effect",
    "bandit": "Sequence variants: posterior reply rate",
}
_CONDITION_FIELDS = ("amount_below", "amount_at_least", "mrr_below", "mrr_at_least", "stages", "loops")


def backfill_progress(session: Session, installation_id: str) -> dict[str, Any]:
    """Objects synced of the estimated total, per entity and overall (0-100)."""
    rows = session.execute(select(SyncCursor).where(SyncCursor.installation_id == installation_id)).scalars().all()
    entities = [
        {"entity": r.entity, "synced": r.records_synced or 0, "estimated": r.estimated_total,
         "last_run_at": r.last_run_at.isoformat() if r.last_run_at else None, "error": r.last_error}
        for r in rows
    ]
    synced = sum(e["synced"] for e in entities)
    estimated = sum(max(e["estimated"] or 0, e["synced"]) for e in entities)
    done = bool(rows) and all(r.cursor is not None or r.entity == "user" for r in rows)  # users are read whole: no cursor
    percent = 100 if done else (int(100 * synced / estimated) if estimated else 0)
    return {"percent": min(percent, 100), "synced": synced, "estimated": estimated, "done": done, "entities": entities}


def api_budget(installation: Installation) -> dict[str, Any]:
    """API calls used today against the allowance, as the adapters record them in settings."""
    budget = installation_settings.read(installation).api_budget or {}
    used, limit = budget.get("used_today", 0), budget.get("daily_limit")
    return {"used": used, "limit": limit, "percent": int(100 * used / limit) if limit else None}


def spot_checks(session: Session, installation_id: str) -> dict[str, Any]:
    """Autonomous writes sampled for review, and the managers' rejection rate per loop."""
    rows = session.execute(
        select(DecisionRecord.loop, DecisionRecord.gate_verdict, DecisionRecord.gate_reason)
        .where(DecisionRecord.installation_id == installation_id, DecisionRecord.gate_verdict.like("spot_check%"))
    ).all()
    per_loop: dict[str, dict[str, int]] = {}
    for loop, verdict, _ in rows:
        stats = per_loop.setdefault(loop, {"sampled": 0, "rejected": 0})
        stats["sampled"] += 1
        stats["rejected"] += verdict == "spot_check_rejected"
    return per_loop


def rules_from_form(form: Mapping[str, str]) -> list[dict[str, Any]]:
    """Rows of the policy editor back into rules; empty rows dropped, numbers parsed, lists split."""
    rules = []
    count = int(form.get("rule_count", "0") or 0)
    for i in range(count + 1):
        rule_id = (form.get(f"id_{i}") or "").strip()
        if not rule_id or form.get(f"delete_{i}") == "on":
            continue
        rule: dict[str, Any] = {"id": rule_id, "action": form.get(f"action_{i}", ""), "autonomy": form.get(f"autonomy_{i}", "")}
        when: dict[str, Any] = {}
        for name in _CONDITION_FIELDS:
            raw = (form.get(f"{name}_{i}") or "").strip()
            if not raw:
                continue
            if name in ("stages", "loops"):
                when[name] = [part.strip() for part in raw.split(",") if part.strip()]
            else:
                try:
                    when[name] = float(raw) if "." in raw else int(raw)
                except ValueError:
                    when[name] = raw  # validation names the rule and the bad value
        if when:
            rule["when"] = when
        rules.append(rule)
    return rules


def chart_svg(session: Session, installation_id: str, name: str) -> str:
    title = CHARTS[name]
    if name == "risk-distribution":
        scores = [
            float(p["risk"]["score"]) for p in session.execute(
                select(CardData.payload).where(CardData.installation_id == installation_id)
            ).scalars() if isinstance(p, dict) and isinstance(p.get("risk"), dict) and "score" in p["risk"]
        ]
        edges = [float(x) for x in range(0, 101, 10)]
        counts = [sum(1 for s in scores if lo <= s < hi or (hi == 100 and s == 100)) for lo, hi in zip(edges, edges[1:], strict=False)]
        return charts.histogram(title, counts if scores else [], edges, "risk score")
    latest = {loop: _latest_metrics(session, installation_id, loop) for loop in ("deal_risk", "handoff", "sequences")}
    if name == "calibration":
        bins = latest["deal_risk"].get("reliability") or []
        return charts.reliability(title, [(float(b["predicted"]), float(b["observed"]), int(b["n"])) for b in bins])
    if name == "handoff-readout":
        return charts.line_chart(title, _readout_series(session, installation_id), "week", "close rate", y_range=(0, 1))
    if name == "playbook-versions":
        versions = session.execute(
            select(ModelVersion).where(ModelVersion.installation_id == installation_id, ModelVersion.loop == "handoff",
                                       ModelVersion.kind == "playbook").order_by(ModelVersion.version)
        ).scalars().all()
        rows = [(f"v{v.version} ({v.arm})", float(v.metrics.get("lift", 0.0)), float(v.metrics.get("lift_low", 0.0)),
                 float(v.metrics.get("lift_high", 0.0))) for v in versions if "lift" in (v.metrics or {})]
        return charts.intervals(title, rows, "close-rate lift over control")
    variants = latest["sequences"].get("variants") or []
    rows = [(str(v["variant"]), float(v["mean"]), float(v["low"]), float(v["high"])) for v in variants]
    return charts.intervals(title, rows, "posterior positive-reply rate")


def _latest_metrics(session: Session, installation_id: str, loop: str) -> dict[str, Any]:
    row = session.execute(
        select(ModelVersion.metrics).where(ModelVersion.installation_id == installation_id, ModelVersion.loop == loop)
        .order_by(ModelVersion.version.desc()).limit(1)
    ).scalar_one_or_none()
    return dict(row or {})


def _readout_series(session: Session, installation_id: str) -> list[charts.Series]:
    points = session.execute(
        select(Metric).where(Metric.installation_id == installation_id, Metric.loop == "handoff",
                             Metric.name == "close_rate").order_by(Metric.at)
    ).scalars().all()
    series: dict[str, list[tuple[float, float]]] = {}
    for point in points:
        arm = str(point.labels.get("arm", "all"))
        week = float(point.labels.get("week", len(series.get(arm, [])) + 1))
        series.setdefault(arm, []).append((week, point.value))
    return [charts.Series(arm, pts) for arm, pts in sorted(series.items())]
