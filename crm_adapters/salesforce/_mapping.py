"""Salesforce records (query dicts) <-> the common model. Stages, roles and user kinds are per org, never
hard-coded names: OpportunityStage gives IsClosed/IsWon/DefaultProbability/SortOrder, and a
SalesforceMapping holds the org's contact-role and user-role mapping and its custom fields."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from crm_adapters.errors import MAPPING_FAILURES, MalformedRecord, quarantines
from crm_adapters.model import (
    Account,
    Activity,
    ActivityType,
    Contact,
    ContactRole,
    Crm,
    Deal,
    DealContactRole,
    DealStatus,
    Direction,
    Pipeline,
    Record,
    Stage,
    StageChange,
    User,
    UserRole,
)
from crm_adapters.port import FieldDescription, Quarantined
from crm_adapters.qualification import QualificationMapping
from crm_adapters.writes import AppField

SF = Crm.SALESFORCE
DEFAULT_CONTACT_ROLES: Mapping[str, ContactRole] = {
    "economic buyer": ContactRole.ECONOMIC_BUYER, "economic decision maker": ContactRole.ECONOMIC_BUYER,
    "decision maker": ContactRole.DECISION_MAKER, "executive sponsor": ContactRole.DECISION_MAKER,
    "technical buyer": ContactRole.TECHNICAL_EVALUATOR, "evaluator": ContactRole.TECHNICAL_EVALUATOR,
    "influencer": ContactRole.INFLUENCER, "business user": ContactRole.OTHER, "other": ContactRole.OTHER,
    "champion": ContactRole.CHAMPION, "blocker": ContactRole.BLOCKER,  # not standard: added by many orgs
}
# (regex, role), tried in order against the user's role name, then title, then profile.
DEFAULT_USER_RULES: tuple[tuple[str, UserRole], ...] = (
    (r"\b(sdr|sales development)", UserRole.SDR),
    (r"\b(bdr|business development rep)", UserRole.BDR),
    (r"\b(bdm|business development manager)", UserRole.BDM),
    (r"\b(manager|director|vp|vice president|head of)\b", UserRole.MANAGER),
    (r"\b(ae|account executive|closer)\b", UserRole.AE),
)
APP_FIELD_NAMES: Mapping[AppField, str] = {
    AppField.RISK_SCORE: "Salesloop_Risk_Score__c", AppField.RISK_LEVEL: "Salesloop_Risk_Level__c",
    AppField.RISK_REASONS: "Salesloop_Risk_Reasons__c", AppField.NEXT_MOVE: "Salesloop_Next_Move__c",
    AppField.SCORED_AT: "Salesloop_Scored_At__c", AppField.PAIN_ALIGNMENT: "Salesloop_Pain_Alignment__c",
    AppField.ICP_FIT: "Salesloop_ICP_Fit__c",
}
SOURCE_MODSTAMP = "Salesloop_Source_Modstamp__c"  # the record's SystemModstamp before our last write (echo guard)
TASK_KEY = "Salesloop_Key__c"  # idempotency key of tasks and notes we create


@dataclass(frozen=True)
class SalesforceMapping:
    """One org's configuration: what its picklists and custom fields mean."""

    pipeline_id: str = "default"
    pipeline_label: str = "Opportunities"
    currency: str = "USD"
    contact_roles: Mapping[str, ContactRole] = field(default_factory=lambda: dict(DEFAULT_CONTACT_ROLES))
    user_rules: tuple[tuple[str, UserRole], ...] = DEFAULT_USER_RULES
    sdr_field: str | None = None  # a User lookup on Opportunity naming the SDR; else the converted Lead's owner
    loss_reason_field: str | None = None
    win_reason_field: str | None = None
    transcript_field: str | None = None  # long text on Task holding a call transcript
    outcome_field: str | None = None  # on Event (Task uses CallDisposition)
    extra_fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # sobject -> fields into `custom`
    custom_keys: Mapping[str, str] = field(default_factory=dict)  # API name -> custom key (default: snake name)
    qualification: QualificationMapping = field(default_factory=QualificationMapping)  # settings["qualification"]
    task_types: Mapping[str, ActivityType] = field(default_factory=lambda: {
        "call": ActivityType.CALL, "email": ActivityType.EMAIL, "meeting": ActivityType.MEETING,
        "note": ActivityType.NOTE})
    open_task_status: str = "Not Started"
    completed_task_status: str = "Completed"
    rejected_task_status: str = "Deferred"  # convention: a manager rejects by setting Deferred (+ reason)
    rejection_prefix: str = "REJECTED:"  # ...or by starting the description's last line with this
    decision_task_type: str = "Other"  # Type of the tasks a manager decides (approvals, reviews): a standard picklist value

    def custom_key(self, api_name: str) -> str:
        if api_name in self.custom_keys:
            return self.custom_keys[api_name]
        base = api_name[:-3] if api_name.endswith("__c") else api_name
        return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", base).lower()

    def extras(self, sobject: str) -> tuple[str, ...]:
        named = {"Opportunity": (self.sdr_field, self.loss_reason_field, self.win_reason_field),
                 "Task": (self.transcript_field,), "Event": (self.outcome_field,)}.get(sobject, ())
        mapped = self.qualification.names() if sobject == "Opportunity" else self.qualification.names("lead") if (
            sobject == "Lead") else []
        return tuple(dict.fromkeys([*(n for n in named if n), *self.extra_fields.get(sobject, ()), *mapped]))


