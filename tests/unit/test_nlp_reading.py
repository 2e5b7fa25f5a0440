"""Text is read once: an activity's reading is what the loops use, equal to reading the text again."""

from __future__ import annotations

import json
import os
import time
from dataclasses import fields, replace
from datetime import datetime, timedelta

from crm_adapters.model import ActivityType, Direction
from crm_adapters.snapshot import Snapshot
from jobs.engine.compute import compute_all, process_units
from jobs.loops import texts
from jobs.loops.base import Learned, LoopDefinition
from jobs.loops.handoff.signals import deal_signals
from jobs.loops.objections import DEFINITION as OBJECTIONS
from jobs.loops.registry import all_loops
from jobs.loops.texts import ReadSnapshot
from jobs.nlp import default_taxonomy, extract
from jobs.nlp.reading import ActivityReading, Reader, taxonomy_version
from jobs.nlp.responses import classify_response, default_strategies
from jobs.nlp.risk_language import risk_hits
from tests.factories import an_activity
from tests.unit.handoff_world import build, random_specs
from tests.unit.loop_worlds import objection_world

TEXT = "Rep: How do you report today?\nProspect: We build every report by hand in Excel. We might delay to next year."


def _activities():  # type: ignore[no-untyped-def]
    return [
        an_activity(ActivityType.CALL, "d1", transcript=TEXT, subject="Discovery", custom={"kind": "discovery_call"}),
        an_activity(ActivityType.NOTE, "d1", body="Budget is not an issue. Reporting is manual."),
        an_activity(ActivityType.EMAIL, "d1", body="Honestly it is too expensive for us.", direction=Direction.INBOUND),
        an_activity(ActivityType.EMAIL, "d1", body="Step 2 of our outreach", custom={"sequence": "s1"}),
    ]


def _read(snapshot: Snapshot) -> ReadSnapshot:
    parts = {f.name: getattr(snapshot, f.name) for f in fields(Snapshot) if not f.name.startswith("_")}
    return ReadSnapshot(**parts, readings=Reader().read_all(snapshot.activities))


def test_a_reading_holds_what_reading_the_text_finds_and_survives_json() -> None:
    call, note, inbound, sequence = _activities()
    reader = Reader()
    got = {a.remote_id: reader.read(a) for a in (call, note, inbound, sequence)}
    assert got[call.remote_id].transcript == extract(TEXT)
    assert got[call.remote_id].written == extract("Discovery")
    assert got[call.remote_id].risk == tuple(risk_hits(TEXT)) and got[call.remote_id].risk
    assert got[note.remote_id].written == extract(note.body) and got[note.remote_id].written.budget_status() == "confirmed"
    assert got[inbound.remote_id].email == extract(inbound.body, speaker_aware=False)
    assert got[inbound.remote_id].email.objection_ids() == {"price"}
    assert got[sequence.remote_id] == ActivityReading()  # a sequence step is nobody's words: nothing read
    for reading in got.values():
        assert ActivityReading.from_json(json.loads(json.dumps(reading.to_json()))) == reading


def test_the_taxonomy_version_names_the_taxonomy() -> None:
    fewer = replace(default_taxonomy(), pains={k: v for k, v in default_taxonomy().pains.items() if k != "manual_reporting"})
    assert taxonomy_version() == taxonomy_version(default_taxonomy()) != taxonomy_version(fewer)
    assert Reader(fewer).version == taxonomy_version(fewer)


def test_loops_take_the_stored_reading_and_read_text_only_without_one() -> None:
    call = _activities()[0]
    other = ActivityReading(transcript=extract("Prospect: our data sits in silos."), risk=())
    plain = Snapshot.of([call])
    stored = ReadSnapshot(activities=(call,), readings={call.remote_id: other})
    assert texts.transcript(stored, call) == other.transcript  # not the text's: the store's
    assert texts.risk(stored, call) == ()
    assert texts.transcript(plain, call) == extract(TEXT) and texts.risk(plain, call) == tuple(risk_hits(TEXT))
    assert texts.transcript(plain, call) is texts.transcript(plain, call)  # read once per snapshot


def test_handoff_signals_are_the_same_from_readings_as_from_text() -> None:
    snapshot = build(random_specs(60, seed=3, sdrs=["s1", "s2"], win=lambda s: 0.5))
    assert deal_signals(_read(snapshot)) == deal_signals(snapshot)


def test_the_objection_loop_learns_the_same_from_readings_as_from_text() -> None:
    snapshot = objection_world(n=120)
    now = max(a.occurred_at for a in snapshot.activities) + timedelta(days=1)
    assert OBJECTIONS.learn(_read(snapshot), None, now) == OBJECTIONS.learn(snapshot, None, now)


def test_the_transcript_loops_share_one_process_and_the_rest_run_alone() -> None:
    units = process_units(all_loops())
    shared = next(u for u in units if "handoff" in u)
    assert set(shared) == {"handoff", "discovery", "objections"} and units[0] == shared
    assert all(len(u) == 1 for u in units if u is not shared)


