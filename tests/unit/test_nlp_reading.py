"""The extraction memo: loops reading the same transcript share one extraction, and nothing else changes."""

from __future__ import annotations

import importlib
import os
from dataclasses import replace
from datetime import datetime

import pytest

from jobs.engine.compute import compute_all, process_units
from jobs.loops.base import Learned, LoopDefinition
from jobs.loops.registry import all_loops
from jobs.nlp import default_taxonomy, extract, extract_many
from jobs.nlp.extract import MEMO_SIZE, _extractor, cache_info, clear_cache, sized_for
from jobs.nlp.responses import classify_response, default_strategies

TEXT = "Rep: How do you report today?\nProspect: We build every report by hand in Excel. Budget is not an issue."


def test_a_repeated_text_is_extracted_once_and_gives_the_same_result() -> None:
    clear_cache()
    fresh = _extractor(default_taxonomy()).run(TEXT, speaker_aware=True)
    first = extract(TEXT)
    second = extract_many([TEXT])[0]
    assert first == fresh and second is first
    info = cache_info()
    assert (info.hits, info.misses, info.maxsize) == (1, 1, MEMO_SIZE)


def test_the_memo_keys_on_speaker_mode_and_taxonomy() -> None:
    clear_cache()
    aware, plain = extract(TEXT), extract(TEXT, speaker_aware=False)
    assert aware.speakers == ("prospect", "rep") and plain.speakers == ()
    fewer = replace(default_taxonomy(), pains={k: v for k, v in default_taxonomy().pains.items() if k != "manual_reporting"})
    assert "manual_reporting" in aware.pain_ids() and "manual_reporting" not in extract(TEXT, taxonomy=fewer).pain_ids()
    assert cache_info().misses == 3


def _texts(n: int) -> list[str]:
    return [f"Prospect: deal {i} builds every report by hand in Excel." for i in range(n)]


def test_a_chain_keeps_every_text_of_its_tenant_and_lets_them_go_after(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the default size the memo would evict what handoff read before objections reads it again."""
    module = importlib.import_module("jobs.nlp.extract")  # the module (the package exports the function of that name)
    monkeypatch.setattr(module, "MEMO_SIZE", 4)
    monkeypatch.setattr(module._MEMO, "size", 4)
    clear_cache()
    texts = _texts(10)
    extract_many(texts)
    extract_many(texts)  # a small memo: every one evicted before it is read again
    assert (cache_info().hits, cache_info().currsize) == (0, 4)
    clear_cache()
    with sized_for(len(texts)):
        first = extract_many(texts)
        again = extract_many(texts)
        assert all(a is b for a, b in zip(first, again, strict=True))
        assert (cache_info().hits, cache_info().misses, cache_info().currsize) == (10, 10, 10)
    assert (cache_info().currsize, cache_info().maxsize) == (0, 4)  # nothing kept for the next tenant


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
    assert pids["a"] == pids["b"] != os.getpid()


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
