"""A text's tokens as plain lists, read once: building spaCy Token and Span objects for every look at a token
was most of reading's time (extraction and risk phrases alike)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar, cast

from spacy.language import Language
from spacy.tokens import Doc

_COLUMNS: list[int | str] = ["IDX", "LENGTH", "IS_PUNCT", "IS_SPACE"]  # per-token facts read from a Doc at once (Doc.to_array)
Match = TypeVar("Match", bound=tuple[Any, ...])  # a tuple whose last two items are a token range (start, end)


@dataclass(frozen=True, slots=True)
class Tokens:
    """One text's tokens: the Doc (for the matchers) and what the rules read of each token."""

    doc: Doc
    text: str
    words: list[str]
    lower: list[str]
    lemmas: list[str]  # "" without a lemmatizer (blank English)
    idx: list[int]  # character offset of each token in text
    punct: list[int]
    space: list[int]
    starts: list[bool]  # token opens a sentence

    def sentence(self, i: int) -> tuple[int, int]:
        """The sentence holding token i, as spaCy's Span.sent finds it: back to its start, on to the next start."""
        start = i
        while start > 0 and not self.starts[start]:
            start -= 1
        end = i + 1
        while end < len(self.starts) and not self.starts[end]:
            end += 1
        return start, end

    def text_of(self, start: int, end: int) -> str:
        """Span.text: the verbatim characters from the first token to the end of the last."""
        return self.text[self.idx[start]:self.idx[end - 1] + len(self.words[end - 1])]


class TokenReader:
    """Tokenises and splits sentences with one pipeline. Blank English with its sentencizer (the offline default)
    runs the tokenizer alone and the sentencizer's rule over plain lists: the same starts, no Token objects."""

    def __init__(self, nlp: Language) -> None:
        self.nlp = nlp
        self.fast = nlp.pipe_names == ["sentencizer"]
        self.punct_chars = frozenset(cast(Any, nlp.get_pipe("sentencizer")).punct_chars) if self.fast else frozenset()

    def __call__(self, text: str) -> Tokens:
        if self.fast:
            doc = self.nlp.make_doc(text)
            idx, length, punct, space = doc.to_array(_COLUMNS).T.tolist() if len(doc) else ([], [], [], [])
            words = [text[i:i + n] for i, n in zip(idx, length, strict=True)]
            starts = sentence_starts(words, punct, self.punct_chars)
            lemmas = [""] * len(words)
        else:
            doc = self.nlp(text)
            idx, length, punct, space, sent = doc.to_array([*_COLUMNS, "SENT_START"]).T.tolist() if len(doc) else ([],) * 5
            words = [text[i:i + n] for i, n in zip(idx, length, strict=True)]
            starts = [s == 1 for s in sent]
            lemmas = [t.lemma_ for t in doc]
        return Tokens(doc, text, words, [w.lower() for w in words], lemmas, idx, punct, space, starts)


def sentence_starts(words: list[str], punct: list[int], punct_chars: frozenset[str]) -> list[bool]:
    """spaCy's Sentencizer.predict over plain lists: a sentence opens at the first token after a sentence-final
    character ("." "?" "!" ...) that is neither punctuation nor final itself; so does the first token."""
    starts = [False] * len(words)
    if not words:
        return starts
    starts[0] = True
    scanned = 0
    for final in [i for i, word in enumerate(words) if word in punct_chars]:
        if final < scanned:  # a later final inside a run already scanned ("?!", "...")
            continue
        j = final + 1
        while j < len(words) and (punct[j] or words[j] in punct_chars):
            j += 1
        if j < len(words):
            starts[j] = True
        scanned = j
    return starts


def non_overlapping(spans: list[Match]) -> list[Match]:
    """spacy.util.filter_spans over tuples ending in (start, end): the longest wins among overlapping ones (the
    first of equals); in order of start."""
    ranked = sorted(spans, key=lambda s: (s[-1] - s[-2], -s[-2]), reverse=True)
    kept: list[Match] = []
    seen: set[int] = set()
    for span in ranked:
        start, end = span[-2], span[-1]
        if start not in seen and end - 1 not in seen:
            kept.append(span)
            seen.update(range(start, end))
    return sorted(kept, key=lambda s: s[-2])
