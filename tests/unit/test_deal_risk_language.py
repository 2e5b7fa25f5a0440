"""Risk language in call text: the buyer's phrases count, negated ones and the rep's own words do not."""

from __future__ import annotations

import pytest

from jobs.nlp.risk_language import buyer_text, find_risk_language, risk_hits


@pytest.mark.parametrize(("text", "category"), [
    ("We might delay the project.", "delay"),
    ("The budget was cut last week.", "budget"),
    ("Our new CFO wants to look again.", "authority"),
    ("Honestly we are not sure about this.", "hesitation"),
    ("We're talking to another vendor too.", "competitor"),
])
def test_risk_phrases_are_found_with_their_category(text: str, category: str) -> None:
    hits = risk_hits(text)
    assert [h.category for h in hits] == [category]
    assert hits[0].sentence == text


@pytest.mark.parametrize("text", [
    "There is no risk of delay.",
    "We will not postpone this.",
    "We won't delay, the board signed off.",
    "We never had a budget freeze.",
])
def test_negated_risk_phrases_do_not_count(text: str) -> None:
    found = find_risk_language(text)
    assert found and all(h.negated for h in found)
    assert risk_hits(text) == []


def test_negation_does_not_cross_sentences() -> None:
    hits = risk_hits("No. We might delay.")
    assert [h.phrase for h in hits] == ["delay"]


def test_pseudo_negation_keeps_the_risk() -> None:
    hits = risk_hits("Not sure, we may postpone.")
    assert {h.category for h in hits} == {"hesitation", "delay"}


def test_only_the_buyer_lines_of_a_transcript_are_read() -> None:
    transcript = "Rep: Is a budget freeze likely?\nProspect: All good here,\nwe might slip a week.\nRep: Thanks."
    assert buyer_text(transcript) == "All good here,\nwe might slip a week."
    assert [h.phrase for h in risk_hits(transcript)] == ["slip"]


def test_empty_text_has_no_hits() -> None:
    assert risk_hits("") == [] and risk_hits("   ") == []
