"""Write-back to HubSpot: our properties, field values in batches, idempotent tasks and notes.

Idempotency: every task and note we create carries its key in our own `salesloop_key` property,
a unique-value property read back by value, never through the lagging search index (_creates.py).
A batch HubSpot refuses whole for one invalid value is split until every valid input has landed.

Rejections: a manager rejects a task by adding a line that starts with "REJECT" to the task's
notes (e.g. "REJECT: not this quarter"); completing the task without it approves.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from crm_adapters.errors import CrmBadRequest, CrmBudgetExhausted, CrmError, CrmPermissionError
from crm_adapters.hubspot import _errors
from crm_adapters.hubspot._client import HubSpotClient
from crm_adapters.hubspot._creates import KEY_PROPERTY, RETRYABLE_CATEGORIES, Creates
from crm_adapters.hubspot._mapping import _plain, parse_dt
from crm_adapters.hubspot._reads import BATCH, Reads
from crm_adapters.model import Entity, TaskStatus
from crm_adapters.writes import (
    APP_FIELDS,
    AppField,
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

logger = logging.getLogger(__name__)
GROUP = "salesloop"
OTYPE = {Entity.DEAL: "deals", Entity.ACCOUNT: "companies"}
KINDS = {"number": ("number", "number"), "enumeration": ("enumeration", "select"), "text": ("string", "textarea"),
         "datetime": ("datetime", "date")}
REJECT = re.compile(r"^\s*REJECT(?:ED)?\b[\s:\-]*(.*)$", re.IGNORECASE | re.MULTILINE)
APPROVED = re.compile(r"^\s*APPROVED\b[\s:\-]*(.*)$", re.IGNORECASE | re.MULTILINE)


def property_name(field: AppField) -> str:
    return f"salesloop_{field.value}"


def format_value(value: FieldValue) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    return str(value)


def same(current: Any, new: str) -> bool:
    """HubSpot returns numbers as it normalised them ("72" vs "72.0"): compare numbers as numbers."""
    old = "" if current is None else str(current)
    if old == new:
        return True
    try:
        return Decimal(old) == Decimal(new)
    except InvalidOperation:
        return old.strip() == new.strip()


class Writes:
    def __init__(self, client: HubSpotClient, reads: Reads, clock: Any) -> None:
        self.client, self.reads, self._clock = client, reads, clock
        self.creates = Creates(client, reads)

    # ---- properties --------------------------------------------------------------------------------
    def ensure_app_fields(self) -> FieldsReport:
        created: list[str] = []
        existing: list[str] = []
        missing: list[str] = []
        specs: dict[str, list[dict[str, Any]]] = {"deals": [], "companies": [], "tasks": [], "notes": []}
        for spec in APP_FIELDS:
            kind, field_type = KINDS[spec.kind]
            body = {"name": property_name(spec.field), "label": spec.label, "type": kind, "fieldType": field_type,
                    "groupName": GROUP, "description": f"Written by salesloop ({spec.field.value})",
                    "options": [{"label": o.title(), "value": o, "displayOrder": i} for i, o in enumerate(spec.options)]}
            specs[OTYPE[spec.entity]].append(body)
        for otype in ("tasks", "notes"):
            specs[otype].append({"name": KEY_PROPERTY, "label": "salesloop key", "type": "string", "fieldType": "text",
                                 "groupName": GROUP, "hasUniqueValue": True,  # HubSpot refuses a second holder
                                 "description": "Idempotency key of salesloop"})
        for otype, bodies in specs.items():
            try:
                self._create(otype, "groups", {"name": GROUP, "label": "salesloop insights", "displayOrder": -1})
                for body in bodies:
                    name = f"{otype}.{body['name']}"
                    (created if self._create(otype, "properties", body) else existing).append(name)
            except CrmPermissionError:
                missing.extend(f"{otype}.{b['name']}" for b in bodies)
        return FieldsReport(created=tuple(created), existing=tuple(existing), missing_permissions=tuple(missing))

    def _create(self, otype: str, what: str, body: dict[str, Any]) -> bool:
        """Create a group or property; False when it already exists (HubSpot answers 409)."""
        def run(api: Any) -> Any:
            if what == "groups":
                return api("crm.properties.groups_api").create(otype, property_group_create=body)
            return api("crm.properties.core_api").create(otype, property_create=body)

        try:
            self.client.call(f"create_{what}:{otype}", run, idempotent=False)
        except CrmError as exc:
            if _errors.is_conflict(exc):
                return False
            raise
        return True

    # ---- field values ------------------------------------------------------------------------------
    def write_fields(self, updates: Sequence[FieldUpdate]) -> WriteResult:
        before = self.client.stats.calls
        written: list[str] = []
        unchanged: list[str] = []
        failed: list[WriteFailure] = []
        for entity, otype in OTYPE.items():
            wanted: dict[str, dict[str, str]] = {}
            for u in updates:
                if u.entity is entity:
                    wanted.setdefault(u.remote_id, {}).update({property_name(f): format_value(v) for f, v in u.values.items()})
            ids = list(wanted)
            for i in range(0, len(ids), BATCH):
                self._write_chunk(otype, {k: wanted[k] for k in ids[i:i + BATCH]}, written, unchanged, failed)
        return WriteResult(written=tuple(written), unchanged=tuple(unchanged), failed=tuple(failed),
                           api_calls=self.client.stats.calls - before)

    def _write_chunk(self, otype: str, wanted: dict[str, dict[str, str]], written: list[str], unchanged: list[str],
                     failed: list[WriteFailure]) -> None:
        props = sorted({p for values in wanted.values() for p in values})
        try:
            current = {r["id"]: r["properties"] for r in self.reads.batch_read(otype, list(wanted), props)}
        except CrmBudgetExhausted:
            raise  # the caller stops the run (outbox, closures); nothing is sent today
        except CrmError as exc:
            failed.extend(WriteFailure(k, f"reading current values failed: {exc}", exc.retryable) for k in wanted)
            return
        inputs = []
        for rid, values in wanted.items():
            if rid not in current:
                failed.append(WriteFailure(rid, f"{otype} {rid} not found in HubSpot", False))
                continue
            changed = {p: v for p, v in values.items() if not same(current[rid].get(p), v)}
            if changed:
                inputs.append({"id": rid, "properties": changed})
            else:
                unchanged.append(rid)
        for attempt in range(3):
            if not inputs:
                return
            inputs = self._update(otype, inputs, written, failed, last=attempt == 2)

    def _update(self, otype: str, inputs: list[dict[str, Any]], written: list[str], failed: list[WriteFailure], *,
                last: bool) -> list[dict[str, Any]]:
        """One batch update; returns the inputs worth retrying (per-input retryable errors of a 207)."""
        body = {"inputs": inputs}
        try:
            resp = self.client.call(f"batch_update:{otype}", lambda api: api("crm.objects.batch_api").update(
                otype, batch_input_simple_public_object_batch_input=body))
        except CrmBudgetExhausted:
            raise  # the caller stops the run (outbox, closures); nothing is sent today
        except CrmBadRequest as exc:
            if len(inputs) > 1 and _errors.status_behind(exc) == 400:  # refused whole for one bad input: split
                mid = len(inputs) // 2
                return (self._update(otype, inputs[:mid], written, failed, last=last)
                        + self._update(otype, inputs[mid:], written, failed, last=last))
            failed.extend(WriteFailure(i["id"], str(exc)[:300], False) for i in inputs)
            return []
        except CrmError as exc:
            failed.extend(WriteFailure(i["id"], str(exc)[:300], exc.retryable) for i in inputs)
            return []
        written.extend(str(r.id) for r in resp.results or [])
        retry: list[dict[str, Any]] = []
        by_id = {i["id"]: i for i in inputs}
        for err in getattr(resp, "errors", None) or []:
            ids = (err.context or {}).get("ids") or (err.context or {}).get("id") or []
            retryable = err.category in RETRYABLE_CATEGORIES
            for rid in ids:
                if retryable and not last and rid in by_id:
                    retry.append(by_id[rid])
                else:
                    failed.append(WriteFailure(rid, f"{err.category}: {str(err.message)[:300]}", retryable))
        return retry

    # ---- tasks and notes (created once: see _creates.py) ---------------------------------------------
    def create_tasks(self, tasks: Sequence[TaskDraft]) -> CreatedRefs:
        drafts = {}
        for t in tasks:
            props = {"hs_timestamp": str(int(t.due_at.timestamp() * 1000)), "hs_task_subject": t.subject,
                     "hs_task_body": t.body, "hs_task_status": "NOT_STARTED", "hs_task_type": "TODO",
                     "hs_task_priority": "HIGH" if t.priority == "high" else "NONE", KEY_PROPERTY: t.idempotency_key}
            if t.owner_id:
                props["hubspot_owner_id"] = t.owner_id
            assoc = [(t.deal_id, 216), (t.account_id, 192)]
            drafts[t.idempotency_key] = {"properties": props, "associations": [
                {"to": {"id": rid}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": tid}]}
                for rid, tid in assoc if rid]}
        return self.creates.create("tasks", drafts)

    def create_notes(self, notes: Sequence[NoteDraft]) -> CreatedRefs:
        now = str(int(self._clock().timestamp() * 1000))
        drafts = {n.idempotency_key: {"properties": {"hs_timestamp": now, "hs_note_body": n.body,
                                                     KEY_PROPERTY: n.idempotency_key},
                                      "associations": [{"to": {"id": n.deal_id}, "types": [
                                          {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 214}]}]}
                  for n in notes}
        return self.creates.create("notes", drafts)

    def read_tasks(self, remote_ids: Sequence[str]) -> list[TaskState]:
        props = ["hs_task_status", "hs_task_completion_date", "hs_task_body", "hs_lastmodifieddate"]
        rows = {r["id"]: r for r in self.reads.batch_read("tasks", list(remote_ids), props)}
        out = []
        for rid in remote_ids:
            row = rows.get(str(rid))
            if row is None:  # a manager deleted the task: no approval
                out.append(TaskState(str(rid), TaskStatus.REJECTED, None, "task deleted in HubSpot"))
                continue
            out.append(task_state(row))
        return out

    def close_tasks(self, closures: Sequence[TaskClosure]) -> WriteResult:
        """Complete tasks as a manager would: COMPLETED, and a `REJECT: <reason>` line in the notes to reject."""
        before = self.client.stats.calls
        written: list[str] = []
        unchanged: list[str] = []
        failed: list[WriteFailure] = []
        wanted = {c.remote_id: c for c in closures}
        ids = list(wanted)
        for i in range(0, len(ids), BATCH):
            chunk = ids[i:i + BATCH]
            try:
                rows = {r["id"]: r for r in self.reads.batch_read(
                    "tasks", chunk, ["hs_task_status", "hs_task_body", "hs_task_completion_date", "hs_lastmodifieddate"])}
            except CrmBudgetExhausted:
                raise  # the caller stops the run (outbox, closures); nothing is sent today
            except CrmError as exc:
                failed.extend(WriteFailure(k, f"reading the tasks failed: {exc}", exc.retryable) for k in chunk)
                continue
            inputs = []
            for rid in chunk:
                row = rows.get(rid)
                if row is None:
                    failed.append(WriteFailure(rid, f"task {rid} not found in HubSpot", False))
                elif _closed_as(task_state(row), wanted[rid]):
                    unchanged.append(rid)
                else:
                    inputs.append({"id": rid, "properties": closing_props(row["properties"], wanted[rid])})
            for attempt in range(3):
                if not inputs:
                    break
                inputs = self._update("tasks", inputs, written, failed, last=attempt == 2)
        return WriteResult(written=tuple(written), unchanged=tuple(unchanged), failed=tuple(failed),
                           api_calls=self.client.stats.calls - before)


def _closed_as(state: TaskState, closure: TaskClosure) -> bool:
    return state.status is closure.status and state.comment == _one_line(closure.comment)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def closing_props(props: dict[str, Any], closure: TaskClosure) -> dict[str, str]:
    """The properties that make read_tasks see this verdict: status COMPLETED plus a REJECT/APPROVED line."""
    out = {"hs_task_status": "COMPLETED"}
    label = "REJECT" if closure.status is TaskStatus.REJECTED else "APPROVED"
    if closure.status is TaskStatus.REJECTED or closure.comment:
        body = str(props.get("hs_task_body") or "")
        out["hs_task_body"] = f"{body}<br>{label}: {html.escape(_one_line(closure.comment))}"  # the body is HTML
    return out


def task_state(row: dict[str, Any]) -> TaskState:
    """Completed = approved; a line starting with REJECT in the notes = rejected, the rest is the reason."""
    props = row["properties"]
    done = str(props.get("hs_task_status", "")).upper() == "COMPLETED"
    when = parse_dt(props.get("hs_task_completion_date")) or (
        parse_dt(props.get("hs_lastmodifieddate")) if done else None)
    match = REJECT.search(_plain(props.get("hs_task_body")))
    if match:
        return TaskState(row["id"], TaskStatus.REJECTED, when, match.group(1).strip())
    if done:
        approved = APPROVED.findall(_plain(props.get("hs_task_body")))
        return TaskState(row["id"], TaskStatus.COMPLETED, when, approved[-1].strip() if approved else "")
    return TaskState(row["id"], TaskStatus.OPEN)
