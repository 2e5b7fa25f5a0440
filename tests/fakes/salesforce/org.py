"""The state of one fake Salesforce org: schema, records, recycle bin and delete log, tokens, API usage.

Values are kept in wire format (datetimes as '2026-08-15T09:12:44.000+0000', dates as
'2026-09-30'), so the server hands out exactly what the REST API would. Thread-safe: the
HTTPS server runs in a thread and tests poke at the org directly.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fakes.salesforce.soql import Query, parse, parse_datetime, sort_key

SYS = ("Id", "IsDeleted", "CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById", "SystemModstamp")
STANDARD_FIELDS: dict[str, tuple[str, ...]] = {
    "Opportunity": ("Name", "AccountId", "StageName", "IsClosed", "IsWon", "Amount", "CloseDate", "OwnerId",
                    "LeadSource", "Type", "NextStep", "Probability", "Description", "ForecastCategoryName"),
    "Account": ("Name", "Industry", "NumberOfEmployees", "AnnualRevenue", "BillingCountry", "OwnerId", "Type", "ParentId"),
    "Contact": ("AccountId", "FirstName", "LastName", "Email", "Title", "OwnerId"),
    "OpportunityContactRole": ("OpportunityId", "ContactId", "Role", "IsPrimary"),
    "OpportunityHistory": ("OpportunityId", "StageName", "Amount", "CloseDate", "Probability"),
    "User": ("Name", "Email", "Title", "IsActive", "ManagerId", "UserRoleId", "ProfileId", "Department", "Username"),
    "UserRole": ("Name", "DeveloperName", "ParentRoleId"),
    "Profile": ("Name",),
    "Task": ("WhatId", "WhoId", "Subject", "Description", "ActivityDate", "Status", "IsClosed", "Priority", "OwnerId",
             "TaskSubtype", "Type", "CallDurationInSeconds", "CallType", "CallDisposition", "CompletedDateTime", "AccountId"),
    "Event": ("WhatId", "WhoId", "Subject", "Description", "StartDateTime", "EndDateTime", "DurationInMinutes",
              "EventSubtype", "OwnerId", "AccountId", "Type"),
    "Lead": ("IsConverted", "ConvertedOpportunityId", "ConvertedAccountId", "ConvertedContactId", "ConvertedDate",
             "OwnerId", "LeadSource", "Status", "LastName", "Company"),
    "OpportunityStage": ("ApiName", "MasterLabel", "IsActive", "SortOrder", "IsClosed", "IsWon", "DefaultProbability",
                         "ForecastCategoryName"),
    "TaskStatus": ("ApiName", "MasterLabel", "IsClosed", "IsDefault", "SortOrder"),
    "PermissionSet": ("Name", "Label"),
    "FieldPermissions": ("ParentId", "SobjectType", "Field", "PermissionsRead", "PermissionsEdit"),
    "PermissionSetAssignment": ("AssigneeId", "PermissionSetId"),
}
PREFIX = {"Opportunity": "006", "Account": "001", "Contact": "003", "OpportunityContactRole": "00K",
          "OpportunityHistory": "008", "User": "005", "UserRole": "00E", "Profile": "00e", "Task": "00T",
          "Event": "00U", "Lead": "00Q", "OpportunityStage": "01J", "TaskStatus": "01J", "PermissionSet": "0PS",
          "FieldPermissions": "01k", "PermissionSetAssignment": "0Pa", "CustomField": "00N"}
POLYMORPHIC = ("What", "Who")
NO_BULK = ("TaskStatus", "OpportunityStage")  # as in the real Bulk API: "not supported by the Bulk API"


def wire_datetime(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


class SfError(Exception):
    """An error the server renders as Salesforce's `[{message, errorCode, fields}]` body."""

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields

    def body(self) -> list[dict[str, Any]]:
        item: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            item["fields"] = self.fields
        return [item]


@dataclass
class Injected:
    path_contains: str
    status: int
    body: Any
    times: int = 1
    method: str | None = None
    after: bool = False  # True: do the work, then answer this instead (a response lost after the write)


