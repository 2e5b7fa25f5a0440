"""Rule-based extraction from SDR notes and call transcripts: pains, MEDDIC, budget, timeline,
competitors, objections and the rep's discovery questions, each with its quoted evidence.

    from jobs.nlp import extract
    found = extract("Prospect: we build every report by hand. Budget is not an issue.")
    found.pain_ids()        -> {"manual_reporting"}
    found.budget[0].negated -> False   ("there is no budget" -> True)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from spacy.matcher import Matcher, PhraseMatcher
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

from jobs.nlp._normalise import Normaliser, stem
from jobs.nlp.pipeline import has_lemmas, nlp
from jobs.nlp.speakers import Turn, split_turns
from jobs.nlp.taxonomy import Taxonomy, default_taxonomy

DERIVED = "from_pain"  # Mention.value of identify_pain inferred from a stated pain (not an explicit MEDDIC line)
KINDS = ("pain", "meddic", "budget", "timeline", "competitor", "objection", "question")
_NEG_WINDOW = 6  # tokens before a match a negation cue may sit in ("we don't have an issue with X")
_POST_WINDOW = 4
_PROBLEM = frozenset({"issue", "problem", "concern", "pain", "challenge", "deal", "worry"})
_PROBLEM_STEMS = _PROBLEM | {stem(w) for w in _PROBLEM}
_AMOUNT = re.compile(r"(?:\$|usd\s?|€|£)\s?\d[\d,.]*\s?(?:k|m|mm|thousand|million)?\b|\b\d[\d,.]*\s?(?:k|m)\b",
                     re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Mention:
    """One thing found in text: its id, the matched words, the sentence quoted as evidence."""

    kind: str  # one of KINDS
    id: str  # pain / MEDDIC / objection / question id, competitor name, "budget", "timeline"
    span: str
    sentence: str
    negated: bool = False
    hedged: bool = False
    speaker: str | None = None  # "rep" | "prospect" | None (notes)
    in_question: bool = False
    start: int = 0  # character offsets in the text given to extract()
    end: int = 0
    value: str | None = None  # budget amount, timeline phrase

    @property
    def affirmed(self) -> bool:
        """Said as a fact by the buyer or in notes: not negated, not merely asked about by the rep."""
        return not self.negated and not (self.speaker == "rep" and self.in_question)


@dataclass(frozen=True, slots=True)
class Extraction:
    """Everything found in one text, by kind; every Mention quotes its evidence."""

    pains: tuple[Mention, ...] = ()
    meddic: tuple[Mention, ...] = ()
    budget: tuple[Mention, ...] = ()
    timeline: tuple[Mention, ...] = ()
    competitors: tuple[Mention, ...] = ()
    objections: tuple[Mention, ...] = ()
    questions: tuple[Mention, ...] = ()
    speakers: tuple[str, ...] = field(default=())

    def pain_ids(self, *, include_hedged: bool = True, speakers: tuple[str | None, ...] = ("prospect", None)) -> set[str]:
        """Pains stated as present by the buyer (or in notes); negated ones and the rep's pitch excluded."""
        return {m.id for m in self.pains
                if m.affirmed and m.speaker in speakers and (include_hedged or not m.hedged)}

    def denied_pain_ids(self) -> set[str]:
        """Pains the rep checked and the buyer said they do not have ("Not really, no.")."""
        return {m.id for m in self.pains if m.value == "denied"}

    def meddic_ids(self) -> set[str]:
        return {m.id for m in self.meddic if m.affirmed}

    def objection_ids(self) -> set[str]:
        return {m.id for m in self.objections if not m.negated}

    def question_ids(self) -> set[str]:
        return {m.id for m in self.questions}

    def competitor_ids(self) -> set[str]:
        return {m.id for m in self.competitors if not m.negated}

    def budget_status(self) -> str:
        """"confirmed" | "absent" | "unknown": the last unhedged budget statement wins."""
        return _status(self.budget, "confirmed", "absent")

    def timeline_status(self) -> str:
        """"set" | "none" | "unknown"."""
        return _status(self.timeline, "set", "none")

    def all(self) -> list[Mention]:
        return [*self.pains, *self.meddic, *self.budget, *self.timeline, *self.competitors,
                *self.objections, *self.questions]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (cards, notes, stored evidence)."""
        return {kind: [asdict(m) for m in getattr(self, kind)] for kind in
                ("pains", "meddic", "budget", "timeline", "competitors", "objections", "questions")}


def _status(mentions: Iterable[Mention], yes: str, no: str) -> str:
    firm = [m for m in mentions if not m.hedged and not (m.speaker == "rep" and m.in_question)]
    if not firm:
        return "unknown"
    return no if firm[-1].negated else yes


def extract(text: str, *, speaker_aware: bool = True, taxonomy: Taxonomy | None = None) -> Extraction:
    """Find every mention in `text`; with speaker_aware, "Rep:"/"Prospect:" lines set each speaker.
    Compiles the matchers each call (~10 ms): many texts go through extract_many or one Extractor."""
    if not isinstance(text, str):
        raise TypeError(f"extract() needs text, got {type(text).__name__}")
    return Extractor(taxonomy or default_taxonomy()).run(text, speaker_aware=speaker_aware)


def extract_many(texts: Iterable[str], *, speaker_aware: bool = True, taxonomy: Taxonomy | None = None) -> list[Extraction]:
    """extract() over many texts with one compiled extractor."""
    engine = Extractor(taxonomy or default_taxonomy())
    return [engine.run(t, speaker_aware=speaker_aware) for t in texts]


class Extractor:
    """The compiled matchers of one taxonomy: build one per batch of texts (jobs.nlp.reading.Reader)."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.tax = taxonomy
        self.nlp = nlp()
        self.norm = Normaliser(taxonomy.variants, has_lemmas())
        problems = _PROBLEM | set(taxonomy.budget_problems)
        self.problems = frozenset(problems | {stem(w) for w in problems})
        groups = self._groups()
        self.norm.learn(w for phrases in groups.values() for p in phrases for w in re.findall(r"[a-zA-Z]+", p))
        self.phrases = PhraseMatcher(self.nlp.vocab, attr="NORM")
        for label, phrases in groups.items():
            self.phrases.add(label, [self.norm.apply(self.nlp.make_doc(p)) for p in phrases])
        self.tokens = Matcher(self.nlp.vocab)
        units = {"IN": ["day", "days", "week", "weeks", "month", "months", "quarter", "quarters"]}
        self.tokens.add("timeline|timeline", [
            [{"LOWER": {"IN": ["within", "in", "next"]}}, {"LIKE_NUM": True}, {"LOWER": units}],
            [{"LOWER": {"IN": ["by", "before", "in", "for"]}}, {"LOWER": {"REGEX": r"^(q[1-4]|h[12])$"}}],
            [{"LOWER": {"REGEX": r"^(q[1-4]|h[12])$"}}, {"LOWER": {"REGEX": r"^(20\d\d|'?\d\d)$"}, "OP": "?"},
             {"LOWER": {"IN": ["launch", "rollout", "deadline", "go"]}}],
        ])

    def _groups(self) -> dict[str, tuple[str, ...]]:
        t = self.tax
        groups: dict[str, tuple[str, ...]] = {}
        for kind, table in (("pain", t.pains), ("objection", t.objections), ("question", t.questions),
                            ("meddic", t.meddic)):
            for key, phrases in table.items():
                groups[f"{kind}|{key}"] = phrases
        for key, phrases in t.pain_exclude.items():
            groups[f"exclude|{key}"] = phrases
        for key, phrases in t.pain_absence.items():
            groups[f"absence|{key}"] = phrases
        groups["budget|budget"] = t.budget_terms
        groups["timeline|timeline"] = t.timeline
        groups["timeline_none|timeline"] = t.timeline_negative
        groups["hedge|hedge"] = t.hedges
        groups["pseudo|pseudo"] = t.pseudo_negation
        for name in t.competitors:
            groups[f"competitor|{name.lower().replace(' ', '_')}"] = (name,)
        groups["competitor|other"] = t.competitor_generic
        return {k: v for k, v in groups.items() if v}

    def run(self, text: str, *, speaker_aware: bool) -> Extraction:
        turns = split_turns(text) if speaker_aware else [Turn(None, text, 0)]
        found: dict[str, list[Mention]] = {k: [] for k in KINDS}
        docs = self.nlp.pipe(t.text for t in turns)
        per_turn = [self._scan(self.norm.apply(doc), turn, found) for turn, doc in zip(turns, docs, strict=True)]
        found["pain"].extend(self._answers(turns, per_turn))
        pains = found["pain"]
        found["meddic"].extend(
            Mention("meddic", "identify_pain", m.span, m.sentence, False, m.hedged, m.speaker, m.in_question,
                    m.start, m.end, DERIVED) for m in pains if m.affirmed and m.speaker != "rep")
        return Extraction(
            pains=tuple(pains), meddic=tuple(found["meddic"]), budget=tuple(found["budget"]),
            timeline=tuple(found["timeline"]), competitors=tuple(found["competitor"]),
            objections=tuple(found["objection"]), questions=tuple(found["question"]),
            speakers=tuple(sorted({t.speaker for t in turns if t.speaker})),
        )

    def _answers(self, turns: list[Turn], per_turn: list[list[Mention]]) -> list[Mention]:
        """A rep checks a pain ("I understood X. Is that right?"); the buyer's next turn confirms or denies it."""
        out = []
        for i, turn in enumerate(turns[:-1]):
            reply = turns[i + 1]
            if turn.speaker != "rep" or reply.speaker != "prospect" or "?" not in turn.text:
                continue
            verdict = _verdict(reply.text, self.tax.answers)
            if verdict is None:
                continue
            sentence = reply.text.strip().splitlines()[0][:300]
            for m in per_turn[i]:
                if m.kind == "pain" and not m.negated:
                    out.append(Mention("pain", m.id, m.span, sentence, verdict == "denied", False, "prospect", False,
                                       reply.offset, reply.offset + len(sentence), verdict))
        return out

    def _scan(self, doc: Doc, turn: Turn, found: dict[str, list[Mention]]) -> list[Mention]:
        spans: dict[str, list[Span]] = {}
        for match_id, start, end in [*self.phrases(doc), *self.tokens(doc)]:
            label = self.nlp.vocab.strings[match_id]
            spans.setdefault(label.split("|")[0], []).append(Span(doc, start, end, label=label))
        pseudo = {i for s in spans.get("pseudo", []) for i in range(s.start, s.end)}
        excluded = {(s.label_.split("|")[1], i) for s in spans.get("exclude", []) for i in range(s.start, s.end)}
        clauses = _clauses(doc, self.tax.breakers - {"and", ":"})
        added: list[Mention] = []
        hedged = {clauses[s.start] for s in spans.get("hedge", [])}
        for kind, group in spans.items():
            if kind in ("hedge", "pseudo", "exclude"):
                continue
            for span in _non_overlapping(group):
                if kind == "pain" and any((span.label_.split("|")[1], i) in excluded for i in range(span.start, span.end)):
                    continue
                mention = self._mention(kind, span, turn, pseudo, clauses[span.start] in hedged)
                if mention is not None:
                    found[mention.kind].append(mention)
                    added.append(mention)
        return added

    def _mention(self, kind: str, span: Span, turn: Turn, pseudo: set[int], hedged: bool) -> Mention | None:
        sent = span.sent
        in_question = _is_question(sent, self.tax.question_openers)
        ident = span.label_.split("|", 1)[1]
        speaker = turn.speaker
        if kind == "question" and not (in_question and speaker in ("rep", None)):
            return None
        if kind == "objection" and speaker == "rep":
            return None
        value = None
        if kind == "budget":
            negated = self._budget_negated(span, pseudo)
            amount = _AMOUNT.search(sent.text)
            value = amount.group(0).strip() if amount else None
        elif kind == "absence":  # negating an absence phrase states the pain
            kind, negated = "pain", not self._budget_negated(span, pseudo)
        elif kind == "timeline_none":
            kind, negated = "timeline", True
        else:
            negated = self._negated(span, pseudo)
        if kind == "timeline":
            value = span.text
        return Mention(kind, ident, span.text, sent.text.strip(), negated, hedged, speaker, in_question,
                       turn.offset + span.start_char, turn.offset + span.end_char, value)

    def _is_cue(self, token: Any, pseudo: set[int]) -> bool:
        return token.lower_ in self.tax.negation and token.i not in pseudo

    def _negated(self, span: Span, pseudo: set[int]) -> bool:
        """A negation cue shortly before (same clause), or "X is not a problem" after."""
        doc, sent = span.doc, span.sent
        for i in range(span.start - 1, max(sent.start, span.start - _NEG_WINDOW) - 1, -1):
            if doc[i].lower_ in self.tax.breakers:
                break
            if self._is_cue(doc[i], pseudo):
                return True
        after = self._clause_after(span)
        following = " ".join(tok.lower_ for tok in after[:3])
        if any(following.startswith(word) for word in self.tax.post_negation):
            return True
        cues = [k for k, tok in enumerate(after) if self._is_cue(tok, pseudo)]
        return any(_is_problem(tok, _PROBLEM_STEMS) for k in cues for tok in after[k + 1:k + 4])

    def _budget_negated(self, span: Span, pseudo: set[int]) -> bool:
        """Each negation cue and each problem word flips: "no budget" -> absent, "not an issue" -> present."""
        doc, sent = span.doc, span.sent
        flips = 0
        for i in range(span.start - 1, max(sent.start, span.start - _NEG_WINDOW) - 1, -1):
            if doc[i].lower_ in self.tax.breakers:
                break
            flips += self._is_cue(doc[i], pseudo) or _is_problem(doc[i], self.problems)
        for tok in self._clause_after(span, keep=":"):
            flips += self._is_cue(tok, pseudo) or _is_problem(tok, self.problems)
        return flips % 2 == 1

    def _clause_after(self, span: Span, keep: str = "") -> list[Any]:
        doc, sent = span.doc, span.sent
        out = []
        for i in range(span.end, min(sent.end, span.end + _POST_WINDOW + 2)):
            if doc[i].lower_ in self.tax.breakers and doc[i].lower_ != keep:
                break
            out.append(doc[i])
        return out


