"""Extraction edge cases on messy, hand-written notes and transcripts."""

from __future__ import annotations

import pytest

from jobs.nlp import extract, extract_many
from jobs.nlp.speakers import split_turns

TRANSCRIPT = """Rep: Thanks for making time. How do you handle month-end reporting today?
Prospect: Honestly we spend hrs on reprots, copy paste from three tools into Excel.
Prospect: Security is not a problem for us.
Rep: Got it. Who owns the budget for this?
Prospect: Our CFO signs off. Budget is not an issue, we set aside $40k.
Prospect: We also looked at Gong but it was too expensive.
Rep: What's your timeline?
Prospect: I think we need to go live by Q3, maybe sooner.
"""


def test_pains_come_with_their_quoted_sentence_and_speaker() -> None:
    found = extract(TRANSCRIPT)
    reporting = [m for m in found.pains if m.id == "manual_reporting" and m.speaker == "prospect"]
    assert reporting and "reprots" in reporting[0].sentence
    asked = [m for m in found.pains if m.speaker == "rep"]
    assert asked and all(m.in_question and not m.affirmed for m in asked)
    assert TRANSCRIPT[reporting[0].start:reporting[0].end] == reporting[0].span


def test_typo_and_shorthand_still_match() -> None:
    assert "manual_reporting" in extract("Prospect: we waste hrs on reprots every week").pain_ids()
    assert "compliance_risk" in extract("worried about complaince with the new regs").pain_ids()


def test_negated_pain_is_kept_but_not_affirmed() -> None:
    found = extract(TRANSCRIPT)
    security = [m for m in found.pains if m.id == "security_concerns"]
    assert security and security[0].negated
    assert "security_concerns" not in found.pain_ids()


@pytest.mark.parametrize(("text", "status"), [
    ("Budget is not an issue.", "confirmed"),
    ("There is no budget for this.", "absent"),
    ("We don't have the budget this year.", "absent"),
    ("Budget approved, $50k set aside.", "confirmed"),
    ("Budget is tight right now.", "absent"),
    ("Money isn't a problem.", "confirmed"),
    ("Budget: not confirmed.", "absent"),
    ("No budget issues on our side.", "confirmed"),
    ("Budget is frozen until January.", "absent"),
    ("We talked about the weather.", "unknown"),
])
def test_budget_statements_read_the_right_way_round(text: str, status: str) -> None:
    assert extract(text).budget_status() == status


def test_budget_amount_is_captured() -> None:
    found = extract(TRANSCRIPT)
    assert any(m.value == "$40k" for m in found.budget)


def test_hedged_statements_are_marked_and_can_be_excluded() -> None:
    found = extract("Prospect: I think compliance might be a concern. We spend days on manual reporting.")
    by_id = {m.id: m for m in found.pains}
    assert by_id["compliance_risk"].hedged
    assert not by_id["manual_reporting"].hedged
    assert found.pain_ids(include_hedged=False) == {"manual_reporting"}


def test_hedged_budget_does_not_set_the_status() -> None:
    assert extract("Maybe there is budget, not sure.").budget_status() == "unknown"


def test_absence_phrases_state_the_pain_only_when_negated() -> None:
    assert "poor_visibility" in extract("Prospect: we have zero visibility into the pipeline").pain_ids()
    assert "poor_visibility" not in extract("Prospect: we have great visibility already").pain_ids()
    assert "data_silos" in extract("nobody trusts a single source of truth").pain_ids()
    assert "poor_visibility" in extract("Prospect: visibility is a real problem for us").pain_ids()
    assert "poor_visibility" not in extract("Prospect: visibility is not a problem").pain_ids()


def test_post_negation_words() -> None:
    assert "economic_buyer" not in extract("Economic buyer unknown at this point.").meddic_ids()
    assert "economic_buyer" in extract("Economic buyer is the CFO.").meddic_ids()


def test_rep_pitch_is_not_a_buyer_pain() -> None:
    found = extract("Rep: our audit trail is the key difference.\nProspect: sounds good.")
    assert found.pain_ids() == set()
    assert found.pain_ids(speakers=("rep",)) == {"compliance_risk"}


