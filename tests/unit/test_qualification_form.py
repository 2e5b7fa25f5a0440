"""The Loops page's qualification rows: plain-word choices in, the stored mapping out (checked by the one
parser), every problem naming its row; a field the CRM described fills in what the row leaves blank."""

from __future__ import annotations

import json

import pytest

from connector.admin import qualification_form as qf
from crm_adapters.qualification import ITEMS, QualificationMapping, QualificationMappingError
from jobs.loops.labels import plain_problems

DESCRIBED = [{"field": "Competitors__c", "label": "Competitors", "kind": "multiselect", "source": "deal",
              "options": ["acme", "globex"], "option_labels": ["Acme Corp", "Globex Inc."]},
             {"field": "Budget__c", "label": "Budget allocated", "kind": "picklist", "source": "lead",
              "options": ["Yes", "No"], "option_labels": ["Yes", "No"]}]


def _form(*rows: dict[str, str]) -> dict[str, str]:
    out = {"q_count": str(len(rows))}
    for i, row in enumerate(rows):
        out.update({f"q_{k}_{i}": v for k, v in row.items()})
    return out


def test_every_choice_reads_in_plain_words() -> None:
    words = qf.choices()
    assert set(words["items"]) == {*ITEMS, "other"}
    assert words["items"]["economic_buyer"] == "Economic buyer identified" and words["items"]["identify_pain"] == "Pain named"
    assert words["stages"] == {"sdr": "by the SDR before handoff", "discovery": "by the BDM in discovery"}
    assert not [p for group in words.values() for text in group.values() for p in plain_problems(text)]


def test_rows_become_the_stored_mapping_and_come_back() -> None:
    form = _form({"field": "Economic_Buyer__c", "label": "Economic buyer", "item": "economic_buyer", "kind": "checkbox",
                  "source": "deal", "stage": "discovery"},
                 {"field": "Old__c", "label": "Old", "item": "need", "kind": "checkbox", "remove": "1"},
                 {"new": "1", "field": "Competitors__c", "item": "competition"},
                 {"new": "1"})
    rows = qf.rows_from_form(form, DESCRIBED)
    saved = qf.to_settings(rows)
    assert saved == [
        {"field": "Economic_Buyer__c", "label": "Economic buyer", "item": "economic_buyer", "kind": "checkbox",
         "source": "deal", "stage": "discovery"},
        {"field": "Competitors__c", "label": "Competitors", "item": "competition", "kind": "multiselect", "source": "deal",
         "stage": "sdr", "options": ["acme", "globex"], "option_labels": ["Acme Corp", "Globex Inc."]}]
    shown = qf.rows_from_settings(saved)
    assert [r.name for r in shown] == ["Economic buyer", "Competitors"]
    assert shown[1].shown_options == ("Acme Corp", "Globex Inc.")
    assert json.loads(shown[1].options_json) == [["acme", "Acme Corp"], ["globex", "Globex Inc."]]
    again = qf.rows_from_form(_form(*[{"field": r.field, "label": r.label, "item": r.item, "kind": r.kind,
                                       "source": r.source, "stage": r.stage, "options": r.options_json} for r in shown]))
    assert qf.to_settings(again) == saved
    assert [r.field for r in qf.described_fields(DESCRIBED, shown)] == ["Budget__c"]


def test_a_new_row_takes_where_the_crm_keeps_the_field_and_typed_choices() -> None:
    rows = qf.rows_from_form(_form({"new": "1", "field": "Budget__c", "item": "budget"},
                                   {"new": "1", "field": "Rivals__c", "item": "competition", "kind": "multiselect",
                                    "options_text": "Acme | Globex |"}), DESCRIBED)
    mapping = QualificationMapping.from_settings(qf.to_settings(rows))
    assert [(f.field, f.source, f.kind, f.options) for f in mapping.fields] == [
        ("Budget__c", "lead", "picklist", ()), ("Rivals__c", "deal", "multiselect", ("Acme", "Globex"))]


def test_each_problem_names_its_row_in_plain_words() -> None:
    form = _form({"field": "A__c", "label": "Budget", "item": "budget", "kind": "picklist"},
                 {"new": "1", "field": "Mystery__c", "item": ""},
                 {"new": "1", "label": "No name", "item": "need", "kind": "checkbox"},
                 {"field": "C__c", "label": "Rivals", "item": "competition", "kind": "multiselect"})
    with pytest.raises(QualificationMappingError) as caught:
        qf.to_settings(qf.rows_from_form(form, DESCRIBED))
    assert caught.value.problems == (
        "Row 2 (Mystery__c): choose what the field tells.",
        "Row 2 (Mystery__c): choose what kind of field it is (the CRM has not described it).",
        "Row 3 (No name): type the CRM field's API name, or pick a field from the list.",
        "Row 4 (Rivals): list its choices, separated by |.")


def test_the_same_field_twice_is_refused_by_the_one_parser() -> None:
    form = _form({"field": "A__c", "label": "Budget", "item": "budget", "kind": "picklist"},
                 {"field": "A__c", "label": "Budget again", "item": "budget", "kind": "picklist"})
    with pytest.raises(QualificationMappingError) as caught:
        qf.to_settings(qf.rows_from_form(form))
    assert caught.value.problems == ("the CRM field A__c on the deal is mapped twice",)


def test_a_tampered_row_count_is_bounded() -> None:
    assert qf.rows_from_form({"q_count": "10**9"}) == [] and qf.rows_from_form({"q_count": "999999999"}) == []
