"""Objection library: the planted best answer, nothing on noise, small samples said so, tenant phrases."""

from __future__ import annotations

import random
from datetime import timedelta

from crm_adapters.model import ActivityType, Direction
from crm_adapters.snapshot import Snapshot
from jobs.loops import objections
from jobs.loops.decision import ActionKind
from jobs.loops.stats import TOO_FEW
from jobs.nlp.responses import OTHER, classify_response
from tests.factories import T0, a_deal, a_pipeline, a_stage_change, an_activity
from tests.unit.loop_worlds import NOW, OBJECTION_LINES, RESPONSE_LINES, objection_world


def _proposals(decisions):  # type: ignore[no-untyped-def]
    return [d for d in decisions if d.kind is ActionKind.PROPOSE_PLAYBOOK_CHANGE]


def test_response_taxonomy_classifies_rep_lines() -> None:
    for strategy, line in RESPONSE_LINES.items():
        assert classify_response(line) == strategy
    assert classify_response("Rep: The weather is lovely.") == OTHER


def test_planted_best_answer_to_price_is_ranked_first_and_proposed() -> None:
    snap = objection_world(effect=True)
    state = objections.learn(snap, None, NOW).state
    price = state.library["price"]["ranked"]
    assert price[0]["strategy"] == "roi_case" and price[0]["verdict"] == "better"
    assert price[-1]["strategy"] == "discount_offer"
    assert all(r["lo"] <= r["mean"] <= r["hi"] and r["n"] > 0 for r in price)
    [prop] = _proposals(objections.decide(snap, state, NOW))
    assert prop.payload["diff"] == [{"op": "set", "field": "price", "value": "roi_case"}]


def test_noise_proposes_nothing() -> None:
    snap = objection_world(effect=False, seed=21)
    state = objections.learn(snap, None, NOW).state
    assert not _proposals(objections.decide(snap, state, NOW))
    assert all(r["verdict"] in ("unclear", TOO_FEW) for e in state.library.values() for r in e["ranked"])


def test_tiny_samples_are_too_few_to_tell_on_the_card() -> None:
    records: list[object] = []
    for i in range(3):
        deal = a_deal(stage_id="102")
        text = "\n".join([OBJECTION_LINES["timing"], RESPONSE_LINES["phased_rollout" if i else "roi_case"]])
        records += [deal, a_stage_change(deal.remote_id, "102", T0),
                    an_activity(ActivityType.CALL, deal.remote_id, T0 + timedelta(days=1), transcript=text)]
    snap = Snapshot.of(records, [a_pipeline()])
    state = objections.learn(snap, None, NOW).state
    assert {r["verdict"] for r in state.library["timing"]["ranked"]} == {TOO_FEW}
    cards = [d for d in objections.decide(snap, state, NOW) if d.kind is ActionKind.UPDATE_CARD]
    assert cards and all(c.payload["objections"]["timing"]["best"][0]["verdict"] == TOO_FEW for c in cards)
    assert not _proposals(objections.decide(snap, state, NOW))


def test_email_objection_and_the_reps_reply_count() -> None:
    deal = a_deal(stage_id="102")
    inbound = an_activity(ActivityType.EMAIL, deal.remote_id, T0 + timedelta(days=1), direction=Direction.INBOUND,
                          body="We don't have the budget for this right now.")
    reply = an_activity(ActivityType.EMAIL, deal.remote_id, T0 + timedelta(days=2), body="We could start small with a pilot.")
    snap = Snapshot.of([deal, a_stage_change(deal.remote_id, "102", T0), inbound, reply], [a_pipeline()])
    state = objections.learn(snap, None, NOW).state
    assert state.library["no_budget"]["ranked"][0]["strategy"] == "phased_rollout"


def test_card_shows_best_answers_for_this_deals_objections() -> None:
    snap = objection_world(effect=True)
    state = objections.learn(snap, None, NOW).state
    deal = a_deal(stage_id="102")
    call = an_activity(ActivityType.CALL, deal.remote_id, NOW - timedelta(days=1), transcript=OBJECTION_LINES["price"])
    world = Snapshot.of([*snap.deals, *snap.stage_changes, *snap.activities, deal, call], [a_pipeline()])
    card = next(d for d in objections.decide(world, state, NOW) if d.target_id == deal.remote_id)
    assert card.payload["section"] == "objections"
    assert card.payload["objections"]["price"]["best"][0]["strategy"] == "roi_case"
    assert list(card.payload["objections"]) == ["price"]


def test_recurring_tenant_phrase_is_proposed_and_approval_teaches_the_extractor() -> None:
    rng, records = random.Random(5), []
    snap = objection_world(effect=False, n=200, seed=22)
    records += [*snap.deals, *snap.stage_changes, *snap.activities]
    for _ in range(12):  # the tenant's own way of saying price, answered the way reps answer price
        deal = a_deal(stage_id="102")
        text = "\n".join(["Prospect: Procurement says the sticker shock is too much for us.",
                          RESPONSE_LINES[rng.choice(["roi_case", "discount_offer"])]])
        records += [deal, a_stage_change(deal.remote_id, "102", T0),
                    an_activity(ActivityType.CALL, deal.remote_id, T0 + timedelta(days=1), transcript=text)]
    world = Snapshot.of(records, [a_pipeline()])
    state = objections.learn(world, None, NOW).state
    phrases = {c["phrase"]: c["type"] for c in state.phrase_candidates}
    assert any("sticker shock" in p for p in phrases)
    [prop] = _proposals(objections.decide(world, state, NOW))
    approved = objections.approve(state, prop.payload)
    assert any("sticker shock" in p for p in approved.playbook[f"phrases.{phrases[next(iter(phrases))]}"])
    relearned = objections.learn(world, approved, NOW).state
    assert not relearned.phrase_candidates
    assert relearned.n_events > state.n_events