def _recorder(name: str) -> LoopDefinition:
    """A loop that reports which process ran it (the pid), to see the grouping really happen."""
    return LoopDefinition(name=name, learn=lambda s, st, now: Learned(state={"pid": os.getpid()}),
                          decide=lambda s, st, now: [], process_group="g" if name in ("a", "b") else "")


def test_forked_workers_run_a_group_in_one_process_and_keep_the_loop_order() -> None:
    loops = {n: _recorder(n) for n in ("c", "a", "d", "b")}
    out = compute_all(loops, None, {}, datetime(2026, 1, 1), learn=True, decide=True, workers=2)  # type: ignore[arg-type]
    assert list(out) == ["c", "a", "d", "b"] and not any(r.error for r in out.values())
    pids = {n: r.learned.state["pid"] for n, r in out.items() if r.learned}
    assert pids["a"] == pids["b"] and len(set(pids.values())) <= 2  # the parent is one of the two workers


def _slow(name: str) -> LoopDefinition:
    """A loop that takes a while, memoises on the snapshot and says what memos it found and which process ran it."""
    def learn(snapshot, state, now):  # type: ignore[no-untyped-def]
        seen = sorted(snapshot._cache)
        snapshot._cache[f"memo:{name}"] = name
        time.sleep(0.3)
        return Learned(state={"pid": os.getpid(), "seen": seen})

    return LoopDefinition(name=name, learn=learn, decide=lambda s, st, now: [])


def test_the_parent_runs_units_beside_its_child_and_each_unit_starts_without_the_others_memos() -> None:
    snapshot = Snapshot()
    snapshot._cache["read"] = "kept"
    out = compute_all({n: _slow(n) for n in "abcd"}, snapshot, {}, datetime(2026, 1, 1), learn=True, decide=True, workers=2)
    assert not any(r.error for r in out.values())
    states = [r.learned.state for r in out.values() if r.learned]
    assert all(s["seen"] == ["read"] for s in states)
    pids = {s["pid"] for s in states}
    assert os.getpid() in pids and len(pids) <= 2  # the parent takes the first unit; its child the next it is free for
    assert snapshot._cache == {"read": "kept"}


def test_a_child_that_dies_stops_the_run_with_its_exit_code(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pytest

    parent, started = os.getpid(), tmp_path / "child started"

    def waits(snapshot, state, now):  # type: ignore[no-untyped-def]
        for _ in range(200):  # the parent's unit lasts until the child has taken the other one
            if started.exists():
                break
            time.sleep(0.05)
        return Learned(state={})

    def dies(snapshot, state, now):  # type: ignore[no-untyped-def]
        if os.getpid() != parent:
            started.touch()
            os._exit(3)
        return Learned(state={})

    loops = {n: LoopDefinition(name=n, learn=f, decide=lambda s, st, now: []) for n, f in (("waits", waits), ("dies", dies))}
    with pytest.raises(RuntimeError, match="exit code 3"):
        compute_all(loops, Snapshot(), {}, datetime(2026, 1, 1), learn=True, decide=True, workers=2)


def test_response_classifier_prefilter_changes_no_answer() -> None:
    """Against the classifier without the substring prefilter (every pattern searched)."""
    strategies = default_strategies()
    texts = ["The ROI is clear, it pays for itself in three months.", "I can offer a discount of 20% off.",
             "A customer like you saw great results.", "We could start small with a pilot.", "Sounds good.",
             "roi-driven business case (payback)", "Happy to connect you with a reference customer in your industry."]
    for text in texts:
        lowered = text.lower()
        hits = {i: sum(1 for p in strategies.patterns[i] if p.search(lowered)) for i in strategies.ids}
        best = max(strategies.ids, key=lambda i: (hits[i], -strategies.ids.index(i)))
        assert classify_response(text) == (best if hits[best] else "other")


def test_readings_loaded_together_share_their_repeated_strings_and_stay_equal() -> None:
    reader = Reader()
    call, note, *_ = _activities()
    again = an_activity(ActivityType.CALL, "d2", transcript=TEXT)
    read = [reader.read(a) for a in (call, note, again)]
    strings: dict[str, str] = {}
    loaded = [ActivityReading.from_json(json.loads(json.dumps(r.to_json())), strings) for r in read]
    assert loaded == read
    first, second = loaded[0].transcript, loaded[2].transcript
    assert first is not None and second is not None and first.pains
    assert first.pains[0].sentence is second.pains[0].sentence and first.pains[0].id is second.pains[0].id
    assert ActivityReading.from_json({"written": {}}).written is ActivityReading.from_json({"written": {}}).written


def test_the_workers_fork_from_a_frozen_heap_and_the_parent_gets_it_back() -> None:
    import gc

    loops = {n: _recorder(n) for n in ("c", "a")}
    out = compute_all(loops, None, {}, datetime(2026, 1, 1), learn=True, decide=True, workers=2)  # type: ignore[arg-type]
    assert not any(r.error for r in out.values())
    assert gc.get_freeze_count() == 0