def _verdict(reply: str, answers: Mapping[str, tuple[str, ...]]) -> str | None:
    """"denied" | "confirmed" | None from how the buyer's reply starts."""
    start = re.sub(r"[^a-z' ]", " ", reply.lower()).split()
    opening = " ".join(start[:4])
    for verdict in ("denied", "confirmed"):
        if any(opening == cue or opening.startswith(cue + " ") for cue in answers.get(verdict, ())):
            return verdict
    return None


def _is_problem(token: Any, words: frozenset[str]) -> bool:
    return token.lower_ in words or stem(token.lower_) in words


def _clauses(doc: Doc, breakers: frozenset[str]) -> list[int]:
    """Clause number of each token: hedges ("I think") colour their clause, not the whole turn."""
    out, clause = [], 0
    for token in doc:
        if token.is_sent_start or token.lower_ in breakers:
            clause += 1
        out.append(clause)
    return out


def _non_overlapping(spans: list[Span]) -> list[Span]:
    """Longest match wins among overlapping spans of one kind; the same id is kept once per place."""
    return sorted(filter_spans(spans), key=lambda s: s.start)


def _is_question(sent: Span, openers: frozenset[str]) -> bool:
    text = sent.text.strip()
    if text.endswith("?") or "?" in text:
        return True
    words = [t.lower_ for t in sent if not t.is_punct and not t.is_space]
    return bool(words) and (words[0] in openers or (len(words) > 1 and words[0] in ("so", "and", "also", "-")
                                                       and words[1] in openers))
