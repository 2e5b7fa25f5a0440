"""NLP for the loops: rule-based extraction over spaCy's blank English pipeline (offline)."""

from jobs.nlp.extract import DERIVED, KINDS, Extraction, Mention, extract, extract_many
from jobs.nlp.taxonomy import Taxonomy, default_taxonomy, load_taxonomy

__all__ = ["DERIVED", "KINDS", "Extraction", "Mention", "Taxonomy", "default_taxonomy", "extract", "extract_many", "load_taxonomy"]
