"""The shape every loop module shares, so the engine can run any of them the same way.

A loop is pure: it takes the common-model snapshot, its own learned state and the time, and returns
data. No I/O, no logging. Each loop's state is one frozen dataclass (`LoopDefinition.state_type`)
that the engine decodes once when it loads a stored version and encodes once when it saves one
(jobs/state/versions.py); loop code reads attributes, JSON exists only where versions are stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, Self, TypeVar

from crm_adapters.snapshot import Snapshot
from jobs.loops.decision import Decision


class LoopState(Protocol):
    """A loop's learned state: a frozen dataclass with its own JSON form (the shape stored versions hold)."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self: ...

    def to_json(self) -> dict[str, Any]: ...


S = TypeVar("S")


@dataclass(frozen=True)
class Learned(Generic[S]):
    """A new version of a loop's state, with the figures that validate it (AUC, Brier, n ...)."""

    state: S
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LoopDefinition(Generic[S]):
    """One loop: learn from outcomes, decide actions, and apply a manager-approved proposal.

    `state_type` decodes and encodes the state where versions are stored; None only for a probe loop
    in tests whose state is a plain JSON dict.
    """

    name: str
    learn: Callable[[Snapshot, S | None, datetime], Learned[S]]
    decide: Callable[[Snapshot, S, datetime], list[Decision]]
    approve: Callable[[S, Mapping[str, Any]], S] | None = None  # state after approval
    description: str = ""
    process_group: str = ""  # loops of one group run in one process, in turn, sharing per-process memos (NLP)
    title: str = ""  # the loop's name as people read it (pages, cards, CRM tasks); `name` is the stored key
    state_type: type[LoopState] | None = None
