"""Write-back: our custom fields (Tooling API + a permission set), field values through sObject Collections
(200 per call, allOrNone false, only values that changed), idempotent tasks and notes, task read-back.

Rejection convention (documented for admins): a manager rejects a proposal task by setting its Status to
the org's rejected status (default "Deferred") or by adding a line "REJECTED: <reason>" to its Comments
(Description); the reason becomes TaskState.comment. Completing the task approves.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any, Protocol

from crm_adapters.errors import CrmPermissionError, CrmUnavailable
from crm_adapters.model import Entity, TaskStatus
from crm_adapters.salesforce import _mapping as m
from crm_adapters.salesforce._client import SalesforceClient
from crm_adapters.salesforce._collections import save
from crm_adapters.salesforce._sync import chunks, in_list
from crm_adapters.salesforce.budget import ApiBudget
from crm_adapters.writes import (
    APP_FIELDS,
    AppField,
    CreatedRef,
    CreatedRefs,
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


class _Host(Protocol):
    """What the writer uses of its SalesforceAdapter (a protocol, so this module does not import the adapter)."""

    client: SalesforceClient
    budget: ApiBudget
    mapping: m.SalesforceMapping

    def describe_fields(self, sobject: str) -> set[str]: ...

    def integration_user_id(self) -> str: ...

logger = logging.getLogger(__name__)
SOBJECT = {Entity.DEAL: "Opportunity", Entity.ACCOUNT: "Account"}
UPSERT_ATTEMPTS = 3
FULL_SCAN_FROM = 1000  # above this many ids, page through the object (2,000 a call) instead of 200-id IN lists
PERMISSION_SET = "Salesloop"


def _metadata(kind: str, label: str, options: tuple[str, ...]) -> dict[str, Any]:
    if kind == "number":
        return {"label": label, "type": "Number", "precision": 18, "scale": 4}
    if kind == "enumeration":
        return {"label": label, "type": "Picklist", "valueSet": {"restricted": True, "valueSetDefinition": {
            "sorted": False, "value": [{"fullName": o, "label": o, "default": False} for o in options]}}}
    if kind == "datetime":
        return {"label": label, "type": "DateTime"}
    return {"label": label, "type": "LongTextArea", "length": 32768, "visibleLines": 4}


def field_specs() -> list[tuple[str, dict[str, Any]]]:
    """(Object.Field__c, Tooling metadata) for every field we own, our internal ones included."""
    out = [(f"{SOBJECT[s.entity]}.{m.APP_FIELD_NAMES[s.field]}", _metadata(s.kind, s.label, s.options))
           for s in APP_FIELDS]
    internal = {"label": "Salesloop source modstamp", "type": "Text", "length": 40,
                "description": "The record's SystemModstamp before salesloop's last write (keeps our writes from "
                               "looking like user edits)"}
    out += [(f"{o}.{m.SOURCE_MODSTAMP}", internal) for o in ("Opportunity", "Account")]
    # Task and Event custom fields are created on Activity (a Tooling create on Task is refused); the field then
    # shows on Task's describe. External ID + unique: upsert by this key is Salesforce's own idempotent create.
    out.append((f"Activity.{m.TASK_KEY}", {"label": "Salesloop key", "type": "Text", "length": 255, "externalId": True,
                                           "unique": True, "caseSensitive": True}))
    return out


def described_as(full: str) -> tuple[str, str]:
    """(object whose describe lists the field, field name): Activity fields are listed on Task."""
    sobject, name = full.split(".")
    return ("Task" if sobject == "Activity" else sobject), name


def _same(current: Any, wanted: FieldValue) -> bool:
    if current is None or wanted is None:
        return current is None and wanted is None
    if isinstance(wanted, int | float) and not isinstance(wanted, bool):
        try:
            return abs(float(current) - float(wanted)) < 1e-9
        except (TypeError, ValueError):
            return False
    try:
        a, b = m.parse_dt(current), m.parse_dt(wanted)
        if a is not None and b is not None:
            return a == b
    except ValueError:
        pass
    return str(current) == str(wanted)


def _merged(updates: Iterable[FieldUpdate]) -> dict[str, FieldUpdate]:
    """One update per record: several loops' fields for one deal merge (a later value wins per field)."""
    out: dict[str, FieldUpdate] = {}
    for u in updates:
        prev = out.get(u.remote_id)
        out[u.remote_id] = u if prev is None else replace(prev, values={**prev.values, **u.values})
    return out


