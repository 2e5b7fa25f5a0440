"""Qualification fields read over HTTP by the real SDK clients: HubSpot deal properties from the fake
HubSpot, into Deal.qualification through the tenant's mapping."""

from __future__ import annotations

import dataclasses

from crm_adapters.hubspot.limiter import LocalLimiter
from crm_adapters.model import Entity
from crm_adapters.qualification import QualificationMapping
from tests.factories import a_deal, a_pipeline
from tests.fakes.hubspot.harness import hubspot_harness

SETTINGS = [{"field": "budget_allocated", "label": "Budget allocated", "item": "budget", "kind": "picklist"},
            {"field": "champion_identified", "label": "Champion identified", "item": "champion", "kind": "checkbox"}]


def test_hubspot_deal_properties_become_qualification_answers() -> None:
    with hubspot_harness(search_per_s=1000) as hs:
        deal = a_deal(stage_id="103")
        hs.seed(pipelines=[a_pipeline()], deals=[deal])
        with hs.fake.lock:
            hs.portal.objects["deals"][int(deal.remote_id)].properties.update(
                {"budget_allocated": "Yes", "champion_identified": "false"})
        mapping = dataclasses.replace(hs.adapter.mapping, qualification=QualificationMapping.from_settings(SETTINGS))
        adapter = hs.make_adapter(limiter=LocalLimiter(search_per_s=1000), mapping=mapping)
        read = [r for b in adapter.read_changes(Entity.DEAL, since=None) for r in b.records]
    answers = {a.label: (a.level, a.claimed) for a in read[0].qualification}
    assert answers == {"Budget allocated": ("Yes", True), "Champion identified": ("No", False)}


def test_salesforce_reads_opportunity_fields_and_the_converted_leads_over_http() -> None:
    from tests.fakes.salesforce.fixtures import adapter_for
    from tests.fakes.salesforce.harness import SalesforceHarness, org_mapping

    sf = SalesforceHarness()
    sf.org.fields["Opportunity"].add("Budget_Allocated__c")
    sf.org.fields["Lead"].add("Authority__c")
    pipeline = a_pipeline()
    deal = a_deal(stage_id="103", sdr_id=None)
    sf.seed(pipelines=[pipeline], deals=[deal])
    sf.org.records["Opportunity"][deal.remote_id]["Budget_Allocated__c"] = "No"
    sf.org.insert("Lead", {"LastName": "Lead", "Company": "Acme", "IsConverted": True, "Authority__c": "High",
                           "ConvertedOpportunityId": deal.remote_id})
    settings = [{"field": "Budget_Allocated__c", "label": "Budget allocated", "item": "budget"},
                {"field": "Authority__c", "label": "Authority", "item": "authority", "source": "lead"}]
    mapping = dataclasses.replace(org_mapping(), qualification=QualificationMapping.from_settings(settings))
    adapter = adapter_for(sf.fake, mapping=mapping)
    read = [r for b in adapter.read_changes(Entity.DEAL, since=None) for r in b.records]
    assert {a.label: a.level for a in read[0].qualification} == {"Budget allocated": "No", "Authority": "High"}


def test_hubspot_multi_select_properties_are_read_as_one_item_per_option() -> None:
    """An enumeration shown as checkboxes holds 'a;b': described as multiselect over the properties API, then
    read as one yes/no answer per option."""
    from crm_adapters.qualification import suggest

    with hubspot_harness(search_per_s=1000) as hs:
        name = hs.define_deal_field("Competitors", "multiselect", ["acme", "globex", "in_house"])
        deal = a_deal(stage_id="103")
        hs.seed(pipelines=[a_pipeline()], deals=[deal])
        with hs.fake.lock:
            hs.portal.objects["deals"][int(deal.remote_id)].properties[name] = "acme;in_house"
        mapping = dataclasses.replace(hs.adapter.mapping, qualification=suggest(hs.adapter.describe_deal_fields()))
        adapter = hs.make_adapter(limiter=LocalLimiter(search_per_s=1000), mapping=mapping)
        read = [r for b in adapter.read_changes(Entity.DEAL, since=None) for r in b.records]
    assert {a.label: a.level for a in read[0].qualification} == {
        "Competitors: acme": "Yes", "Competitors: globex": "No", "Competitors: in_house": "Yes"}


def test_salesforce_multipicklists_on_the_opportunity_and_the_lead_are_one_item_per_option() -> None:
    """Described from the Opportunity and Lead describes (multipicklist with its picklistValues), suggested,
    then read: the Opportunity's 'A;B' and the converted Lead's value each become yes/no answers."""
    from crm_adapters.qualification import suggest
    from tests.fakes.salesforce.fixtures import adapter_for
    from tests.fakes.salesforce.harness import SalesforceHarness, org_mapping

    sf = SalesforceHarness()
    rivals = sf.define_deal_field("Competitors", "multiselect", ["Acme", "Globex"])
    pains = sf.define_deal_field("Pain points", "multiselect", ["Cost", "Speed"], sobject="Lead")
    deal = a_deal(stage_id="103", sdr_id=None)
    sf.seed(pipelines=[a_pipeline()], deals=[deal])
    sf.org.records["Opportunity"][deal.remote_id][rivals] = "Globex"
    sf.org.insert("Lead", {"LastName": "Lead", "Company": "Acme", "IsConverted": True, pains: "Cost;Speed",
                           "ConvertedOpportunityId": deal.remote_id})
    described = adapter_for(sf.fake, mapping=org_mapping()).describe_deal_fields()
    assert [(d.type, d.options, d.source) for d in described if d.name in (rivals, pains)] == [
        ("multiselect", ("Acme", "Globex"), "deal"), ("multiselect", ("Cost", "Speed"), "lead")]
    mapping = dataclasses.replace(org_mapping(), qualification=suggest(described))
    read = [r for b in adapter_for(sf.fake, mapping=mapping).read_changes(Entity.DEAL, since=None) for r in b.records]
    assert {a.label: a.level for a in read[0].qualification} == {
        "Competitors: Acme": "No", "Competitors: Globex": "Yes", "Pain points: Cost": "Yes", "Pain points: Speed": "Yes"}
