"""Token normalisation for matching: lemma (when the pipeline has one) or lowercase + crude stem,
listed variants, and one-edit typo repair against the taxonomy's own vocabulary."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

import numpy
from spacy.lang.en.stop_words import STOP_WORDS
from spacy.tokens import Doc

_MIN_TYPO_LEN = 6  # shorter words are too often real words one edit away (audio/audit)
_MAX_NORMS = 200_000  # distinct (word, lemma) pairs remembered per normaliser


def stem(word: str) -> str:
    """Crude suffix stripping so report/reports/reporting/reported meet without a lemmatizer."""
    w = word.lower()
    if len(w) <= 3 or not w.isalpha():
        return w
    if w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith(("sses", "ches", "shes", "xes")):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    if w.endswith("ing") and len(w) > 5:
        w = _undouble(w[:-3])
    elif w.endswith("ed") and len(w) > 4:
        w = _undouble(w[:-2])
    if w.endswith("e") and len(w) > 4:
        w = w[:-1]
    return w


def _undouble(w: str) -> str:
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz":
        return w[:-1]
    return w


def edit_distance_one(a: str, b: str) -> bool:
    """True when b is one insertion, deletion, substitution or adjacent swap away from a."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


class Normaliser:
    """Maps a token's text to the form phrases are matched on; built once per taxonomy."""

    def __init__(self, variants: Mapping[str, str], lemmas: bool) -> None:
        self.variants = dict(variants)
        self.lemmas = lemmas
        self.vocabulary: set[str] = set()
        self._by_length: dict[int, list[str]] = {}  # vocabulary words of typo-repair length, by length
        self._repairs: dict[str, str] = {}
        self._norms: dict[tuple[str, str], str] = {}  # (word, lemma) -> norm: a tenant's words repeat millions of times
        self._keys: dict[tuple[str, str], int] = {}  # (word, lemma) -> the norm's string-store key (write)

    def learn(self, words: Iterable[str]) -> None:
        """Add the words of the taxonomy's phrases: the targets of typo repair."""
        for word in words:
            self.vocabulary.add(self.base(word))
        self._by_length = {n: sorted(v for v in self.vocabulary if len(v) == n and n >= _MIN_TYPO_LEN - 1)
                           for n in {len(v) for v in self.vocabulary}}
        self._repairs.clear()
        self._norms.clear()
        self._keys.clear()

    def base(self, word: str, lemma: str = "") -> str:
        lowered = word.lower()
        lowered = self.variants.get(lowered, lowered)
        if self.lemmas and lemma and lowered == word.lower():
            lowered = lemma.lower()
        return stem(lowered)

    def norm(self, word: str, lemma: str = "") -> str:
        """Base form, repaired to a taxonomy word when it is one edit from exactly one of them."""
        base = self.base(word, lemma)
        if base in self.vocabulary or len(base) < _MIN_TYPO_LEN or not base.isalpha() or word.lower() in STOP_WORDS:
            return base
        if base not in self._repairs:
            near = sorted(v for n in (len(base) - 1, len(base), len(base) + 1) for v in self._by_length.get(n, ())
                          if edit_distance_one(base, v))  # one edit apart: at most one letter longer or shorter
            self._repairs[base] = near[0] if len(near) == 1 else base
        return self._repairs[base]

    def apply(self, doc: Doc) -> Doc:
        """Write the normal form into each token's NORM, which the PhraseMatcher reads."""
        norms = self._norms
        if len(norms) > _MAX_NORMS:  # bounded: an odd tenant's long tail of words does not grow it for ever
            norms.clear()
        for token in doc:
            key = (token.text, token.lemma_)
            found = norms.get(key)
            if found is None:
                found = norms[key] = self.norm(*key)
            token.norm_ = found
        return doc

    def write(self, doc: Doc, words: list[str], lemmas: list[str]) -> Doc:
        """apply() given the tokens' words and lemmas, written in one Doc.from_array (no Token objects)."""
        if not words:
            return doc
        keys = self._keys
        if len(keys) > _MAX_NORMS:
            keys.clear()
        add = doc.vocab.strings.add
        column = []
        for key in zip(words, lemmas, strict=True):
            found = keys.get(key)
            if found is None:
                found = keys[key] = add(self.norm(*key))
            column.append(found)
        doc.from_array(["NORM"], cast(Any, numpy.array(column, dtype=numpy.uint64).reshape(-1, 1)))
        return doc
