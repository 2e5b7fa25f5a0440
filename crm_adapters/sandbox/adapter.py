"""SandboxCrm: the embedded CRM, implementing CrmPort over its own tables exactly like a real adapter."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, create_engine, event, select
from sqlalchemy.engine import Engine

from crm_adapters.codec import pipeline_from_dict
from crm_adapters.errors import MAPPING_FAILURES, CrmBadRequest
from crm_adapters.model import Crm, Entity, Pipeline, Record, User
from crm_adapters.port import Batch, Cursor, FieldDescription, Quarantined
from crm_adapters.sandbox import _tables as tb
from crm_adapters.sandbox._backdoor import Backdoor
from crm_adapters.sandbox._mapping import record_from_row, to_us
from crm_adapters.sandbox._writes import Writes

logger = logging.getLogger(__name__)
DEFAULT_URL = "sqlite:///salesloop-sandbox.db"


class SandboxCrm(Writes, Backdoor):
    """A CRM of our own: raw JSON rows with modified times, read back through the port like any CRM."""

    crm = Crm.SANDBOX

    def __init__(self, engine: Engine, tenant_id: str = "sandbox", *, page_size: int = 500,
                 clock: Callable[[], datetime] | None = None) -> None:  # fmt: skip
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size}")
        self.engine = engine
        self.tenant_id = tenant_id
        self.page_size = page_size
        self.clock = clock or (lambda: datetime.now(UTC))
        tb.metadata.create_all(engine)

    @classmethod
    def open(cls, url: str = DEFAULT_URL, tenant_id: str = "sandbox", **kw: Any) -> SandboxCrm:
        """Open (creating if needed) a sandbox CRM at a SQLAlchemy URL; SQLite file by default."""
        engine = create_engine(url)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        return cls(engine, tenant_id, **kw)

    def close(self) -> None:
        self.engine.dispose()

    # -- reads ---------------------------------------------------------------------------------

    def read_changes(self, entity: Entity, *, since: Cursor | None) -> Iterator[Batch]:
        """Pages of rows modified after the cursor, ordered by (modified time, row id); deletes included."""
        after = _parse_cursor(since)
        stage_ids = self._stage_ids() if entity is Entity.DEAL else set()
        while True:
            page = self._page(entity, after)
            if not page:
                return
            records: list[Record] = []
            quarantined: list[Quarantined] = []
            for row in page:
                try:
                    records.append(record_from_row(entity, row.data, modified_us=row.modified_us,
                                                   deleted=row.deleted, stage_ids=stage_ids))  # fmt: skip
                except MAPPING_FAILURES as exc:  # one odd row is quarantined, never its page
                    quarantined.append(Quarantined(row.remote_id, str(exc), _raw(row.data)))
            after = (page[-1].modified_us, page[-1].pk)
            yield Batch(entity, tuple(records), Cursor(f"{after[0]}:{after[1]}"), tuple(quarantined))
            if len(page) < self.page_size:
                return

    def _page(self, entity: Entity, after: tuple[int, int] | None) -> list[Any]:
        page: list[Any] = []
        with self.engine.connect() as conn:
            for query in self.page_queries(entity, after):
                page.extend(conn.execute(query.limit(self.page_size - len(page))))
                if len(page) >= self.page_size:
                    break
        return page

    def page_queries(self, entity: Entity, after: tuple[int, int] | None) -> list[Select[Any]]:
        """One page after the cursor (modified time, row id), as queries read in turn until the page is full: the
        rows tied with the cursor's time past its row id, then the rows of later times. Each seeks the index
        (tenant, entity, modified_us, pk) to its first row; a row-value comparison `(modified_us, pk) > (?, ?)`
        seeks only by the time in SQLite, so every page re-read all the rows sharing one time (a bulk load's
        accounts and contacts all do): pages grew N^2."""
        r = tb.rows.c
        query = select(r.pk, r.remote_id, r.modified_us, r.deleted, r.data).where(
            r.tenant == self.tenant_id, r.entity == entity.value
        )
        if after is None:
            return [query.order_by(r.modified_us, r.pk)]
        return [query.where(r.modified_us == after[0], r.pk > after[1]).order_by(r.modified_us, r.pk),
                query.where(r.modified_us > after[0]).order_by(r.modified_us, r.pk)]

    def read_pipelines(self) -> list[Pipeline]:

        with self.engine.connect() as conn:
            rows = conn.execute(
                select(tb.pipelines.c.data).where(tb.pipelines.c.tenant == self.tenant_id)
            ).all()
        out = []
        for (data,) in rows:
            raw = json.loads(data)
            out.append(pipeline_from_dict(dict(raw, crm="sandbox")))
        return sorted(out, key=lambda p: (p.order, p.remote_id))

    def read_users(self) -> list[User]:
        users: list[User] = []
        self.quarantined_users: list[Quarantined] = []  # kept by the sync's quarantine
        for batch in self.read_changes(Entity.USER, since=None):
            users.extend(u for u in batch.records if isinstance(u, User) and not u.deleted)
            self.quarantined_users.extend(batch.quarantined)
        return users

    def describe_deal_fields(self) -> list[FieldDescription]:
        """The deal fields an admin defined (define_deal_field), then every qualification label seen on a deal
        that no definition names (deals carry answers by label): a picklist of the levels recorded."""
        r, d = tb.rows.c, tb.deal_fields.c
        query = select(r.data).where(r.tenant == self.tenant_id, r.entity == Entity.DEAL.value, r.deleted.is_(False))
        levels: dict[str, dict[str, None]] = {}
        with self.engine.connect() as conn:
            defined = [FieldDescription(name=f, label=label, type=kind, **_options(json.loads(opts)))
                       for f, label, kind, opts in conn.execute(
                           select(d.field, d.label, d.kind, d.options).where(d.tenant == self.tenant_id).order_by(d.field))]
            for (data,) in conn.execute(query):
                answers = _raw(data).get("qualification")
                for a in answers if isinstance(answers, list) else ():
                    if isinstance(a, dict) and a.get("label"):
                        seen = levels.setdefault(str(a["label"]), {})
                        if a.get("level") and a["level"] != "unknown":
                            seen[str(a["level"])] = None
        named = {f.label for f in defined} | {f.name for f in defined}
        multi = tuple(f"{f.label}: " for f in defined if f.type == "multiselect")
        return defined + [FieldDescription(name=label, label=label, type="picklist", options=tuple(opts))
                          for label, opts in levels.items() if label not in named and not label.startswith(multi)]

    def _stage_ids(self) -> set[str]:
        return {s.id for p in self.read_pipelines() for s in p.stages}

    def _now_us(self) -> int:
        return to_us(self.clock())

    def __repr__(self) -> str:
        return f"SandboxCrm(url={self.engine.url!r}, tenant_id={self.tenant_id!r})"


def _parse_cursor(cursor: Cursor | None) -> tuple[int, int] | None:
    if cursor is None:
        return None
    try:
        modified, pk = cursor.value.split(":")
        return int(modified), int(pk)
    except ValueError:
        raise CrmBadRequest(f"not a sandbox cursor: {cursor.value!r}") from None


def _raw(data: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except json.JSONDecodeError:
        return {"_unparsed": data[:1000]}
    return value if isinstance(value, dict) else {"_value": value}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


__all__ = ["SandboxCrm", "DEFAULT_URL"]


def _options(stored: list[Any]) -> dict[str, tuple[str, ...]]:
    """A defined field's options (each a value, or [value, label]) as FieldDescription's options and labels."""
    pairs = [(str(o), str(o)) if isinstance(o, str) else (str(o[0]), str(o[1])) for o in stored]
    return {"options": tuple(v for v, _ in pairs), "option_labels": tuple(label for _, label in pairs)}
