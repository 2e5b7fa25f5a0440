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
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from rq.timeouts import BaseTimeoutException

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
    except BaseTimeoutException:  # the job's time limit, raised in whichever loop runs in the work-horse: it ends the job
        raise
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

    cache = getattr(snapshot, "_cache", {})
    before = set(cache)

    def run_unit(unit: list[str]) -> dict[str, Computed]:
        try:
            return {n: compute(loops[n], snapshot, states.get(n), now, learn=learns.get(n, False), decide=decide) for n in unit}
        finally:
            for key in set(cache) - before:  # the unit's memos: each unit starts from the snapshot as it was read,
                del cache[key]  # as in a fresh process, and the steps after the loops start without them

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
    """The units shared out between `workers` processes: this one and workers - 1 forked children, each taking
    the next unit when it is free. A process reading the snapshot writes to each object's reference count, which
    copies the page under it while another process still maps that page: each reader holds its own copy, so the
    parent, which holds the original anyway, is one of the readers (one copy fewer than two children beside an
    idle parent: 2.5 -> 1.9 GB at the peak of a 20,000-deal first run), and a child runs its units in turn instead of a fresh child each (a second child forked from
    the parent would keep the original pages alive beside the parent's copy). The children are forked before any
    loop runs: nothing is pickled on the way in, and no module state carries the snapshot."""
    context = multiprocessing.get_context("fork")
    taken = context.Value("i", 0)  # the next unit's index, shared by the parent and its children
    results = dict[str, Computed]()
    with _frozen_heap():
        children = [_fork(context, run_unit, units, taken) for _ in range(workers - 1)]
        try:
            results.update(_take_units(run_unit, units, taken))
            for receive, child in children:
                try:
                    results.update(receive.recv())
                except EOFError:
                    child.join()
                    raise RuntimeError(f"a loop process died (exit code {child.exitcode})") from None
        except BaseException:  # the run stops here (a dead child, the job's time limit): its children with it
            for _, child in children:
                child.terminate()
            raise
        finally:
            for receive, child in children:
                receive.close()
                child.join()
    return results


def _fork(context: Any, run_unit: Callable[[list[str]], dict[str, Computed]], units: list[list[str]], taken: Any,
          ) -> tuple[Connection, BaseProcess]:
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(run_unit, units, taken, send))
    child.start()
    send.close()
    return receive, child


def _take_units(run_unit: Callable[[list[str]], dict[str, Computed]], units: list[list[str]], taken: Any,
                ) -> dict[str, Computed]:
    """Run the next untaken unit until none is left; the results of every unit this process ran."""
    results: dict[str, Computed] = {}
    while True:
        with taken.get_lock():
            index = taken.value
            taken.value += 1
        if index >= len(units):
            return results
        results.update(run_unit(units[index]))


@contextmanager
def _frozen_heap() -> Iterator[None]:
    """Move every object the parent holds (the snapshot, its readings) out of the collector's reach while the
    loops run: a collection would otherwise write to each object's GC header and copy every page of the snapshot,
    in the children and in the parent. The parent's objects are given back to the collector afterwards."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _child(run_unit: Callable[[list[str]], dict[str, Computed]], units: list[list[str]], taken: Any, send: Connection) -> None:
    send.send(_take_units(run_unit, units, taken))
    send.close()


def default_workers() -> int:
    """The cores this process may use (at most 4); Settings.loop_workers (SALESLOOP_LOOP_WORKERS) overrides it."""
    return usable_cores()
