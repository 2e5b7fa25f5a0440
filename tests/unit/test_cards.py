"""The card presenter: plain section dicts in, a small view model out."""

from __future__ import annotations

import json

from ui_extensions.cards import card_view

RISK = {"score": 81.6, "level": "high", "scale": {"base": 0.6}, "chance_text": "Win chance 18%, typical for deals in Proposal 41%",
        "next_move": {"code": "multi_thread", "text": "Book a call with the CFO"},
        "reasons": [{"code": "champion_quiet", "text": "Champion silent for 21 days", "evidence": ["last reply 2026-05-10"]},
                    {"code": "close_date_pushed", "text": "Close date pushed twice", "evidence": "2026-04-30 -> 2026-06-30"},
                    {"code": "single_threaded", "text": "No economic buyer", "evidence": []},
                    {"code": "stalled_in_stage", "text": "Stalled 40 days in negotiation"}]}
OBJECTIONS = {"objections": {"price": {"answered_with": ["roi_case"], "recommended": "roi_case",
                                       "best": [{"strategy": "roi_case", "n": 14, "k": 9, "mean": 0.62, "lo": 0.41, "hi": 0.8,
                                                 "verdict": "better"}]},
                             "timing": {"answered_with": [], "recommended": None,
                                        "best": [{"strategy": None, "verdict": "too_few", "n": 2, "min_n": 8}]}}}
DISCOVERY = {"questions": [{"question": "budget_owner", "lift": 0.18, "asked_progress": 0.7}], "asked": ["timeline"]}


def test_risk_section_shows_score_level_top_reasons_and_next_move() -> None:
    view = card_view({"risk": RISK}, deal_id="d1")
    risk = view["risk"]
    assert (risk["score"], risk["level"], risk["level_label"], risk["tone"]) == (82, "high", "High", "danger")
    assert [r["code"] for r in risk["reasons"]] == ["champion_quiet", "close_date_pushed", "single_threaded"]
    assert risk["reasons"][1]["evidence"] == ["2026-04-30 -> 2026-06-30"]
    assert risk["next_move"] == "Book a call with the CFO"
    assert risk["chance"] == "Win chance 18%, typical for deals in Proposal 41%"
    assert view["empty"] is False and view["message"] == ""


def test_level_comes_from_the_score_on_the_tenant_scale_never_from_a_stale_label() -> None:
    """Base loss rate 60%: Medium above 60, High from 75 (odds of losing twice the typical deal's)."""
    def level(score: float, stored: str) -> str:
        return card_view({"risk": {"score": score, "level": stored, "scale": {"base": 0.6}}}, deal_id="d")["risk"]["level"]
    assert [level(s, "low") for s in (60, 61, 74, 75)] == ["low", "medium", "medium", "high"]
    assert level(67, "low") == "medium"  # a stored label that contradicts its score is not shown
    assert card_view({"risk": {"score": 140}}, deal_id="d")["risk"]["level"] == "high"
    assert card_view({"risk": {"score": -3}}, deal_id="d")["risk"]["score"] == 0
    assert card_view({"risk": {"score": 30}}, deal_id="d")["risk"]["chance"] == "Win chance 70%"


def test_address_the_concern_names_the_response_the_cards_table_ranks_first() -> None:
    risk = {**RISK, "next_move": {"id": "address_concern", "text": "Call to address the concern they raised, with ..."}}
    view = card_view({"risk": risk, "objections": OBJECTIONS}, deal_id="d")
    assert view["objections"][0]["responses"][0]["label"] == "ROI case"
    assert view["risk"]["next_move"].startswith("Call to address their price concern: lead with ROI case")


def test_objections_show_the_best_responses_with_their_win_rates() -> None:
    [price, timing] = card_view({"objections": OBJECTIONS}, deal_id="d")["objections"]
    assert price["label"] == "Price" and price["recommended"] == "ROI case"
    assert price["responses"] == [{"strategy": "roi_case", "label": "ROI case", "win_rate": "62%", "range": "41%–80%",
                                   "n": 14, "verdict": "better"}]
    assert timing["responses"] == []  # too few deals to rank: no fake ranking


def test_discovery_questions_are_labelled() -> None:
    view = card_view({"discovery": DISCOVERY}, deal_id="d")
    assert view["discovery"] == {"questions": [{"id": "budget_owner", "text": "Budget owner", "lift": "+18%"}],
                                 "asked": ["Timeline"]}


def test_an_unscored_deal_says_so() -> None:
    view = card_view(None, deal_id="d")
    assert view["empty"] is True and "not scored" in view["message"]


def test_broken_sections_are_skipped_not_fatal() -> None:
    view = card_view({"risk": {"score": "n/a"}, "objections": ["x"], "discovery": {"questions": "x"}, "handoff": 3,
                      "unknown": {"a": 1}}, deal_id="d")
    assert view["empty"] is True


def test_approvals_only_for_managers() -> None:
    proposals = [{"id": "p1", "title": "Add budget_owner to the framework", "loop": "discovery",
                  "diff": [{"op": "add", "field": "ask", "value": "budget_owner"}], "created_at": "2026-06-01"}]
    assert card_view({"risk": RISK}, deal_id="d", proposals=proposals)["approvals"] == []
    manager = card_view({"risk": RISK}, deal_id="d", proposals=proposals, viewer_is_manager=True)
    assert manager["approvals"] == [{"id": "p1", "title": "Add budget_owner to the framework", "loop": "Discovery questions",
                                     "created_at": "1 Jun 2026", "changes": ["Ask: add Budget owner"]}]


def test_handoff_post_mortem_shows_flat_facts() -> None:
    view = card_view({"handoff": {"summary": "SDR pain matched discovery", "pain_alignment": 0.75,
                                  "sdr_pains": ["manual_reporting", "data_silos"], "nested": {"x": 1}}}, deal_id="d")
    assert view["handoff"] == {"summary": "SDR pain matched discovery", "facts": [
        {"label": "Pain alignment", "value": "0.75"}, {"label": "SDR pains", "value": "Manual reporting, Data silos"}]}


def test_a_huge_payload_gives_a_small_view() -> None:
    big = {"risk": {**RISK, "reasons": [{"code": "x", "text": "t" * 100_000, "evidence": ["e" * 10_000] * 50}] * 500},
           "objections": {"objections": {f"o{i}": OBJECTIONS["objections"]["price"] for i in range(500)}},
           "discovery": {"questions": [{"question": "q" * 5000, "lift": 0.1}] * 500, "asked": ["a"] * 500}}
    proposals = [{"id": str(i), "title": "t" * 10_000, "diff": [{"op": "add", "field": "f", "value": "v" * 9000}] * 50}
                 for i in range(500)]
    size = len(json.dumps(card_view(big, deal_id="d", proposals=proposals, viewer_is_manager=True)))
    assert size < 64_000


def test_evidence_the_reason_already_says_is_not_repeated_under_it() -> None:
    reason = {"code": "stage", "text": "Stage Qualification: past deals like this were lost more often",
              "evidence": ["Stage Qualification", "12 of 15 such deals lost"]}
    view = card_view({"risk": {**RISK, "reasons": [reason]}}, deal_id="d1")
    assert view["risk"]["reasons"][0]["evidence"] == ["12 of 15 such deals lost"]


def test_a_pending_approval_names_its_loop_in_words() -> None:
    view = card_view({"risk": RISK}, deal_id="d1", viewer_is_manager=True,
                     proposals=[{"id": "p1", "title": "Require a champion", "loop": "handoff"}])
    assert [p["loop"] for p in view["approvals"]] == ["SDR to BDM handoff"]
