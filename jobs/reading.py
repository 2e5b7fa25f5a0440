"""Text is read once: NLP runs over an activity when it is stored, and its reading is kept in the store.

Sync reads each stored batch of activities (webhooks reach the store through an incremental sync, so
they pass here too). Before the loops run, the chain reads whatever is still unread: activities stored
before this existed, a batch whose reading was interrupted, every activity after a taxonomy change.
The engine then hands the loops the stored readings (`load`), never asking them to read text.

Reading is CPU work on one core per process, so a batch's activities are read by forked worker processes
(`Readers`), each with the Reader it inherited, while the parent goes on fetching and storing the next page.
Only (id, payload) goes in and (id, hash, reading JSON) comes back: the workers never touch the store (no
database connection crosses the fork; the parent reads and saves outside their work).
"""

from __future__ import annotations

import gc
import logging
import math
import multiprocessing
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.pool import AsyncResult, Pool
from types import TracebackType
from typing import Any

from connector.settings import Settings, usable_cores
from connector.store import Store, readings
from crm_adapters.codec import entity_from_dict, gc_paused
from crm_adapters.errors import ConfigError
from crm_adapters.model import Activity, Entity
from jobs.nlp.reading import ActivityReading, Reader, taxonomy_version

logger = logging.getLogger(__name__)

BATCH = 500  # activities read and saved per transaction
CHUNK = 50  # activities a worker reads per task: pickling a chunk costs ~1% of reading it
MIN_PARALLEL = 2 * CHUNK  # smaller batches are read in the parent (a webhook's handful costs less than a fork)
IN_FLIGHT = 2  # batches handed to the workers and not yet saved, at most (bounds the parent's memory)

Row = tuple[str, dict[str, Any], str]  # (activity id, payload, payload hash), as readings.unread gives them
Read = tuple[str, str, dict[str, Any]]  # (activity id, payload hash, reading JSON), as readings.save takes them


@dataclass
class ReadReport:
    read: int = 0
    seconds: float = 0.0


def read_pending(store: Store, installation_id: str, *, ids: Sequence[str] | None = None,
                 reader: Reader | None = None, workers: int | None = None) -> ReadReport:
    """Read every live activity (or those of `ids`) with no current reading; one transaction per batch."""
    started, report = time.monotonic(), ReadReport()
    with Readers(store, installation_id, reader, workers=workers) as readers:
        if ids is not None:
            for start in range(0, len(ids), BATCH):
                readers.submit_ids(ids[start:start + BATCH])
        else:
            after = ""
            while True:
                with readers.store.session() as session:
                    rows = readings.unread(session, installation_id, readers.reader.version, after=after, limit=BATCH)
                if not rows:
                    break
                readers.submit(rows)
                after = rows[-1][0]
    report.read, report.seconds = readers.saved, time.monotonic() - started
    if report.read:
        logger.info("read %d activities of %s in %.1f s (%d processes)", report.read, installation_id, report.seconds,
                    readers.workers)
    return report


def reading_workers() -> int:
    """Processes for reading: Settings.loop_workers (SALESLOOP_LOOP_WORKERS) when set, else the cores (at most 4),
    as the loops' workers count them."""
    try:
        configured = Settings.from_env().loop_workers
    except ConfigError:  # a partial environment (a script, a test) that the caller's own settings stand in for
        configured = 0
    return configured or usable_cores()


