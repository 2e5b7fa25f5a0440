"""The common CRM model: immutable records every adapter produces and every loop reads.

HubSpot and Salesforce disagree on almost everything (ids, stage semantics, roles,
activity shapes); the loops should not care. Each record carries where it came from
(crm, remote_id, remote_updated_at, deleted) and the custom fields the mapper did not
understand (`custom`), so nothing read from a CRM is silently dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any


class Crm(StrEnum):
    HUBSPOT = "hubspot"
    SALESFORCE = "salesforce"
    SANDBOX = "sandbox"


class Entity(StrEnum):
    """What `CrmPort.read_changes` can read; the order here is the sync order."""

    USER = "user"
    ACCOUNT = "account"
    CONTACT = "contact"
    DEAL = "deal"
    DEAL_CONTACT_ROLE = "deal_contact_role"
    STAGE_CHANGE = "stage_change"
    ACTIVITY = "activity"


class DealStatus(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class ContactRole(StrEnum):
    CHAMPION = "champion"
    ECONOMIC_BUYER = "economic_buyer"
    DECISION_MAKER = "decision_maker"
    TECHNICAL_EVALUATOR = "technical_evaluator"
    INFLUENCER = "influencer"
    BLOCKER = "blocker"
    OTHER = "other"


class UserRole(StrEnum):
    SDR = "sdr"
    BDR = "bdr"
    AE = "ae"
    BDM = "bdm"
    MANAGER = "manager"
    OTHER = "other"


class ActivityType(StrEnum):
    CALL = "call"
    EMAIL = "email"
    MEETING = "meeting"
    NOTE = "note"
    TASK = "task"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    INTERNAL = "internal"


class TaskStatus(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"
    REJECTED = "rejected"


def _require_aware(name: str, value: datetime | None) -> None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """What every synced record carries: its origin and what the mapper left unmapped."""

    crm: Crm
    remote_id: str
    remote_updated_at: datetime | None = None
    deleted: bool = False
    custom: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.remote_id or not str(self.remote_id).strip():
            raise ValueError(f"{type(self).__name__} needs a remote_id")
        _require_aware("remote_updated_at", self.remote_updated_at)


@dataclass(frozen=True, slots=True, kw_only=True)
class User(Record):
    name: str = ""
    email: str | None = None
    role: UserRole = UserRole.OTHER
    role_raw: str | None = None
    manager_id: str | None = None
    team: str | None = None
    active: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Account(Record):
    name: str = ""
    industry: str | None = None
    employees: int | None = None
    annual_revenue: Decimal | None = None
    country: str | None = None
    owner_id: str | None = None

    def __post_init__(self) -> None:
        Record.__post_init__(self)
        if self.employees is not None and self.employees < 0:
            raise ValueError(f"employees must be >= 0, got {self.employees}")
        if self.annual_revenue is not None and self.annual_revenue < 0:
            raise ValueError(f"annual_revenue must be >= 0, got {self.annual_revenue}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Contact(Record):
    account_id: str | None = None
    first_name: str = ""
    last_name: str = ""
    email: str | None = None
    title: str | None = None

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


@dataclass(frozen=True, slots=True, kw_only=True)
class DealContactRole(Record):
    deal_id: str
    contact_id: str
    role: ContactRole = ContactRole.OTHER
    role_raw: str | None = None
    is_primary: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class QualificationAnswer:
    """One qualification field as the CRM holds it: its label, its level ('unknown' when empty), the item it
    answers (budget, champion ...), who recorded it (the SDR at hand-over, or the BDM after discovery) and
    whether the level is a positive answer (a claim that discovery can contradict)."""

    label: str
    level: str
    item: str = "other"
    stage: str = "sdr"  # sdr | discovery
    claimed: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Deal(Record):
    """An opportunity. `owner_id` is the AE/BDM; `sdr_id` the SDR who sourced it."""

    name: str = ""
    account_id: str | None = None
    pipeline_id: str = "default"
    stage_id: str = ""
    status: DealStatus = DealStatus.OPEN
    amount: Decimal | None = None
    currency: str = "USD"
    close_date: date | None = None
    closed_at: date | None = None
    created_at: datetime | None = None
    owner_id: str | None = None
    sdr_id: str | None = None
    lead_source: str | None = None
    deal_type: str | None = None
    loss_reason: str | None = None
    win_reason: str | None = None
    next_step: str | None = None
    qualification: tuple[QualificationAnswer, ...] = ()  # the mapped qualification fields (MEDDIC / BANT picklists)

    def __post_init__(self) -> None:
        Record.__post_init__(self)
        if not self.stage_id:
            raise ValueError("Deal needs a stage_id")
        if self.amount is not None and not isinstance(self.amount, Decimal):
            raise ValueError(f"amount must be a Decimal, got {type(self.amount).__name__}")
        if self.amount is not None and not self.amount.is_finite():
            raise ValueError(f"amount must be finite, got {self.amount}")
        if len(self.currency) != 3 or not self.currency.isalpha() or not self.currency.isupper():
            raise ValueError(f"currency must be an ISO 4217 code, got {self.currency!r}")
        _require_aware("created_at", self.created_at)
        if self.status is DealStatus.OPEN and self.closed_at is not None:
            raise ValueError("an open deal cannot have closed_at")

    @property
    def is_closed(self) -> bool:
        return self.status is not DealStatus.OPEN


@dataclass(frozen=True, slots=True, kw_only=True)
class StageChange(Record):
    """One stay of a deal in a stage: entered at `entered_at`, left at `exited_at` (None: still there)."""

    deal_id: str
    stage_id: str
    entered_at: datetime
    exited_at: datetime | None = None

    def __post_init__(self) -> None:
        Record.__post_init__(self)
        _require_aware("entered_at", self.entered_at)
        _require_aware("exited_at", self.exited_at)
        if self.exited_at is not None and self.exited_at < self.entered_at:
            raise ValueError("exited_at precedes entered_at")


@dataclass(frozen=True, slots=True, kw_only=True)
class Activity(Record):
    """A call, email, meeting, note or task, with its text (body and transcript) and links."""

    type: ActivityType
    occurred_at: datetime
    subject: str = ""
    body: str = ""
    transcript: str = ""
    direction: Direction | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None
    duration_s: int | None = None
    outcome: str | None = None
    owner_id: str | None = None
    deal_ids: tuple[str, ...] = ()
    contact_ids: tuple[str, ...] = ()
    account_id: str | None = None

    def __post_init__(self) -> None:
        Record.__post_init__(self)
        for name in ("occurred_at", "start_at", "end_at"):
            _require_aware(name, getattr(self, name))
        if self.duration_s is not None and self.duration_s < 0:
            raise ValueError(f"duration_s must be >= 0, got {self.duration_s}")

    @property
    def text(self) -> str:
        """Everything a person wrote or said in this activity."""
        return "\n".join(part for part in (self.subject, self.body, self.transcript) if part)


@dataclass(frozen=True, slots=True, kw_only=True)
class Stage:
    id: str
    label: str
    order: int
    probability: float
    is_closed: bool
    is_won: bool

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"stage probability must be in [0, 1], got {self.probability}")
        if self.is_won and not self.is_closed:
            raise ValueError(f"stage {self.id} is won but not closed")


@dataclass(frozen=True, slots=True, kw_only=True)
class Pipeline(Record):
    label: str = ""
    order: int = 0
    stages: tuple[Stage, ...] = ()

    def stage(self, stage_id: str) -> Stage | None:
        return next((s for s in self.stages if s.id == stage_id), None)


SYNCED_TYPES: dict[Entity, type[Record]] = {
    Entity.USER: User,
    Entity.ACCOUNT: Account,
    Entity.CONTACT: Contact,
    Entity.DEAL: Deal,
    Entity.DEAL_CONTACT_ROLE: DealContactRole,
    Entity.STAGE_CHANGE: StageChange,
    Entity.ACTIVITY: Activity,
}
