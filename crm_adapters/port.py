"""The CRM port: the one protocol every adapter (sandbox, HubSpot, Salesforce) implements.

Shaped by what the loops need, not by the CRM APIs: read what changed since a cursor,
read stage definitions and users, describe the deal fields, make sure our fields exist, write field values in
batches, create tasks and notes idempotently, read tasks back to learn approvals, and close
the tasks of verdicts given outside the CRM.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from crm_adapters.model import Crm, Entity, Pipeline, Record, User
from crm_adapters.writes import (
    CreatedRef,
    FieldsReport,
    FieldUpdate,
    NoteDraft,
    TaskClosure,
    TaskDraft,
    TaskState,
    WriteResult,
)


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where an incremental read stopped; opaque to everyone but the adapter that made it."""

    value: str


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A raw CRM record that could not be mapped, with why; it is stored, never dropped."""

    remote_id: str | None
    reason: str
    raw: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Batch:
    """A page of changes; `cursor` is safe to save once this batch is stored."""

    entity: Entity
    records: tuple[Record, ...]
    cursor: Cursor | None
    quarantined: tuple[Quarantined, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class FieldDescription:
    """A field of the CRM's deals (or Salesforce's Lead) as its describe reports it: what the install
    suggests a qualification mapping from (crm_adapters/qualification.suggest), for the admin to confirm."""

    name: str  # API name
    label: str  # the CRM's label, as people see it
    type: str  # picklist | multiselect | checkbox | number | text | date | other
    options: tuple[str, ...] = ()  # picklist values, as the CRM stores them on the record
    source: str = "deal"  # deal | lead (Salesforce: read from the converted Lead)
    option_labels: tuple[str, ...] = ()  # the same options as the CRM shows them, in order; empty: as stored


@runtime_checkable
class CrmPort(Protocol):
    crm: Crm
    tenant_id: str

    def read_changes(self, entity: Entity, *, since: Cursor | None) -> Iterator[Batch]:
        """Records changed (deletes included, as deleted=True) after `since`; all when None."""
        ...

    def read_pipelines(self) -> list[Pipeline]:
        """Pipelines with their stages (order, probability, closed, won) by internal id."""
        ...

    def read_users(self) -> list[User]:
        """Every user with its mapped role."""
        ...

    def describe_deal_fields(self) -> list[FieldDescription]:
        """Every field of deals (and of the Lead a Salesforce deal was converted from) with label, type and
        picklist values, so a qualification mapping can be suggested at install."""
        ...

    def ensure_app_fields(self) -> FieldsReport:
        """Create our fields where missing; idempotent."""
        ...

    def write_fields(self, updates: Sequence[FieldUpdate]) -> WriteResult:
        """Write app field values in batches, skipping values the CRM already holds."""
        ...

    def create_tasks(self, tasks: Sequence[TaskDraft]) -> list[CreatedRef]:
        """Create tasks; a key seen before returns the task made then."""
        ...

    def create_notes(self, notes: Sequence[NoteDraft]) -> list[CreatedRef]:
        """Create notes on deals; a key seen before returns the note made then."""
        ...

    def read_tasks(self, remote_ids: Sequence[str]) -> list[TaskState]:
        """Current status of tasks we created (completed = approved, rejected with a reason)."""
        ...

    def close_tasks(self, closures: Sequence[TaskClosure]) -> WriteResult:
        """Close tasks we created with a verdict given outside the CRM, as read_tasks would read it back;
        a task already closed that way is `unchanged`, a missing one a non-retryable failure."""
        ...
