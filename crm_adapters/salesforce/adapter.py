"""SalesforceAdapter: CrmPort over simple-salesforce (REST, Bulk 2.0, Tooling), one org per instance."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import requests

from crm_adapters.auth import TokenSource
from crm_adapters.errors import MAPPING_FAILURES
from crm_adapters.model import (
    SYNCED_TYPES,
    Activity,
    ActivityType,
    Crm,
    Deal,
    DealContactRole,
    Entity,
    Pipeline,
    Record,
    StageChange,
    User,
)
from crm_adapters.port import Batch, Cursor, FieldDescription, Quarantined
from crm_adapters.salesforce import _mapping as m
from crm_adapters.salesforce._client import API_VERSION, SalesforceClient
from crm_adapters.salesforce._sync import ObjectReader, ObjectSpec, chunks, dump_cursor, in_list, load_cursor
from crm_adapters.salesforce._writes import AppWriter
from crm_adapters.salesforce.budget import ApiBudget
from crm_adapters.writes import (
    CreatedRefs,
    FieldsReport,
    FieldUpdate,
    NoteDraft,
    TaskClosure,
    TaskDraft,
    TaskState,
    WriteResult,
)

logger = logging.getLogger(__name__)
SYS = ("IsDeleted", "SystemModstamp")
BASE_FIELDS: dict[str, tuple[str, ...]] = {
    "User": ("Id", "Name", "Email", "Title", "IsActive", "ManagerId", "Department", "UserRole.Name", "Profile.Name",
             "SystemModstamp"),
    "Account": ("Id", "Name", "Industry", "NumberOfEmployees", "AnnualRevenue", "BillingCountry", "OwnerId",
                "LastModifiedById", *SYS),
    "Contact": ("Id", "AccountId", "FirstName", "LastName", "Email", "Title", *SYS),
    "Opportunity": ("Id", "Name", "AccountId", "StageName", "IsClosed", "IsWon", "Amount", "CloseDate", "CreatedDate",
                    "OwnerId", "LeadSource", "Type", "NextStep", "LastModifiedById", *SYS),
    "OpportunityContactRole": ("Id", "OpportunityId", "ContactId", "Role", "IsPrimary", *SYS),
    "OpportunityHistory": ("Id", "OpportunityId", "StageName", "CreatedDate", *SYS),
    "Task": ("Id", "WhatId", "What.Type", "WhoId", "Who.Type", "AccountId", "Subject", "Description", "ActivityDate",
             "Status", "TaskSubtype", "Type", "CallDurationInSeconds", "CallType", "CallDisposition",
             "CompletedDateTime", "CreatedDate", "OwnerId", *SYS),
    "Event": ("Id", "WhatId", "What.Type", "WhoId", "Who.Type", "AccountId", "Subject", "Description", "StartDateTime",
              "EndDateTime", "DurationInMinutes", "CreatedDate", "OwnerId", *SYS),
}
OBJECTS: dict[Entity, tuple[str, ...]] = {
    Entity.USER: ("User",), Entity.ACCOUNT: ("Account",), Entity.CONTACT: ("Contact",),
    Entity.DEAL: ("Opportunity",), Entity.DEAL_CONTACT_ROLE: ("OpportunityContactRole",),
    Entity.STAGE_CHANGE: ("OpportunityHistory",), Entity.ACTIVITY: ("Task", "Event"),
}
MAPPERS = m.MAPPERS
KnownIds = Callable[[Entity], Iterable[str]]
SalesforceMapping = m.SalesforceMapping  # the per-org mapping, public here for the jobs that configure adapters


class SalesforceAdapter:
    """One Salesforce org behind the CrmPort."""

    crm = Crm.SALESFORCE

    def __init__(self, tokens: TokenSource, org_id: str, *, session: requests.Session | None = None,
                 budget: ApiBudget | None = None, mapping: m.SalesforceMapping | None = None,
                 known_ids: KnownIds | None = None, integration_user_id: str | None = None,
                 version: str = API_VERSION, sleep: Callable[[float], None] = time.sleep) -> None:
        self.tenant_id = org_id
        self.mapping = mapping or m.SalesforceMapping()
        self.budget = budget or ApiBudget(org_id)
        self.client = SalesforceClient(tokens, budget=self.budget, session=session, version=version, sleep=sleep)
        self._known_ids = known_ids  # the store's ids per entity, for the reconcile when the delete log is gone
        self._integration_user = integration_user_id
        self._stages: list[dict[str, Any]] | None = None
        self._app_ready: bool | None = None
        self._leads: dict[str, str] | None = None
        self.writer = AppWriter(self)

    # --- org facts, cached per instance (one job) ----------------------------------------------
    def integration_user_id(self) -> str:
        if self._integration_user is None:
            info = self.client.call("userinfo", lambda sf: sf.oauth2("userinfo"))
            self._integration_user = str(info["user_id"])
        return self._integration_user

    def app_fields_ready(self) -> bool:
        """Whether our fields exist (one describe); reads add our echo-guard fields only then."""
        if self._app_ready is None:
            names = self.describe_fields("Opportunity")
            self._app_ready = m.SOURCE_MODSTAMP in names
        return self._app_ready

    def describe_deal_fields(self) -> list[FieldDescription]:
        """The sObject describe of Opportunity, then Lead (read for converted leads): name, label, type, values."""
        out = []
        for sobject, source in (("Opportunity", "deal"), ("Lead", "lead")):
            body = self.client.call("describe", lambda sf, o=sobject: getattr(sf, o).describe())
            out += [m.field_from_describe(f, source) for f in body["fields"]]
        return out

    def describe_fields(self, sobject: str) -> set[str]:
        body = self.client.call("describe", lambda sf: getattr(sf, sobject).describe())
        return {str(f["name"]) for f in body["fields"]}

    def stage_rows(self) -> list[dict[str, Any]]:
        if self._stages is None:
            soql = ("SELECT Id, ApiName, MasterLabel, IsActive, SortOrder, IsClosed, IsWon, DefaultProbability "
                    "FROM OpportunityStage ORDER BY SortOrder")
            self._stages = self.client.query_all(soql)
        return self._stages

    def context(self, sdrs: Mapping[str, str] | None = None,
                leads: Mapping[str, Mapping[str, Any]] | None = None) -> m.OrgContext:
        stage_ids = {str(r["ApiName"]): str(r["Id"]) for r in self.stage_rows()}
        user = self.integration_user_id() if self.app_fields_ready() else None
        return m.OrgContext(stage_ids=stage_ids, sdr_by_opportunity=sdrs or {}, integration_user_id=user,
                            lead_by_opportunity=leads or {})

    def spec(self, sobject: str) -> ObjectSpec:
        fields = [*BASE_FIELDS[sobject], *self.mapping.extras(sobject)]
        if sobject in ("Opportunity", "Account") and self.app_fields_ready():
            fields.append(m.SOURCE_MODSTAMP)
        if sobject == "Task" and self.app_fields_ready():
            fields.append(m.TASK_KEY)
        return ObjectSpec(sobject, tuple(dict.fromkeys(fields)), deletable=sobject != "User",
                          order_by="OpportunityId, CreatedDate, Id" if sobject == "OpportunityHistory" else
                          "SystemModstamp, Id")

    # --- CrmPort: reads ------------------------------------------------------------------------
    def read_pipelines(self) -> list[Pipeline]:
        return [m.pipeline_from_stages(self.stage_rows(), self.mapping)]

    def read_users(self) -> list[User]:
        users: list[User] = []
        self.quarantined_users: list[Quarantined] = []  # kept by the sync's quarantine
        for batch in self.read_changes(Entity.USER, since=None):
            users.extend(r for r in batch.records if isinstance(r, User))
            self.quarantined_users.extend(batch.quarantined)
        return users

    def read_changes(self, entity: Entity, *, since: Cursor | None) -> Iterator[Batch]:
        states = load_cursor(since)
        needs_reconcile = False
        for sobject in OBJECTS[entity]:
            reader = ObjectReader(self.client, self.spec(sobject))
            fresh_start = sobject not in states
            carry: list[dict[str, Any]] = []
            for rows, state in reader.changes(states.get(sobject)):
                if state:
                    states[sobject] = state
                if entity is Entity.STAGE_CHANGE:
                    records, bad, carry = self._history(rows, carry, backfill=fresh_start, final=bool(state))
                else:
                    records, bad = self._map(sobject, rows)
                yield Batch(entity, tuple(records), dump_cursor(states) if state else None, tuple(bad))
            if not fresh_start:
                deleted, states[sobject] = reader.hard_deletes(states[sobject])
                if deleted is None:
                    needs_reconcile = True
                elif deleted:
                    yield Batch(entity, tuple(tombstone(entity, i, when) for i, when in deleted), dump_cursor(states))
        if needs_reconcile:
            yield self._reconcile(entity, states)

    def _map(self, sobject: str, rows: list[dict[str, Any]]) -> tuple[list[Record], list[Quarantined]]:
        if sobject == "Task":
            rows = [r for r in rows if not r.get(m.TASK_KEY)]  # our own tasks and notes are not user activity
        ctx = None
        if sobject in ("Opportunity", "Account"):
            ctx = (self.context(self._sdrs(rows), self._lead_fields(rows)) if sobject == "Opportunity"
                   else self.context())
        return m.map_rows(sobject, rows, self.mapping, ctx)

    def _sdrs(self, rows: list[dict[str, Any]]) -> dict[str, str]:
        """SDR by opportunity from converted Leads (Lead.ConvertedOpportunityId, the Lead's owner)."""
        if self.mapping.sdr_field:
            return {}
        ids = [str(r["Id"]) for r in rows if r.get("Id") and not r.get("IsDeleted")]
        if not ids:
            return {}
        base = "SELECT ConvertedOpportunityId, OwnerId FROM Lead WHERE IsConverted = true AND ConvertedOpportunityId"
        if self._leads is None and len(ids) > 400:
            self._leads = {str(r["ConvertedOpportunityId"]): str(r["OwnerId"])
                           for r in self.client.query_all(f"{base} != null")}
        if self._leads is not None:
            return {i: self._leads[i] for i in ids if i in self._leads}
        found: dict[str, str] = {}
        for chunk in chunks(ids):
            for r in self.client.query_all(f"{base} IN {in_list(chunk)}"):
                found[str(r["ConvertedOpportunityId"])] = str(r["OwnerId"])
        return found

    def _lead_fields(self, rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """The converted Lead's qualification fields by opportunity (only when the tenant mapped Lead fields)."""
        names = self.mapping.qualification.names("lead")
        ids = [str(r["Id"]) for r in rows if r.get("Id") and not r.get("IsDeleted")]
        if not names or not ids:
            return {}
        found: dict[str, dict[str, Any]] = {}
        for chunk in chunks(ids):
            soql = (f"SELECT ConvertedOpportunityId, {', '.join(names)} FROM Lead WHERE IsConverted = true "
                    f"AND ConvertedOpportunityId IN {in_list(chunk)}")
            for r in self.client.query_all(soql):
                found[str(r["ConvertedOpportunityId"])] = {n: r.get(n) for n in names}
        return found

    def _history(self, rows: list[dict[str, Any]], carry: list[dict[str, Any]], *, backfill: bool,
                 final: bool) -> tuple[list[Record], list[Quarantined], list[dict[str, Any]]]:
        """History rows -> stage stays. Backfill rows arrive ordered by opportunity; incremental rows name the
        opportunities whose whole history is read again (a new row closes the previous stay)."""
        if backfill:
            rows = carry + rows
            carry = []
            if rows and not final:
                last = rows[-1].get("OpportunityId")
                carry = [r for r in rows if r.get("OpportunityId") == last]
                rows = [r for r in rows if r.get("OpportunityId") != last]
            by_opp = _group(rows)
            deleted_rows: list[dict[str, Any]] = []
        else:
            live = [r for r in rows if not r.get("IsDeleted")]
            deleted_rows = [r for r in rows if r.get("IsDeleted")]
            by_opp = self._full_history({str(r.get("OpportunityId")) for r in live})
        ctx = self.context()
        records: list[Record] = []
        bad: list[Quarantined] = []
        for opp_rows in by_opp.values():
            try:
                records.extend(m.stage_changes_from_history(opp_rows, ctx))
            except MAPPING_FAILURES as exc:
                bad.extend(m.quarantined(r, exc) for r in opp_rows)
        emitted = {r.remote_id for r in records}
        for r in deleted_rows:
            if r.get("Id") and str(r["Id"]) not in emitted:
                try:
                    records.append(tombstone(Entity.STAGE_CHANGE, str(r["Id"]), m.parse_dt(r.get("SystemModstamp"))))
                except MAPPING_FAILURES as exc:
                    bad.append(m.quarantined(r, exc))
        return records, bad, carry

    def _full_history(self, opp_ids: set[str]) -> dict[str, list[dict[str, Any]]]:
        rows: list[dict[str, Any]] = []
        fields = ", ".join(BASE_FIELDS["OpportunityHistory"])
        for chunk in chunks(sorted(opp_ids)):
            rows.extend(self.client.query_all(f"SELECT {fields} FROM OpportunityHistory WHERE OpportunityId IN "
                                              f"{in_list(chunk)} ORDER BY OpportunityId, CreatedDate, Id"))
        return _group(rows)

    def _reconcile(self, entity: Entity, states: dict[str, dict[str, Any]]) -> Batch:
        """The delete log no longer reaches back: diff the ids we hold against the live ids."""
        if self._known_ids is None:
            logger.warning("reconcile of %s needed but no known_ids source was given; hard deletes may be missed",
                           entity)
            return Batch(entity, (), dump_cursor(states))
        live: set[str] = set()
        for sobject in OBJECTS[entity]:
            live |= ObjectReader(self.client, self.spec(sobject)).live_ids()
        gone = sorted(set(self._known_ids(entity)) - live)
        when = self.client.now()
        logger.info("reconcile of %s: %d ids gone", entity, len(gone))
        return Batch(entity, tuple(tombstone(entity, i, when) for i in gone), dump_cursor(states))

    # --- CrmPort: writes (see _writes.py) ------------------------------------------------------
    def ensure_app_fields(self) -> FieldsReport:
        report = self.writer.ensure_app_fields()
        self._app_ready = None
        return report

    def write_fields(self, updates: Sequence[FieldUpdate]) -> WriteResult:
        return self.writer.write_fields(updates)

    def create_tasks(self, tasks: Sequence[TaskDraft]) -> CreatedRefs:
        return self.writer.create_tasks(tasks)

    def create_notes(self, notes: Sequence[NoteDraft]) -> CreatedRefs:
        return self.writer.create_notes(notes)

    def read_tasks(self, remote_ids: Sequence[str]) -> list[TaskState]:
        return self.writer.read_tasks(remote_ids)

    def close_tasks(self, closures: Sequence[TaskClosure]) -> WriteResult:
        return self.writer.close_tasks(closures)


def _group(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(str(row.get("OpportunityId")), []).append(row)
    return out




def tombstone(entity: Entity, remote_id: str, when: datetime | None) -> Record:
    """A deleted record known only by id (hard delete, or gone from the org at reconcile)."""
    base: dict[str, Any] = {"crm": Crm.SALESFORCE, "remote_id": remote_id, "deleted": True, "remote_updated_at": when}
    if entity is Entity.DEAL:
        return Deal(**base, stage_id="deleted")
    if entity is Entity.STAGE_CHANGE:
        return StageChange(**base, deal_id="", stage_id="deleted", entered_at=when or datetime.now().astimezone())
    if entity is Entity.ACTIVITY:
        return Activity(**base, type=ActivityType.TASK, occurred_at=when or datetime.now().astimezone())
    if entity is Entity.DEAL_CONTACT_ROLE:
        return DealContactRole(**base, deal_id="", contact_id="")

    return SYNCED_TYPES[entity](**base)
