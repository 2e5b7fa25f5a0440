"""Qualification fields: the tenant's mapping (checked with every problem at once), the suggestion from
field names and picklist values, and both CRMs' mappers reading them into Deal.qualification."""

from __future__ import annotations

import pytest

from crm_adapters.hubspot import _mapping as hs
from crm_adapters.model import QualificationAnswer, Stage
from crm_adapters.port import FieldDescription
from crm_adapters.qualification import (
    QualificationMapping,
    QualificationMappingError,
    describes_to_settings,
    suggest,
)
from crm_adapters.salesforce import _mapping as sf

SETTINGS = [
    {"field": "budget_allocated", "label": "Budget allocated", "item": "budget", "kind": "picklist"},
    {"field": "champion_identified", "label": "Champion identified", "item": "champion", "kind": "checkbox"},
    {"field": "meddic_score", "label": "MEDDIC score", "item": "score", "kind": "number"},
    {"field": "budget_verified", "label": "Budget verified", "item": "budget", "kind": "picklist", "stage": "discovery"},
]


def test_the_mapping_reads_picklists_checkboxes_numbers_and_empty_as_unknown() -> None:
    mapping = QualificationMapping.from_settings(SETTINGS)
    answers = {a.label: a for a in mapping.values({"budget_allocated": "Yes", "champion_identified": "false",
                                                   "meddic_score": "4.0", "budget_verified": ""})}
    assert answers["Budget allocated"] == QualificationAnswer(label="Budget allocated", level="Yes", item="budget",
                                                              claimed=True)
    assert answers["Champion identified"].level == "No" and not answers["Champion identified"].claimed
    assert answers["MEDDIC score"].level == "4" and answers["MEDDIC score"].claimed
    assert answers["Budget verified"].level == "unknown" and answers["Budget verified"].stage == "discovery"
    assert mapping.names() == ["budget_allocated", "champion_identified", "meddic_score", "budget_verified"]


def test_a_bad_mapping_lists_every_problem() -> None:
    with pytest.raises(QualificationMappingError) as caught:
        QualificationMapping.from_settings([
            {"field": "", "item": "budget"}, {"field": "a", "item": "vibes", "kind": "dropdown"},
            {"field": "b", "item": "budget", "source": "account", "colour": 1}, "x",
            {"field": "c", "label": "Same", "item": "need"}, {"field": "d", "label": "Same", "item": "need"}])
    problems = "\n".join(caught.value.problems)
    for expected in ("field #1 needs the CRM field's API name", "item 'vibes' is not one of",
                     "kind 'dropdown' is not one of picklist, checkbox, number", "source 'account' is not one of deal, lead",
                     "unknown key 'colour'", "field #4 must be a table", "two fields are shown as 'Same'"):
        assert expected in problems
    with pytest.raises(QualificationMappingError, match="must be a list"):
        QualificationMapping.from_settings({"budget": "x"})


def test_the_stored_mapping_round_trips() -> None:
    mapping = QualificationMapping.from_settings(SETTINGS)
    assert QualificationMapping.from_settings(mapping.to_settings()) == mapping


def test_the_suggestion_comes_from_names_and_picklist_values() -> None:
    described = [
        FieldDescription("budget_allocated", "Budget allocated?", "picklist", ("Yes", "No", "Unknown")),
        FieldDescription("Economic_Buyer__c", "Economic Buyer", "checkbox"),
        FieldDescription("x_status", "Buying status", "picklist", ("Champion identified", "None")),
        FieldDescription("Competitors__c", "Competitors", "multiselect", ("Acme", "Globex")),
        FieldDescription("Budget_Verified_By_AE__c", "Budget verified by AE", "picklist", ("Yes", "No")),
        FieldDescription("Budget__c", "Budget allocated?", "picklist", ("Yes", "No"), source="lead"),
        FieldDescription("dealname", "Deal name", "text"),
        FieldDescription("colour", "Colour", "picklist", ("Red", "Blue")),
        FieldDescription("salesloop_risk_level", "Risk level (salesloop)", "picklist", ("low", "high")),
    ]
    mapping = suggest(described)
    by_field = {f.field: f for f in mapping.fields}
    assert set(by_field) == {"budget_allocated", "Economic_Buyer__c", "x_status", "Competitors__c",
                             "Budget_Verified_By_AE__c", "Budget__c"}
    assert by_field["Economic_Buyer__c"].item == "economic_buyer" and by_field["Economic_Buyer__c"].kind == "checkbox"
    assert by_field["x_status"].item == "champion" and by_field["Competitors__c"].item == "competition"
    assert by_field["Competitors__c"].kind == "multiselect" and by_field["Competitors__c"].options == ("Acme", "Globex")
    assert by_field["Budget_Verified_By_AE__c"].stage == "discovery" and by_field["budget_allocated"].stage == "sdr"
    assert by_field["Budget__c"].source == "lead" and by_field["Budget__c"].label == "Budget allocated? (lead)"
    assert QualificationMapping.from_settings(mapping.to_settings()) == mapping  # what the admin confirms validates


MULTI = [{"field": "competitors", "label": "Competitors", "item": "competition", "kind": "multiselect",
          "options": ["Acme", "Globex", "In-house"]}]