class Readers:
    """Reads batches of unread activities and saves their readings, in forked workers when it pays.

        with Readers(store, installation_id, Reader()) as readers:
            readers.submit_ids(ids)          # returns at once; an earlier batch's readings are saved meanwhile
        readers.saved                        # every batch read and saved once the block ends

    A failure inside the block stops the workers and drops the batches in flight (they stay unread, and the
    chain reads them before its loops)."""

    def __init__(self, store: Store, installation_id: str, reader: Reader | None = None, *, workers: int | None = None,
                 ) -> None:
        self.store, self.installation_id, self._reader = store, installation_id, reader
        self.workers = workers if workers is not None else reading_workers()
        if "fork" not in multiprocessing.get_all_start_methods() or multiprocessing.current_process().daemon:
            self.workers = 1  # no fork here, or a daemonic worker (it may not have children): read in-process
        self.saved = 0
        self._pool: Pool | None = None
        self._in_flight: deque[AsyncResult[list[list[Read]]]] = deque()

    @property
    def reader(self) -> Reader:
        """Compiled at first use (~50 ms): a sync builds Readers for every entity, reads only activities."""
        if self._reader is None:
            self._reader = Reader()
        return self._reader

    def __enter__(self) -> Readers:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        try:
            if kind is None:
                while self._in_flight:
                    self._save_next()
        finally:
            if self._pool is not None:
                if kind is None:
                    self._pool.close()
                else:
                    self._pool.terminate()
                self._pool.join()
                self._pool = None
                gc.unfreeze()

    def submit_ids(self, ids: Sequence[str]) -> None:
        """Read those of these activities that have no current reading."""
        with self.store.session() as session:
            rows = readings.unread(session, self.installation_id, self.reader.version, ids=ids)
        self.submit(rows)

    def submit(self, rows: list[Row]) -> None:
        """Read these rows (from readings.unread): in the workers when the batch is big enough, else at once."""
        if not rows:
            return
        if self.workers <= 1 or len(rows) < MIN_PARALLEL:
            self._save([read_rows(self.reader, rows)])
            return
        tasks = self.workers * math.ceil(len(rows) / (self.workers * CHUNK))  # a multiple of the workers: none idles
        size = math.ceil(len(rows) / tasks)
        chunks = [rows[i:i + size] for i in range(0, len(rows), size)]
        self._in_flight.append(self._workers().map_async(_read_chunk, chunks))
        while self._in_flight and (len(self._in_flight) > IN_FLIGHT or self._in_flight[0].ready()):
            self._save_next()

    def _workers(self) -> Pool:
        """Forked at the first big batch, outside any transaction; each worker inherits the Reader. The parent's
        objects (the chain's snapshot, when it reads after a taxonomy change) are moved out of the collector's
        reach first, as jobs.engine.compute does: a worker's collections would otherwise copy every page of them."""
        if self._pool is None:
            gc.collect()
            gc.freeze()
            self._pool = multiprocessing.get_context("fork").Pool(self.workers, initializer=_adopt, initargs=(self.reader,))
        return self._pool

    def _save_next(self) -> None:
        self._save(self._in_flight.popleft().get())

    def _save(self, parts: list[list[Read]]) -> None:
        out = [row for part in parts for row in part]
        with self.store.session() as session:
            self.saved += readings.save(session, self.installation_id, self.reader.version, out)


def read_rows(reader: Reader, rows: Sequence[Row]) -> list[Read]:
    """Each row's reading as stored: (activity id, payload hash, reading JSON)."""
    out = []
    for remote_id, payload, digest in rows:
        activity = entity_from_dict(Entity.ACTIVITY, payload)
        assert isinstance(activity, Activity)
        out.append((remote_id, digest, reader.read(activity).to_json()))
    return out


_READER: Reader | None = None  # a worker's Reader, inherited from the parent at the fork (compiled matchers and all)


def _adopt(reader: Reader) -> None:
    global _READER
    _READER = reader


def _read_chunk(rows: list[Row]) -> list[Read]:
    assert _READER is not None, "a reading worker starts with _adopt"
    return read_rows(_READER, rows)


def load(store: Store, installation_id: str, reader: Reader | None = None, *, ids: Sequence[str] | None = None,
         ) -> dict[str, ActivityReading]:
    """The tenant's current readings by activity id (those of another taxonomy or an edited text left out; so are
    empty ones, an activity with no text worth reading: a loop asking of one reads it itself, finding nothing)."""
    version = reader.version if reader is not None else taxonomy_version()
    strings: dict[str, str] = {}
    with store.session() as session, gc_paused():  # acyclic readings only (load_snapshot says why)
        return {a: ActivityReading.from_json(data, strings)
                for a, data in readings.current(session, installation_id, version, ids=ids) if data}
