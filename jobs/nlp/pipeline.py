"""The one spaCy pipeline: a trained English model when installed, else blank English (offline)."""

from __future__ import annotations

from functools import cache

import spacy
from spacy.language import Language


@cache
def nlp() -> Language:
    """Shared pipeline with sentence boundaries; rule components (matchers) are built on its vocab."""
    try:
        language = spacy.load("en_core_web_sm", exclude=["ner"])
    except OSError:
        language = spacy.blank("en")
    if "sentencizer" not in language.pipe_names and "parser" not in language.pipe_names:
        language.add_pipe("sentencizer")
    return language


def has_lemmas() -> bool:
    """Blank English has no lemmatizer tables offline; matchers then use LOWER plus listed variants."""
    return "lemmatizer" in nlp().pipe_names
