"""Mapping Salesforce query dicts to the common model: per-org stages, roles and user kinds, malformed input."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from crm_adapters.errors import MalformedRecord
from crm_adapters.model import ActivityType, ContactRole, DealStatus, Direction, UserRole
from crm_adapters.salesforce import _mapping as m

CTX = m.OrgContext(stage_ids={"Discovery": "01J1", "Signed": "01J2", "Dead": "01J3"})


def test_stages_come_from_opportunity_stage_not_names():
    rows = [{"Id": "01J2", "ApiName": "Signed", "MasterLabel": "Signed", "IsActive": True, "SortOrder": 9,
             "IsClosed": True, "IsWon": True, "DefaultProbability": 100},
            {"Id": "01J1", "ApiName": "Discovery", "MasterLabel": "Discovery", "IsActive": True, "SortOrder": 1,
             "IsClosed": False, "IsWon": False, "DefaultProbability": 25.0},
            {"Id": "01J9", "ApiName": "Old", "MasterLabel": "Old", "IsActive": False, "SortOrder": 2}]
    pipeline = m.pipeline_from_stages(rows, m.SalesforceMapping())
    assert [(s.id, s.order, s.probability, s.is_won) for s in pipeline.stages] == [
        ("01J1", 1, 0.25, False), ("01J2", 9, 1.0, True)]


def test_deal_status_from_is_closed_and_is_won():
    base = {"Id": "006A", "Name": "x", "CloseDate": "2026-09-30", "Amount": 1200.5,
            "SystemModstamp": "2026-08-15T09:12:44.000+0000", "CreatedDate": "2026-08-01T00:00:00.000+0000"}
    won = m.deal_from_salesforce({**base, "StageName": "Signed", "IsClosed": True, "IsWon": True}, m.SalesforceMapping(), CTX)
    lost = m.deal_from_salesforce({**base, "StageName": "Dead", "IsClosed": True, "IsWon": False}, m.SalesforceMapping(), CTX)
    open_ = m.deal_from_salesforce({**base, "StageName": "Discovery"}, m.SalesforceMapping(), CTX)
    assert (won.status, won.stage_id, won.closed_at.isoformat()) == (DealStatus.WON, "01J2", "2026-09-30")  # type: ignore[union-attr]
    assert lost.status is DealStatus.LOST and open_.closed_at is None and open_.amount == Decimal("1200.5")
    assert won.remote_updated_at == datetime(2026, 8, 15, 9, 12, 44, tzinfo=UTC)


def test_sdr_field_and_reasons_from_the_org_mapping():
    mapping = m.SalesforceMapping(sdr_field="SDR__c", loss_reason_field="Loss_Reason__c", extra_fields={
        "Opportunity": ("Region__c",)})
    deal = m.deal_from_salesforce({"Id": "006A", "StageName": "Dead", "IsClosed": True, "SDR__c": "005S",
                                   "Loss_Reason__c": "price", "Region__c": "EMEA"}, mapping, CTX)
    assert (deal.sdr_id, deal.loss_reason, dict(deal.custom)) == ("005S", "price", {"region": "EMEA"})


@pytest.mark.parametrize(("raw", "reason"), [
    ({"Id": "006A", "StageName": "Nope"}, "not an OpportunityStage"),
    ({"Id": "006A", "StageName": "Discovery", "Amount": "lots"}, "Amount is not a number"),
    ({"Id": "006A", "StageName": "Discovery", "CloseDate": "someday"}, "CloseDate is not a date"),
    ({"StageName": "Discovery"}, "no Id"),
])
def test_malformed_opportunities_say_why(raw, reason):
    with pytest.raises(MalformedRecord, match=reason):
        m.deal_from_salesforce(raw, m.SalesforceMapping(), CTX)


def test_contact_roles_have_no_standard_champion_and_map_per_org():
    raw = {"Id": "00K1", "OpportunityId": "006A", "ContactId": "003A", "Role": "Business User", "IsPrimary": True}
    assert m.role_from_salesforce(raw, m.SalesforceMapping()).role is ContactRole.OTHER
    mapping = m.SalesforceMapping(contact_roles={**m.DEFAULT_CONTACT_ROLES, "business user": ContactRole.CHAMPION})
    role = m.role_from_salesforce(raw, mapping)
    assert (role.role, role.role_raw, role.is_primary) == (ContactRole.CHAMPION, "Business User", True)
    assert m.role_from_salesforce({**raw, "Role": "Economic Buyer"}, mapping).role is ContactRole.ECONOMIC_BUYER


@pytest.mark.parametrize(("raw", "role"), [
    ({"UserRole": {"Name": "SDR - EMEA"}}, UserRole.SDR),
    ({"Title": "Business Development Manager"}, UserRole.BDM),
    ({"Title": "Account Executive"}, UserRole.AE),
    ({"UserRole": {"Name": "Sales Director"}}, UserRole.MANAGER),
    ({"Profile": {"Name": "Standard User"}}, UserRole.OTHER),
])
def test_user_kind_from_role_title_or_profile(raw, role):
    assert m.user_from_salesforce({"Id": "005A", "Name": "U", **raw}, m.SalesforceMapping()).role is role


def test_task_and_event_become_activities():
    task = m.activity_from_task({"Id": "00T1", "TaskSubtype": "Call", "CallType": "Outbound", "CallDurationInSeconds": 300,
                                 "Subject": "Discovery", "Description": "notes", "Transcript__c": "Rep: hi",
                                 "WhatId": "006A", "What": {"Type": "Opportunity"}, "WhoId": "003A",
                                 "Who": {"Type": "Contact"}, "ActivityDate": "2026-06-01", "Kind__c": "discovery_call"},
                                m.SalesforceMapping(transcript_field="Transcript__c", extra_fields={"Task": ("Kind__c",)}))
    assert (task.type, task.direction, task.duration_s, task.transcript) == (ActivityType.CALL, Direction.OUTBOUND, 300, "Rep: hi")
    assert task.deal_ids == ("006A",) and task.contact_ids == ("003A",) and task.custom == {"kind": "discovery_call"}
    note = m.activity_from_task({"Id": "00T2", "Type": "Note", "CreatedDate": "2026-06-01T00:00:00.000+0000",
                                 "WhatId": "001A", "What": {"Type": "Account"}}, m.SalesforceMapping())
    assert note.type is ActivityType.NOTE and note.deal_ids == () and note.account_id == "001A"
    event = m.activity_from_event({"Id": "00U1", "StartDateTime": "2026-06-01T10:00:00.000+0000",
                                   "EndDateTime": "2026-06-01T10:30:00.000+0000", "DurationInMinutes": 30},
                                  m.SalesforceMapping())
    assert event.type is ActivityType.MEETING and event.duration_s == 1800
    with pytest.raises(MalformedRecord, match="StartDateTime"):
        m.activity_from_event({"Id": "00U2"}, m.SalesforceMapping())
