"""The demo's figures, read back from the store and the sandbox CRM (the tables are in demo_render)."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connector.store.records import load_records
from connector.store.tables import (
    CardData,
    CrmRecord,
    DecisionRecord,
    ModelVersion,
    OutboxItem,
    Proposal,
    QuarantinedRecord,
)
from crm_adapters.codec import pipeline_from_dict
from crm_adapters.model import Deal, DealStatus, Entity, StageChange
from jobs.engine.route import attention_summary


def store_figures(session: Session, installation_id: str) -> dict[str, Any]:
    """What the chain left in the store: decisions by verdict, writes by status, proposals, cards, versions."""
    def grouped(*columns: Any, table: Any = DecisionRecord) -> list[tuple[Any, ...]]:
        stmt = select(*columns, func.count()).where(table.installation_id == installation_id).group_by(*columns)
        return [tuple(row) for row in session.execute(stmt)]

    return {
        "decisions": [dict(zip(("loop", "kind", "policy", "gate", "write", "n"), row, strict=True))
                      for row in grouped(DecisionRecord.loop, DecisionRecord.kind, DecisionRecord.policy_verdict,
                                         DecisionRecord.gate_verdict, DecisionRecord.write_status)],
        "outbox": {f"{kind}:{status}": n for kind, status, n in grouped(OutboxItem.kind, OutboxItem.status, table=OutboxItem)},
        "proposals": [{"loop": p.loop, "title": p.title, "status": p.status, "type": p.evidence.get("type")}
                      for p in session.execute(select(Proposal).where(Proposal.installation_id == installation_id)).scalars()],
        "cards": session.execute(select(func.count()).select_from(CardData).where(CardData.installation_id == installation_id)).scalar_one(),
        "risk_levels": risk_levels(session, installation_id),
        "versions": [{"loop": v.loop, "version": v.version, "arm": v.arm, "metrics": _flat(v.metrics)}
                     for v in session.execute(select(ModelVersion).where(ModelVersion.installation_id == installation_id,
                                                                          ModelVersion.active.is_(True))).scalars()],
        "quarantined": session.execute(select(func.count()).select_from(QuarantinedRecord)
                                       .where(QuarantinedRecord.installation_id == installation_id)).scalar_one(),
    }


def _flat(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in (metrics or {}).items() if isinstance(v, int | float | str)}


def per_stage_win_rates(session: Session, installation_id: str) -> list[dict[str, Any]]:
    """For each stage: of the closed deals that reached it, how many were won (computed from the store)."""
    deals = {d.remote_id: d for d in load_records(session, installation_id, Entity.DEAL) if isinstance(d, Deal)}
    reached: dict[str, set[str]] = defaultdict(set)
    for change in load_records(session, installation_id, Entity.STAGE_CHANGE):
        if isinstance(change, StageChange):
            reached[change.stage_id].add(change.deal_id)
    for deal in deals.values():
        reached[deal.stage_id].add(deal.remote_id)
    pipelines = [pipeline_from_dict(p) for p in session.execute(select(CrmRecord.payload).where(
        CrmRecord.installation_id == installation_id, CrmRecord.entity == "pipeline")).scalars()]
    stages = sorted((s for p in pipelines for s in p.stages), key=lambda s: s.order)
    rows = []
    for stage in stages:
        closed = Counter(deals[i].status for i in reached.get(stage.id, ()) if i in deals and deals[i].is_closed)
        n = closed[DealStatus.WON] + closed[DealStatus.LOST]
        rows.append({"stage": stage.label, "reached": len(reached.get(stage.id, ())), "closed": n,
                     "won": closed[DealStatus.WON], "win_rate": round(closed[DealStatus.WON] / n, 3) if n else None})
    return rows


LEVELS = ("high", "medium", "low")


def risk_levels(session: Session, installation_id: str) -> dict[str, int]:
    """Deals per risk level as their cards show it (only open deals carry a risk section)."""
    counts: Counter[str] = Counter()
    for payload in session.execute(select(CardData.payload).where(CardData.installation_id == installation_id)).scalars():
        risk = payload.get("risk") if isinstance(payload, dict) else None
        if isinstance(risk, dict) and "score" in risk:
            counts[str(risk.get("level") or "unknown").lower()] += 1
    return {level: counts.get(level, 0) for level in (*LEVELS, *sorted(set(counts) - set(LEVELS)))}


def tasks_per_person_day(tasks: list[dict[str, Any]], names: dict[str, str]) -> dict[str, Any]:
    """How many tasks each person got on each day the demo wrote them: the median and the busiest person-day."""
    per: Counter[tuple[str, str]] = Counter()
    for task in tasks:
        per[(str(task.get("owner_id") or "nobody"), str(task.get("due_at") or task.get("created_at") or "")[:10])] += 1
    if not per:
        return {"person_days": 0, "people": 0, "median": 0, "max": 0, "busiest": ""}
    (owner, day), top = per.most_common(1)[0]
    return {"person_days": len(per), "people": len({o for o, _ in per}), "median": statistics.median(per.values()),
            "max": top, "busiest": f"{names.get(owner, owner)} on {day}"}


def attention_figures(session: Session, installation_id: str, installation_settings: dict[str, Any] | None,
                      tasks: list[dict[str, Any]], names: dict[str, str]) -> dict[str, Any]:
    """Tasks per person per day, from the tasks the CRM holds, with the engine's attention budget."""
    figures = tasks_per_person_day(tasks, names)
    summary = attention_summary(session, installation_id, installation_settings)
    most = summary.get("max_per_person_day", figures["max"])
    return {**figures, "median": summary.get("median_per_person_day", figures["median"]), "max": most,
            "busiest": figures["busiest"] if most == figures["max"] else "", "budget": summary.get("budget") or {}}