@dataclass(frozen=True)
class OrgContext:
    """What mapping needs beyond the record: stage ids by API name, SDRs by opportunity, our user."""

    stage_ids: Mapping[str, str]
    sdr_by_opportunity: Mapping[str, str] = field(default_factory=dict)
    lead_by_opportunity: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # converted Lead's mapped fields
    integration_user_id: str | None = None


def parse_dt(value: Any, name: str = "datetime") -> datetime | None:
    """'2026-08-15T09:12:44.000+0000' -> aware datetime; None stays None; garbage -> MalformedRecord."""
    if value in (None, ""):
        return None
    try:
        text = str(value).replace("Z", "+00:00")
        if re.search(r"[+-]\d{4}$", text):
            text = text[:-2] + ":" + text[-2:]
        parsed = datetime.fromisoformat(text)
    except (ValueError, OverflowError) as exc:
        raise MalformedRecord(f"{name} is not a datetime: {str(value)[:40]!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_date(value: Any, name: str = "date") -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError as exc:
        raise MalformedRecord(f"{name} is not a date: {str(value)[:40]!r}") from exc


def _decimal(value: Any, name: str) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        result = Decimal(str(value))
    except InvalidOperation as exc:
        raise MalformedRecord(f"{name} is not a number: {str(value)[:40]!r}") from exc
    if not result.is_finite():
        raise MalformedRecord(f"{name} is not finite")
    return result


def _id(raw: Mapping[str, Any]) -> str:
    if not isinstance(raw, Mapping):
        raise MalformedRecord(f"record is {type(raw).__name__}, not an object")
    rid = raw.get("Id")
    if not rid:
        raise MalformedRecord("record has no Id")
    return str(rid)


def _custom(raw: Mapping[str, Any], sobject: str, mapping: SalesforceMapping, used: set[str]) -> dict[str, Any]:
    return {mapping.custom_key(n): raw.get(n) for n in mapping.extras(sobject) if n not in used and raw.get(n) is not None}


def _base(raw: Mapping[str, Any], ctx: OrgContext | None = None) -> dict[str, Any]:
    stamp = raw.get("SystemModstamp")
    if ctx and ctx.integration_user_id and raw.get("LastModifiedById") == ctx.integration_user_id and raw.get(SOURCE_MODSTAMP):
        stamp = raw[SOURCE_MODSTAMP]  # only our own write changed it since: keep the user-visible version
    return {"crm": SF, "remote_id": _id(raw), "remote_updated_at": parse_dt(stamp, "SystemModstamp"),
            "deleted": bool(raw.get("IsDeleted"))}


def _rel(raw: Mapping[str, Any], rel: str, name: str) -> Any:
    nested = raw.get(rel)
    return nested.get(name) if isinstance(nested, Mapping) else None


def user_role(raw: Mapping[str, Any], mapping: SalesforceMapping) -> tuple[UserRole, str | None]:
    """Classify by role name, then title, then profile (Salesforce has no SDR flag)."""
    sources = (_rel(raw, "UserRole", "Name"), raw.get("Title"), _rel(raw, "Profile", "Name"))
    for text in sources:
        if not text:
            continue
        for pattern, role in mapping.user_rules:
            if re.search(pattern, str(text), re.I):
                return role, str(text)
    return UserRole.OTHER, next((str(t) for t in sources if t), None)


@quarantines("User")
def user_from_salesforce(raw: Mapping[str, Any], mapping: SalesforceMapping, ctx: OrgContext | None = None) -> User:
    role, role_raw = user_role(raw, mapping)
    return User(**_base(raw), name=raw.get("Name") or "", email=raw.get("Email"), role=role, role_raw=role_raw,
                manager_id=raw.get("ManagerId"), team=raw.get("Department") or _rel(raw, "UserRole", "Name"),
                active=bool(raw.get("IsActive", True)), custom=_custom(raw, "User", mapping, set()))


@quarantines("Account")
def account_from_salesforce(raw: Mapping[str, Any], mapping: SalesforceMapping, ctx: OrgContext | None = None) -> Account:
    employees = raw.get("NumberOfEmployees")
    return Account(**_base(raw, ctx), name=raw.get("Name") or "", industry=raw.get("Industry"),
                   employees=int(employees) if employees is not None else None,
                   annual_revenue=_decimal(raw.get("AnnualRevenue"), "AnnualRevenue"),
                   country=raw.get("BillingCountry"), owner_id=raw.get("OwnerId"),
                   custom=_custom(raw, "Account", mapping, set()))


@quarantines("Contact")
def contact_from_salesforce(raw: Mapping[str, Any], mapping: SalesforceMapping, ctx: OrgContext | None = None) -> Contact:
    return Contact(**_base(raw), account_id=raw.get("AccountId"), first_name=raw.get("FirstName") or "",
                   last_name=raw.get("LastName") or "", email=raw.get("Email"), title=raw.get("Title"),
                   custom=_custom(raw, "Contact", mapping, set()))


@quarantines("OpportunityContactRole")
def role_from_salesforce(raw: Mapping[str, Any], mapping: SalesforceMapping,
                         ctx: OrgContext | None = None) -> DealContactRole:
    if not raw.get("OpportunityId") or not raw.get("ContactId"):
        raise MalformedRecord("OpportunityContactRole without OpportunityId or ContactId")
    role_raw = raw.get("Role")
    role = mapping.contact_roles.get(str(role_raw or "").strip().lower(), ContactRole.OTHER)
    return DealContactRole(**_base(raw), deal_id=raw["OpportunityId"], contact_id=raw["ContactId"], role=role,
                           role_raw=role_raw, is_primary=bool(raw.get("IsPrimary")))


@quarantines("Opportunity")
def deal_from_salesforce(raw: Mapping[str, Any], mapping: SalesforceMapping, ctx: OrgContext) -> Deal:
    stage_name = raw.get("StageName")
    stage_id = ctx.stage_ids.get(str(stage_name))
    if stage_id is None:
        raise MalformedRecord(f"StageName {str(stage_name)[:60]!r} is not an OpportunityStage of this org")
    status = DealStatus.OPEN if not raw.get("IsClosed") else DealStatus.WON if raw.get("IsWon") else DealStatus.LOST
    close_date = parse_date(raw.get("CloseDate"), "CloseDate")
    rid = _id(raw)
    sdr = raw.get(mapping.sdr_field) if mapping.sdr_field else None
    named = {mapping.sdr_field, mapping.loss_reason_field, mapping.win_reason_field}
    try:
        return Deal(**_base(raw, ctx), name=raw.get("Name") or "", account_id=raw.get("AccountId"),
                    pipeline_id=mapping.pipeline_id, stage_id=stage_id, status=status,
                    amount=_decimal(raw.get("Amount"), "Amount"), currency=raw.get("CurrencyIsoCode") or mapping.currency,
                    close_date=close_date, closed_at=close_date if status is not DealStatus.OPEN else None,
                    created_at=parse_dt(raw.get("CreatedDate"), "CreatedDate"), owner_id=raw.get("OwnerId"),
                    sdr_id=sdr or ctx.sdr_by_opportunity.get(rid), lead_source=raw.get("LeadSource"),
                    deal_type=raw.get("Type"), next_step=raw.get("NextStep"),
                    loss_reason=raw.get(mapping.loss_reason_field) if mapping.loss_reason_field else None,
                    win_reason=raw.get(mapping.win_reason_field) if mapping.win_reason_field else None,
                    custom=_custom(raw, "Opportunity", mapping, {*(n for n in named if n), *mapping.qualification.names()}),
                    qualification=mapping.qualification.values(raw, ctx.lead_by_opportunity.get(rid)))
    except ValueError as exc:
        raise MalformedRecord(str(exc)) from exc


@quarantines("OpportunityHistory")
def stage_changes_from_history(rows: list[Mapping[str, Any]], ctx: OrgContext) -> list[StageChange]:
    """One deal's OpportunityHistory rows (any order) -> stays in stages; amount-only rows fold into the stay."""
    rows = sorted(rows, key=lambda r: (str(r.get("CreatedDate")), str(r.get("Id"))))
    stays: list[tuple[Mapping[str, Any], datetime]] = []
    for row in rows:
        entered = parse_dt(row.get("CreatedDate"), "CreatedDate")
        if entered is None:
            raise MalformedRecord("OpportunityHistory row without CreatedDate")
        if not stays or stays[-1][0].get("StageName") != row.get("StageName"):
            stays.append((row, entered))
    out = []
    for i, (row, entered) in enumerate(stays):
        stage_id = ctx.stage_ids.get(str(row.get("StageName")))
        if stage_id is None:
            raise MalformedRecord(f"history StageName {str(row.get('StageName'))[:60]!r} is not a stage of this org")
        exited = stays[i + 1][1] if i + 1 < len(stays) else None
        out.append(StageChange(**_base(row), deal_id=str(row.get("OpportunityId")), stage_id=stage_id,
                               entered_at=entered, exited_at=exited))
    return out


def _direction(value: Any) -> Direction | None:
    return {"inbound": Direction.INBOUND, "outbound": Direction.OUTBOUND, "internal": Direction.INTERNAL}.get(
        str(value or "").lower())


def _links(raw: Mapping[str, Any]) -> dict[str, Any]:
    what_type, who_type = _rel(raw, "What", "Type"), _rel(raw, "Who", "Type")
    return {"deal_ids": (raw["WhatId"],) if raw.get("WhatId") and what_type == "Opportunity" else (),
            "contact_ids": (raw["WhoId"],) if raw.get("WhoId") and who_type == "Contact" else (),
            "account_id": raw.get("AccountId") or (raw.get("WhatId") if what_type == "Account" else None),
            "owner_id": raw.get("OwnerId")}


@quarantines("Task")
def activity_from_task(raw: Mapping[str, Any], mapping: SalesforceMapping, ctx: OrgContext | None = None) -> Activity:
    subtype = str(raw.get("TaskSubtype") or "").lower()
    kind = {"call": ActivityType.CALL, "email": ActivityType.EMAIL, "listemail": ActivityType.EMAIL}.get(subtype)
    kind = kind or mapping.task_types.get(str(raw.get("Type") or "").lower(), ActivityType.TASK)
    occurred = (parse_dt(raw.get("CompletedDateTime"), "CompletedDateTime")
                or _midnight(parse_date(raw.get("ActivityDate"), "ActivityDate"))
                or parse_dt(raw.get("CreatedDate"), "CreatedDate"))
    if occurred is None:
        raise MalformedRecord("Task without CompletedDateTime, ActivityDate or CreatedDate")
    duration = raw.get("CallDurationInSeconds")
    transcript = raw.get(mapping.transcript_field) if mapping.transcript_field else None
    try:
        return Activity(**_base(raw), type=kind, occurred_at=occurred, subject=raw.get("Subject") or "",
                        body=raw.get("Description") or "", transcript=transcript or "",
                        direction=_direction(raw.get("CallType")), duration_s=int(duration) if duration is not None else None,
                        outcome=raw.get("CallDisposition"), **_links(raw),
                        custom=_custom(raw, "Task", mapping, {mapping.transcript_field or ""}))
    except ValueError as exc:
        raise MalformedRecord(str(exc)) from exc


@quarantines("Event")
def activity_from_event(raw: Mapping[str, Any], mapping: SalesforceMapping, ctx: OrgContext | None = None) -> Activity:
    start, end = parse_dt(raw.get("StartDateTime"), "StartDateTime"), parse_dt(raw.get("EndDateTime"), "EndDateTime")
    if start is None:
        raise MalformedRecord("Event without StartDateTime")
    minutes = raw.get("DurationInMinutes")
    try:
        return Activity(**_base(raw), type=ActivityType.MEETING, occurred_at=start, subject=raw.get("Subject") or "",
                        body=raw.get("Description") or "", start_at=start, end_at=end,
                        duration_s=int(minutes) * 60 if minutes is not None else None,
                        outcome=raw.get(mapping.outcome_field) if mapping.outcome_field else None, **_links(raw),
                        custom=_custom(raw, "Event", mapping, {mapping.outcome_field or ""}))
    except ValueError as exc:
        raise MalformedRecord(str(exc)) from exc


def _midnight(day: date | None) -> datetime | None:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) if day else None


