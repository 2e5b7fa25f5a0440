"""One vocabulary for every text salesloop writes where people read it (tasks, notes, fields, cards).

Loops compute with identifiers (`no_recent_activity`, `employee_band=<50`, `roi_case`); people read
words with units and dates they recognise. Every loop and presenter turns an identifier into words
here, and `plain_problems` is the check a test runs over everything written into a CRM.
"""

from __future__ import annotations

import re
from datetime import date, datetime

# Whole identifiers people see, as they should read them.
WORDS: dict[str, str] = {
    # deal-risk warning signs
    "no_recent_activity": "No recent activity", "champion_quiet": "Champion gone quiet",
    "meeting_slipped": "Meetings slipping", "close_date_pushed": "Close date pushed",
    "stalled_in_stage": "Stalled in stage", "single_threaded": "Single-threaded",
    "proposal_unopened": "Proposal not opened", "risk_language": "Risk language on calls",
    # deal and account attributes
    "amount": "Deal amount", "employees": "Company size", "industry": "Industry", "lead_source": "Lead source",
    "deal_type": "Deal type", "stage": "Stage", "amount_precision": "Amount rounding",
    "employee_band": "Company size", "revenue_band": "Annual revenue", "country": "Country",
    # recovery moves, objection responses, qualification
    "roi_case": "ROI case", "cost_of_inaction": "Cost of inaction", "icp": "ICP", "meddic": "MEDDIC",
    "economic_buyer": "Economic buyer", "decision_maker": "Decision maker", "sdr": "SDR", "bdm": "BDM",
    "deal_risk": "Deal risk", "handoff": "SDR to BDM handoff", "sequences": "Outbound sequences",
    "discovery": "Discovery questions", "objections": "Objection handling",
    "update_field": "Field update", "create_task": "Task", "create_note": "Note", "update_card": "Card",
    "draft_email": "Email draft", "send_email": "Email", "propose_playbook_change": "Playbook change",
    "flag_sdr": "SDR review",
}
ACRONYMS = frozenset({"icp", "roi", "sdr", "bdm", "bdr", "ae", "meddic", "bant", "crm", "mrr", "arr", "it", "hr", "us", "uk"})
LEVELS = {"high": "High", "medium": "Medium", "low": "Low"}
_SIZE = re.compile(r"^(?:<(?P<lt>\d+)|(?P<lo>\d+)-(?P<hi>\d+)|(?P<ge>\d+)\+)$")


def word(identifier: object) -> str:
    """`economic_buyer` -> `Economic buyer`, `roi_case` -> `ROI case`, `icp` -> `ICP` (known words first)."""
    text = str(identifier or "").strip()
    if text.lower() in WORDS:
        return WORDS[text.lower()]
    parts = text.replace("_", " ").split()
    out = [p.upper() if p.lower() in ACRONYMS else p for p in parts]
    joined = " ".join(out)
    return joined[:1].upper() + joined[1:]


def phrase(identifier: object) -> str:
    """Like `word`, in lower case inside a sentence (acronyms stay upper case)."""
    text = word(identifier)
    first = text.split(" ", 1)[0]
    return text if first.isupper() and len(first) > 1 else text[:1].lower() + text[1:]


def size_band(band: str, unit: str = "employees") -> str:
    """`<50` -> `fewer than 50 employees`, `50-199` -> `50 to 199 employees`, `5000+` -> `5,000 or more employees`."""
    m = _SIZE.match(band.strip())
    if m is None:
        return f"{band} {unit}"
    if m["lt"]:
        return f"fewer than {int(m['lt']):,} {unit}"
    if m["ge"]:
        return f"{int(m['ge']):,} or more {unit}"
    return f"{int(m['lo']):,} to {int(m['hi']):,} {unit}"


def money_band(band: str) -> str:
    """`<1M` -> `annual revenue under 1M`, `10M-100M` -> `annual revenue 10M to 100M`."""
    band = band.strip()
    if band.startswith("<"):
        return f"annual revenue under {band[1:]}"
    if band.endswith("+"):
        return f"annual revenue {band[:-1]} or more"
    return "annual revenue " + band.replace("-", " to ")