def _wire(value: FieldValue, field: AppField) -> Any:
    if field is AppField.SCORED_AT and isinstance(value, str):
        parsed = m.parse_dt(value)
        return parsed.strftime("%Y-%m-%dT%H:%M:%S.000+0000") if parsed else value
    return value


class AppWriter:
    def __init__(self, adapter: _Host) -> None:
        self.a = adapter
        self.sleep = adapter.client.sleep

    @property
    def client(self):  # type: ignore[no-untyped-def]
        return self.a.client

    # --- fields and permissions ----------------------------------------------------------------
    def ensure_app_fields(self) -> FieldsReport:
        existing_by_obj = {o: self.a.describe_fields(o) for o in ("Opportunity", "Account", "Task")}
        created, existing, missing = [], [], []
        for full, meta in field_specs():
            sobject, name = described_as(full)
            if name in existing_by_obj[sobject]:
                existing.append(full)
                continue
            try:
                self.client.call("create field", lambda sf, f=full, md=meta: sf.toolingexecute(
                    "sobjects/CustomField", method="POST", data={"FullName": f, "Metadata": md}))
                created.append(full)
            except CrmPermissionError:
                missing.append(f"Customize Application: create field {full}")
        if not missing:
            missing += self._grant([*created, *existing])
        logger.info("app fields: %d created, %d existing, %d missing", len(created), len(existing), len(missing))
        return FieldsReport(created=tuple(created), existing=tuple(existing), missing_permissions=tuple(missing))

    def _grant(self, fields: list[str]) -> list[str]:
        """Field-level security: a 'Salesloop' permission set with read/edit on our fields, assigned to us."""
        try:
            found = self.client.query_all(f"SELECT Id FROM PermissionSet WHERE Name = '{PERMISSION_SET}'")
            ps = str(found[0]["Id"]) if found else str(self.client.call("create permission set", lambda sf: sf.PermissionSet.create(
                {"Name": PERMISSION_SET, "Label": "Salesloop"}))["id"])
            have = {str(r["Field"]) for r in self.client.query_all(
                f"SELECT Field FROM FieldPermissions WHERE ParentId = '{ps}'")}
            # field-level security is granted per object: an Activity field is granted on Task (what we write)
            grants = [".".join(described_as(f)) for f in fields]
            todo = [{"attributes": {"type": "FieldPermissions"}, "ParentId": ps, "SobjectType": f.split(".")[0],
                     "Field": f, "PermissionsRead": True, "PermissionsEdit": True} for f in grants if f not in have]
            _, refused = save(self.client, todo, self.sleep, method="POST", key="Field")
            failed = [f.key for f in refused]
            user = self.a.integration_user_id()
            if not self.client.query_all(f"SELECT Id FROM PermissionSetAssignment WHERE PermissionSetId = '{ps}' "
                                         f"AND AssigneeId = '{user}'"):
                self.client.call("assign permission set", lambda sf: sf.PermissionSetAssignment.create(
                    {"AssigneeId": user, "PermissionSetId": ps}))
            return [f"Manage Profiles and Permission Sets: grant read/edit on {f}" for f in failed]
        except CrmPermissionError:
            return [f"Manage Profiles and Permission Sets: grant read/edit on {f}" for f in fields]

    # --- field values --------------------------------------------------------------------------
    def _current(self, sobject: str, ids: list[str], names: list[str]) -> dict[str, dict[str, Any]]:
        select = ", ".join(dict.fromkeys(["Id", *names, "SystemModstamp", "LastModifiedById", m.SOURCE_MODSTAMP]))
        if len(ids) >= FULL_SCAN_FROM:
            wanted = set(ids)
            rows = [r for r in self.client.query_all(f"SELECT {select} FROM {sobject}") if r["Id"] in wanted]
        else:
            rows = [r for c in chunks(ids) for r in self.client.query_all(
                f"SELECT {select} FROM {sobject} WHERE Id IN {in_list(c)}")]
        return {str(r["Id"]): r for r in rows}

    def write_fields(self, updates: Sequence[FieldUpdate]) -> WriteResult:
        calls_before = self.a.budget.calls
        written, unchanged, failed = [], [], []
        for entity, sobject in SOBJECT.items():
            batch = _merged(u for u in updates if u.entity is entity)
            if not batch:
                continue
            names = sorted({m.APP_FIELD_NAMES[f] for u in batch.values() for f in u.values})
            current = self._current(sobject, list(batch), names)
            payloads = []
            for rid, update in batch.items():
                row = current.get(rid)
                if row is None:
                    failed.append(WriteFailure(rid, "NOT_FOUND: no such record (deleted?)", retryable=False))
                    continue
                changes = {m.APP_FIELD_NAMES[f]: _wire(v, f) for f, v in update.values.items()
                           if not _same(row.get(m.APP_FIELD_NAMES[f]), v)}
                if not changes:
                    unchanged.append(rid)
                    continue
                ours = row.get("LastModifiedById") == self.a.integration_user_id() and row.get(m.SOURCE_MODSTAMP)
                changes[m.SOURCE_MODSTAMP] = row[m.SOURCE_MODSTAMP] if ours else row.get("SystemModstamp")
                payloads.append({"attributes": {"type": sobject}, "id": rid, **changes})
            ok, bad = self._save(payloads)
            written += ok
            failed += bad
        return WriteResult(written=tuple(written), unchanged=tuple(unchanged), failed=tuple(failed),
                           api_calls=self.a.budget.calls - calls_before)

    def _save(self, payloads: list[dict[str, Any]]) -> tuple[list[str], list[WriteFailure]]:
        """PATCH composite/sobjects in 200s (see _collections.save: every error of every record is read)."""
        ok, failed = save(self.client, payloads, self.sleep)
        return [str(r["id"]) for r in ok], failed

    # --- tasks and notes -----------------------------------------------------------------------
    def _existing(self, keys: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for c in chunks(keys):
            for r in self.client.query_all(f"SELECT Id, {m.TASK_KEY} FROM Task WHERE {m.TASK_KEY} IN {in_list(c)}"):
                found[str(r[m.TASK_KEY])] = str(r["Id"])
        return found

    def _create(self, drafts: dict[str, dict[str, Any]]) -> CreatedRefs:
        """Keys already made are read back by SOQL (never overwritten: a manager may have closed the task); the
        rest are upserted by Salesloop_Key__c, an External ID: a create whose answer was lost and is sent again
        updates the task it made instead of making a second one (Salesforce's own idempotent create)."""
        existing = self._existing(list(drafts))
        refs = [CreatedRef(k, existing[k], created=False) for k in drafts if k in existing]
        failed: list[WriteFailure] = []
        todo = {k: v for k, v in drafts.items() if k not in existing}
        for attempt in range(1, UPSERT_ATTEMPTS + 1):
            records = [{"attributes": {"type": "Task"}, m.TASK_KEY: k, **v} for k, v in todo.items()]
            try:
                ok, refused = save(self.client, records, self.sleep, path=f"composite/sobjects/Task/{m.TASK_KEY}",
                                   key=m.TASK_KEY)
            except CrmUnavailable:
                if attempt == UPSERT_ATTEMPTS:
                    raise
                again = self._existing(list(todo))  # what the unanswered call made, before sending again
                refs += [CreatedRef(k, again[k], created=False) for k in todo if k in again]
                todo = {k: v for k, v in todo.items() if k not in again}
                continue
            refs += [CreatedRef(str(r[m.TASK_KEY]), str(r["id"]), created=bool(r.get("created", True))) for r in ok]
            failed += refused
            break
        for f in failed:
            logger.warning("task %s not created: %s", f.key, f.reason[:200])
        return CreatedRefs(refs, failed)

    def create_tasks(self, tasks: Sequence[TaskDraft]) -> CreatedRefs:
        mp = self.a.mapping
        drafts = {t.idempotency_key: {
            "Subject": t.subject[:255], "Description": t.body, "OwnerId": t.owner_id, "Status": mp.open_task_status,
            "ActivityDate": t.due_at.date().isoformat(), "WhatId": t.deal_id or t.account_id,
            "Priority": "High" if t.priority == "high" else "Normal", "TaskSubtype": "Task",
            **({"Type": mp.decision_task_type} if t.priority == "high" else {})} for t in tasks}
        for d in drafts.values():
            if d["OwnerId"] is None:
                del d["OwnerId"]  # Salesforce assigns the integration user
        return self._create(drafts)

    def create_notes(self, notes: Sequence[NoteDraft]) -> CreatedRefs:
        """Notes are completed Tasks of Type 'Note' on the deal: they show in the activity timeline."""
        mp = self.a.mapping
        drafts = {n.idempotency_key: {"Subject": "Salesloop note", "Description": n.body, "WhatId": n.deal_id,
                                      "Status": mp.completed_task_status, "Type": "Note", "TaskSubtype": "Task"}
                  for n in notes}
        return self._create(drafts)

    def read_tasks(self, remote_ids: Sequence[str]) -> list[TaskState]:
        rows = [r for c in chunks(list(dict.fromkeys(remote_ids))) for r in self.client.query_all(
            f"SELECT Id, Status, IsClosed, CompletedDateTime, LastModifiedDate, Description FROM Task "
            f"WHERE Id IN {in_list(c)}")]
        return [self._state(r) for r in rows]

    def _state(self, row: dict[str, Any]) -> TaskState:
        mp = self.a.mapping
        lines = [ln.strip() for ln in str(row.get("Description") or "").splitlines()]
        reason = _last_line(lines, mp.rejection_prefix)
        if reason is not None or row.get("Status") == mp.rejected_task_status:
            return TaskState(str(row["Id"]), TaskStatus.REJECTED, comment=reason or "")
        if row.get("IsClosed"):
            done = m.parse_dt(row.get("CompletedDateTime")) or m.parse_dt(row.get("LastModifiedDate"))
            return TaskState(str(row["Id"]), TaskStatus.COMPLETED, completed_at=done,
                             comment=_last_line(lines, APPROVED_PREFIX) or "")
        return TaskState(str(row["Id"]), TaskStatus.OPEN)

    def close_tasks(self, closures: Sequence[TaskClosure]) -> WriteResult:
        """Close tasks as a manager would: Status Completed, or the rejected status plus a `REJECTED: <reason>` line."""
        calls_before = self.a.budget.calls
        wanted = {c.remote_id: c for c in closures}
        rows = {str(r["Id"]): r for c in chunks(list(wanted)) for r in self.client.query_all(
            f"SELECT Id, Status, IsClosed, CompletedDateTime, LastModifiedDate, Description FROM Task "
            f"WHERE Id IN {in_list(c)}")}
        unchanged, failed, payloads = [], [], []
        for rid, closure in wanted.items():
            row = rows.get(rid)
            if row is None:
                failed.append(WriteFailure(rid, "NOT_FOUND: no such task (deleted?)", retryable=False))
                continue
            state = self._state(row)
            if state.status is closure.status and state.comment == _one_line(closure.comment):
                unchanged.append(rid)
                continue
            payloads.append({"attributes": {"type": "Task"}, "id": rid, **self._closing(row, closure)})
        written, bad = self._save(payloads)
        return WriteResult(written=tuple(written), unchanged=tuple(unchanged), failed=tuple(failed + bad),
                           api_calls=self.a.budget.calls - calls_before)

    def _closing(self, row: dict[str, Any], closure: TaskClosure) -> dict[str, Any]:
        mp = self.a.mapping
        rejected = closure.status is TaskStatus.REJECTED
        out: dict[str, Any] = {"Status": mp.rejected_task_status if rejected else mp.completed_task_status}
        if rejected or closure.comment:
            prefix = mp.rejection_prefix if rejected else APPROVED_PREFIX
            out["Description"] = f"{row.get('Description') or ''}\n{prefix} {_one_line(closure.comment)}".strip()
        return out


APPROVED_PREFIX = "APPROVED:"  # the note salesloop leaves when it closes a task approved outside Salesforce


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _last_line(lines: list[str], prefix: str) -> str | None:
    """The text after `prefix` on the last line that starts with it (case-insensitive), or None."""
    return next((ln[len(prefix):].strip() for ln in reversed(lines) if ln.upper().startswith(prefix.upper())), None)