def test_a_multi_select_field_is_one_yes_no_item_per_option() -> None:
    mapping = QualificationMapping.from_settings(MULTI)
    answers = {a.label: (a.level, a.claimed) for a in mapping.values({"competitors": "Acme;In-house"})}
    assert answers == {"Competitors: Acme": ("Yes", True), "Competitors: Globex": ("No", False),
                       "Competitors: In-house": ("Yes", True)}
    assert {a.level for a in mapping.values({"competitors": ""})} == {"unknown"}
    assert {a.level for a in mapping.values({"competitors": "Globex"})} == {"Yes", "No"}


def test_a_multi_select_field_needs_its_options_and_round_trips() -> None:
    with pytest.raises(QualificationMappingError) as caught:
        QualificationMapping.from_settings([{"field": "c", "item": "competition", "kind": "multiselect"},
                                            {"field": "d", "item": "budget", "options": ["Yes"]}])
    assert "c): a multiselect field needs its options" in caught.value.problems[0]
    assert "d): options are only for a multiselect field" in caught.value.problems[1]
    mapping = QualificationMapping.from_settings(MULTI)
    assert QualificationMapping.from_settings(mapping.to_settings()) == mapping
    with pytest.raises(QualificationMappingError, match="option_labels must name each option once"):
        QualificationMapping.from_settings([{**MULTI[0], "option_labels": ["Acme Corp"]}])


def test_multi_select_answers_read_as_the_crm_shows_the_options() -> None:
    """Stored values stay what the record holds ('acme'); people read the CRM's labels ('Acme Corp')."""
    spec = {**MULTI[0], "options": ["acme", "globex"], "option_labels": ["Acme Corp", "Globex Inc."]}
    mapping = QualificationMapping.from_settings([spec])
    assert {a.label: a.level for a in mapping.values({"competitors": "acme"})} == {
        "Competitors: Acme Corp": "Yes", "Competitors: Globex Inc.": "No"}
    assert mapping.to_settings()[0]["option_labels"] == ["Acme Corp", "Globex Inc."]
    same = QualificationMapping.from_settings([{**MULTI[0], "option_labels": MULTI[0]["options"]}])
    assert "option_labels" not in same.to_settings()[0]  # labels equal to the values are not stored twice


def test_both_crms_describe_options_with_their_labels() -> None:
    hs_field = hs.field_from_property({"name": "competitors", "label": "Competitors", "type": "enumeration",
                                       "fieldType": "checkbox", "options": [
                                           {"value": "acme", "label": "Acme Corp"},
                                           {"value": "old", "label": "Old", "hidden": True},
                                           {"value": "globex", "label": "Globex Inc."}]})
    assert (hs_field.options, hs_field.option_labels) == (("acme", "globex"), ("Acme Corp", "Globex Inc."))
    sf_field = sf.field_from_describe({"name": "Competitors__c", "label": "Competitors", "type": "multipicklist",
                                       "picklistValues": [{"value": "acme", "label": "Acme Corp", "active": True},
                                                          {"value": "x", "label": "X", "active": False}]}, "deal")
    assert (sf_field.options, sf_field.option_labels) == (("acme",), ("Acme Corp",))
    suggested = suggest([hs_field]).to_settings()[0]
    assert suggested["options"] == ["acme", "globex"] and suggested["option_labels"] == ["Acme Corp", "Globex Inc."]
    kept = describes_to_settings([hs_field, FieldDescription("dealname", "Deal name", "text")])
    assert kept == [{"field": "competitors", "label": "Competitors", "kind": "multiselect", "source": "deal",
                     "options": ["acme", "globex"], "option_labels": ["Acme Corp", "Globex Inc."]}]


def test_hubspot_reads_mapped_deal_properties() -> None:
    mapping = hs.HubSpotMapping(qualification=QualificationMapping.from_settings(SETTINGS))
    assert "budget_allocated" in mapping.deal_properties()
    obj = {"id": "9", "properties": {"dealname": "x", "dealstage": "appointmentscheduled", "pipeline": "default",
                                     "budget_allocated": "No", "champion_identified": "true"}}
    deal = hs.deal_from_hubspot(obj, stages={("default", "appointmentscheduled"): Stage(
        id="appointmentscheduled", label="A", order=1, probability=0.2, is_closed=False, is_won=False)}, mapping=mapping)
    levels = {a.label: a.level for a in deal.qualification}
    assert levels == {"Budget allocated": "No", "Champion identified": "Yes", "MEDDIC score": "unknown",
                      "Budget verified": "unknown"}


def test_salesforce_reads_opportunity_fields_and_the_converted_leads() -> None:
    settings = [{"field": "Budget_Allocated__c", "label": "Budget allocated", "item": "budget"},
                {"field": "Authority__c", "label": "Authority", "item": "authority", "source": "lead"}]
    mapping = sf.SalesforceMapping(qualification=QualificationMapping.from_settings(settings))
    assert "Budget_Allocated__c" in mapping.extras("Opportunity") and mapping.extras("Lead") == ("Authority__c",)
    ctx = sf.OrgContext(stage_ids={"Discovery": "01J1"}, lead_by_opportunity={"006A": {"Authority__c": "High"}})
    raw = {"Id": "006A", "Name": "x", "StageName": "Discovery", "Budget_Allocated__c": "Yes",
           "SystemModstamp": "2026-05-01T10:00:00.000+0000"}
    deal = sf.deal_from_salesforce(raw, mapping, ctx)
    assert {a.label: a.level for a in deal.qualification} == {"Budget allocated": "Yes", "Authority": "High"}
    assert "budget_allocated" not in deal.custom