def pipeline_from_stages(rows: list[Mapping[str, Any]], mapping: SalesforceMapping) -> Pipeline:
    """All OpportunityStage rows (active ones; inactive stages keep their ids for old deals) -> one pipeline."""
    stages = tuple(
        Stage(id=str(r["Id"]), label=str(r.get("MasterLabel") or r.get("ApiName")), order=int(r.get("SortOrder") or 0),
              probability=min(1.0, max(0.0, float(r.get("DefaultProbability") or 0) / 100.0)),
              is_closed=bool(r.get("IsClosed")), is_won=bool(r.get("IsWon")))
        for r in sorted(rows, key=lambda r: (int(r.get("SortOrder") or 0), str(r["Id"]))) if r.get("IsActive", True))
    return Pipeline(crm=SF, remote_id=mapping.pipeline_id, label=mapping.pipeline_label, order=0, stages=stages)


def map_rows(sobject: str, rows: list[Any], mapping: SalesforceMapping,
             ctx: OrgContext | None) -> tuple[list[Record], list[Quarantined]]:
    """One page of query rows -> records, and the rows that could not be mapped, with why (one at a time:
    whatever an odd row raises quarantines that row, never its page)."""
    mapper = MAPPERS[sobject]
    records: list[Record] = []
    bad: list[Quarantined] = []
    for row in rows:
        try:
            records.append(mapper(row, mapping, ctx))
        except MAPPING_FAILURES as exc:
            bad.append(quarantined(row, exc))
    return records, bad


