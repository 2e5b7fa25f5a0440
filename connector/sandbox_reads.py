"""What the sandbox CRM's own record pages read: its rows, as the CRM (not salesloop's store) holds them.

The sandbox CRM has no UI of its own; these reads play that UI for `salesloop demo --serve`.
They go to the CRM's tables (one query per list), never to salesloop's store, so what the
pages show is exactly what the app wrote back into the CRM.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from crm_adapters.model import Activity, Deal, DealStatus, Entity, StageChange, User
from crm_adapters.sandbox import SandboxCrm, reader
from crm_adapters.writes import AppField

logger = logging.getLogger(__name__)
_LEVELS = {"high": 3, "medium": 2, "low": 1}


@dataclass
class DealRow:
    """One line of the deal list: the deal and the app fields salesloop wrote on it."""

    deal: Deal
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def risk_score(self) -> float | None:
        value = self.fields.get(AppField.RISK_SCORE.value)
        return float(value) if isinstance(value, int | float) else None

    @property
    def risk_level(self) -> str:
        return str(self.fields.get(AppField.RISK_LEVEL.value) or "")


def _records(crm: SandboxCrm, entity: Entity, *, like: str | None = None) -> list[Any]:
    """Live, well-formed records of one entity, through the sandbox's public reader."""
    return list(reader.live_records(crm, entity, like=like))


def app_fields(crm: SandboxCrm, entity: Entity) -> dict[str, dict[str, Any]]:
    """Every app field value of one entity, by record id, in one query."""
    return reader.app_field_values(crm, entity)


def open_deals(crm: SandboxCrm, *, sort: str = "risk") -> list[DealRow]:
    """Open deals with their app fields; riskiest first (unscored last), or by name / amount / close date."""
    values = app_fields(crm, Entity.DEAL)
    rows = [DealRow(d, values.get(d.remote_id, {})) for d in _records(crm, Entity.DEAL)
            if isinstance(d, Deal) and d.status is DealStatus.OPEN]
    if sort == "name":
        rows.sort(key=lambda r: r.deal.name.lower())
    elif sort == "amount":
        rows.sort(key=lambda r: -(r.deal.amount or 0))
    elif sort == "close_date":
        rows.sort(key=lambda r: (r.deal.close_date is None, r.deal.close_date or ""))
    else:
        rows.sort(key=lambda r: (r.risk_score is None, -(r.risk_score or 0), -_LEVELS.get(r.risk_level, 0), r.deal.name))
    return rows


def users(crm: SandboxCrm) -> dict[str, User]:
    return {u.remote_id: u for u in crm.read_users()}


def stage_names(crm: SandboxCrm) -> dict[str, str]:
    return {s.id: s.label for p in crm.read_pipelines() for s in p.stages}


def stage_history(crm: SandboxCrm, deal_id: str) -> list[StageChange]:
    """The deal's stays in each stage, oldest first."""
    found = _records(crm, Entity.STAGE_CHANGE, like=f'"deal_id":"{deal_id}"')
    return sorted((s for s in found if isinstance(s, StageChange) and s.deal_id == deal_id), key=lambda s: s.entered_at)


def activities(crm: SandboxCrm, deal_id: str, limit: int = 15) -> list[Activity]:
    """The deal's most recent activities, newest first, with their text."""
    found = _records(crm, Entity.ACTIVITY, like=f'"{deal_id}"')
    mine = [a for a in found if isinstance(a, Activity) and deal_id in a.deal_ids]
    return sorted(mine, key=lambda a: a.occurred_at, reverse=True)[:limit]
