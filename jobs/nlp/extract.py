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

from jobs.nlp._normalise import Normaliser, stem
from jobs.nlp._tokens import TokenReader, Tokens, non_overlapping
from jobs.nlp.pipeline import has_lemmas, nlp
from jobs.nlp.speakers import Turn, split_turns
from jobs.nlp.taxonomy import Taxonomy, default_taxonomy

DERIVED = "from_pain"  # Mention.value of identify_pain inferred from a stated pain (not an explicit MEDDIC line)
KINDS = ("pain", "meddic", "budget", "timeline", "competitor", "objection", "question")
_NEG_WINDOW = 6  # tokens before a match a negation cue may sit in ("we don't have an issue with X")
_POST_WINDOW = 4
_PROBLEM = frozenset({"issue", "problem", "concern", "pain", "challenge", "deal", "worry"})
_PROBLEM_STEMS = _PROBLEM | {stem(w) for w in _PROBLEM}
_PERIOD = re.compile(r"^(q[1-4]|h[12])$")  # the token Matcher's quarter/half pattern
_NUMBER_LEADS = frozenset({"within", "in", "next"})  # "within 6 weeks": the token Matcher's number pattern opens so
TURN_MEMO = 50_000  # turns whose mentions are remembered per Extractor (cleared when full)
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

    def __init__(self, taxonomy: Taxonomy, *, memo: int = TURN_MEMO) -> None:
        self.tax = taxonomy
        self.memo_size = memo  # 0: every turn is read afresh (bench/reading.py measures both)
        self.nlp = nlp()
        self.norm = Normaliser(taxonomy.variants, has_lemmas())
        problems = _PROBLEM | set(taxonomy.budget_problems)
        self.problems = frozenset(problems | {stem(w) for w in problems})
        groups = self._groups()
        self.norm.learn(w for phrases in groups.values() for p in phrases for w in re.findall(r"[a-zA-Z]+", p))
        self.phrases = PhraseMatcher(self.nlp.vocab, attr="NORM")
        for label, phrases in groups.items():
            self.phrases.add(label, [self.norm.apply(self.nlp.make_doc(p)) for p in phrases])
        self._clause_breakers = self.tax.breakers - {"and", ":"}
        self.read_tokens = TokenReader(self.nlp)
        self._memo: dict[tuple[str, str | None], tuple[Mention, ...]] = {}
        self.tokens = Matcher(self.nlp.vocab)
        units = {"IN": ["day", "days", "week", "weeks", "month", "months", "quarter", "quarters"]}
        self.tokens.add("timeline|timeline", [
            [{"LOWER": {"IN": sorted(_NUMBER_LEADS)}}, {"LIKE_NUM": True}, {"LOWER": units}],
            [{"LOWER": {"IN": ["by", "before", "in", "for"]}}, {"LOWER": {"REGEX": _PERIOD.pattern}}],
            [{"LOWER": {"REGEX": _PERIOD.pattern}}, {"LOWER": {"REGEX": r"^(20\d\d|'?\d\d)$"}, "OP": "?"},
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
        per_turn = []
        for turn in turns:
            added = [m if turn.offset == 0 else _shifted(m, turn.offset) for m in self._turn(turn.text, turn.speaker)]
            for mention in added:
                found[mention.kind].append(mention)
            per_turn.append(added)
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

    def _turn(self, text: str, speaker: str | None) -> tuple[Mention, ...]:
        """One turn's mentions at offset 0: a turn depends only on its words and speaker, and templated lines
        ("Hi, yes.", a sequence email) recur across a tenant, so each is read once per process (bounded)."""
        key = (text, speaker)
        found = self._memo.get(key)
        if found is None:
            found = tuple(self._scan(self._tokens(text), speaker))
            if len(self._memo) >= self.memo_size:
                self._memo.clear()
            if self.memo_size:
                self._memo[key] = found
        return found

    def _tokens(self, text: str) -> Tokens:
        """Tokenise and sentence-split one turn, then write each token's normal form for the PhraseMatcher."""
        tokens = self.read_tokens(text)
        self.norm.write(tokens.doc, tokens.words, tokens.lemmas)
        return tokens

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

    def _matches(self, t: Tokens) -> list[tuple[str, str, int, int]]:
        """(kind, id, start, end) of every phrase and token-pattern match, in the matchers' order; the token
        Matcher runs only where one of its patterns can start (a number after within/in/next, or Q1-H2)."""
        strings = self.nlp.vocab.strings
        found = [*self.phrases(t.doc)]
        if _may_name_a_time(t):
            found.extend(self.tokens(t.doc))
        out = []
        for match_id, start, end in found:
            kind, _, ident = strings[match_id].partition("|")
            out.append((kind, ident, start, end))
        return out

    def _scan(self, t: Tokens, speaker: str | None) -> list[Mention]:
        spans: dict[str, list[tuple[str, str, int, int]]] = {}
        for match in self._matches(t):
            spans.setdefault(match[0], []).append(match)
        pseudo = {i for _, _, s, e in spans.get("pseudo", []) for i in range(s, e)}
        excluded = {(ident, i) for _, ident, s, e in spans.get("exclude", []) for i in range(s, e)}
        clauses = _clauses(t, self._clause_breakers)
        added: list[Mention] = []
        hedged = {clauses[s] for _, _, s, _ in spans.get("hedge", [])}
        for kind, group in spans.items():
            if kind in ("hedge", "pseudo", "exclude"):
                continue
            for span in non_overlapping(group):
                _, ident, start, end = span
                if kind == "pain" and any((ident, i) in excluded for i in range(start, end)):
                    continue
                mention = self._mention(kind, ident, start, end, t, speaker, pseudo, clauses[start] in hedged)
                if mention is not None:
                    added.append(mention)
        return added

    def _mention(self, kind: str, ident: str, start: int, end: int, t: Tokens, speaker: str | None, pseudo: set[int],
                 hedged: bool) -> Mention | None:
        sent_start, sent_end = t.sentence(start)
        in_question = _is_question(t, sent_start, sent_end, self.tax.question_openers)
        if kind == "question" and not (in_question and speaker in ("rep", None)):
            return None
        if kind == "objection" and speaker == "rep":
            return None
        sentence = t.text_of(sent_start, sent_end)
        value = None
        if kind == "budget":
            negated = self._budget_negated(t, start, end, sent_start, sent_end, pseudo)
            amount = _AMOUNT.search(sentence)
            value = amount.group(0).strip() if amount else None
        elif kind == "absence":  # negating an absence phrase states the pain
            kind, negated = "pain", not self._budget_negated(t, start, end, sent_start, sent_end, pseudo)
        elif kind == "timeline_none":
            kind, negated = "timeline", True
        else:
            negated = self._negated(t, start, end, sent_start, sent_end, pseudo)
        span = t.text_of(start, end)
        if kind == "timeline":
            value = span
        return Mention(kind, ident, span, sentence.strip(), negated, hedged, speaker, in_question,
                       t.idx[start], t.idx[end - 1] + len(t.words[end - 1]), value)

    def _is_cue(self, lower: str, i: int, pseudo: set[int]) -> bool:
        return lower in self.tax.negation and i not in pseudo

    def _negated(self, t: Tokens, start: int, end: int, sent_start: int, sent_end: int, pseudo: set[int]) -> bool:
        """A negation cue shortly before (same clause), or "X is not a problem" after."""
        lower, breakers = t.lower, self.tax.breakers
        for i in range(start - 1, max(sent_start, start - _NEG_WINDOW) - 1, -1):
            if lower[i] in breakers:
                break
            if self._is_cue(lower[i], i, pseudo):
                return True
        after = self._clause_after(t, end, sent_end)
        following = " ".join(lower[i] for i in after[:3])
        if any(following.startswith(word) for word in self.tax.post_negation):
            return True
        cues = [k for k, i in enumerate(after) if self._is_cue(lower[i], i, pseudo)]
        return any(_is_problem(lower[i], _PROBLEM_STEMS) for k in cues for i in after[k + 1:k + 4])

    def _budget_negated(self, t: Tokens, start: int, end: int, sent_start: int, sent_end: int, pseudo: set[int]) -> bool:
        """Each negation cue and each problem word flips: "no budget" -> absent, "not an issue" -> present."""
        lower = t.lower
        flips = 0
        for i in range(start - 1, max(sent_start, start - _NEG_WINDOW) - 1, -1):
            if lower[i] in self.tax.breakers:
                break
            flips += self._is_cue(lower[i], i, pseudo) or _is_problem(lower[i], self.problems)
        for i in self._clause_after(t, end, sent_end, keep=":"):
            flips += self._is_cue(lower[i], i, pseudo) or _is_problem(lower[i], self.problems)
        return flips % 2 == 1

    def _clause_after(self, t: Tokens, end: int, sent_end: int, keep: str = "") -> list[int]:
        """Token positions after a match up to the clause's end (at most _POST_WINDOW + 2)."""
        out = []
        for i in range(end, min(sent_end, end + _POST_WINDOW + 2)):
            if t.lower[i] in self.tax.breakers and t.lower[i] != keep:
                break
            out.append(i)
        return out


def _verdict(reply: str, answers: Mapping[str, tuple[str, ...]]) -> str | None:
    """"denied" | "confirmed" | None from how the buyer's reply starts."""
    start = re.sub(r"[^a-z' ]", " ", reply.lower()).split()
    opening = " ".join(start[:4])
    for verdict in ("denied", "confirmed"):
        if any(opening == cue or opening.startswith(cue + " ") for cue in answers.get(verdict, ())):
            return verdict
    return None


def _is_problem(lower: str, words: frozenset[str]) -> bool:
    return lower in words or stem(lower) in words


def _may_name_a_time(t: Tokens) -> bool:
    """Whether one of the token Matcher's patterns can start here: a number after within/in/next, or Q1-H2."""
    lower = t.lower
    for i, word in enumerate(lower):
        if word[:1] in "qh" and _PERIOD.search(word):
            return True
        if word in _NUMBER_LEADS and i + 1 < len(lower) and t.doc[i + 1].like_num:
            return True
    return False


def _shifted(m: Mention, offset: int) -> Mention:
    return Mention(m.kind, m.id, m.span, m.sentence, m.negated, m.hedged, m.speaker, m.in_question,
                   m.start + offset, m.end + offset, m.value)


def _clauses(t: Tokens, breakers: frozenset[str]) -> list[int]:
    """Clause number of each token: hedges ("I think") colour their clause, not the whole turn."""
    out, clause = [], 0
    for start, lower in zip(t.starts, t.lower, strict=True):
        if start or lower in breakers:
            clause += 1
        out.append(clause)
    return out


def _is_question(t: Tokens, start: int, end: int, openers: frozenset[str]) -> bool:
    if "?" in t.text_of(start, end):
        return True
    words = [t.lower[i] for i in range(start, end) if not t.punct[i] and not t.space[i]]
    return bool(words) and (words[0] in openers or (len(words) > 1 and words[0] in ("so", "and", "also", "-")
                                                       and words[1] in openers))
