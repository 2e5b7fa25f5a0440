"""Text is read once: NLP runs over an activity when it is stored, and its reading is kept in the store.

Sync reads each stored batch of activities (webhooks reach the store through an incremental sync, so
they pass here too). Before the loops run, the chain reads whatever is still unread: activities stored
before this existed, a batch whose reading was interrupted, every activity after a taxonomy change.
The engine then hands the loops the stored readings (`load`), never asking them to read text.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from connector.store import Store, readings
from crm_adapters.codec import entity_from_dict
from crm_adapters.model import Activity, Entity
from jobs.nlp.reading import ActivityReading, Reader, taxonomy_version

logger = logging.getLogger(__name__)

BATCH = 500  # activities read and saved per transaction


@dataclass
class ReadReport:
    read: int = 0
    seconds: float = 0.0


def read_pending(store: Store, installation_id: str, *, ids: Sequence[str] | None = None,
                 reader: Reader | None = None) -> ReadReport:
    """Read every live activity (or those of `ids`) with no current reading; one transaction per batch."""
    started, report = time.monotonic(), ReadReport()
    reader = reader or Reader()
    if ids is not None:
        for start in range(0, len(ids), BATCH):
            report.read += _read_batch(store, installation_id, reader, ids=ids[start:start + BATCH])
    else:
        after = ""
        while True:
            with store.session() as session:
                rows = readings.unread(session, installation_id, reader.version, after=after, limit=BATCH)
            if not rows:
                break
            report.read += _save(store, installation_id, reader, rows)
            after = rows[-1][0]
    report.seconds = time.monotonic() - started
    if report.read:
        logger.info("read %d activities of %s in %.1f s", report.read, installation_id, report.seconds)
    return report


def _read_batch(store: Store, installation_id: str, reader: Reader, *, ids: Sequence[str]) -> int:
    with store.session() as session:
        rows = readings.unread(session, installation_id, reader.version, ids=ids)
    return _save(store, installation_id, reader, rows)


def _save(store: Store, installation_id: str, reader: Reader, rows: list[tuple[str, dict[str, object], str]]) -> int:
    """Read outside any transaction (NLP takes seconds; SQLite would hold its write lock), then save at once."""
    out = []
    for remote_id, payload, digest in rows:
        activity = entity_from_dict(Entity.ACTIVITY, payload)
        assert isinstance(activity, Activity)
        out.append((remote_id, digest, reader.read(activity).to_json()))
    with store.session() as session:
        return readings.save(session, installation_id, reader.version, out)


def load(store: Store, installation_id: str, reader: Reader | None = None, *, ids: Sequence[str] | None = None,
         ) -> dict[str, ActivityReading]:
    """The tenant's current readings by activity id (those of another taxonomy or an edited text left out; so are
    empty ones, an activity with no text worth reading: a loop asking of one reads it itself, finding nothing)."""
    version = reader.version if reader is not None else taxonomy_version()
    strings: dict[str, str] = {}
    with store.session() as session:
        return {a: ActivityReading.from_json(data, strings)
                for a, data in readings.current(session, installation_id, version, ids=ids) if data}
