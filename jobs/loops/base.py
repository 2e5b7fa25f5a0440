"""The shape every loop module shares, so the engine can run any of them the same way.

A loop is pure: it takes the common-model snapshot, its own learned state (a JSON-ready
dict, versioned by the store) and the time, and returns data. No I/O, no logging.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crm_adapters.snapshot import Snapshot
from jobs.loops.decision import Decision

State = Mapping[str, Any]


@dataclass(frozen=True)
class Learned:
    """A new version of a loop's state, with the figures that validate it (AUC, Brier, n ...)."""

    state: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LoopDefinition:
    """One loop: learn from outcomes, decide actions, and apply a manager-approved proposal."""

    name: str
    learn: Callable[[Snapshot, State | None, datetime], Learned]
    decide: Callable[[Snapshot, State, datetime], list[Decision]]
    approve: Callable[[State, Mapping[str, Any]], dict[str, Any]] | None = None  # state after approval
    description: str = ""
    process_group: str = ""  # loops of one group run in one process, in turn, sharing per-process memos (NLP)
    title: str = ""  # the loop's name as people read it (pages, cards, CRM tasks); `name` is the stored key
