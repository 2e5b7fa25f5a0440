"""A deal's whole planned life (stages, close-date pushes, activities) and its records as of any moment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from crm_adapters.model import (
    Activity,
    Crm,
    Deal,
    DealContactRole,
    DealStatus,
    QualificationAnswer,
    StageChange,
)
from crm_adapters.sandbox import _vocab as V

SANDBOX = Crm.SANDBOX


@dataclass(slots=True)
class DealPlan:
    """Everything that will happen to one deal; `deal_at(now)` shows what has happened by `now`."""

    deal_id: str
    name: str
    account_id: str
    owner_id: str
    sdr_id: str
    lead_source: str
    amount: Decimal
    currency: str
    created_at: datetime
    stages: list[tuple[str, datetime, str]]  # (stage id, entered at, stage change id)
    close_plan: list[tuple[datetime, date]]  # (when set, planned close date)
    won: bool
    loss_reason: str | None
    win_reason: str | None
    custom: dict[str, Any]
    activities: list[Activity]  # sorted by occurred_at
    roles: list[DealContactRole]
    qualification: tuple[QualificationAnswer, ...] = ()  # the SDR's fields, set at hand-over
    discovery_qualification: tuple[QualificationAnswer, ...] = ()  # the BDM's, set after the discovery call

    @property
    def closed_at(self) -> datetime:
        return self.stages[-1][1]

    def deal_at(self, now: datetime) -> Deal:
        """The deal record as the CRM shows it at `now`."""
        stage_id, entered, _ = self.stages[0]
        for sid, at, _ in self.stages:
            if at <= now:
                stage_id, entered = sid, at
        closed = stage_id in (V.WON_STAGE, V.LOST_STAGE)
        history = [d for t, d in self.close_plan if t <= now]
        updated = max(entered, max(t for t, _ in self.close_plan if t <= now))
        status = (DealStatus.WON if self.won else DealStatus.LOST) if closed else DealStatus.OPEN
        custom = dict(self.custom)
        custom["close_date_history"] = [d.isoformat() for d in history]
        return Deal(
            crm=SANDBOX, remote_id=self.deal_id, remote_updated_at=updated, custom=custom, name=self.name,
            account_id=self.account_id, pipeline_id=V.PIPELINE_ID, stage_id=stage_id, status=status,
            amount=self.amount, currency=self.currency,
            close_date=entered.date() if closed else history[-1], closed_at=entered.date() if closed else None,
            created_at=self.created_at, owner_id=self.owner_id, sdr_id=self.sdr_id, lead_source=self.lead_source,
            deal_type="new_business", loss_reason=self.loss_reason if closed and not self.won else None,
            win_reason=self.win_reason if closed and self.won else None,
            qualification=self.qualification + (self.discovery_qualification if self._discovered(now) else ()),
        )  # fmt: skip

    def _discovered(self, now: datetime) -> bool:
        return any(a.custom.get("kind") == "discovery_call" and a.occurred_at <= now for a in self.activities)

    def stage_changes_at(self, now: datetime) -> list[StageChange]:
        out = []
        for i, (sid, entered, change_id) in enumerate(self.stages):
            if entered > now:
                break
            nxt = self.stages[i + 1][1] if i + 1 < len(self.stages) else None
            exited = nxt if nxt is not None and nxt <= now else None
            out.append(StageChange(crm=SANDBOX, remote_id=change_id, remote_updated_at=exited or entered,
                                   deal_id=self.deal_id, stage_id=sid, entered_at=entered, exited_at=exited))  # fmt: skip
        return out

    def activities_at(self, now: datetime) -> list[Activity]:
        if not self.activities or self.activities[-1].occurred_at <= now:
            return self.activities
        return [a for a in self.activities if a.occurred_at <= now]
