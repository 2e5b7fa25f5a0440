"""Field types as a real org's describe reports them.

Source: the real Opportunity describe body in ../shared/contracts/salesforce/cumulusci/Opportunity_describe.json
(Amount `currency`, CloseDate `date`, Probability `percent`, StageName `picklist`, Id `id`, ...) and the
object reference pages cited in ../shared/research/salesforce.md §3 for the other objects.
"""

from __future__ import annotations

from typing import Any

TYPES: dict[str, str] = {
    "Id": "id", "IsDeleted": "boolean", "CreatedDate": "datetime", "LastModifiedDate": "datetime",
    "SystemModstamp": "datetime", "CreatedById": "reference", "LastModifiedById": "reference",
    "Name": "string", "Description": "textarea", "Email": "email", "Title": "string", "Type": "picklist",
    "OwnerId": "reference", "AccountId": "reference", "Status": "picklist", "Subject": "combobox",
    "LeadSource": "picklist", "Industry": "picklist", "BillingCountry": "string",
}
BY_OBJECT: dict[str, dict[str, str]] = {
    "Opportunity": {"Amount": "currency", "CloseDate": "date", "Probability": "percent", "StageName": "picklist",
                    "NextStep": "string", "ForecastCategoryName": "picklist", "IsClosed": "boolean",
                    "IsWon": "boolean"},
    "Account": {"NumberOfEmployees": "int", "AnnualRevenue": "currency", "ParentId": "reference"},
    "Task": {"ActivityDate": "date", "CompletedDateTime": "datetime", "CallDurationInSeconds": "int",
             "Priority": "picklist", "TaskSubtype": "picklist", "WhatId": "reference", "WhoId": "reference",
             "Description": "textarea", "CallType": "picklist", "CallDisposition": "string"},
    "Event": {"StartDateTime": "datetime", "EndDateTime": "datetime", "DurationInMinutes": "int",
              "WhatId": "reference", "WhoId": "reference", "EventSubtype": "picklist"},
    "OpportunityHistory": {"Amount": "currency", "CloseDate": "date", "Probability": "percent",
                           "OpportunityId": "reference", "StageName": "picklist"},
    "OpportunityStage": {"DefaultProbability": "percent", "SortOrder": "int"},
}
TOOLING_TYPES = {"Number": "double", "Picklist": "picklist", "MultiselectPicklist": "multipicklist", "DateTime": "datetime", "Text": "string",
                 "LongTextArea": "textarea", "Checkbox": "boolean", "Date": "date", "Currency": "currency"}
READ_ONLY = ("Id", "IsDeleted", "SystemModstamp", "CreatedDate", "LastModifiedDate", "CreatedById", "LastModifiedById")


def field_type(sobject: str, name: str, custom: dict[str, str]) -> str:
    if name in custom:
        return custom[name]
    if name in BY_OBJECT.get(sobject, {}):
        return BY_OBJECT[sobject][name]
    if name in TYPES:
        return TYPES[name]
    if name.startswith("Is"):
        return "boolean"
    if name.endswith("Id"):
        return "reference"
    return "datetime" if name.endswith(("Date", "Modstamp", "DateTime")) else "string"


def describe_field(sobject: str, name: str, custom: dict[str, str], label: str = "",
                   values: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """One entry of the describe's `fields`; picklist values in the real body's shape
    (Opportunity_describe.json: {active, defaultValue, label, validFor, value})."""
    kind = field_type(sobject, name, custom)
    return {"name": name, "label": label or name, "type": kind, "custom": name.endswith("__c"),
            "updateable": name not in READ_ONLY, "nillable": name != "Id",
            "picklistValues": [{"active": True, "defaultValue": False, "label": lab, "validFor": None, "value": v}
                               for v, lab in values or ()],
            "externalId": False, "unique": False, "scale": 2 if kind in ("currency", "double") else 0}
