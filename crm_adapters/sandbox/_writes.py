"""The port's write side for the sandbox: app fields, batched field writes, idempotent tasks and notes."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine

from crm_adapters.errors import CrmNotFound
from crm_adapters.model import TaskStatus
from crm_adapters.sandbox import _tables as tb
from crm_adapters.writes import (
    APP_FIELDS,
    CreatedRef,
    FieldsReport,
    FieldUpdate,
    NoteDraft,
    TaskClosure,
    TaskDraft,
    TaskState,
    WriteFailure,
    WriteResult,
)

logger = logging.getLogger(__name__)
WRITE_BATCH = 100  # records per write call, like a CRM batch endpoint


def _same(a: Any, b: Any) -> bool:
    """Equal as the CRM would store them (5 == 5.0; strings exact)."""
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return float(a) == float(b)
    return bool(a == b)


class Writes:
    engine: Engine
    tenant_id: str

    def _now_us(self) -> int:
        raise NotImplementedError

    if TYPE_CHECKING:  # the Backdoor mixin provides it (a stub here would shadow it: Writes comes first)
        def set_task_status(self, remote_id: str, status: TaskStatus, comment: str = "") -> None: ...

    def ensure_app_fields(self) -> FieldsReport:
        """Create our fields where missing; a second call finds them all existing."""
        c = tb.app_fields.c
        created, existing = [], []
        with self.engine.begin() as conn:
            have = {
                (e, f) for e, f in conn.execute(select(c.entity, c.field).where(c.tenant == self.tenant_id))
            }
            for spec in APP_FIELDS:
                name = f"{spec.entity.value}.{spec.field.value}"
                if (spec.entity.value, spec.field.value) in have:
                    existing.append(name)
                    continue
                conn.execute(insert(tb.app_fields).values(tenant=self.tenant_id, entity=spec.entity.value,
                             field=spec.field.value, label=spec.label, kind=spec.kind, options=json.dumps(spec.options)))  # fmt: skip
                created.append(name)
        return FieldsReport(created=tuple(created), existing=tuple(existing))

    def write_fields(self, updates: Sequence[FieldUpdate]) -> WriteResult:
        """Write in batches of WRITE_BATCH records, only values that differ from what the CRM holds."""
        written: list[str] = []
        unchanged: list[str] = []
        failed: list[WriteFailure] = []
        calls = 0
        for start in range(0, len(updates), WRITE_BATCH):
            chunk = updates[start : start + WRITE_BATCH]
            with self.engine.begin() as conn:
                wrote_any = False
                defined = {(e, f) for e, f in conn.execute(
                    select(tb.app_fields.c.entity, tb.app_fields.c.field).where(tb.app_fields.c.tenant == self.tenant_id))}  # fmt: skip
                for upd in chunk:
                    outcome = self._write_one(conn, upd, defined)
                    if isinstance(outcome, WriteFailure):
                        failed.append(outcome)
                    elif outcome:
                        written.append(upd.remote_id)
                        wrote_any = True
                    else:
                        unchanged.append(upd.remote_id)
                calls += 1 if wrote_any else 0
        return WriteResult(tuple(written), tuple(unchanged), tuple(failed), calls)

    def _write_one(self, conn: Any, upd: FieldUpdate, defined: set[tuple[str, str]]) -> bool | WriteFailure:
        missing = [f.value for f in upd.values if (upd.entity.value, f.value) not in defined]
        if missing:
            return WriteFailure(
                upd.remote_id, f"app fields {missing} do not exist; run ensure_app_fields", False
            )
        r = tb.rows.c
        alive = conn.execute(select(r.pk).where(r.tenant == self.tenant_id, r.entity == upd.entity.value,
                                                r.remote_id == upd.remote_id, r.deleted.is_(False))).first()  # fmt: skip
        if alive is None:
            return WriteFailure(upd.remote_id, f"{upd.entity.value} {upd.remote_id} not found", False)
        v = tb.field_values.c
        key = (v.tenant == self.tenant_id, v.entity == upd.entity.value, v.remote_id == upd.remote_id)
        current = {f: json.loads(val) if val is not None else None
                   for f, val in conn.execute(select(v.field, v.value).where(*key))}  # fmt: skip
        changed = {
            f.value: val
            for f, val in upd.values.items()
            if f.value not in current or not _same(current[f.value], val)
        }
        now = self._now_us()
        for name, val in changed.items():
            if name in current:
                conn.execute(
                    update(tb.field_values)
                    .where(*key, v.field == name)
                    .values(value=json.dumps(val), modified_us=now)
                )
            else:
                conn.execute(insert(tb.field_values).values(tenant=self.tenant_id, entity=upd.entity.value,
                             remote_id=upd.remote_id, field=name, value=json.dumps(val), modified_us=now))  # fmt: skip
        return bool(changed)

    def create_tasks(self, tasks: Sequence[TaskDraft]) -> list[CreatedRef]:
        """One task per idempotency key, ever: a retry gets the task made the first time."""
        return self._create_once(tb.tasks, [(draft.idempotency_key, {
            "subject": draft.subject, "body": draft.body, "owner_id": draft.owner_id,
            "due_at": draft.due_at.isoformat(), "deal_id": draft.deal_id, "account_id": draft.account_id,
            "status": TaskStatus.OPEN.value, "priority": draft.priority, "comment": ""}) for draft in tasks])

    def create_notes(self, notes: Sequence[NoteDraft]) -> list[CreatedRef]:
        """One note per idempotency key on its deal."""
        return self._create_once(tb.notes, [(draft.idempotency_key, {"deal_id": draft.deal_id, "body": draft.body})
                                            for draft in notes])

    def _create_once(self, table: Any, rows: Sequence[tuple[str, dict[str, Any]]]) -> list[CreatedRef]:
        """Insert each row unless one with its idempotency key exists; either way return its ref."""
        out = []
        c = table.c
        with self.engine.begin() as conn:
            for key, values in rows:
                found = conn.execute(select(c.pk).where(c.tenant == self.tenant_id, c.idempotency_key == key)).first()
                if found is not None:
                    out.append(CreatedRef(key, str(found.pk), False))
                    continue
                pk = conn.execute(insert(table).values(tenant=self.tenant_id, idempotency_key=key,
                                                       created_us=self._now_us(), **values)).inserted_primary_key[0]
                out.append(CreatedRef(key, str(pk), True))
        return out

    def read_tasks(self, remote_ids: Sequence[str]) -> list[TaskState]:
        """Status of the given tasks; ids the CRM does not know are left out."""
        pks = [int(r) for r in remote_ids if str(r).isdigit()]
        c = tb.tasks.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(c.pk, c.status, c.completed_at, c.comment)
                                .where(c.tenant == self.tenant_id, c.pk.in_(pks))).all()  # fmt: skip
        found = {str(r.pk): r for r in rows}
        missing = [r for r in remote_ids if r not in found]
        if missing:
            logger.info("sandbox read_tasks: %d unknown task ids", len(missing))
        return [TaskState(rid, TaskStatus(found[rid].status),
                          datetime.fromisoformat(found[rid].completed_at) if found[rid].completed_at else None,
                          found[rid].comment or "") for rid in remote_ids if rid in found]  # fmt: skip

    def close_tasks(self, closures: Sequence[TaskClosure]) -> WriteResult:
        """Close tasks through the same path a person uses (set_task_status); one already closed so is unchanged."""
        current = {t.remote_id: t for t in self.read_tasks([c.remote_id for c in closures])}
        written, unchanged, failed = [], [], []
        for closure in closures:
            held = current.get(closure.remote_id)
            if held is not None and held.status is closure.status and held.comment == closure.comment:
                unchanged.append(closure.remote_id)
                continue
            try:
                self.set_task_status(closure.remote_id, closure.status, closure.comment)
            except (CrmNotFound, ValueError) as exc:
                failed.append(WriteFailure(closure.remote_id, f"not closed: {exc}", retryable=False))
                continue
            written.append(closure.remote_id)
        return WriteResult(tuple(written), tuple(unchanged), tuple(failed), api_calls=1)