def quarantined(row: Any, exc: BaseException) -> Quarantined:
    if not isinstance(row, Mapping):
        return Quarantined(remote_id=None, reason=str(exc)[:500], raw={"_value": row})
    raw = {k: v for k, v in row.items() if k != "attributes"}
    return Quarantined(remote_id=str(row["Id"]) if row.get("Id") else None, reason=str(exc)[:500], raw=raw)


MAPPERS: dict[str, Any] = {
    "User": user_from_salesforce, "Account": account_from_salesforce, "Contact": contact_from_salesforce,
    "Opportunity": deal_from_salesforce, "OpportunityContactRole": role_from_salesforce,
    "Task": activity_from_task, "Event": activity_from_event,
}


DESCRIBE_TYPES = {"picklist": "picklist", "multipicklist": "multiselect", "boolean": "checkbox", "double": "number",
                  "int": "number", "long": "number", "percent": "number", "currency": "number", "date": "date",
                  "datetime": "date", "string": "text", "textarea": "text", "combobox": "picklist"}


def field_from_describe(raw: Mapping[str, Any], source: str) -> FieldDescription:
    """One entry of an sObject describe's `fields` (name, label, type, picklistValues of {value, label, active})."""
    common = DESCRIBE_TYPES.get(str(raw.get("type")), "other")
    values = [v for v in raw.get("picklistValues") or () if v.get("active", True)] if common in ("picklist", "multiselect") else []
    return FieldDescription(name=str(raw["name"]), label=str(raw.get("label") or raw["name"]), type=common,
                            options=tuple(str(v["value"]) for v in values), source=source,
                            option_labels=tuple(str(v.get("label") or v["value"]) for v in values))
