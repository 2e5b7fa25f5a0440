"""The taxonomy is data: loading, validation, extension and learned phrase proposals."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.nlp import extract
from jobs.nlp.phrases import as_additions, propose_phrases
from jobs.nlp.taxonomy import DATA_DIR, PAIN_IDS, default_taxonomy, load_taxonomy


def test_shipped_taxonomy_covers_every_shared_id() -> None:
    tax = default_taxonomy()
    assert set(tax.pains) == set(PAIN_IDS)
    assert {"price", "no_budget", "competitor", "not_priority", "authority", "timing"} == set(tax.objections)
    assert len(tax.questions) == 10


def test_unknown_pain_id_in_data_is_a_clear_error(tmp_path: Path) -> None:
    for name in ("objections.toml", "questions.toml", "signals.toml"):
        (tmp_path / name).write_text((DATA_DIR / name).read_text())
    (tmp_path / "pains.toml").write_text('[pains.bad_mood]\nphrases = ["grumpy"]\n')
    with pytest.raises(ValueError, match="bad_mood"):
        load_taxonomy(tmp_path)


def test_broken_toml_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "pains.toml").write_text("[pains\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_taxonomy(tmp_path)


def test_extended_taxonomy_matches_the_new_phrase() -> None:
    text = "Prospect: our month end close is a nightmare."
    assert extract(text).pain_ids() == set()
    tax = default_taxonomy().with_pain_phrases({"manual_reporting": ["month end close"]})
    assert extract(text, taxonomy=tax).pain_ids() == {"manual_reporting"}
    with pytest.raises(ValueError):
        default_taxonomy().with_pain_phrases({"nope": ["x y"]})


def test_propose_phrases_finds_recurring_won_phrase_and_ignores_lost_only_ones() -> None:
    won = [f"Prospect: we build every report by hand for the month end close ({i})." for i in range(4)]
    won.append("Prospect: security review is slow.")
    lost = [f"Prospect: reports by hand for the weekly standup ({i})." for i in range(4)]
    proposals = propose_phrases(won, lost, min_docs=3)
    phrases = {p.phrase for p in proposals}
    assert "month end close" in phrases
    assert not any("standup" in p for p in phrases)
    assert all(p.won_docs >= 3 for p in proposals)
    assert as_additions(proposals)["manual_reporting"]


def test_propose_phrases_needs_recurrence() -> None:
    assert propose_phrases(["Prospect: reports by hand for the month end close."], min_docs=3) == []


def test_phrases_from_other_clauses_are_not_credited_to_the_pain() -> None:
    won = [f"Prospect: the weather is lovely, we build every report by hand ({i})." for i in range(5)]
    assert not any("weather" in p.phrase for p in propose_phrases(won, min_docs=3))
