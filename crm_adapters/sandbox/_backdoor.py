"""What a person using the sandbox CRM does (load an org, edit or delete records, complete tasks).

These are not part of CrmPort: they play the CRM's users, for the sandbox UI and the contract harness.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy import delete as sql_delete
from sqlalchemy.engine import Engine

from crm_adapters import codec
from crm_adapters.errors import CrmNotFound
from crm_adapters.model import SYNCED_TYPES, Deal, Entity, Pipeline, Record, TaskStatus
from crm_adapters.sandbox import _tables as tb
from crm_adapters.sandbox._mapping import from_us, record_from_row, row_of, to_us
from crm_adapters.writes import AppField, FieldValue

if TYPE_CHECKING:
    from crm_adapters.sandbox.simulator import SimulatedOrg

_ENTITY_OF = {cls: entity for entity, cls in SYNCED_TYPES.items()}


class Backdoor:
    engine: Engine
    tenant_id: str

    def _now_us(self) -> int:
        raise NotImplementedError

    def define_deal_field(self, field: str, label: str, kind: str, options: Iterable[str | tuple[str, str]] = ()) -> None:
        """An admin adds a deal field (kind as FieldDescription.type: picklist, multiselect, checkbox, number ...);
        an option is its stored value, or (value, label) when the CRM shows it otherwise."""
        values = {"label": label, "kind": kind, "options": json.dumps([o if isinstance(o, str) else list(o) for o in options])}
        with self.engine.begin() as conn:
            where = (tb.deal_fields.c.tenant == self.tenant_id) & (tb.deal_fields.c.field == field)
            if conn.execute(select(tb.deal_fields.c.field).where(where)).first():
                conn.execute(update(tb.deal_fields).where(where).values(**values))
            else:
                conn.execute(insert(tb.deal_fields).values(tenant=self.tenant_id, field=field, **values))

    def _stage_ids(self) -> set[str]:
        raise NotImplementedError

    def load(self, org: SimulatedOrg) -> dict[str, int]:
        """Fill (or refresh) the CRM with a simulated org, in bulk; returns rows inserted or changed per entity."""
        self.save_pipelines(org.pipelines)
        return self.upsert(org.records())

    def save_pipelines(self, pipelines: Iterable[Pipeline]) -> None:
        c = tb.pipelines.c
        with self.engine.begin() as conn:
            for p in pipelines:
                data = codec.record_to_dict(p)
                for key in ("crm", "remote_updated_at", "deleted"):
                    data.pop(key, None)
                conn.execute(
                    sql_delete(tb.pipelines).where(c.tenant == self.tenant_id, c.remote_id == p.remote_id)
                )
                conn.execute(
                    insert(tb.pipelines).values(
                        tenant=self.tenant_id, remote_id=p.remote_id, data=json.dumps(data)
                    )
                )

    def upsert(self, records: Iterable[Record]) -> dict[str, int]:
        """Insert new records and update changed ones; modified time = the record's, never going backwards."""
        groups: dict[Entity, list[Record]] = {}
        for record in records:
            groups.setdefault(_ENTITY_OF[type(record)], []).append(record)
        counts = {}
        now = self._now_us()
        r = tb.rows.c
        with self.engine.begin() as conn:
            for entity, recs in groups.items():
                have = {row.remote_id: row for row in conn.execute(
                    select(r.pk, r.remote_id, r.modified_us, r.deleted, r.data)
                    .where(r.tenant == self.tenant_id, r.entity == entity.value))}  # fmt: skip
                inserts, updates = [], []
                for rec in recs:
                    data = row_of(rec)
                    at = to_us(rec.remote_updated_at) if rec.remote_updated_at else now
                    old = have.get(rec.remote_id)
                    if old is None:
                        inserts.append({"tenant": self.tenant_id, "entity": entity.value, "remote_id": rec.remote_id,
                                        "modified_us": at, "deleted": rec.deleted, "data": data})  # fmt: skip
                    elif old.data != data or bool(old.deleted) != rec.deleted:
                        updates.append(
                            {"p": old.pk, "m": max(at, old.modified_us + 1), "d": rec.deleted, "x": data}
                        )
                if inserts:
                    conn.execute(insert(tb.rows), inserts)
                if updates:

                    conn.execute(update(tb.rows).where(r.pk == bindparam("p"))
                                 .values(modified_us=bindparam("m"), deleted=bindparam("d"), data=bindparam("x")), updates)  # fmt: skip
                counts[entity.value] = len(inserts) + len(updates)
        return counts

    def put_raw(self, entity: Entity, data: dict[str, Any], *, modified_at: datetime | None = None) -> None:
        """Store a raw row as-is (possibly malformed), as a CRM with loose validation would."""
        rid = data.get("remote_id")
        at = to_us(modified_at) if modified_at else self._now_us()
        with self.engine.begin() as conn:
            conn.execute(insert(tb.rows).values(tenant=self.tenant_id, entity=entity.value,
                         remote_id=None if rid is None else str(rid), modified_us=at, deleted=False, data=json.dumps(data)))  # fmt: skip

    def _row(self, conn: Any, entity: Entity, remote_id: str) -> Any:
        r = tb.rows.c
        row = conn.execute(select(r.pk, r.modified_us, r.deleted, r.data).where(
            r.tenant == self.tenant_id, r.entity == entity.value, r.remote_id == remote_id)).first()  # fmt: skip
        if row is None:
            raise CrmNotFound(f"{entity.value} {remote_id} not found")
        return row

    def delete(self, entity: Entity, remote_id: str) -> None:
        """Delete a record: it reads back once more, as deleted=True."""
        with self.engine.begin() as conn:
            row = self._row(conn, entity, remote_id)
            conn.execute(update(tb.rows).where(tb.rows.c.pk == row.pk)
                         .values(deleted=True, modified_us=max(self._now_us(), row.modified_us + 1)))  # fmt: skip

    def get_deal(self, remote_id: str) -> Deal | None:
        """The deal as the CRM shows it (None when missing or deleted)."""
        with self.engine.connect() as conn:
            try:
                row = self._row(conn, Entity.DEAL, remote_id)
            except CrmNotFound:
                return None
        if row.deleted:
            return None
        deal = record_from_row(
            Entity.DEAL, row.data, modified_us=row.modified_us, deleted=False, stage_ids=()
        )
        return deal if isinstance(deal, Deal) else None

    def edit_deal(self, remote_id: str, **changes: Any) -> Deal:
        """Change common-model fields of a deal (validated by the model), bumping its modified time."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(Deal)} | (
            {"remote_id", "crm"} & set(changes)
        )
        if unknown:
            raise ValueError(f"cannot edit deal fields {sorted(unknown)}")
        with self.engine.begin() as conn:
            row = self._row(conn, Entity.DEAL, remote_id)
            old = record_from_row(
                Entity.DEAL, row.data, modified_us=row.modified_us, deleted=False, stage_ids=()
            )
            new = dataclasses.replace(old, **changes)
            stages = self._stage_ids()
            if stages and new.stage_id not in stages:  # type: ignore[attr-defined]
                raise ValueError(f"unknown stage {new.stage_id!r}")  # type: ignore[attr-defined]
            us = max(self._now_us(), row.modified_us + 1)
            conn.execute(
                update(tb.rows).where(tb.rows.c.pk == row.pk).values(data=row_of(new), modified_us=us)
            )
        return dataclasses.replace(new, remote_updated_at=from_us(us))  # type: ignore[return-value]

    def set_task_status(self, remote_id: str, status: TaskStatus, comment: str = "") -> None:
        """A person completes (approves) or rejects a task, with an optional comment."""
        c = tb.tasks.c
        done = None if status is TaskStatus.OPEN else from_us(self._now_us()).isoformat()
        if not (remote_id.isascii() and remote_id.isdigit() and len(remote_id) < 19):  # task ids are row numbers
            raise CrmNotFound(f"task {remote_id[:40]} not found")
        with self.engine.begin() as conn:
            hit = conn.execute(update(tb.tasks).where(c.tenant == self.tenant_id, c.pk == int(remote_id))
                               .values(status=status.value, comment=comment, completed_at=done)).rowcount  # fmt: skip
        if not hit:
            raise CrmNotFound(f"task {remote_id} not found")

    def complete_task(self, remote_id: str, comment: str = "") -> None:
        self.set_task_status(remote_id, TaskStatus.COMPLETED, comment)

    def reject_task(self, remote_id: str, comment: str) -> None:
        self.set_task_status(remote_id, TaskStatus.REJECTED, comment)

    def list_tasks(self, *, status: TaskStatus | None = None, owner_id: str | None = None,
                   deal_id: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
        """Tasks the app created, newest first, as plain dicts for a UI."""
        c = tb.tasks.c
        query = select(tb.tasks).where(c.tenant == self.tenant_id)
        for col, value in (
            (c.status, status.value if status else None),
            (c.owner_id, owner_id),
            (c.deal_id, deal_id),
        ):
            if value is not None:
                query = query.where(col == value)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(c.pk.desc())).mappings().all()
        return [{"remote_id": str(r["pk"]), **{k: r[k] for k in r if k not in ("pk", "tenant", "created_us")},
                 "created_at": from_us(r["created_us"]).isoformat()} for r in rows]  # fmt: skip

    def list_notes(self, deal_id: str | None = None) -> list[dict[str, Any]]:
        c = tb.notes.c
        query = select(tb.notes).where(c.tenant == self.tenant_id)
        if deal_id is not None:
            query = query.where(c.deal_id == deal_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(c.pk)).mappings().all()
        return [{"remote_id": str(r["pk"]), "idempotency_key": r["idempotency_key"], "deal_id": r["deal_id"],
                 "body": r["body"], "created_at": from_us(r["created_us"]).isoformat()} for r in rows]  # fmt: skip

    def field_value(self, entity: Entity, remote_id: str, field: AppField) -> FieldValue:
        """One of our app fields as the CRM holds it (None when never written)."""
        return self.app_field_values(entity, remote_id).get(field.value)

    def app_field_values(self, entity: Entity, remote_id: str) -> dict[str, FieldValue]:
        v = tb.field_values.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(v.field, v.value).where(v.tenant == self.tenant_id, v.entity == entity.value,
                                                                v.remote_id == remote_id)).all()  # fmt: skip
        return {f: json.loads(val) if val is not None else None for f, val in rows}

    def app_task_count(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(tb.tasks).where(tb.tasks.c.tenant == self.tenant_id)
                ).scalar_one()
            )

    def counts(self) -> dict[str, int]:
        """Live rows per entity (for the sandbox UI and the CLI)."""
        r = tb.rows.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(r.entity, func.count()).where(r.tenant == self.tenant_id, r.deleted.is_(False))
                                .group_by(r.entity)).all()  # fmt: skip
        return {e: int(n) for e, n in rows}
