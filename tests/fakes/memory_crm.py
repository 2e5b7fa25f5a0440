"""A tiny in-memory CrmPort for engine and sync tests: a change log with cursors, fields, tasks, notes.

It behaves like an adapter where the engine can see it (idempotent creates by key, values
already held reported unchanged, cursors that resume) and lets a test inject faults: a
crash after N batches, a daily budget running out, unmappable raws to quarantine.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from crm_adapters.errors import CrmBudgetExhausted
from crm_adapters.model import Crm, Entity, Pipeline, Record, TaskStatus, User
from crm_adapters.port import Batch, Cursor, FieldDescription, Quarantined
from crm_adapters.writes import (
    CreatedRef,
    FieldsReport,
    FieldUpdate,
    FieldValue,
    NoteDraft,
    TaskClosure,
    TaskDraft,
    TaskState,
    WriteFailure,
    WriteResult,
)


class Crash(RuntimeError):
    """Stands for a worker dying mid-sync."""


class MemoryCrm:
    crm = Crm.SANDBOX

    def __init__(self, tenant_id: str = "t1", *, page_size: int = 2) -> None:
        self.tenant_id = tenant_id
        self.page_size = page_size
        self.log: dict[Entity, list[Record]] = {e: [] for e in Entity}
        self.bad: dict[Entity, list[tuple[int, Quarantined]]] = {e: [] for e in Entity}
        self.pipelines: list[Pipeline] = []
        self.users: list[User] = []
        self.deal_fields: list[FieldDescription] = []  # what describe_deal_fields answers
        self.fields: dict[tuple[str, str], dict[str, FieldValue]] = {}
        self.field_writes: list[tuple[str, str, FieldValue]] = []
        self.tasks: dict[str, dict[str, Any]] = {}  # remote id -> task
        self.notes: dict[str, dict[str, Any]] = {}
        self.crash_after_batches: int | None = None
        self.daily_limit_after_batches: int | None = None
        self.batches_served = 0
        self.reads: list[tuple[Entity, str | None]] = []
        self.closed: list[TaskClosure] = []  # every closure that changed a task, in order

    # --- seeding, as CRM users would ---------------------------------------------------------
    def seed(self, *records: Record) -> None:
        for record in records:
            if isinstance(record, User):
                self.users.append(record)
            elif isinstance(record, Pipeline):
                self.pipelines.append(record)
            else:
                entity = next(e for e, t in _TYPES.items() if isinstance(record, t))
                self.log[entity].append(record)

    def add_bad(self, entity: Entity, remote_id: str, reason: str) -> None:
        self.bad[entity].append((len(self.log[entity]), Quarantined(remote_id, reason, {"id": remote_id, "secret_body": "x" * 5000})))

    def set_task_status(self, remote_id: str, status: TaskStatus, comment: str = "") -> None:
        self.tasks[remote_id]["status"] = status
        self.tasks[remote_id]["comment"] = comment

    # --- the port -------------------------------------------------------------------------------
    def read_changes(self, entity: Entity, *, since: Cursor | None) -> Iterator[Batch]:
        self.reads.append((entity, since.value if since else None))
        start = int(since.value) if since else 0
        rows = self.log[entity]
        for offset in range(start, max(len(rows), start), self.page_size):
            self._tick()
            end = min(offset + self.page_size, len(rows))
            bad = tuple(q for at, q in self.bad[entity] if offset <= at < end or (at >= len(rows) and end == len(rows)))
            yield Batch(entity, tuple(rows[offset:end]), Cursor(str(end)), bad)

    def _tick(self) -> None:
        if self.crash_after_batches is not None and self.batches_served >= self.crash_after_batches:
            self.crash_after_batches = None
            raise Crash("worker died")
        if self.daily_limit_after_batches is not None and self.batches_served >= self.daily_limit_after_batches:
            self.daily_limit_after_batches = None
            raise CrmBudgetExhausted("daily API limit", retry_after=3600)
        self.batches_served += 1

    def read_pipelines(self) -> list[Pipeline]:
        return list(self.pipelines)

    def read_users(self) -> list[User]:
        return list(self.users)

    def describe_deal_fields(self) -> list[FieldDescription]:
        return list(self.deal_fields)

    def ensure_app_fields(self) -> FieldsReport:
        return FieldsReport(existing=("risk_score",))

    def write_fields(self, updates: Sequence[FieldUpdate]) -> WriteResult:
        written, unchanged = [], []
        for update in updates:
            held = self.fields.setdefault((update.entity.value, update.remote_id), {})
            new = {k.value: v for k, v in update.values.items() if held.get(k.value) != v}
            if not new:
                unchanged.append(update.remote_id)
                continue
            held.update(new)
            self.field_writes += [(update.remote_id, k, v) for k, v in new.items()]
            written.append(update.remote_id)
        return WriteResult(tuple(written), tuple(unchanged), (), api_calls=1)

    def create_tasks(self, tasks: Sequence[TaskDraft]) -> list[CreatedRef]:
        refs = []
        for task in tasks:
            found = next((rid for rid, t in self.tasks.items() if t["key"] == task.idempotency_key), None)
            if found is None:
                found = str(9000 + len(self.tasks))
                self.tasks[found] = {"key": task.idempotency_key, "subject": task.subject, "body": task.body,
                                     "owner_id": task.owner_id, "deal_id": task.deal_id, "status": TaskStatus.OPEN, "comment": "",
                                     "priority": task.priority}
                refs.append(CreatedRef(task.idempotency_key, found, True))
            else:
                refs.append(CreatedRef(task.idempotency_key, found, False))
        return refs

    def create_notes(self, notes: Sequence[NoteDraft]) -> list[CreatedRef]:
        refs = []
        for note in notes:
            found = next((rid for rid, n in self.notes.items() if n["key"] == note.idempotency_key), None)
            created = found is None
            if found is None:
                found = str(7000 + len(self.notes))
                self.notes[found] = {"key": note.idempotency_key, "body": note.body, "deal_id": note.deal_id}
            refs.append(CreatedRef(note.idempotency_key, found, created))
        return refs

    def read_tasks(self, remote_ids: Sequence[str]) -> list[TaskState]:
        return [
            TaskState(rid, self.tasks[rid]["status"], datetime(2026, 6, 2, tzinfo=UTC) if self.tasks[rid]["status"] is not TaskStatus.OPEN else None,
                      self.tasks[rid]["comment"])
            for rid in remote_ids if rid in self.tasks
        ]

    def close_tasks(self, closures: Sequence[TaskClosure]) -> WriteResult:
        written, unchanged, failed = [], [], []
        for c in closures:
            task = self.tasks.get(c.remote_id)
            if task is None:
                failed.append(WriteFailure(c.remote_id, "no such task", False))
            elif task["status"] is c.status and task["comment"] == c.comment:
                unchanged.append(c.remote_id)
            else:
                self.set_task_status(c.remote_id, c.status, c.comment)
                self.closed.append(c)
                written.append(c.remote_id)
        return WriteResult(tuple(written), tuple(unchanged), tuple(failed), api_calls=1)

    def update(self, record: Record, **changes: Any) -> Record:
        """Edit a record: it reappears at the end of the change log, like a modified-since query."""
        new = replace(record, **changes)
        entity = next(e for e, t in _TYPES.items() if isinstance(record, t))
        self.log[entity].append(new)
        return new


def _types() -> dict[Entity, type]:
    from crm_adapters.model import SYNCED_TYPES

    return dict(SYNCED_TYPES)


_TYPES = _types()
