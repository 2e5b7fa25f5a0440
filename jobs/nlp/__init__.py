"""NLP for the loops: rule-based extraction over spaCy's blank English pipeline (offline).

    from jobs.nlp import extract
    found = extract(text, speaker_aware=True)   # "Rep:"/"Prospect:" lines set each Mention.speaker
    found.pains / .meddic / .budget / .timeline / .competitors / .objections / .questions
        -> tuple[Mention(kind, id, span, sentence, negated, hedged, speaker, in_question, start, end, value)]
    found.pain_ids()            buyer-stated pains (negated ones and the rep's pitch/questions excluded)
    found.denied_pain_ids()     pains the rep checked and the buyer denied ("Not really, no.")
    found.meddic_ids(), .objection_ids(), .question_ids(), .competitor_ids()
    found.budget_status()       "confirmed" | "absent" | "unknown"   ("budget is not an issue" -> confirmed)
    found.timeline_status()     "set" | "none" | "unknown"
    found.to_dict()             JSON-ready, every mention with its quoted sentence

Vocabulary is data: jobs/nlp/data/{pains,objections,questions,signals}.toml (load_taxonomy validates
ids against the shared vocabulary); jobs.nlp.phrases.propose_phrases(won_texts, lost_texts) suggests
new pain phrases that recur in won deals, and Taxonomy.with_pain_phrases() applies accepted ones.
"""

from jobs.nlp.extract import DERIVED, KINDS, Extraction, Mention, extract, extract_many
from jobs.nlp.taxonomy import Taxonomy, default_taxonomy, load_taxonomy

__all__ = ["DERIVED", "KINDS", "Extraction", "Mention", "Taxonomy", "default_taxonomy", "extract", "extract_many",
           "load_taxonomy"]
