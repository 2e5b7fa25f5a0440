"""The demo's figures, read back from the store, and their rich tables."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connector.store.records import load_records
from connector.store.tables import (
    CardData,
    DecisionRecord,
    ModelVersion,
    OutboxItem,
    Proposal,
    QuarantinedRecord,
)
from crm_adapters.codec import pipeline_from_dict
from crm_adapters.model import Deal, DealStatus, Entity, StageChange


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
    from connector.store.tables import CrmRecord

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


def render(console: Console, result: dict[str, Any]) -> None:
    """The human summary: what was synced, what each loop decided, what went back into the CRM."""
    chain = result["chain"]
    console.rule(f"[bold]salesloop demo — {result['tenant_id']} ({result['mode']}, seed {result['seed']})")
    synced = Table(title="Synced through the port", show_header=True)
    synced.add_column("entity")
    synced.add_column("records", justify="right")
    for entity, n in chain.get("synced", {}).items():
        synced.add_row(entity, f"{n:,}")
    synced.add_row("quarantined", str(result["store"]["quarantined"]))
    console.print(synced)
    stages = Table(title="Win rate by stage reached (closed deals)")
    for column in ("stage", "reached", "closed", "won", "win rate"):
        stages.add_column(column, justify="left" if column == "stage" else "right")
    for row in result["stage_win_rates"]:
        rate = f"{row['win_rate']:.0%}" if row["win_rate"] is not None else "—"
        stages.add_row(row["stage"], f"{row['reached']:,}", f"{row['closed']:,}", f"{row['won']:,}", rate)
    console.print(stages)
    _loops(console, chain)
    writes = Table(title="Written back into the sandbox CRM")
    writes.add_column("outbox")
    writes.add_column("items", justify="right")
    for key, n in sorted(result["store"]["outbox"].items()):
        writes.add_row(key, f"{n:,}")
    writes.add_row("deal cards", f"{result['store']['cards']:,}")
    console.print(writes)
    for proposal in result["store"]["proposals"][:10]:
        console.print(f"  • [{proposal['status']}] {proposal['loop']}: {proposal['title']}")
    seconds = result["seconds"]
    console.print(f"done in {seconds['total']:.1f}s (simulate {seconds['simulate']:.1f}s, sandbox CRM {seconds['sandbox_crm']:.1f}s, "
                  f"chain {seconds['chain']:.1f}s); admin: `salesloop` web app, audit log per decision.")


def _loops(console: Console, chain: dict[str, Any]) -> None:
    if not chain.get("loops"):
        console.print("[yellow]no loops are registered in this build: only the sync and the stage summary ran[/yellow]")
        return
    table = Table(title="Loops (decisions by final autonomy and gate)", box=box.SIMPLE_HEAD, pad_edge=False,
                  collapse_padding=True, caption="ask = needs approval; spot = sampled for a manager's spot check; versions in the audit log")
    for column in ("loop", "decided", "auto", "draft", "ask", "forbid", "blocked", "spot", "props", "s"):
        table.add_column(column, justify="left" if column == "loop" else "right", no_wrap=True,
                         min_width=10 if column == "loop" else len(column))
    for name, loop in chain["loops"].items():
        autonomy, gate = loop["autonomy"], loop["gate"]
        table.add_row(name, f"{loop['decisions']:,}", str(autonomy.get("auto", 0)), str(autonomy.get("draft", 0)),
                      str(autonomy.get("needs_approval", 0)), str(autonomy.get("forbidden", 0)), str(gate.get("blocked", 0)),
                      str(gate.get("spot_check", 0)), str(loop["proposals"]), f"{loop['seconds']:.1f}")
    console.print(table)
