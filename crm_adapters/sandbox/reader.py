"""What the sandbox CRM holds, read as its own record pages would: the public reader for its web pages.

The sandbox CRM has no UI of its own; `salesloop demo --serve` plays it (connector/sandbox_pages.py).
Those pages read the CRM's rows through here, never its tables, so the tables stay the sandbox's.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy import select

from crm_adapters.model import Entity, Record
from crm_adapters.sandbox import _tables as tb
from crm_adapters.sandbox._mapping import record_from_row
from crm_adapters.sandbox.adapter import SandboxCrm

logger = logging.getLogger(__name__)


def live_records(crm: SandboxCrm, entity: Entity, *, like: str | None = None) -> list[Record]:
    """Live, well-formed records of one entity (malformed rows are the sync's business, not the page's);
    `like`: only rows whose JSON contains this text (one query per list)."""
    r = tb.rows.c
    query = select(r.remote_id, r.modified_us, r.data).where(
        r.tenant == crm.tenant_id, r.entity == entity.value, r.deleted.is_(False))
    if like is not None:
        query = query.where(r.data.like(f"%{like}%"))
    with crm.engine.connect() as conn:
        rows = conn.execute(query).all()
    out = []
    for row in rows:
        try:
            out.append(record_from_row(entity, row.data, modified_us=row.modified_us, deleted=False, stage_ids=()))
        except (ValueError, json.JSONDecodeError) as exc:
            logger.debug("sandbox page skips %s %s: %s", entity.value, row.remote_id, exc)
    return out


def app_field_values(crm: SandboxCrm, entity: Entity) -> dict[str, dict[str, Any]]:
    """Every app field value of one entity, by record id, in one query."""
    v = tb.field_values.c
    with crm.engine.connect() as conn:
        rows = conn.execute(select(v.remote_id, v.field, v.value).where(
            v.tenant == crm.tenant_id, v.entity == entity.value)).all()
    out: dict[str, dict[str, Any]] = {}
    for remote_id, name, value in rows:
        out.setdefault(remote_id, {})[name] = json.loads(value) if value is not None else None
    return out
