"""Builders for common-model records: `a_deal(stage_id="s2", amount="5000")`. Ids are numeric strings."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from connector.store import Store
from connector.store.tables import Installation
from crm_adapters.model import (
    Account,
    Activity,
    ActivityType,
    Contact,
    ContactRole,
    Crm,
    Deal,
    DealContactRole,
    DealStatus,
    Direction,
    Pipeline,
    Stage,
    StageChange,
    User,
    UserRole,
)
from crm_adapters.sandbox import SandboxCrm, load_scenario, simulate

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
_ids = itertools.count(1000)


def next_id() -> str:
    return str(next(_ids))


def a_pipeline(remote_id: str = "1", crm: Crm = Crm.SANDBOX) -> Pipeline:
    stages = (
        Stage(id="101", label="Qualification", order=1, probability=0.1, is_closed=False, is_won=False),
        Stage(id="102", label="Discovery", order=2, probability=0.2, is_closed=False, is_won=False),
        Stage(id="103", label="Proposal", order=3, probability=0.5, is_closed=False, is_won=False),
        Stage(id="104", label="Negotiation", order=4, probability=0.8, is_closed=False, is_won=False),
        Stage(id="105", label="Closed Won", order=5, probability=1.0, is_closed=True, is_won=True),
        Stage(id="106", label="Closed Lost", order=6, probability=0.0, is_closed=True, is_won=False),
    )
    return Pipeline(crm=crm, remote_id=remote_id, label="Sales", order=0, stages=stages)


def a_user(role: UserRole = UserRole.AE, **kw: Any) -> User:
    base: dict[str, Any] = dict(crm=Crm.SANDBOX, remote_id=next_id(), name=f"{role.value} user", email=None, role=role, remote_updated_at=T0)
    base.update(kw)
    return User(**base)


def an_account(**kw: Any) -> Account:
    base: dict[str, Any] = dict(crm=Crm.SANDBOX, remote_id=next_id(), name="Acme", industry="Software", employees=250,
                                annual_revenue=Decimal("5000000"), country="US", remote_updated_at=T0)
    base.update(kw)
    return Account(**base)


def a_contact(**kw: Any) -> Contact:
    base: dict[str, Any] = dict(crm=Crm.SANDBOX, remote_id=next_id(), first_name="Dana", last_name="Lee", remote_updated_at=T0)
    base.update(kw)
    return Contact(**base)


def a_deal(stage_id: str = "102", status: DealStatus = DealStatus.OPEN, amount: str | None = "12000", **kw: Any) -> Deal:
    base: dict[str, Any] = dict(
        crm=Crm.SANDBOX, remote_id=next_id(), name="Acme - platform", stage_id=stage_id, pipeline_id="1", status=status,
        amount=Decimal(amount) if amount is not None else None, created_at=T0, close_date=(T0 + timedelta(days=60)).date(),
        remote_updated_at=T0,
    )
    if status is not DealStatus.OPEN and "closed_at" not in kw:
        base["closed_at"] = (T0 + timedelta(days=45)).date()
    base.update(kw)
    return Deal(**base)


def a_role(deal_id: str, contact_id: str, role: ContactRole = ContactRole.CHAMPION, **kw: Any) -> DealContactRole:
    base: dict[str, Any] = dict(crm=Crm.SANDBOX, remote_id=next_id(), deal_id=deal_id, contact_id=contact_id, role=role, remote_updated_at=T0)
    base.update(kw)
    return DealContactRole(**base)


def a_stage_change(deal_id: str, stage_id: str, entered_at: datetime = T0, **kw: Any) -> StageChange:
    base: dict[str, Any] = dict(crm=Crm.SANDBOX, remote_id=next_id(), deal_id=deal_id, stage_id=stage_id, entered_at=entered_at, remote_updated_at=T0)
    base.update(kw)
    return StageChange(**base)


def an_activity(type: ActivityType = ActivityType.CALL, deal_id: str | None = None, occurred_at: datetime = T0, **kw: Any) -> Activity:
    base: dict[str, Any] = dict(crm=Crm.SANDBOX, remote_id=next_id(), type=type, occurred_at=occurred_at, direction=Direction.OUTBOUND,
                                deal_ids=(deal_id,) if deal_id else (), remote_updated_at=T0)
    base.update(kw)
    return Activity(**base)


@dataclass(frozen=True)
class SandboxTenant:
    installation_id: str
    crm_url: str
    org: Any  # the simulated org (crm_adapters.sandbox.simulate): its clock, deals and planted truth


def a_sandbox_tenant(store: Store, tmp_path: Path, *, deals: int, seed: int, tenant: str = "t") -> SandboxTenant:
    """A simulated org loaded into a sandbox CRM (SQLite under tmp_path) and installed in `store` on the org's clock."""
    org = simulate(load_scenario(None).scaled(deals), seed=seed)
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    crm = SandboxCrm.open(url, tenant)
    crm.load(org)
    crm.close()
    with store.session() as s:
        row = Installation(crm="sandbox", tenant_id=tenant, settings={"sandbox_url": url, "clock": org.now.isoformat()})
        s.add(row)
        s.flush()
        return SandboxTenant(row.id, url, org)
