"""Discovery loop: finds the planted questions, proposes nothing on noise, approval changes the framework."""

from __future__ import annotations

from datetime import timedelta

from crm_adapters.model import ActivityType
from crm_adapters.snapshot import Snapshot
from jobs.loops import discovery
from jobs.loops.decision import ActionKind
from jobs.loops.stats import TOO_FEW
from tests.factories import T0, a_deal, a_pipeline, a_stage_change, an_activity
from tests.unit.loop_worlds import NOW, QUESTION_LINES, discovery_world


def _proposals(decisions):  # type: ignore[no-untyped-def]
    return [d for d in decisions if d.kind is ActionKind.PROPOSE_PLAYBOOK_CHANGE]


def test_planted_progress_and_stall_questions_are_found_and_proposed() -> None:
    snap = discovery_world(effect=True)
    learned = discovery.learn(snap, None, NOW)
    verdicts = {q: s["verdict"] for q, s in learned.state.questions.items()}
    assert verdicts["budget_owner"] == "better"
    assert verdicts["competing_priorities"] == "worse"
    assert {v for q, v in verdicts.items() if q not in ("budget_owner", "competing_priorities")} <= {"unclear"}
    [prop] = _proposals(discovery.decide(snap, learned.state, NOW))
    assert prop.payload["diff"] == [{"op": "add", "field": "ask", "value": "budget_owner"},
                                    {"op": "add", "field": "stall_signals", "value": "competing_priorities"}]
    assert prop.payload["fingerprint"] in prop.key
    assert " deals (90% range " in prop.reasons[0].text


def test_noise_proposes_nothing() -> None:
    snap = discovery_world(effect=False, seed=11)
    learned = discovery.learn(snap, None, NOW)
    assert not _proposals(discovery.decide(snap, learned.state, NOW))
    assert all(s["verdict"] in ("unclear", TOO_FEW) for s in learned.state.questions.values())


def test_approve_puts_questions_in_the_framework_and_stops_reproposing() -> None:
    snap = discovery_world(effect=True)
    state = discovery.learn(snap, None, NOW).state
    [prop] = _proposals(discovery.decide(snap, state, NOW))
    approved = discovery.approve(state, prop.payload)
    assert approved.framework["ask"] == ["budget_owner"]
    assert approved.framework["stall_signals"] == ["competing_priorities"]
    relearned = discovery.learn(snap, approved, NOW).state
    assert relearned.framework == approved.framework
    assert not _proposals(discovery.decide(snap, relearned, NOW))


def test_rare_question_is_too_few_to_tell() -> None:
    records: list[object] = []
    for i in range(4):
        deal = a_deal(stage_id="102")
        text = QUESTION_LINES["past_attempts"] if i == 0 else QUESTION_LINES["timeline"]
        records += [deal, a_stage_change(deal.remote_id, "102", T0),
                    an_activity(ActivityType.CALL, deal.remote_id, T0 + timedelta(days=1), transcript=text,
                                custom={"kind": "discovery_call"})]
    learned = discovery.learn(Snapshot.of(records, [a_pipeline()]), None, NOW)
    assert learned.state.questions["past_attempts"]["verdict"] == TOO_FEW
    assert learned.state.questions["past_attempts"]["asked"]["n"] == 1


def test_card_shows_unasked_decisive_questions_on_early_open_deals() -> None:
    snap = discovery_world(effect=True)
    state = discovery.learn(snap, None, NOW).state
    early = a_deal(stage_id="102")
    late = a_deal(stage_id="104")
    asked = a_deal(stage_id="101")
    call = an_activity(ActivityType.CALL, asked.remote_id, NOW - timedelta(days=1), transcript=QUESTION_LINES["budget_owner"],
                       custom={"kind": "discovery_call"})
    world = Snapshot.of([*snap.deals, *snap.stage_changes, *snap.activities, early, late, asked, call], [a_pipeline()])
    cards = {d.target_id: d for d in discovery.decide(world, state, NOW) if d.kind is ActionKind.UPDATE_CARD}
    assert cards[early.remote_id].payload["section"] == "discovery"
    assert [q["question"] for q in cards[early.remote_id].payload["questions"]] == ["budget_owner"]
    assert late.remote_id not in cards and asked.remote_id not in cards
    again = {d.key for d in discovery.decide(world, state, NOW)}
    assert cards[early.remote_id].key in again  # deterministic keys