@dataclass
class FakeOrg:
    org_id: str = "00D000000000001AAA"
    version: str = "66.0"
    batch_size: int = 2000
    api_max: int = 100_000
    api_used: int = 0
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    rotate_refresh_tokens: bool = True
    admin: bool = True  # the token's user may create fields (Customize Application)

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.no_bulk: set[str] = set(NO_BULK)
        self.fields: dict[str, set[str]] = {o: set(SYS) | set(f) for o, f in STANDARD_FIELDS.items()}
        self.records: dict[str, dict[str, dict[str, Any]]] = {o: {} for o in STANDARD_FIELDS}
        self.purged: dict[str, dict[str, Any]] = {}
        self.delete_log: list[tuple[str, str, datetime]] = []  # (sobject, id, deletedDate)
        self.delete_log_floor: datetime | None = None
        self.tokens: dict[str, str] = {}  # access token -> user id
        self.refresh_tokens: dict[str, str] = {}
        self.custom_fields: list[dict[str, Any]] = []
        self.injected: list[Injected] = []
        self.record_errors: dict[str, list[tuple[str, str]]] = {}  # id -> queued (errorCode, message)
        self.cursors: dict[str, tuple[list[dict[str, Any]], int]] = {}
        self.field_types: dict[str, dict[str, str]] = {o: {} for o in STANDARD_FIELDS}  # custom field -> describe type
        self.field_labels: dict[str, dict[str, str]] = {o: {} for o in STANDARD_FIELDS}  # custom field -> its label
        self.picklists: dict[str, dict[str, list[tuple[str, str]]]] = {o: {} for o in STANDARD_FIELDS}  # (value, label)
        self.external_ids: dict[str, set[str]] = {}  # sobject -> External ID fields (upsert keys)
        self.busy_long_running = 0  # requests to refuse: the org's concurrent long-running requests are taken
        self.locked_requests = 0
        self.limits_exhausted = 0  # /limits answers to give with DailyApiRequests.Remaining 0 (an injected daily limit)  # write requests to refuse whole with UNABLE_TO_LOCK_ROW
        self.bulk_jobs: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self._ids = itertools.count(1)
        self.integration_user_id = self.insert("User", {"Name": "Salesloop Integration", "Username": "int@example.com",
                                                        "IsActive": True})
        for order, (name, closed) in enumerate([("Not Started", False), ("In Progress", False), ("Completed", True),
                                                ("Waiting on someone else", False), ("Deferred", False)], 1):
            self.insert("TaskStatus", {"ApiName": name, "MasterLabel": name, "IsClosed": closed,
                                       "IsDefault": order == 1, "SortOrder": order})

    # --- ids, time -------------------------------------------------------------------------
    def new_id(self, sobject: str) -> str:
        return f"{PREFIX.get(sobject, 'a00')}{next(self._ids):012d}AAA"

    def now(self) -> str:
        return wire_datetime(self.clock())

    # --- writes (as a user in the CRM, or through the API) -----------------------------------
    def insert(self, sobject: str, values: dict[str, Any], *, by: str | None = None, at: datetime | None = None) -> str:
        with self.lock:
            rid = values.get("Id") or self.new_id(sobject)
            stamp = wire_datetime(at) if at else self.now()
            record = {name: None for name in self.fields[sobject]}
            record.update({"IsDeleted": False, "CreatedDate": stamp, "LastModifiedDate": stamp, "SystemModstamp": stamp,
                           "CreatedById": by, "LastModifiedById": by})
            record.update(values)
            record["Id"] = rid
            self._check_fields(sobject, values)
            self._check_unique(sobject, values)
            self._derive(sobject, record)
            self.records[sobject][rid] = record
            return rid

    def update(self, sobject: str, rid: str, values: dict[str, Any], *, by: str | None = None,
               at: datetime | None = None) -> None:
        with self.lock:
            record = self.records[sobject].get(rid)
            if record is None or record["IsDeleted"]:
                raise SfError(404, "ENTITY_IS_DELETED" if record else "NOT_FOUND",
                              "entity is deleted" if record else "The requested resource does not exist")
            self._check_fields(sobject, values)
            record.update({k: v for k, v in values.items() if k != "Id"})
            stamp = wire_datetime(at) if at else self.now()
            record.update({"LastModifiedDate": stamp, "SystemModstamp": stamp, "LastModifiedById": by})
            was_closed = bool(record.get("IsClosed"))
            self._derive(sobject, record)
            if sobject == "Task" and record.get("IsClosed") and not was_closed and not record.get("CompletedDateTime"):
                record["CompletedDateTime"] = stamp  # Salesforce stamps the moment a task is closed

    def delete(self, sobject: str, rid: str, *, hard: bool = False, at: datetime | None = None) -> None:
        """Delete to the recycle bin (IsDeleted, visible to queryAll) or hard (gone; only the delete log knows)."""
        with self.lock:
            when = at or self.clock()
            record = self.records[sobject].get(rid)
            if record is None:
                raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
            self.delete_log.append((sobject, rid, when))
            if hard:
                self.purged[rid] = self.records[sobject].pop(rid)
            else:
                record.update({"IsDeleted": True, "SystemModstamp": wire_datetime(when)})

    def forget_delete_log_before(self, when: datetime) -> None:
        """The delete log is purged sooner than 15 days at times; getDeleted then cannot reach back."""
        with self.lock:
            self.delete_log = [d for d in self.delete_log if d[2] >= when]
            self.delete_log_floor = when

    def _check_fields(self, sobject: str, values: dict[str, Any]) -> None:
        unknown = [k for k in values if k not in self.fields[sobject] and k != "attributes"]
        if unknown:
            raise SfError(400, "INVALID_FIELD", f"No such column '{unknown[0]}' on sobject of type {sobject}", unknown)

    def _check_unique(self, sobject: str, values: dict[str, Any]) -> None:
        """A unique External ID field refuses a second record with the same value (DUPLICATE_VALUE, errorcodes.html)."""
        for name in self.external_ids.get(sobject, set()) & set(values):
            value = values[name]
            holder = next((r["Id"] for r in self.records[sobject].values() if value and r.get(name) == value), None)
            if holder is not None:
                raise SfError(400, "DUPLICATE_VALUE", f"duplicate value found: {name} duplicates value on record "
                              f"with id: {holder}", [name])

    def _derive(self, sobject: str, record: dict[str, Any]) -> None:
        """Fields Salesforce computes: IsClosed/IsWon from the stage, Task IsClosed from its status, OpportunityHistory."""
        if sobject == "Opportunity" and record.get("StageName"):
            stage = self.stage_named(record["StageName"])
            if stage is not None:
                record["IsClosed"], record["IsWon"] = stage["IsClosed"], stage["IsWon"]
        if sobject == "Task" and record.get("Status"):
            status = next((s for s in self.records["TaskStatus"].values() if s["ApiName"] == record["Status"]), None)
            record["IsClosed"] = bool(status and status["IsClosed"])

    def snapshot(self) -> dict[str, dict[str, dict[str, Any]]]:
        """A copy of every record, for an allOrNone request to roll back to."""
        with self.lock:
            return {o: {rid: dict(r) for rid, r in table.items()} for o, table in self.records.items()}

    def restore(self, saved: dict[str, dict[str, dict[str, Any]]]) -> None:
        with self.lock:
            self.records = saved

    def add_custom_field(self, sobject: str, name: str, describe_type: str, label: str = "",
                         values: Sequence[tuple[str, str]] = ()) -> None:
        """A custom field an admin created (Setup or the Tooling API), with its label and picklist values."""
        with self.lock:
            self.fields[sobject].add(name)
            self.field_types[sobject][name] = describe_type
            self.field_labels[sobject][name] = label or name
            if values:
                self.picklists[sobject][name] = list(values)
            for record in self.records[sobject].values():
                record.setdefault(name, None)

    def add_activity_field(self, name: str, describe_type: str) -> None:
        """A custom field created on Activity: Task and Event both carry it (object reference: "Activity
        custom fields are shared by Task and Event")."""
        for sobject in ("Task", "Event"):
            self.fields[sobject].add(name)
            self.field_types[sobject][name] = describe_type
            for record in self.records[sobject].values():
                record.setdefault(name, None)

    def stage_named(self, name: str) -> dict[str, Any] | None:
        return next((s for s in self.records["OpportunityStage"].values() if s["ApiName"] == name), None)

    # --- reads -------------------------------------------------------------------------------
    def run_query(self, soql: str, *, include_deleted: bool) -> tuple[Query, list[dict[str, Any]]]:
        q = parse(soql)
        with self.lock:
            if q.sobject not in self.records:
                raise SfError(400, "INVALID_TYPE", f"sObject type '{q.sobject}' is not supported.")
            for name in [*q.fields, *q.where_fields, *(o[0] for o in q.order)]:
                self._check_path(q.sobject, name)
            rows = [r for r in self.records[q.sobject].values() if include_deleted or not r["IsDeleted"]]
            if q.where is not None:
                rows = [r for r in rows if q.where(lambda name, r=r: self.resolve(r, name))]
            for name, desc in reversed(q.order):
                rows.sort(key=lambda r, n=name: sort_key(self.resolve(r, n)), reverse=desc)
            if q.limit is not None:
                rows = rows[: q.limit]
            return q, [self.shape(q.sobject, r, q.fields) for r in rows]

    def _check_path(self, sobject: str, name: str) -> None:
        head = name.split(".")[0]
        known = self.fields[sobject]
        if head not in known and f"{head}Id" not in known and head.replace("__r", "__c") not in known:
            raise SfError(400, "INVALID_FIELD", f"No such column '{head}' on entity '{sobject}'. If you are attempting "
                          "to use a custom field, be sure to append the '__c' after the custom field name.")

    def find(self, rid: str | None) -> tuple[str, dict[str, Any]] | None:
        if rid is None:
            return None
        for sobject, table in self.records.items():
            if rid in table:
                return sobject, table[rid]
        return None

    def resolve(self, record: dict[str, Any], name: str) -> Any:
        if "." not in name:
            return record.get(name)
        rel, rest = name.split(".", 1)
        key = rel.replace("__r", "__c") if rel.endswith("__r") else f"{rel}Id"
        found = self.find(record.get(key))
        if found is not None and rel in POLYMORPHIC and rest == "Type":
            return found[0]  # What.Type / Who.Type name the related object's type
        return None if found is None else self.resolve(found[1], rest)

    def attributes(self, sobject: str, rid: str) -> dict[str, str]:
        return {"type": sobject, "url": f"/services/data/v{self.version}/sobjects/{sobject}/{rid}"}

    def shape(self, sobject: str, record: dict[str, Any], fields: Iterable[str]) -> dict[str, Any]:
        out: dict[str, Any] = {"attributes": self.attributes(sobject, record["Id"])}
        for name in fields:
            if "." not in name:
                out[name] = record.get(name)
                continue
            rel, rest = name.split(".", 1)
            key = rel.replace("__r", "__c") if rel.endswith("__r") else f"{rel}Id"
            found = self.find(record.get(key))
            if found is None:
                out[rel] = None
            elif rel in POLYMORPHIC and rest == "Type":
                out[rel] = {"attributes": {"type": "Name", "url": f"/services/data/v{self.version}/sobjects/"
                                           f"{found[0]}/{found[1]['Id']}"}, "Type": found[0]}
            else:
                nested = out.get(rel) or {}
                nested.update(self.shape(found[0], found[1], [rest]))
                out[rel] = nested
        return out

    def take_record_error(self, rid: str | None) -> tuple[str, str] | None:
        with self.lock:
            queue = self.record_errors.get(rid or "")
            return queue.pop(0) if queue else None

    def changed_between(self, sobject: str, start: datetime, end: datetime) -> list[str]:
        with self.lock:
            return [r["Id"] for r in self.records[sobject].values()
                    if not r["IsDeleted"] and start <= parse_datetime(r["SystemModstamp"]) < end]

    def deleted_between(self, sobject: str, start: datetime, end: datetime) -> list[tuple[str, datetime]]:
        with self.lock:
            return [(rid, when) for (obj, rid, when) in self.delete_log if obj == sobject and start <= when < end]

    def earliest_delete_available(self) -> datetime:
        floor = self.delete_log_floor or (self.clock() - timedelta(days=15))
        return floor.replace(second=0, microsecond=0)
