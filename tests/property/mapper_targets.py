"""Every mapper against generated CRM records, then the store: each case is one page of rows mapped by the
adapter's own per-row path and stored in one batch transaction. The oracle: nothing raised, every row became
a record or a quarantined raw, and every record the store can key is in the store afterwards (no batch lost)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st
from sqlalchemy import Engine, select

from connector.store import Store
from connector.store import installations as inst
from connector.store.crypto import TokenCipher
from connector.store.records import quarantine, storable, upsert_checked
from connector.store.tables import CrmRecord
from crm_adapters.hubspot import _mapping as hs
from crm_adapters.hubspot._sync import OTYPES, Sync
from crm_adapters.model import Entity, Record
from crm_adapters.port import Batch, Cursor, Quarantined
from crm_adapters.salesforce import _mapping as sf
from crm_adapters.salesforce.adapter import BASE_FIELDS
from crm_adapters.sandbox import SandboxCrm
from jobs.sync import store_batch
from tests.property.http_targets import LOST, OK
from tests.property.strategies import json_values, nasty_text, numbers, plausible, with_keys

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
CIPHER = TokenCipher.from_key_text(TokenCipher.generate_key_text())

ids = plausible(st.integers(1, 10**12).map(str), nasty_text)
iso = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)).map(
    lambda d: d.isoformat())
dates = plausible(st.one_of(iso, st.integers(-(10**14), 10**20).map(str)), json_values)


def installation(store: Store, tenant: str) -> str:
    with store.session() as s:
        return inst.upsert(s, CIPHER, crm="sandbox", tenant_id=tenant, tokens={"access_token": "x"}).id


def stored_all(store: Store, installation_id: str, entity: Entity | str, records: list[Record],
               quarantined: list[Quarantined]) -> str:
    """Store one page as the sync does; LOST unless every keyable record is in the store afterwards."""
    batch = Batch(entity=Entity(entity), records=tuple(records), cursor=Cursor("c"), quarantined=tuple(quarantined))
    if Entity(entity) is Entity.USER:
        with store.session() as s:
            upsert_checked(s, installation_id, entity, records)
            quarantine(s, installation_id, entity, quarantined)
    else:
        store_batch(store, installation_id, Entity(entity), batch, False, None)
    keys = {r.remote_id for r in storable(records)[0]}
    if not keys:
        return OK
    with store.session() as s:
        found = set(s.execute(select(CrmRecord.remote_id).where(
            CrmRecord.installation_id == installation_id, CrmRecord.entity == str(entity),
            CrmRecord.remote_id.in_(sorted(keys)))).scalars())
    return OK if found == keys else LOST


# ---- HubSpot -------------------------------------------------------------------------------------
_props = with_keys(["dealname", "amount", "dealstage", "pipeline", "closedate", "createdate", "hs_lastmodifieddate",
                    "hubspot_owner_id", "name", "numberofemployees", "annualrevenue", "firstname", "email",
                    "associatedcompanyid", "hs_timestamp", "hs_call_duration", "hs_call_direction", "hs_note_body",
                    "hs_meeting_start_time", "hs_v2_date_entered_1", "salesloop_kind", "hs_is_closed"],
                   plausible(st.one_of(nasty_text, dates, numbers.map(str))))
hubspot_rows = st.lists(plausible(st.fixed_dictionaries(
    {"id": ids, "properties": plausible(_props)},
    optional={"updatedAt": dates, "archived": plausible(st.booleans()),
              "associations": plausible(st.dictionaries(st.sampled_from(["companies", "deals", "contacts"]),
                                                        st.lists(ids, max_size=3), max_size=3)),
              "history": plausible(st.fixed_dictionaries({"dealstage": plausible(st.lists(st.fixed_dictionaries(
                  {"value": nasty_text, "timestamp": dates}), max_size=3))}))})), max_size=6)
hubspot_owners = st.lists(plausible(st.fixed_dictionaries({"id": ids}, optional={
    "email": nasty_text, "firstName": nasty_text, "updatedAt": dates, "archived": json_values,
    "teams": plausible(st.lists(st.fixed_dictionaries({"name": nasty_text}, optional={"primary": json_values}),
                                max_size=3))})), max_size=4)
hubspot_cases = st.tuples(st.sampled_from([(e, o) for e, os in OTYPES.items() if e is not Entity.DEAL_CONTACT_ROLE
                                           for o in os]), hubspot_rows, hubspot_owners)


def hubspot_case(store: Store, installation_id: str, case: tuple[tuple[Entity, str], list[Any], list[Any]]) -> str:
    (entity, otype), rows, owners = case
    sync = Sync(None, hs.HubSpotMapping(), lambda: {}, lambda: NOW, timedelta(0))  # type: ignore[arg-type]
    mapped = sync._map(entity, otype, rows, listed=True)
    if entity is not Entity.STAGE_CHANGE and len(mapped.records) + len(mapped.quarantined) != len(rows):
        return LOST
    users, bad = hs.users_from_owners(owners, hs.HubSpotMapping())
    if len(users) + len(bad) != len(owners):
        return LOST
    first = stored_all(store, installation_id, entity, mapped.records, mapped.quarantined)
    return first if first != OK else stored_all(store, installation_id, Entity.USER, list(users), bad)


# ---- Salesforce ----------------------------------------------------------------------------------
STAGES = {"Prospecting": "01J000000000001", "Closed Won": "01J000000000002"}


def _sf_row(sobject: str) -> st.SearchStrategy[Any]:
    fields = [f for f in BASE_FIELDS[sobject] if "." not in f]
    values = {"Id": ids, "StageName": plausible(st.sampled_from(list(STAGES))), "IsClosed": plausible(st.booleans()),
              "IsWon": plausible(st.booleans()), "IsDeleted": plausible(st.booleans())}
    return plausible(st.fixed_dictionaries({"Id": ids}, optional={
        f: values.get(f, plausible(st.one_of(nasty_text, dates, numbers))) for f in fields if f != "Id"}))


salesforce_cases = st.one_of(*[st.tuples(st.just(o), st.lists(_sf_row(o), max_size=6))
                               for o in [*sf.MAPPERS, "OpportunityHistory"]])


def salesforce_case(store: Store, installation_id: str, case: tuple[str, list[Any]]) -> str:
    sobject, rows = case
    ctx = sf.OrgContext(stage_ids=STAGES)
    if sobject == "OpportunityHistory":
        try:
            records: list[Record] = list(sf.stage_changes_from_history(rows, ctx))
            bad: list[Quarantined] = []
        except sf.MalformedRecord as exc:
            records, bad = [], [sf.quarantined(r, exc) for r in rows]
        entity = Entity.STAGE_CHANGE
    else:
        records, bad = sf.map_rows(sobject, rows, sf.SalesforceMapping(), ctx)
        if len(records) + len(bad) != len(rows):
            return LOST
        entity = {"User": Entity.USER, "Account": Entity.ACCOUNT, "Contact": Entity.CONTACT, "Opportunity": Entity.DEAL,
                  "OpportunityContactRole": Entity.DEAL_CONTACT_ROLE, "Task": Entity.ACTIVITY,
                  "Event": Entity.ACTIVITY}[sobject]
    return stored_all(store, installation_id, entity, records, bad)


# ---- the sandbox CRM -----------------------------------------------------------------------------
_sandbox_fields = ["remote_id", "name", "stage_id", "amount", "currency", "close_date", "created_at", "occurred_at",
                   "type", "deal_ids", "contact_ids", "account_id", "role", "status", "email", "employees", "custom",
                   "entered_at", "deal_id", "contact_id", "body"]
sandbox_cases = st.tuples(st.sampled_from([e for e in Entity]),
                          st.lists(with_keys(_sandbox_fields, plausible(st.one_of(ids, dates))), max_size=6))
_tenants = itertools.count()


def _one_per_id(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sandbox CRM holds one row per id, in an id column of text a database can keep (as any CRM does)."""
    kept: dict[Any, dict[str, Any]] = {}
    for n, row in enumerate(rows):
        rid = row.get("remote_id")
        if isinstance(rid, str):
            row = {**row, "remote_id": rid.encode("utf-8", "surrogatepass").decode("utf-8", "replace")}
        key = str(row["remote_id"]) if row.get("remote_id") is not None else f"none-{n}"
        kept[key] = row
    return list(kept.values())


def sandbox_case(store: Store, installation_id: str, engine: Engine, case: tuple[Entity, list[dict[str, Any]]]) -> str:
    """Raw rows put into the embedded CRM as a loose CRM would keep them, then read back through its adapter."""
    entity, rows = case
    crm = SandboxCrm(engine, tenant_id=f"fuzz-{next(_tenants)}")  # a tenant of its own: it reads only these rows
    rows = _one_per_id(rows)
    for row in rows:
        crm.put_raw(entity, row)
    records: list[Record] = []
    bad: list[Quarantined] = []
    for batch in crm.read_changes(entity, since=None):
        records.extend(batch.records)
        bad.extend(batch.quarantined)
    if len(records) + len(bad) != len(rows):
        return LOST
    return stored_all(store, installation_id, entity, records, bad)

