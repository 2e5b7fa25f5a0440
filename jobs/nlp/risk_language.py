"""Risk language in call text: phrases that precede lost deals, with negation ("no risk of delay")."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc

from jobs.nlp._tokens import TokenReader, non_overlapping
from jobs.nlp.pipeline import nlp

PHRASES_FILE = Path(__file__).parent / "data" / "risk_phrases.toml"
_PROSPECT_LINE = re.compile(r"^\s*(?:prospect|customer|buyer|client)\b[^:\n]{0,40}:\s?(.*)$", re.I)
_SPEAKER_LINE = re.compile(r"^\s*[A-Za-z][\w .()-]{0,40}:\s")


@dataclass(frozen=True, slots=True)
class RiskHit:
    """One risk phrase found: its category, the words, the sentence, and whether it was negated."""

    category: str
    label: str
    phrase: str
    sentence: str
    negated: bool


@dataclass(frozen=True)
class _Lexicon:
    matcher: PhraseMatcher
    negation: PhraseMatcher
    pseudo: PhraseMatcher
    labels: dict[str, str]
    window: int
    read_tokens: TokenReader


@cache
def _lexicon(path: Path = PHRASES_FILE) -> _Lexicon:
    """Build the matchers once per process on the shared pipeline's vocabulary."""
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    pipeline = nlp()
    matcher = PhraseMatcher(pipeline.vocab, attr="LOWER")
    labels: dict[str, str] = {}
    for category, spec in data["categories"].items():
        labels[category] = spec.get("label", category)
        matcher.add(category, [pipeline.make_doc(p) for p in spec["phrases"]])
    negation = PhraseMatcher(pipeline.vocab, attr="LOWER")
    negation.add("neg", [pipeline.make_doc(c) for c in data["negation"]["cues"]])
    pseudo = PhraseMatcher(pipeline.vocab, attr="LOWER")
    pseudo.add("pseudo", [pipeline.make_doc(c) for c in data["negation"].get("pseudo", [])])
    return _Lexicon(matcher, negation, pseudo, labels, int(data["negation"].get("window", 4)), TokenReader(pipeline))


def buyer_text(text: str) -> str:
    """The prospect's lines of a "Rep: / Prospect:" transcript; the whole text when it has no speakers."""
    lines = text.splitlines()
    if not any(_SPEAKER_LINE.match(line) for line in lines):
        return text
    kept, buyer = [], False
    for line in lines:
        match = _PROSPECT_LINE.match(line)
        if match:
            buyer = True
            kept.append(match.group(1))
        elif _SPEAKER_LINE.match(line):
            buyer = False
        elif buyer:
            kept.append(line)
    return "\n".join(kept)


def find_risk_language(text: str) -> list[RiskHit]:
    """Every risk phrase in the text, in order, each marked negated or not."""
    if not text.strip():
        return []
    lexicon = _lexicon()
    tokens = lexicon.read_tokens(text)
    negators = _negator_positions(tokens.doc, lexicon)
    strings = tokens.doc.vocab.strings
    hits = []
    for match_id, start, end in non_overlapping(lexicon.matcher(tokens.doc)):
        category = strings[match_id]
        sent_start, sent_end = tokens.sentence(start)
        negated = any(i in negators for i in range(max(sent_start, start - lexicon.window), start))
        hits.append(RiskHit(category, lexicon.labels[category], tokens.text_of(start, end),
                            tokens.text_of(sent_start, sent_end).strip(), negated))
    return hits


def risk_hits(text: str) -> list[RiskHit]:
    """The hits that count: not negated, from the buyer's lines (read once per activity: jobs.nlp.reading)."""
    return [h for h in find_risk_language(buyer_text(text)) if not h.negated]


def _negator_positions(doc: Doc, lexicon: _Lexicon) -> set[int]:
    """Token positions of negation cues, minus those inside pseudo-negations ("not sure")."""
    pseudo = {i for _, s, e in lexicon.pseudo(doc) for i in range(s, e)}
    return {i for _, s, e in lexicon.negation(doc) for i in range(s, e) if i not in pseudo}
