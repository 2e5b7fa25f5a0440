"""What real HubSpot enforces that the fake reproduces, each rule next to its source.

Sources: ../shared/research/hubspot.md (section numbers below) and HubSpot's documentation
(https://developers.hubspot.com/docs/...). Kept apart from the routes so the strictness is
one readable table.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

APP_CONFIG = Path(__file__).resolve().parents[3] / "ui_extensions" / "hubspot" / "src" / "app" / "app-hsmeta.json"

# A list call (or a get / batch read) without `properties=` returns a default set per object, with
# null for properties that hold no value ("properties": {"amount": null, ...}).
# Source: research §4.1 ("SimplePublicObject{id, properties, ...}", all values strings or null) and
# https://developers.hubspot.com/docs/api-reference/latest/crm/using-object-apis ("If no properties
# are specified, a default set of properties is returned").
DEFAULT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "deals": ("amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate", "hs_object_id",
              "pipeline"),
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
    "calls": ("createdate", "hs_call_title", "hs_lastmodifieddate", "hs_object_id", "hs_timestamp"),
    "emails": ("createdate", "hs_email_subject", "hs_lastmodifieddate", "hs_object_id", "hs_timestamp"),
    "meetings": ("createdate", "hs_lastmodifieddate", "hs_meeting_title", "hs_object_id", "hs_timestamp"),
    "notes": ("createdate", "hs_lastmodifieddate", "hs_note_body", "hs_object_id", "hs_timestamp"),
    "tasks": ("createdate", "hs_lastmodifieddate", "hs_object_id", "hs_task_status", "hs_task_subject",
              "hs_timestamp"),
}

# HubSpot-defined properties per object (the ones this app and its tests touch). A write naming any
# other property that the portal has not defined is refused: 400 VALIDATION_ERROR, error
# PROPERTY_DOESNT_EXIST (research §4.9 standard error body; the "Property values were not valid"
# message with per-property `error` codes is HubSpot's, see HubSpot/hubspot-api-ruby#121 for the body shape).
_COMMON = ("createdate", "hs_lastmodifieddate", "hs_object_id", "hubspot_owner_id", "hs_timestamp")
HUBSPOT_DEFINED: dict[str, frozenset[str]] = {otype: frozenset(props) | frozenset(_COMMON) for otype, props in {
    "deals": ("amount", "closedate", "dealname", "dealstage", "pipeline", "closed_lost_reason", "closed_won_reason",
              "hs_next_step", "hs_analytics_source", "dealtype", "deal_currency_code", "hs_is_closed",
              "hs_is_closed_won", "hs_deal_stage_probability", "description"),
    "companies": ("name", "domain", "industry", "numberofemployees", "annualrevenue", "country", "city"),
    "contacts": ("firstname", "lastname", "email", "jobtitle", "associatedcompanyid", "lastmodifieddate", "phone"),
    "calls": ("hs_call_title", "hs_call_body", "hs_call_direction", "hs_call_duration", "hs_call_disposition",
              "hs_call_status"),
    "emails": ("hs_email_subject", "hs_email_text", "hs_email_html", "hs_email_direction", "hs_email_status"),
    "meetings": ("hs_meeting_title", "hs_meeting_body", "hs_internal_meeting_notes", "hs_meeting_start_time",
                 "hs_meeting_end_time", "hs_meeting_outcome"),
    "notes": ("hs_note_body",),
    "tasks": ("hs_task_subject", "hs_task_body", "hs_task_status", "hs_task_priority", "hs_task_type",
              "hs_task_completion_date", "hs_task_reminders"),
}.items()}

# Scopes per operation (research §1.2, from the OpenAPI `security` blocks): each request needs ONE of
# the listed scopes, else 403 MISSING_SCOPES. Engagements (calls, emails, meetings, notes, tasks) are
# gated on the contacts scopes or their granular object scopes; email *content* needs sales-email-read.
ENGAGEMENTS = ("calls", "emails", "meetings", "notes", "tasks")
SCHEMA_OWNER = {"deals": "deals", "companies": "companies", "contacts": "contacts"}
EMAIL_CONTENT = frozenset({"hs_email_text", "hs_email_html"})


def object_scopes(otype: str, write: bool) -> tuple[str, ...]:
    """Scopes that allow reading (or writing) objects of `otype`."""
    verb = "write" if write else "read"
    if otype in ENGAGEMENTS:
        return (f"crm.objects.contacts.{verb}", f"crm.objects.{otype}.{verb}")
    return (f"crm.objects.{otype}.{verb}",)


def schema_scopes(otype: str, write: bool) -> tuple[str, ...]:
    """Scopes for the properties API of `otype`: reading takes the object's read scope too (research §1.2)."""
    owner = SCHEMA_OWNER.get(otype)
    if owner is None:  # engagement properties: the contacts scopes gate engagements (research §1.2) [verify]
        return ("crm.schemas.contacts.write", "crm.objects.contacts.write") if write else \
            ("crm.schemas.contacts.read", *object_scopes(otype, False))
    if write:
        return (f"crm.schemas.{owner}.write",)
    return (f"crm.schemas.{owner}.read", *object_scopes(otype, False))


def missing_scopes_body(needed: tuple[str, ...]) -> dict[str, Any]:
    """HubSpot's 403 for a call the token's scopes do not cover (research §6.9, §7.2 "repeated 403s for missing
    scopes")."""
    return {"message": "This app hasn't been granted all required scopes to make this call.",
            "errors": [{"message": "One or more of the following scopes are required.",
                        "context": {"requiredGranularScopes": list(needed)}}]}


@cache
def app_scopes() -> tuple[str, ...]:
    """The scopes the app declares in its install config (the HubSpot project's app-hsmeta.json)."""
    auth = json.loads(APP_CONFIG.read_text())["config"]["auth"]
    return tuple(auth["requiredScopes"]) + tuple(auth.get("optionalScopes", []))
