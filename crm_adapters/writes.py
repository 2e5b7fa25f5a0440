"""What salesloop writes back into a CRM: app fields, tasks and notes, and their results.

Every create carries an idempotency key: the adapter remembers (or finds in the CRM)
the object it made for a key, so a retried job never makes a second one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from crm_adapters.model import Entity, TaskStatus

FieldValue = str | float | int | None


class AppField(StrEnum):
    """The fields salesloop owns on CRM records; adapters map them to CRM names."""

    RISK_SCORE = "risk_score"
    RISK_LEVEL = "risk_level"
    RISK_REASONS = "risk_reasons"
    NEXT_MOVE = "next_move"
    SCORED_AT = "scored_at"
    PAIN_ALIGNMENT = "pain_alignment"
    ICP_FIT = "icp_fit"


@dataclass(frozen=True, slots=True)
class AppFieldSpec:
    field: AppField
    entity: Entity
    label: str
    kind: str  # number | enumeration | text | datetime
    options: tuple[str, ...] = ()


APP_FIELDS: tuple[AppFieldSpec, ...] = (
    AppFieldSpec(AppField.RISK_SCORE, Entity.DEAL, "Risk score (0-100)", "number"),
    AppFieldSpec(AppField.RISK_LEVEL, Entity.DEAL, "Risk level", "enumeration", ("low", "medium", "high")),
    AppFieldSpec(AppField.RISK_REASONS, Entity.DEAL, "Risk reasons", "text"),
    AppFieldSpec(AppField.NEXT_MOVE, Entity.DEAL, "Next move", "text"),
    AppFieldSpec(AppField.SCORED_AT, Entity.DEAL, "Risk scored at", "datetime"),
    AppFieldSpec(AppField.PAIN_ALIGNMENT, Entity.DEAL, "SDR/BDM pain alignment (0-1)", "number"),
    AppFieldSpec(AppField.ICP_FIT, Entity.ACCOUNT, "ICP fit (0-100)", "number"),
)


@dataclass(frozen=True, slots=True)
class FieldUpdate:
    """New values of app fields on one record (deal or account)."""

    entity: Entity
    remote_id: str
    values: Mapping[AppField, FieldValue]

    def __post_init__(self) -> None:
        if self.entity not in (Entity.DEAL, Entity.ACCOUNT):
            raise ValueError(f"app fields live on deals and accounts, not {self.entity}")
        if not self.values:
            raise ValueError("a FieldUpdate needs at least one value")


@dataclass(frozen=True, slots=True)
class TaskDraft:
    """A task for a person in the CRM (approval, at-risk list, spot-check)."""

    idempotency_key: str
    subject: str
    body: str
    owner_id: str | None
    due_at: datetime
    deal_id: str | None = None
    account_id: str | None = None
    priority: str = "normal"  # "high": a person must decide (approvals, reviews); each CRM shows it as its high priority

    def __post_init__(self) -> None:
        if not self.idempotency_key:
            raise ValueError("a TaskDraft needs an idempotency_key")
        if self.due_at.tzinfo is None:
            raise ValueError("due_at must be timezone-aware")
        if self.priority not in ("normal", "high"):
            raise ValueError(f"priority must be normal or high, got {self.priority!r}")


@dataclass(frozen=True, slots=True)
class NoteDraft:
    idempotency_key: str
    body: str
    deal_id: str

    def __post_init__(self) -> None:
        if not self.idempotency_key:
            raise ValueError("a NoteDraft needs an idempotency_key")


@dataclass(frozen=True, slots=True)
class WriteFailure:
    key: str  # remote id of the record, or the idempotency key of a create
    reason: str
    retryable: bool


@dataclass(frozen=True, slots=True)
class WriteResult:
    written: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    failed: tuple[WriteFailure, ...] = ()
    api_calls: int = 0


@dataclass(frozen=True, slots=True)
class CreatedRef:
    """The CRM object made (or found again) for an idempotency key."""

    idempotency_key: str
    remote_id: str
    created: bool  # False: it already existed, the retry found it


class CreatedRefs(list[CreatedRef]):
    """What a create call made or found, plus the keys the CRM refused (`failed`, with the reason).

    A list, so callers that only iterate the refs keep working; a key in neither was not sent."""

    def __init__(self, refs: Iterable[CreatedRef] = (), failed: Iterable[WriteFailure] = ()) -> None:
        super().__init__(refs)
        self.failed: tuple[WriteFailure, ...] = tuple(failed)


@dataclass(frozen=True, slots=True)
class TaskState:
    remote_id: str
    status: TaskStatus
    completed_at: datetime | None = None
    comment: str = ""  # the rejection reason a manager typed, when any


@dataclass(frozen=True, slots=True)
class TaskClosure:
    """Close a task the app created with a verdict given elsewhere (admin page, card), so it does not stay open."""

    remote_id: str
    status: TaskStatus  # COMPLETED (approved) or REJECTED
    comment: str = ""  # the rejection reason (or approval note) to leave on the task; kept on one line

    def __post_init__(self) -> None:
        object.__setattr__(self, "comment", " ".join(self.comment.split()))  # CRMs read the verdict line by line
        if not self.remote_id:
            raise ValueError("a TaskClosure needs the task's remote_id")
        if self.status is TaskStatus.OPEN:
            raise ValueError("a TaskClosure closes a task: status must be COMPLETED or REJECTED")


@dataclass(frozen=True, slots=True)
class FieldsReport:
    created: tuple[str, ...] = ()
    existing: tuple[str, ...] = ()
    missing_permissions: tuple[str, ...] = field(default_factory=tuple)
