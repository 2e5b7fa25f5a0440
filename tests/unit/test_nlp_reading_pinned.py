"""Readings are pinned: tricky texts (speaker labels with names and times, a rep's check and the buyer's denial,
repeated turns, quarters and "within 6 weeks", negated budget and risk, typos, blank text) read exactly as the
code before the fast reading path (token lists instead of spaCy Tokens, a memo of turns) read them; sentence
starts are spaCy's sentencizer's."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from crm_adapters.model import Activity, ActivityType, Direction
from jobs.nlp._tokens import TokenReader
from jobs.nlp.pipeline import nlp
from jobs.nlp.reading import Reader
from tests.factories import an_activity

PINNED = json.loads((Path(__file__).parent / "pinned_readings" / "readings.json").read_text())


def _activity(kind: str, text: str) -> Activity:
    if kind == "call":
        return an_activity(ActivityType.CALL, "d1", transcript=text, subject="Discovery call")
    if kind == "meeting":
        return an_activity(ActivityType.MEETING, "d1", body=text)
    if kind == "note":
        return an_activity(ActivityType.NOTE, "d1", body=text)
    return an_activity(ActivityType.EMAIL, "d1", body=text,
                       direction=Direction.INBOUND if kind == "email_in" else Direction.OUTBOUND)


@pytest.mark.parametrize("memo", [True, False], ids=["memo", "no-memo"])
def test_tricky_texts_read_exactly_as_pinned(memo: bool) -> None:
    reader = Reader(memo=memo)
    for _ in range(2):  # the second pass reads every turn from the memo
        got = [reader.read(_activity(case["kind"], case["text"])).to_json() for case in PINNED]
        assert [_plain(g) for g in got] == [case["reading"] for case in PINNED]


def test_a_repeated_turn_is_quoted_at_its_own_offset() -> None:
    text = "Prospect: Our data sits in silos.\nRep: Sorry?\nProspect: Our data sits in silos.\n"
    pains = Reader().read(_activity("call", text)).transcript.pains  # type: ignore[union-attr]
    assert [(m.start, m.end) for m in pains] == [(text.index("silos"), text.index("silos") + 5),
                                               (text.rindex("silos"), text.rindex("silos") + 5)]


def _plain(reading: dict[str, Any]) -> Any:
    return json.loads(json.dumps(reading))  # tuples as lists, as the pinned file holds them


def test_sentences_open_where_spacys_sentencizer_opens_them() -> None:
    pipeline = nlp()
    read_tokens = TokenReader(pipeline)
    rng = random.Random(3)
    pieces = ["a", " ", ".", "!", "?", ")", "(", '"', "b c", "\n", "...", "'", "Q3", "e.g.", "-", ";"]
    texts = ["Hi!! What?! ok... (yes.) \"No.\" - fine", "?", "...", "", "\n\n", "e.g. this. That", "Rep: Hi.\nProspect: Yes?"]
    texts += ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 25))) for _ in range(2000)]
    for text in texts:
        assert read_tokens(text).starts == [bool(t.is_sent_start) for t in pipeline(text)], text
