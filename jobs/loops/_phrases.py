"""The tenant's own objection wording: recurring prospect phrases the extractor misses but reps answer.

A candidate is a 2-4 word phrase (within a sentence) from prospect turns that carry a pushback cue (not,
can't, worried ...) and no recognised objection or pain; it must recur across deals (at least min_deals
and 2% of them), be answered by the rep with a known response strategy most of the time, and be
answered like one objection type is (cosine of the strategy mixes).
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

_CUES = frozenset({"not", "no", "can't", "cannot", "won't", "don't", "isn't", "aren't", "worried", "concern",
                   "concerned", "hesitant", "unsure", "problem", "but", "too", "never", "doubt"})
_STOP = frozenset(["a", "an", "the", "and", "or", "of", "to", "in", "on", "for", "with", "at", "by", "from", "is", "are", "was", "were", "be", "been", "it", "its", "this", "that", "these", "those", "we", "our", "us", "you", "your", "i", "me", "my", "they", "them", "their", "he", "she", "so", "just", "really", "very", "also", "as", "if", "then", "there", "here", "do", "does", "did", "have", "has", "had", "will", "would", "could", "should", "can", "about", "what", "which", "who"])
ANSWERED_SHARE, MIN_SIMILARITY, MAX_CANDIDATES, MIN_DEAL_SHARE = 0.6, 0.6, 5, 0.02


def _ngrams(text: str) -> set[str]:
    """2-4 word phrases inside one sentence, not starting or ending on a stop word."""
    grams = set()
    for sentence in re.split(r"[.!?;]+", text.lower()):
        words = re.findall(r"[a-z][a-z']*", sentence)
        for n in (2, 3, 4):
            for i in range(len(words) - n + 1):
                g = words[i:i + n]
                if g[0] in _STOP or g[-1] in _STOP or all(w in _STOP or w in _CUES for w in g):
                    continue
                grams.add(" ".join(g))
    return grams


def _cosine(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    dot = sum(a[k] * b.get(k, 0.0) for k in a)
    norm = math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values()))
    return dot / norm if norm else 0.0


def candidate_phrases(others: Sequence[tuple[str, str, str | None]], known_mix: Mapping[str, Mapping[str, float]],
                      existing: Mapping[str, Sequence[str]], min_deals: int) -> list[dict[str, Any]]:
    """others: (deal id, prospect text without a recognised objection, strategy of the rep's answer)."""
    have = {p for phrases in existing.values() for p in phrases}
    min_deals = max(min_deals, math.ceil(MIN_DEAL_SHARE * len({d for d, _, _ in others})))
    deals: dict[str, set[str]] = defaultdict(set)
    answers: dict[str, Counter[str]] = defaultdict(Counter)
    examples: dict[str, list[str]] = defaultdict(list)
    for deal_id, text, strategy in others:
        if not _CUES & set(re.findall(r"[a-z][a-z']*", text.lower())):
            continue
        for gram in _ngrams(text):
            deals[gram].add(deal_id)
            answers[gram][strategy or "none"] += 1
            if len(examples[gram]) < 3:
                examples[gram].append(text[:200])
    found: list[dict[str, Any]] = []
    for gram, ds in deals.items():
        mix, total = answers[gram], sum(answers[gram].values())
        answered = sum(v for s, v in mix.items() if s not in ("none", "other"))
        if len(ds) < min_deals or gram in have or answered / total < ANSWERED_SHARE:
            continue
        shares = {s: v / total for s, v in mix.items() if s not in ("none", "other")}
        sims = {t: _cosine(shares, m) for t, m in known_mix.items()}
        kind = max(sims, key=lambda t: (sims[t], t)) if sims else None
        if kind is not None and sims[kind] >= MIN_SIMILARITY:
            found.append({"phrase": gram, "type": kind, "deals": len(ds), "similarity": round(sims[kind], 3),
                          "examples": examples[gram]})
    found = _merge_same_deals(found, deals)
    found.sort(key=lambda c: (-c["deals"], -len(c["phrase"]), c["phrase"]))
    kept: list[dict[str, Any]] = []
    for cand in found:  # keep the longest phrase of each family that recurs as often
        if not any(cand["phrase"] in k["phrase"] or k["phrase"] in cand["phrase"] for k in kept):
            kept.append(cand)
    return kept[:MAX_CANDIDATES]


def _merge_same_deals(found: list[dict[str, Any]], deals: Mapping[str, set[str]]) -> list[dict[str, Any]]:
    """Overlapping n-grams that recur in exactly the same deals are one phrase: their covering span."""
    groups: dict[frozenset[str], list[dict[str, Any]]] = defaultdict(list)
    for cand in found:
        groups[frozenset(deals[cand["phrase"]])].append(cand)
    merged = []
    for members in groups.values():
        words = re.findall(r"[a-z][a-z']*", members[0]["examples"][0].lower())
        spans = [(i, i + len(g)) for m in members for g in [m["phrase"].split()]
                 for i in range(len(words) - len(g) + 1) if words[i:i + len(g)] == g]
        phrase = " ".join(words[min(a for a, _ in spans):max(b for _, b in spans)]) if spans else members[0]["phrase"]
        merged.append({**members[0], "phrase": phrase})
    return merged


def strategy_mix(evts: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Per objection type, the share of each response strategy reps used to answer it."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for e in evts:
        counts[e["objection"]][e["strategy"]] += 1
    return {o: {s: v / sum(c.values()) for s, v in c.items() if s != "other"} for o, c in counts.items()}