def segment(key: str) -> str:
    """A firmographic segment `field=value` in words: `industry=healthcare` -> `industry Healthcare`."""
    field, _, value = key.partition("=")
    if value.lower() == "unknown":
        return f"{phrase(field)} not recorded"
    if field == "employee_band":
        return size_band(value)
    if field == "revenue_band":
        return money_band(value)
    if field == "country":
        return f"country {value.upper()}"
    if field.startswith("custom."):
        return f"{phrase(field[7:])} {value}"
    shown = value if value[:1].isupper() else word(value)
    return f"{phrase(field)} {shown}"


def signal(name: str) -> str:
    """A handoff signal `kind:value` in words: `pain:cost_pressure` -> `stated pain: cost pressure`."""
    kind, sep, value = str(name).partition(":")
    if not sep:
        kind, sep, value = (part.strip() for part in str(name).partition("="))
    if not sep:
        return phrase(kind)
    if not kind.replace("_", "").islower():  # a tenant's own field label ("Budget allocated = Yes")
        return f"{kind}: {value}"
    if kind == "pain":
        return f"stated pain: {phrase(value)}"
    if kind == "meddic":
        return f"MEDDIC {phrase(value)} recorded"
    if kind == "question":
        return f"asked about {phrase(value)}"
    if kind == "employees":
        return size_band(value)
    if kind == "handoff":
        return phrase(value)
    shown = value if value[:1].isupper() or value.isupper() else word(value)
    return f"{phrase(kind)} {shown}"


def bounded(lines: list[str], limit: int, more: str) -> str:
    """Join lines up to `limit` characters; what does not fit is counted in `more` (formatted with the count)."""
    out: list[str] = []
    size = 0
    for i, line in enumerate(lines):
        tail = more.format(n=len(lines) - i)
        if size + len(line) + 1 + len(tail) > limit:
            return "\n".join([*out, tail])
        out.append(line)
        size += len(line) + 1
    return "\n".join(out)


def days(n: float) -> str:
    """`1 day`, `3 days`: a duration always carries its unit."""
    whole = int(round(n))
    return f"{whole} day" if whole == 1 else f"{whole} days"


def count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n:,} {noun if n == 1 else (plural or noun + 's')}"


def pct(p: float) -> str:
    return f"{round(100 * p):.0f}%"


def when(value: date | datetime | str | None) -> str:
    """A readable date: `4 Dec 2026` (local calendar date, no clock, no time zone)."""
    if value is None or value == "":
        return "unknown date"
    if isinstance(value, str):
        try:
            parsed: date | datetime = datetime.fromisoformat(value)
        except ValueError:
            return value
    else:
        parsed = value
    day = parsed.date() if isinstance(parsed, datetime) else parsed
    return f"{day.day} {day:%b %Y}"


def level(name: str) -> str:
    """`high` -> `High`."""
    return LEVELS.get(str(name).lower(), word(name))


def win_chance(p_win: float, typical: float | None, where: str = "this stage") -> str:
    """`Win chance 18%, typical for this stage 41%`: probability as people read it."""
    text = f"Win chance {pct(p_win)}"
    return text + (f", typical for {where} {pct(typical)}" if typical is not None else "")


# --- the check: what must never reach a person ---------------------------------------------

_SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
_KEY_VALUE = re.compile(r"\b[A-Za-z_][\w.]*\s?=\s?[^\s=;,]+")
_ISO = re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2})?")
_URL = re.compile(r"https?://\S+")


def plain_problems(text: str) -> list[str]:
    """Internal identifiers in a text meant for people: snake_case tokens, `key=value`, ISO dates (links aside)."""
    text = _URL.sub(" ", text)
    problems = [f"identifier {m.group()!r}" for m in _SNAKE.finditer(text)]
    problems += [f"key=value {m.group()!r}" for m in _KEY_VALUE.finditer(text)]
    problems += [f"ISO date {m.group()!r}" for m in _ISO.finditer(text)]
    return problems
