"""What the admin pages show, read from the store: progress, budget, spot checks, chart data."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.admin import chart_data, charts
from connector.store import installation_settings
from connector.store.tables import CardData, CrmRecord, DecisionRecord, GateStatus, Installation, SyncCursor
from jobs.loops import labels, registry
from jobs.loops.decision import ActionKind

ACTIONS = [kind.value for kind in ActionKind]
CHARTS = {
    "risk-distribution": "Risk distribution of open deals",
    "calibration": "Calibration of the active risk model (validation split)",
    "handoff-readout": "Control vs treatment close rate by week",
    "playbook-versions": "Playbook versions and their measured effect",
    "bandit": "Sequence variants: posterior reply rate",
}
_CONDITION_FIELDS = ("amount_below", "amount_at_least", "mrr_below", "mrr_at_least", "stages", "loops")


def event_actor(actor: str) -> str:
    """Who an audit event names, as people read it: `loop:handoff` -> `SDR to BDM handoff`, `user:ana@x` -> `ana@x`,
    `system:engine` -> `salesloop (engine)`."""
    kind, _, who = actor.partition(":")
    if kind == "loop":
        return registry.title(who)
    if kind == "user":
        return who
    return f"salesloop ({labels.phrase(who)})" if kind == "system" and who else "salesloop" if kind == "system" else actor


def event_action(action: str) -> str:
    """What an audit event did, in words: `model:new_version` -> `Model new version`, `loops:saved` -> `Loops saved`."""
    return labels.word(action.replace(":", " "))


def record_names(session: Session, installation_id: str, targets: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The names people know records by (a deal's, a person's), for the (entity, CRM id) pairs an audit page lists:
    one query per entity; a record no longer in the CRM has no name."""
    wanted: dict[str, set[str]] = {}
    for entity, remote_id in targets:
        wanted.setdefault(entity, set()).add(remote_id)
    out: dict[tuple[str, str], str] = {}
    for entity, ids in wanted.items():
        rows = session.execute(select(CrmRecord.remote_id, CrmRecord.payload).where(
            CrmRecord.installation_id == installation_id, CrmRecord.entity == entity, CrmRecord.remote_id.in_(sorted(ids))))
        for remote_id, payload in rows:
            name = payload.get("name") or " ".join(p for p in (payload.get("first_name"), payload.get("last_name")) if p)
            if name:
                out[(entity, remote_id)] = str(name)
    return out


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
        stats["rejected"] += verdict == GateStatus.SPOT_CHECK_REJECTED
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
            if name == "loops":  # typed as people read them ("Deal risk"); the stored names still work
                when[name] = [loop_name(part) for part in raw.split(",") if part.strip()]
            elif name == "stages":
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


def loop_name(typed: str) -> str:
    """A loop as the policy editor shows it (its title) back to its stored name; anything else as typed,
    for the policy's own check to name."""
    wanted = typed.strip()
    return next((n for n in registry.LOOPS if wanted.lower() in (n, registry.title(n).lower())), wanted)


def chart(session: Session, installation_id: str, name: str) -> tuple[str, str]:
    """One admin chart as SVG, with the sentence shown under it (what it covers, or why it is empty)."""
    title = CHARTS[name]
    data = chart_data_for(session, installation_id, name)
    if name == "risk-distribution":
        svg = charts.histogram(title, data.rows, [float(x) for x in range(0, 101, 10)], "risk score (0-100)", empty=data.empty_because)
    elif name == "calibration":
        svg = charts.reliability(title, data.rows, empty=data.empty_because)
    elif name == "handoff-readout":
        series = [charts.Series(arm, [(float(week.toordinal()), rate) for week, rate, _ in pts]) for arm, pts in data.rows]
        svg = charts.line_chart(title, series, "week of close", "close rate", y_range=(0, 1), empty=data.empty_because,
                                x_format=lambda x: date.fromordinal(int(x)).strftime("%-d %b %Y"))
    elif name == "playbook-versions":
        svg = charts.intervals(title, data.rows, "close-rate lift over control (percentage points)", empty=data.empty_because)
    else:
        svg = charts.intervals(title, data.rows, "positive-reply rate (posterior)", empty=data.empty_because)
    return svg, data.empty_because or data.note


def chart_data_for(session: Session, installation_id: str, name: str) -> chart_data.ChartData:
    return _CHART_DATA[name](session, installation_id)


def chart_svg(session: Session, installation_id: str, name: str) -> str:
    return chart(session, installation_id, name)[0]


def _risk_scores(session: Session, installation_id: str) -> chart_data.ChartData:
    """Open deals' risk scores as the cards show them, in ten bins."""
    scores = [
        float(p["risk"]["score"]) for p in session.execute(
            select(CardData.payload).where(CardData.installation_id == installation_id)
        ).scalars() if isinstance(p, dict) and isinstance(p.get("risk"), dict) and "score" in p["risk"]
    ]
    if not scores:
        return chart_data.ChartData(empty_because="No deal has a risk score yet: the deal-risk loop writes them on its next run.")
    edges = range(0, 101, 10)
    counts = [sum(1 for s in scores if lo <= s < hi or (hi == 100 and s == 100)) for lo, hi in zip(edges, edges[1:], strict=False)]
    return chart_data.ChartData(rows=counts, note=f"{len(scores):,} deals with a risk score.")


_CHART_DATA = {
    "risk-distribution": _risk_scores,
    "calibration": chart_data.calibration,
    "handoff-readout": chart_data.weekly_close_rates,
    "playbook-versions": chart_data.playbook_effects,
    "bandit": chart_data.sequence_posteriors,
}
