"""CrmHarness for the fake Salesforce: seeds common-model records as an org's users would create them
(Opportunities, OpportunityStage, OpportunityHistory, Tasks/Events, converted Leads), ids kept as given."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from crm_adapters.model import (
    Account,
    Activity,
    ActivityType,
    Contact,
    ContactRole,
    Deal,
    DealContactRole,
    Entity,
    Pipeline,
    StageChange,
    TaskStatus,
    User,
    UserRole,
)
from crm_adapters.salesforce._mapping import APP_FIELD_NAMES, TASK_KEY, SalesforceMapping
from crm_adapters.salesforce.adapter import SalesforceAdapter
from crm_adapters.writes import AppField, FieldValue
from tests.fakes.salesforce.fixtures import adapter_for
from tests.fakes.salesforce.org import FakeOrg
from tests.fakes.salesforce.server import shared_fake

ROLE_NAMES = {UserRole.SDR: "SDR", UserRole.BDR: "BDR", UserRole.AE: "Account Executive",
              UserRole.BDM: "Business Development Manager", UserRole.MANAGER: "Sales Manager"}
CONTACT_ROLES = {ContactRole.CHAMPION: "Champion", ContactRole.ECONOMIC_BUYER: "Economic Buyer",
                 ContactRole.DECISION_MAKER: "Decision Maker", ContactRole.TECHNICAL_EVALUATOR: "Technical Buyer",
                 ContactRole.INFLUENCER: "Influencer", ContactRole.BLOCKER: "Blocker", ContactRole.OTHER: "Other"}
CUSTOM_KEYS = ("kind", "sequence", "variant", "step", "reply", "opened")  # the simulator's activity conventions
SOBJECT = {Entity.USER: "User", Entity.ACCOUNT: "Account", Entity.CONTACT: "Contact", Entity.DEAL: "Opportunity",
           Entity.DEAL_CONTACT_ROLE: "OpportunityContactRole", Entity.STAGE_CHANGE: "OpportunityHistory"}
DEAL_FIELDS = {"name": "Name", "account_id": "AccountId", "owner_id": "OwnerId", "lead_source": "LeadSource",
               "deal_type": "Type", "next_step": "NextStep"}


def _custom_field(key: str) -> str:
    return "".join(p.capitalize() for p in key.split("_")) + "__c"


def org_mapping(pipeline_id: str = "1") -> SalesforceMapping:
    """How an admin would configure salesloop for this org: transcript/outcome fields and the activity tags."""
    extras = tuple(_custom_field(k) for k in CUSTOM_KEYS)
    return SalesforceMapping(pipeline_id=pipeline_id, pipeline_label="Sales", transcript_field="Transcript__c",
                             outcome_field="Outcome__c", extra_fields={"Task": extras, "Event": extras})


def _wire(value: datetime | None) -> str | None:
    from tests.fakes.salesforce.org import wire_datetime

    return wire_datetime(value) if value else None


class SalesforceHarness:
    def __init__(self, pipeline_id: str = "1") -> None:
        self.fake = shared_fake()
        self.org: FakeOrg = self.fake.reset(FakeOrg())
        for sobject in ("Task", "Event"):
            self.org.fields[sobject] |= {_custom_field(k) for k in CUSTOM_KEYS}
        self.org.fields["Task"].add("Transcript__c")
        self.org.fields["Event"].add("Outcome__c")
        self.labels: dict[str, str] = {}
        self.adapter: SalesforceAdapter = adapter_for(self.fake, mapping=org_mapping(pipeline_id))

    def seed(self, *, pipelines: Sequence[Pipeline] = (), users: Sequence[User] = (), accounts: Sequence[Account] = (),
             contacts: Sequence[Contact] = (), deals: Sequence[Deal] = (), roles: Sequence[DealContactRole] = (),
             stage_changes: Sequence[StageChange] = (), activities: Sequence[Activity] = ()) -> None:
        for p in pipelines:
            self._pipeline(p)
        for u in users:
            self._user(u)
        for a in accounts:
            self.org.insert("Account", {"Id": a.remote_id, "Name": a.name, "Industry": a.industry,
                                        "NumberOfEmployees": a.employees, "BillingCountry": a.country,
                                        "AnnualRevenue": float(a.annual_revenue) if a.annual_revenue is not None else None,
                                        "OwnerId": a.owner_id}, at=a.remote_updated_at)
        for c in contacts:
            self.org.insert("Contact", {"Id": c.remote_id, "AccountId": c.account_id, "FirstName": c.first_name,
                                        "LastName": c.last_name, "Email": c.email, "Title": c.title},
                            at=c.remote_updated_at)
        for d in deals:
            self._deal(d)
        for r in roles:
            self.org.insert("OpportunityContactRole", {"Id": r.remote_id, "OpportunityId": r.deal_id,
                                                       "ContactId": r.contact_id, "Role": CONTACT_ROLES[r.role],
                                                       "IsPrimary": r.is_primary}, at=r.remote_updated_at)
        for s in stage_changes:
            self.org.insert("OpportunityHistory", {"Id": s.remote_id, "OpportunityId": s.deal_id,
                                                   "StageName": self.labels.get(s.stage_id, s.stage_id)}, at=s.entered_at)
        for act in activities:
            self._activity(act)

    def _pipeline(self, pipeline: Pipeline) -> None:
        for s in pipeline.stages:
            self.labels[s.id] = s.label
            self.org.insert("OpportunityStage", {"Id": s.id, "ApiName": s.label, "MasterLabel": s.label,
                                                 "IsActive": True, "SortOrder": s.order, "IsClosed": s.is_closed,
                                                 "IsWon": s.is_won, "DefaultProbability": s.probability * 100})

    def _user(self, user: User) -> None:
        role_id = None
        if user.role in ROLE_NAMES:
            role_id = self.org.insert("UserRole", {"Name": ROLE_NAMES[user.role], "DeveloperName": user.role.value})
        self.org.insert("User", {"Id": user.remote_id, "Name": user.name, "Email": user.email, "IsActive": user.active,
                                 "ManagerId": user.manager_id, "UserRoleId": role_id, "Department": user.team},
                        at=user.remote_updated_at)

    def _deal(self, d: Deal) -> None:
        values = {field: getattr(d, name) for name, field in DEAL_FIELDS.items()}
        values.update(Id=d.remote_id, StageName=self.labels.get(d.stage_id, d.stage_id),
                      Amount=float(d.amount) if d.amount is not None else None,
                      CloseDate=d.close_date.isoformat() if d.close_date else None)
        self.org.insert("Opportunity", values, at=d.remote_updated_at)
        if d.created_at:
            self.org.records["Opportunity"][d.remote_id]["CreatedDate"] = _wire(d.created_at)
        if d.sdr_id:
            self.org.insert("Lead", {"LastName": "Lead", "Company": d.name, "IsConverted": True, "OwnerId": d.sdr_id,
                                     "ConvertedOpportunityId": d.remote_id, "ConvertedAccountId": d.account_id})

    def _activity(self, a: Activity) -> None:
        common: dict[str, Any] = {"Id": a.remote_id, "WhatId": a.deal_ids[0] if a.deal_ids else a.account_id,
                                  "WhoId": a.contact_ids[0] if a.contact_ids else None, "Subject": a.subject,
                                  "Description": a.body, "OwnerId": a.owner_id, "AccountId": a.account_id}
        common.update({_custom_field(k): v for k, v in a.custom.items() if k in CUSTOM_KEYS})
        if a.type is ActivityType.MEETING:
            start = a.start_at or a.occurred_at
            self.org.insert("Event", {**common, "StartDateTime": _wire(start), "EndDateTime": _wire(a.end_at),
                                      "DurationInMinutes": a.duration_s // 60 if a.duration_s else None,
                                      "Outcome__c": a.outcome}, at=a.remote_updated_at)
            return
        subtype = {ActivityType.CALL: "Call", ActivityType.EMAIL: "Email"}.get(a.type, "Task")
        self.org.insert("Task", {**common, "TaskSubtype": subtype, "Type": "Note" if a.type is ActivityType.NOTE else None,
                                 "CompletedDateTime": _wire(a.occurred_at), "Status": "Completed",
                                 "CallType": a.direction.value.capitalize() if a.direction else None,
                                 "CallDurationInSeconds": a.duration_s, "CallDisposition": a.outcome,
                                 "Transcript__c": a.transcript or None}, at=a.remote_updated_at)

    def update_deal(self, remote_id: str, **changes: Any) -> None:
        values: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "amount":
                values["Amount"] = float(value) if value is not None else None
            elif name == "stage_id":
                values["StageName"] = self.labels.get(value, value)
            elif name == "close_date":
                values["CloseDate"] = value.isoformat() if value else None
            elif name in DEAL_FIELDS:
                values[DEAL_FIELDS[name]] = value
            else:
                raise ValueError(f"the fake Salesforce harness cannot change {name!r}")
        self.org.update("Opportunity", remote_id, values, by="005USERINTHEUI")

    def _sobject_of(self, entity: Entity, remote_id: str) -> str:
        if entity is Entity.ACTIVITY:
            return "Task" if remote_id in self.org.records["Task"] else "Event"
        return SOBJECT[entity]

    def delete(self, entity: Entity, remote_id: str) -> None:
        self.org.delete(self._sobject_of(entity, remote_id), remote_id)

    def set_task_status(self, remote_id: str, status: TaskStatus, comment: str = "") -> None:
        task = self.org.records["Task"][remote_id]
        if status is TaskStatus.REJECTED:
            text = f"{task.get('Description') or ''}\nREJECTED: {comment}".strip()
            self.org.update("Task", remote_id, {"Status": "Deferred", "Description": text}, by="005MANAGER")
        else:
            self.org.update("Task", remote_id, {"Status": "Completed" if status is TaskStatus.COMPLETED else "Not Started"},
                            by="005MANAGER")

    def field_value(self, entity: Entity, remote_id: str, field: AppField) -> FieldValue:
        return self.org.records[SOBJECT[entity]][remote_id].get(APP_FIELD_NAMES[field])  # type: ignore[no-any-return]

    def app_task_count(self) -> int:
        return sum(1 for t in self.org.records["Task"].values() if t.get(TASK_KEY) and t.get("Type") != "Note")

    def define_deal_field(self, label: str, kind: str, options: Sequence[str] = (), sobject: str = "Opportunity") -> str:
        """A custom field made in Setup, as its describe then reports it (Picklist, Multi-Select Picklist, Checkbox,
        Number)."""
        name = "_".join(label.split()) + "__c"
        describe_type = {"picklist": "picklist", "multiselect": "multipicklist", "checkbox": "boolean",
                         "number": "double"}[kind]
        self.org.add_custom_field(sobject, name, describe_type, label, [(o, o) for o in options])
        return name


def make_harness() -> SalesforceHarness:
    return SalesforceHarness()
