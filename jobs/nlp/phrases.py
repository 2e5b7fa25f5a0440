"""Grow the pain taxonomy from data: phrases that recur next to a pain in won deals' text.

The result is a proposal (data a person reviews and appends to pains.toml), never a code change.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from spacy.lang.en.stop_words import STOP_WORDS

from jobs.nlp._normalise import stem
from jobs.nlp.extract import extract
from jobs.nlp.pipeline import nlp
from jobs.nlp.taxonomy import Taxonomy, default_taxonomy


@dataclass(frozen=True, slots=True)
class PhraseProposal:
    """A candidate phrase for one pain, with how often it recurs in won vs lost deals."""

    pain_id: str
    phrase: str
    won_docs: int
    lost_docs: int
    example: str

    def to_toml_line(self) -> str:
        return f'  "{self.phrase}",  # won {self.won_docs}, lost {self.lost_docs}'


def propose_phrases(won_texts: Iterable[str], lost_texts: Iterable[str] = (), *, taxonomy: Taxonomy | None = None,
                    min_docs: int = 3, max_per_pain: int = 5) -> list[PhraseProposal]:
    """2-3 word phrases in sentences that mention a pain, recurring in >= min_docs won texts, not yet listed,
    and at least twice as frequent (per text) in won as in lost texts."""
    tax = taxonomy or default_taxonomy()
    won = list(won_texts)
    lost = list(lost_texts)
    won_counts, examples = _ngram_docs(won, tax)
    lost_counts, _ = _ngram_docs(lost, tax)
    known = {stem_phrase(p) for phrases in tax.pains.values() for p in phrases}
    filler = {w for cue in (*tax.hedges, *tax.filler) for w in cue.lower().split()}
    out: list[PhraseProposal] = []
    for pain_id, counter in sorted(won_counts.items()):
        ranked = []
        for gram, n_won in counter.items():
            n_lost = lost_counts.get(pain_id, Counter()).get(gram, 0)
            if n_won < min_docs or _covered(gram, known) or filler & set(gram.split()):
                continue
            if lost and (n_lost / len(lost)) * 2 > n_won / len(won):
                continue
            ranked.append(PhraseProposal(pain_id, gram, n_won, n_lost, examples[(pain_id, gram)]))
        ranked.sort(key=lambda p: (-p.won_docs, -len(p.phrase.split()), p.lost_docs, p.phrase))
        out.extend(_drop_nested(ranked)[:max_per_pain])
    return out


def as_additions(proposals: Iterable[PhraseProposal]) -> dict[str, list[str]]:
    """{pain_id: [phrases]} for Taxonomy.with_pain_phrases once a person accepts them."""
    additions: dict[str, list[str]] = defaultdict(list)
    for p in proposals:
        additions[p.pain_id].append(p.phrase)
    return dict(additions)


def stem_phrase(phrase: str) -> str:
    return " ".join(stem(w) for w in phrase.lower().split())


def _covered(gram: str, known: set[str]) -> bool:
    """Already said by a listed phrase: the gram contains one, or is part of one."""
    stemmed = stem_phrase(gram)
    return any(k and (k in stemmed or stemmed in k) for k in known if " " in k or len(k) > 5)


def _drop_nested(ranked: list[PhraseProposal]) -> list[PhraseProposal]:
    kept: list[PhraseProposal] = []
    for p in ranked:
        if not any(p.phrase in k.phrase or k.phrase in p.phrase for k in kept):
            kept.append(p)
    return kept


def _ngram_docs(texts: list[str], tax: Taxonomy) -> tuple[dict[str, Counter[str]], Mapping[tuple[str, str], str]]:
    """Per pain: in how many texts each n-gram occurs in a sentence that mentions the pain."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    examples: dict[tuple[str, str], str] = {}
    for text in texts:
        seen: set[tuple[str, str]] = set()
        for mention in extract(text, taxonomy=tax).pains:
            if not mention.affirmed:
                continue
            for gram in _ngrams(_clause(mention.sentence, mention.span)):
                seen.add((mention.id, gram))
                examples.setdefault((mention.id, gram), mention.sentence)
        for pain_id, gram in seen:
            counts[pain_id][gram] += 1
    return counts, examples


def _clause(sentence: str, span: str) -> str:
    """The part of the sentence around the mention: notes list several pains in one sentence."""
    parts = re.split(r"[,;:]| and | but | - ", sentence)
    return next((p for p in parts if span in p), sentence)


def _ngrams(sentence: str) -> set[str]:
    words = [t.lower_ for t in nlp().make_doc(sentence) if t.is_alpha]
    grams = set()
    for n in (2, 3):
        for i in range(len(words) - n + 1):
            gram = words[i:i + n]
            if gram[0] in STOP_WORDS or gram[-1] in STOP_WORDS:
                continue
            grams.add(" ".join(gram))
    return grams
