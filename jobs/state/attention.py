"""The attention budget: how much salesloop may ask of each person, per tenant. Pure.

People's attention is the loop's scarcest resource: a rep who gets forty tasks a morning
ignores all of them, and a manager who cannot find the approvals never approves. Every task
salesloop writes has a category; each category has a cap per person per period. What does not
fit is never dropped: it waits (pending proposals stay on the admin page and are released when
the budget frees up, sampled writes stay listed there, lookalike accounts keep their ICP fit field),
and the digest that did fit says how much more waits and where.

Settings: installation.settings["attention"] (any subset of AttentionBudget's fields).
"""

from __future__ import annotations

import hashlib
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime
from enum import StrEnum
from typing import Any


class Ask(StrEnum):
    """What a task asks of its owner; each kind has its own cap and period."""

    DIGEST = "digest"  # a rep's morning at-risk list (one a day)
    APPROVAL = "approval"  # a manager decides a proposal
    APPROVAL_BUNDLE = "approval_bundle"  # "these more proposals wait for you" (one a week)
    ICP_DIGEST = "icp_digest"  # an SDR lead's weekly lookalike accounts
    SPOT_CHECK = "spot_check"  # a manager's weekly sample of what was written alone
    REVIEW = "review"  # a drift pause to confirm: rare and urgent, never capped
    OTHER = "other"  # drafts and anything else a loop asks a person to do


WEEKLY = frozenset({Ask.APPROVAL, Ask.APPROVAL_BUNDLE, Ask.ICP_DIGEST, Ask.SPOT_CHECK})


@dataclass(frozen=True)
class AttentionBudget:
    """Caps per person (defaults: what a sales team said it would keep reading)."""

    digests_per_rep_per_day: int = 1
    approvals_per_manager_per_week: int = 5
    icp_digests_per_lead_per_week: int = 1
    icp_accounts_per_digest: int = 10
    spot_checks_per_manager_per_week: int = 1
    spot_check_items: int = 20
    other_tasks_per_person_per_day: int = 3

    def __post_init__(self) -> None:
        for f in fields(self):
            if int(getattr(self, f.name)) < 0:
                raise ValueError(f"attention budget {f.name} must be >= 0")

    @classmethod
    def of(cls, installation_settings: Mapping[str, Any] | None) -> AttentionBudget:
        raw = dict((installation_settings or {}).get("attention") or {})
        return cls(**{k: int(v) for k, v in raw.items() if k in cls.__dataclass_fields__})

    def to_json(self) -> dict[str, int]:
        return asdict(self)

    def cap(self, ask: Ask) -> int | None:
        """How many tasks of this kind one person may get per period (None: uncapped)."""
        return {
            Ask.DIGEST: self.digests_per_rep_per_day, Ask.APPROVAL: self.approvals_per_manager_per_week,
            Ask.APPROVAL_BUNDLE: 1, Ask.ICP_DIGEST: self.icp_digests_per_lead_per_week,
            Ask.SPOT_CHECK: self.spot_checks_per_manager_per_week, Ask.OTHER: self.other_tasks_per_person_per_day,
        }.get(ask)


def period(ask: Ask, day: date) -> str:
    """The budget period a task counts in: its ISO week for weekly kinds, else its day."""
    if ask in WEEKLY:
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return day.isoformat()


@dataclass
class Ledger:
    """Tasks already asked of each person, per kind and period; `admit` books one if the cap allows."""

    budget: AttentionBudget
    used: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    def book(self, person: str | None, ask: Ask, day: date) -> None:
        self.used[(person or "", ask.value, period(ask, day))] += 1

    def left(self, person: str | None, ask: Ask, day: date) -> int | None:
        cap = self.budget.cap(ask)
        return None if cap is None else max(cap - self.used[(person or "", ask.value, period(ask, day))], 0)

    def admit(self, person: str | None, ask: Ask, day: date) -> bool:
        """Book the task if it fits this person's budget; False means it must wait."""
        left = self.left(person, ask, day)
        if left is not None and left <= 0:
            return False
        self.book(person, ask, day)
        return True

    @classmethod
    def from_tasks(cls, budget: AttentionBudget, tasks: Iterable[Mapping[str, Any]]) -> Ledger:
        """Rebuild from the task payloads already queued (each stamped with "ask" and "asked_on")."""
        ledger = cls(budget)
        for task in tasks:
            asked_on = task.get("asked_on")
            if asked_on:
                ledger.book(task.get("owner_id"), Ask(task.get("ask") or Ask.OTHER), date.fromisoformat(str(asked_on)[:10]))
        return ledger


def stamp(payload: dict[str, Any], ask: Ask, now: datetime) -> dict[str, Any]:
    """A task payload carries what it asks and when, so later runs can count it against the budget."""
    return {**payload, "ask": ask.value, "asked_on": now.date().isoformat()}


def sample(keys: Iterable[str], seed: str, size: int) -> list[str]:
    """A deterministic sample of at most `size` keys: the smallest hashes of (seed, key). Same seed, same sample."""
    ranked = sorted(set(keys), key=lambda k: hashlib.sha256(f"{seed}:{k}".encode()).hexdigest())
    return ranked[:size]


def task_load(tasks: Iterable[tuple[str | None, date]]) -> dict[str, Any]:
    """Tasks per person per day (median and max over the person-days that got any), for the summary and admin page."""
    per = Counter((owner or "", day) for owner, day in tasks)
    counts = sorted(per.values())
    return {"tasks": sum(counts), "people": len({o for o, _ in per}), "days": len({d for _, d in per}),
            "median_per_person_day": statistics.median(counts) if counts else 0,
            "max_per_person_day": counts[-1] if counts else 0}