def test_pseudo_negation_does_not_negate() -> None:
    found = extract("Prospect: no doubt our data silos are the biggest headache.")
    assert "data_silos" in found.pain_ids()


def test_negation_does_not_cross_a_clause() -> None:
    found = extract("Prospect: we have no issue with security, but compliance audits scare us.")
    assert "compliance_risk" in found.pain_ids()


def test_rep_leading_question_is_not_a_confirmed_pain() -> None:
    found = extract("Rep: Are you struggling with data silos?\nProspect: Not really, we are fine.")
    assert "data_silos" not in found.pain_ids()
    assert any(m.id == "data_silos" and m.in_question for m in found.pains)


def test_questions_only_count_when_the_rep_asks() -> None:
    found = extract(TRANSCRIPT)
    assert {"current_process", "budget_owner", "timeline"} <= found.question_ids()
    prospect_asks = extract("Prospect: who owns the budget? that's a good question.")
    assert prospect_asks.question_ids() == set()


def test_sdr_notes_without_speakers_count_asked_about_lines() -> None:
    notes = "Asked about budget owner - CFO. asked about timeline: end of quarter. Pain: data silos."
    found = extract(notes)
    assert {"budget_owner", "timeline"} <= found.question_ids()
    assert found.pain_ids() == {"data_silos"}
    assert found.timeline_status() == "set"


def test_competitors_and_objections_by_speaker() -> None:
    found = extract(TRANSCRIPT)
    assert "gong" in found.competitor_ids()
    assert "price" in found.objection_ids()
    rep_says = extract("Rep: some teams say it's too expensive at first")
    assert rep_says.objection_ids() == set()


def test_negated_objection() -> None:
    found = extract("Prospect: honestly it's not too expensive, the question is timing.")
    price = [m for m in found.objections if m.id == "price"]
    assert price and price[0].negated


def test_meddic_elements_and_negated_economic_buyer() -> None:
    found = extract(TRANSCRIPT)
    assert {"economic_buyer", "identify_pain"} <= found.meddic_ids()
    missing = extract("We haven't identified the economic buyer yet.")
    assert "economic_buyer" not in missing.meddic_ids()


def test_timeline_none_and_relative_timelines() -> None:
    assert extract("No rush on our side, maybe next year.").timeline_status() == "none"
    assert extract("Prospect: we need this live within 6 weeks.").timeline_status() == "set"


def test_speaker_lines_with_names_timestamps_and_continuations() -> None:
    turns = split_turns("[00:01] Rep (Sam): hi there\nProspect - Dana Lee: we use Excel\nfor everything\nSDR notes: x")
    assert [t.speaker for t in turns] == ["rep", "prospect"]
    assert "for everything" in turns[1].text and "SDR notes" in turns[1].text


def test_speaker_unaware_mode_treats_labels_as_text() -> None:
    found = extract("Rep: is it too expensive?", speaker_aware=False)
    assert all(m.speaker is None for m in found.all())


def test_empty_and_bad_input() -> None:
    assert extract("").all() == []
    with pytest.raises(TypeError):
        extract(None)  # type: ignore[arg-type]


def test_extract_many_matches_extract() -> None:
    texts = [TRANSCRIPT, "There is no budget."]
    assert extract_many(texts) == [extract(t) for t in texts]


def test_buyer_answers_to_a_pain_check_confirm_or_deny_it() -> None:
    found = extract("Rep: I understood they are worried about failing the next audit. Is that right?\n"
                    "Prospect: Not really, no.\n"
                    "Rep: And your data lives in five systems that don't talk to each other?\n"
                    "Prospect: Yes, exactly.\n"
                    "Rep: Reporting by hand too?\nProspect: Hmm, let me think.")
    assert found.denied_pain_ids() == {"compliance_risk"}
    assert found.pain_ids() == {"data_silos"}
    denied = next(m for m in found.pains if m.value == "denied")
    assert denied.speaker == "prospect" and denied.sentence == "Not really, no."
