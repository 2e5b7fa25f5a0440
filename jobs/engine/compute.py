"""Run the loops' pure learn/decide, in parallel processes when there are cores to spare.

Loops take a snapshot and return data, so they can run in forked children that inherit the
snapshot (copy-on-write) and send back only their Learned state and decisions. Everything
that touches the store stays in the parent.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, cast

from connector.settings import usable_cores
from crm_adapters.snapshot import Snapshot
from jobs.loops.base import Learned, LoopDefinition
from jobs.loops.decision import Decision

logger = logging.getLogger(__name__)


@dataclass
class Computed:
    learned: Learned[Any] | None = None
    decisions: list[Decision] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0


def compute(
    definition: LoopDefinition[Any], snapshot: Snapshot, state: Any, now: datetime, *, learn: bool, decide: bool,
) -> Computed:
    """Learn (when asked, or when there is no state yet), then decide with the newest state (the loop's typed state)."""
    started = time.monotonic()
    out = Computed()
    try:
        if learn or state is None:
            out.learned = definition.learn(snapshot, state, now)
            state = out.learned.state
        if decide:
            out.decisions = list(definition.decide(snapshot, state, now))
    except Exception as exc:  # a loop's bug must not stop the other loops; it is recorded on its LoopRun
        out.error = f"{type(exc).__name__}: {str(exc)[:300]}"
        logger.error("loop %s failed: %s", definition.name, "".join(traceback.format_exception(exc))[-1500:])
    out.seconds = time.monotonic() - started
    return out


def compute_all(
    loops: Mapping[str, LoopDefinition[Any]], snapshot: Snapshot, states: Mapping[str, Any], now: datetime,
    *, learn: bool | Mapping[str, bool], decide: bool, workers: int | None = None,
) -> dict[str, Computed]:
    """Every loop's result by name (in the order given); forked workers when more than one core and unit.
    `learn` is one answer for every loop or one per loop name."""
    workers = workers if workers is not None else default_workers()
    names, units = list(loops), process_units(loops)
    learns = learn if isinstance(learn, Mapping) else dict.fromkeys(names, learn)
    if workers <= 1 or len(units) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return {n: compute(loops[n], snapshot, states.get(n), now, learn=learns.get(n, False), decide=decide) for n in names}

    def run_unit(unit: list[str]) -> dict[str, Computed]:
        return {n: compute(loops[n], snapshot, states.get(n), now, learn=learns.get(n, False), decide=decide) for n in unit}

    results = _forked(run_unit, units, workers=min(workers, len(units)))
    return {n: results[n] for n in names}


def process_units(loops: Mapping[str, LoopDefinition[Any]]) -> list[list[str]]:
    """Loops of one process_group share a process (and its NLP memo), in turn; the rest run alone.
    Largest unit first: it is the longest, so the others fill the remaining workers around it."""
    units: dict[str, list[str]] = {}
    for name, definition in loops.items():
        units.setdefault(definition.process_group or f"loop:{name}", []).append(name)
    return sorted(units.values(), key=len, reverse=True)


def _forked(run_unit: Callable[[list[str]], dict[str, Computed]], units: list[list[str]], *, workers: int,
            ) -> dict[str, Computed]:
    """Each unit in a forked child (at most `workers` at once). A fork inherits run_unit and the snapshot it
    closes over (copy-on-write), so nothing is pickled on the way in and no module state carries it."""
    context = multiprocessing.get_context("fork")
    pending, results = list(units), dict[str, Computed]()
    running: dict[Connection, BaseProcess] = {}  # the parent's end of each child's pipe -> the child
    with _frozen_heap():
        _run_forked(context, run_unit, pending, running, results, workers)
    return results


@contextmanager
def _frozen_heap() -> Iterator[None]:
    """Move every object the parent holds (the snapshot, its readings) out of the collector's reach while the
    workers run: a child's collections would otherwise write to each object's GC header and copy every page of
    the snapshot it inherited. The parent's own objects are given back to the collector afterwards."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _run_forked(context: Any, run_unit: Callable[[list[str]], dict[str, Computed]], pending: list[list[str]],
                running: dict[Connection, BaseProcess], results: dict[str, Computed], workers: int) -> None:
    while pending or running:
        while pending and len(running) < workers:
            receive, send = context.Pipe(duplex=False)
            child = context.Process(target=_child, args=(run_unit, pending.pop(0), send))
            child.start()
            send.close()
            running[receive] = child
        for ready in [cast(Connection, c) for c in wait(list(running))]:
            try:
                results.update(ready.recv())
            except EOFError:
                raise RuntimeError(f"a loop process died (exit code {running[ready].exitcode})") from None
            finally:
                running.pop(ready).join()


def _child(run_unit: Callable[[list[str]], dict[str, Computed]], unit: list[str], send: Connection) -> None:
    send.send(run_unit(unit))
    send.close()


def default_workers() -> int:
    """The cores this process may use (at most 4); Settings.loop_workers (SALESLOOP_LOOP_WORKERS) overrides it."""
    return usable_cores()
