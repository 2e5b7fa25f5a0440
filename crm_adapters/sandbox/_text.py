"""Natural, varied English for notes, call transcripts and emails (seeded by the caller's Random)."""

from __future__ import annotations

import random
from collections.abc import Sequence

from crm_adapters.sandbox import _phrases as P

_NOTE_OPENERS = (
    "Qualified {company}.",
    "Call with {first} at {company}.",
    "{company} - spoke to {first}.",
    "Good convo with {first} ({company}).",
    "Qual notes, {company}:",
)
_PAIN_LEADS = ("Main pain: ", "Pains: ", "They told me ", "Key issues - ", "What hurts: ")
_CLOSERS = (
    "Handing over to {bdm}.",
    "Booked discovery with {bdm} next week.",
    "Passing to {bdm}, worth a look.",
    "Meeting set with {bdm}.",
)


def typo(rnd: random.Random, text: str, rate: float) -> str:
    """Swap two letters in some longer words, as hurried note-takers do."""
    if rate <= 0:
        return text
    words = text.split(" ")
    for i, word in enumerate(words):
        if len(word) > 4 and rnd.random() < rate:
            j = rnd.randrange(1, len(word) - 2)
            words[i] = word[:j] + word[j + 1] + word[j] + word[j + 2 :]
    return " ".join(words)


def _hedge(rnd: random.Random, clause: str, rate: float) -> str:
    return rnd.choice(P.HEDGES) + clause if rnd.random() < rate else clause


def _join(parts: Sequence[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def sdr_note(
    rnd: random.Random,
    *,
    company: str,
    first: str,
    bdm: str,
    stated: Sequence[str],
    absent: Sequence[str],
    meddic: dict[str, bool],
    typo_rate: float,
    hedge_rate: float,
) -> str:
    """The SDR's qualification note: stated pains, a denied pain or two, MEDDIC findings, handover."""
    names = {"company": company, "first": first, "bdm": bdm}
    lines = [rnd.choice(_NOTE_OPENERS).format(**names)]
    if stated:
        lead = rnd.choice(_PAIN_LEADS)
        rate = 0.0 if lead == "They told me " else hedge_rate
        clauses = [_hedge(rnd, rnd.choice(P.PAIN_NOTE[p]), rate) for p in stated]
        lines.append(lead + _join(clauses) + ".")
    for pain in absent:
        lines.append(rnd.choice(P.PAIN_ABSENT[pain]).capitalize() + ".")
    elements = list(meddic.items())
    rnd.shuffle(elements)
    for element, known in elements:
        if known:
            lines.append(_hedge(rnd, rnd.choice(P.MEDDIC_YES[element]), hedge_rate / 2).capitalize() + ".")
        elif rnd.random() < 0.6:
            lines.append(rnd.choice(P.MEDDIC_NO[element]).capitalize() + ".")
    lines.append(rnd.choice(_CLOSERS).format(**names))
    sep = rnd.choice(("\n", " ", "\n- "))
    return typo(rnd, sep.join(lines), typo_rate)


def _qa(rnd: random.Random, questions: Sequence[str], lines: list[str]) -> None:
    for qid in questions:
        lines.append("Rep: " + rnd.choice(P.QUESTION[qid]))
        lines.append("Prospect: " + rnd.choice(P.ANSWER))


def sdr_call(
    rnd: random.Random, *, company: str, first: str, rep: str, questions: Sequence[str], spoken: Sequence[str]
) -> str:
    """The SDR's qualifying call: intro, the questions the SDR asked, the pains the prospect voiced."""
    lines = [
        f"Rep: Hi {first}, this is {rep}. "
        + rnd.choice(("Thanks for taking the call.", "Got a minute?", "Hope now is ok.")),
        "Prospect: " + rnd.choice(("Sure, go ahead.", "Yes, a few minutes.", "Hi, yes.")),
        "Rep: "
        + rnd.choice(
            (
                "What made you look at this?",
                "What's going on in your team?",
                "Tell me a bit about your setup.",
            )
        ),
    ]
    pains = list(spoken)
    if pains:
        lines.append("Prospect: " + " ".join(rnd.choice(P.PAIN_SPOKEN[p]) for p in pains))
    else:
        lines.append(
            "Prospect: " + rnd.choice(("Nothing urgent, just exploring.", "We're just curious, really."))
        )
    order = list(questions)
    rnd.shuffle(order)
    _qa(rnd, order, lines)
    lines.append(
        "Rep: " + rnd.choice(("I'll set up a call with a colleague.", "Let me book you with our specialist."))
    )
    lines.append("Prospect: " + rnd.choice(("Sounds good.", "Okay.", "Fine, send an invite.")))
    return "\n".join(lines)


def discovery_call(
    rnd: random.Random,
    *,
    company: str,
    first: str,
    rep: str,
    questions: Sequence[str],
    discovered: Sequence[str],
    denied: Sequence[str],
    objections: Sequence[tuple[str, str]],
) -> str:
    """The BDM's discovery call: questions asked, true pains uncovered, objections and the rep's responses."""
    lines = [
        f"Rep: Thanks for joining, {first}. I'm {rep}; I'd like to understand {company} before showing anything.",
        "Prospect: " + rnd.choice(("Sure.", "Happy to.", "Go ahead.")),
    ]
    order = list(questions)
    rnd.shuffle(order)
    half = len(order) // 2
    _qa(rnd, order[:half], lines)
    for pain in discovered:
        lines.append("Prospect: " + rnd.choice(P.PAIN_SPOKEN[pain]))
    for pain in denied:
        lines.append("Rep: I understood " + rnd.choice(P.PAIN_NOTE[pain]) + ". Is that right?")
        lines.append(
            "Prospect: "
            + rnd.choice(("Not really, no.", "No, that's not an issue for us.", "I wouldn't say that."))
        )
    _qa(rnd, order[half:], lines)
    for kind, response in objections:
        lines.append("Prospect: " + rnd.choice(P.OBJECTION[kind]))
        lines.append("Rep: " + rnd.choice(P.RESPONSE[response]))
        lines.append(
            "Prospect: " + rnd.choice(("Okay.", "Hmm, let me think about it.", "That helps.", "I see."))
        )
    lines.append("Rep: " + rnd.choice(("Next step: a tailored demo.", "I'll send a recap and next steps.")))
    return "\n".join(lines)


def check_in(rnd: random.Random, first: str) -> str:
    return f"Hi {first},\n" + rnd.choice(P.CHECK_IN)


def reply(rnd: random.Random, risky: bool) -> str:
    return rnd.choice(P.RISK_LANGUAGE) if risky else rnd.choice(P.REPLY_OK)


def sequence_email(rnd: random.Random, variant: str, step: int, first: str, company: str) -> tuple[str, str]:
    subjects = P.SEQUENCE_SUBJECT.get(variant, P.SEQUENCE_SUBJECT["A"])
    body = P.SEQUENCE_BODY[min(step - 1, len(P.SEQUENCE_BODY) - 1)]
    return rnd.choice(subjects).format(first=first, company=company), body.format(
        first=first, company=company
    )


def sequence_reply(rnd: random.Random, positive: bool) -> str:
    return rnd.choice(P.POSITIVE_REPLY if positive else P.NEGATIVE_REPLY)
