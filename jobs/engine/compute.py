"""Run the loops' pure learn/decide, in parallel processes when there are cores to spare.

Loops take a snapshot and return data, so they can run in forked children that inherit the
snapshot (copy-on-write) and send back only their Learned state and decisions. Everything
that touches the store stays in the parent.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
import traceback
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crm_adapters.snapshot import Snapshot
from jobs.loops.base import Learned, LoopDefinition
from jobs.loops.decision import Decision

logger = logging.getLogger(__name__)

_SHARED: dict[str, Any] = {}  # set in the parent right before forking; read by the children


@dataclass
class Computed:
    learned: Learned | None = None
    decisions: list[Decision] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0


def compute(
    definition: LoopDefinition, snapshot: Snapshot, state: Mapping[str, Any] | None, now: datetime, *, learn: bool, decide: bool,
) -> Computed:
    """Learn (when asked, or when there is no state yet), then decide with the newest state."""
    started = time.monotonic()
    out = Computed()
    try:
        if learn or state is None:
            out.learned = definition.learn(snapshot, state, now)
            state = out.learned.state
        if decide:
            out.decisions = list(definition.decide(snapshot, state or {}, now))
    except Exception as exc:  # a loop's bug must not stop the other loops; it is recorded on its LoopRun
        out.error = f"{type(exc).__name__}: {str(exc)[:300]}"
        logger.error("loop %s failed: %s", definition.name, "".join(traceback.format_exception(exc))[-1500:])
    out.seconds = time.monotonic() - started
    return out


def compute_all(
    loops: Mapping[str, LoopDefinition], snapshot: Snapshot, states: Mapping[str, Mapping[str, Any] | None], now: datetime,
    *, learn: bool, decide: bool, workers: int | None = None,
) -> dict[str, Computed]:
    """Every loop's result by name (in the order given); forked workers when more than one core and unit."""
    workers = workers if workers is not None else default_workers()
    names, units = list(loops), process_units(loops)
    if workers <= 1 or len(units) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return {n: compute(loops[n], snapshot, states.get(n), now, learn=learn, decide=decide) for n in names}
    _SHARED.update(loops=loops, snapshot=snapshot, states=states, now=now, learn=learn, decide=decide)
    try:
        with ProcessPoolExecutor(max_workers=min(workers, len(units)), mp_context=multiprocessing.get_context("fork")) as pool:
            results: dict[str, Computed] = {}
            for future in [pool.submit(_child, unit) for unit in units]:
                results.update(future.result())
            return {n: results[n] for n in names}
    finally:
        _SHARED.clear()


def process_units(loops: Mapping[str, LoopDefinition]) -> list[list[str]]:
    """Loops of one process_group share a process (and its NLP memo), in turn; the rest run alone.
    Largest unit first: it is the longest, so the others fill the remaining workers around it."""
    units: dict[str, list[str]] = {}
    for name, definition in loops.items():
        units.setdefault(definition.process_group or f"loop:{name}", []).append(name)
    return sorted(units.values(), key=len, reverse=True)


def _child(unit: list[str]) -> dict[str, Computed]:
    s = _SHARED
    return {name: compute(s["loops"][name], s["snapshot"], s["states"].get(name), s["now"], learn=s["learn"],
                          decide=s["decide"]) for name in unit}


def default_workers() -> int:
    """SALESLOOP_LOOP_WORKERS, else the cores this process may use (at most 4)."""
    raw = os.environ.get("SALESLOOP_LOOP_WORKERS")
    if raw:
        return max(1, int(raw))
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return min(4, cores)
