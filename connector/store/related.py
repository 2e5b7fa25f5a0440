"""What changed since a moment, and the records of a few deals: what an incremental chain reads instead of the
whole snapshot.

A record's `synced_at` moves only when its payload changed (records.upsert_records), so the rows synced after
a chain read the store are exactly what that chain has not seen. They are mapped to the deals they are about:
the deal itself, its stage changes, activities and roles, its account (every deal of the account) and a
contact (every deal the contact has a role on). A change to users or pipelines touches every deal (None).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import QueryableAttribute, Session

from connector.store.records import PIPELINE
from connector.store.tables import CrmRecord
from crm_adapters.codec import entity_from_dict, pipeline_from_dict
from crm_adapters.model import Entity, Record
from crm_adapters.snapshot import Snapshot

CHUNK = 500  # ids per IN (...): under every database's bound-parameter limit
WIDE = (str(Entity.USER), PIPELINE)  # a change here can move any deal's figures
Column = ColumnElement[str] | QueryableAttribute[str]
OUTCOMES = (str(Entity.DEAL), str(Entity.STAGE_CHANGE), str(Entity.ACTIVITY))  # what learning counts as outcomes


def changed_count(session: Session, installation_id: str, since: datetime, entities: Sequence[str] = OUTCOMES) -> int:
    """How many records of these entities changed (or arrived, or were deleted) after `since`."""
    return int(session.execute(select(func.count()).where(
        CrmRecord.installation_id == installation_id, CrmRecord.entity.in_(list(entities)), CrmRecord.synced_at > since,
    )).scalar_one())


def touched_deals(session: Session, installation_id: str, since: datetime) -> set[str] | None:
    """Ids of the deals whose own records changed after `since` (empty: nothing did; None: users or pipelines did)."""
    rows = session.execute(select(CrmRecord.entity, CrmRecord.remote_id, CrmRecord.payload).where(
        CrmRecord.installation_id == installation_id, CrmRecord.synced_at > since)).all()
    deals: set[str] = set()
    accounts, contacts = [], []
    for entity, remote_id, payload in rows:
        if entity in WIDE:
            return None
        if entity == Entity.DEAL:
            deals.add(remote_id)
        elif entity in (Entity.STAGE_CHANGE, Entity.DEAL_CONTACT_ROLE):
            deals.add(str(payload.get("deal_id") or ""))
        elif entity == Entity.ACTIVITY:
            deals.update(str(d) for d in payload.get("deal_ids") or ())
        elif entity == Entity.ACCOUNT:
            accounts.append(remote_id)
        elif entity == Entity.CONTACT:
            contacts.append(remote_id)
    deals.update(_ids_where(session, installation_id, Entity.DEAL, _field(CrmRecord, "account_id"), accounts, deleted=True))
    roles = _payloads_where(session, installation_id, Entity.DEAL_CONTACT_ROLE, _field(CrmRecord, "contact_id"), contacts)
    deals.update(str(p.get("deal_id") or "") for p in roles)
    deals.discard("")
    return deals


def load_deals(session: Session, installation_id: str, deal_ids: Iterable[str]) -> Snapshot:
    """A snapshot holding only these deals and what is theirs (stage changes, activities, roles, their accounts
    and contacts), with every user and pipeline: enough to featurise each of them as the whole snapshot would."""
    ids = sorted(set(deal_ids))
    deals = _records(session, installation_id, Entity.DEAL, CrmRecord.remote_id, ids)
    changes = _records(session, installation_id, Entity.STAGE_CHANGE, _field(CrmRecord, "deal_id"), ids)
    roles = _records(session, installation_id, Entity.DEAL_CONTACT_ROLE, _field(CrmRecord, "deal_id"), ids)
    activities = _activities(session, installation_id, ids)
    account_ids = {getattr(d, "account_id", None) for d in deals} | {getattr(a, "account_id", None) for a in activities}
    contact_ids = {getattr(r, "contact_id", None) for r in roles}
    contact_ids |= {c for a in activities for c in getattr(a, "contact_ids", ())}
    accounts = _records(session, installation_id, Entity.ACCOUNT, CrmRecord.remote_id, sorted(i for i in account_ids if i))
    contacts = _records(session, installation_id, Entity.CONTACT, CrmRecord.remote_id, sorted(i for i in contact_ids if i))
    users = _records(session, installation_id, Entity.USER, None, [])
    pipelines = session.execute(select(CrmRecord.payload).where(
        CrmRecord.installation_id == installation_id, CrmRecord.entity == PIPELINE, CrmRecord.deleted.is_(False))).scalars()
    return Snapshot.of([*users, *accounts, *contacts, *deals, *roles, *changes, *activities],
                       [pipeline_from_dict(p) for p in pipelines])


def _field(table: type[CrmRecord], name: str) -> ColumnElement[str]:
    """A top-level string of the record's JSON payload (json_extract on SQLite, ->> on PostgreSQL)."""
    column: ColumnElement[str] = table.payload[name].as_string()
    return column


def _live(installation_id: str, entity: Entity | str, *, deleted: bool = False) -> list[ColumnElement[bool]]:
    where = [CrmRecord.installation_id == installation_id, CrmRecord.entity == str(entity)]
    return where if deleted else [*where, CrmRecord.deleted.is_(False)]


def _payloads_where(session: Session, installation_id: str, entity: Entity, column: Column | None,
                    values: Sequence[str]) -> list[dict[str, Any]]:
    """Live payloads of one entity whose `column` is one of `values` (column None: every live one)."""
    if column is None:
        return list(session.execute(select(CrmRecord.payload).where(*_live(installation_id, entity))).scalars())
    out: list[dict[str, Any]] = []
    for start in range(0, len(values), CHUNK):
        out.extend(session.execute(select(CrmRecord.payload).where(
            *_live(installation_id, entity), column.in_(values[start:start + CHUNK]))).scalars())
    return out


def _ids_where(session: Session, installation_id: str, entity: Entity, column: Column, values: Sequence[str],
               *, deleted: bool = False) -> set[str]:
    out: set[str] = set()
    for start in range(0, len(values), CHUNK):
        out.update(session.execute(select(CrmRecord.remote_id).where(
            *_live(installation_id, entity, deleted=deleted), column.in_(values[start:start + CHUNK]))).scalars())
    return out


def _records(session: Session, installation_id: str, entity: Entity, column: Column | None,
             values: Sequence[str]) -> list[Record]:
    if column is not None and not values:
        return []
    return [entity_from_dict(entity, p) for p in _payloads_where(session, installation_id, entity, column, values)]


def _activities(session: Session, installation_id: str, deal_ids: Sequence[str]) -> list[Record]:
    """Live activities logged on any of these deals (an activity lists its deals in a JSON array)."""
    out: dict[str, Record] = {}
    postgres = session.get_bind().dialect.name == "postgresql"
    for start in range(0, len(deal_ids), CHUNK):
        chunk = deal_ids[start:start + CHUNK]
        if postgres:
            each = func.json_array_elements_text(CrmRecord.payload["deal_ids"]).table_valued("value")
        else:
            each = func.json_each(CrmRecord.payload, "$.deal_ids").table_valued("value")
        on_deal = select(1).select_from(each).where(each.c.value.in_(chunk)).exists()
        for payload in session.execute(select(CrmRecord.payload).where(*_live(installation_id, Entity.ACTIVITY), on_deal)).scalars():
            out[str(payload["remote_id"])] = entity_from_dict(Entity.ACTIVITY, payload)
    return list(out.values())
