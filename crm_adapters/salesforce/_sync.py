"""Incremental reads: SystemModstamp with an overlap window and a (SystemModstamp, Id) cursor, deletes via
queryAll (IsDeleted) and getDeleted, a full id-set reconcile when the delete log no longer reaches back,
and Bulk API 2.0 for backfills above ~2,000 rows (REST for objects Bulk does not support).

The cursor is JSON: {"objects": {sobject: {"ts", "id", "seen": {id: ts}, "del"}}}. `seen` holds the rows
already emitted inside the overlap window, so re-reading the window (late commits) re-emits nothing
and a tie at a page boundary loses nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from crm_adapters.errors import CrmBadRequest
from crm_adapters.port import Cursor
from crm_adapters.salesforce._client import SalesforceClient
from crm_adapters.salesforce._errors import code_of
from crm_adapters.salesforce._mapping import parse_dt

logger = logging.getLogger(__name__)
OVERLAP = timedelta(minutes=5)
BULK_THRESHOLD = 2000
SEEN_CAP = 5000
GET_DELETED_MAX = timedelta(days=29)
Row = dict[str, Any]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
KEYSET = "SystemModstamp, Id"


@dataclass(frozen=True)
class ObjectSpec:
    sobject: str
    fields: tuple[str, ...]
    deletable: bool = True  # has IsDeleted (queryAll) and a delete log (getDeleted)
    bulk: bool = True  # Bulk API 2.0 supports it
    order_by: str = "SystemModstamp, Id"  # the backfill's order (history: by opportunity, to group its rows)


def sf_datetime(value: datetime) -> str:
    """A SOQL datetime literal (unquoted, UTC)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def load_cursor(cursor: Cursor | None) -> dict[str, dict[str, Any]]:
    if cursor is None:
        return {}
    try:
        data = json.loads(cursor.value)
        return dict(data["objects"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CrmBadRequest("not a Salesforce cursor (was it made by another adapter?)") from exc


def dump_cursor(states: dict[str, dict[str, Any]]) -> Cursor:
    return Cursor(json.dumps({"objects": states}, sort_keys=True, separators=(",", ":")))


def _key(row: Row) -> tuple[str, str]:
    return str(row.get("SystemModstamp") or ""), str(row.get("Id") or "")


def advance(state: dict[str, Any], page: list[Row]) -> tuple[list[Row], dict[str, Any]]:
    """Drop rows already emitted inside the overlap window; move the cursor to the page's last row."""
    seen: dict[str, str] = dict(state.get("seen") or {})
    fresh = [r for r in page if seen.get(str(r.get("Id"))) != r.get("SystemModstamp")]
    if not page:
        return fresh, state
    last_ts, last_id = max(_key(r) for r in page)
    if state.get("ts") and (state["ts"], state.get("id", "")) > (last_ts, last_id):
        last_ts, last_id = state["ts"], state.get("id", "")
    floor = (parse_dt(last_ts) or EPOCH) - OVERLAP
    for row in page:
        seen[str(row.get("Id"))] = str(row.get("SystemModstamp"))
    seen = {i: ts for i, ts in seen.items() if (parse_dt(ts) or EPOCH) >= floor}
    if len(seen) > SEEN_CAP:  # a burst inside one window: keep the newest; the rest may be re-emitted (harmless)
        seen = dict(sorted(seen.items(), key=lambda kv: kv[1])[-SEEN_CAP:])
    return fresh, {**state, "ts": last_ts, "id": last_id, "seen": seen}


class ObjectReader:
    """Reads one sobject's changes as (rows, new state) pages."""

    def __init__(self, client: SalesforceClient, spec: ObjectSpec) -> None:
        self.client, self.spec = client, spec

    def select(self, where: str = "", order: bool = True, by_time: bool = False) -> str:
        soql = f"SELECT {', '.join(self.spec.fields)} FROM {self.spec.sobject}"
        soql += f" WHERE {where}" if where else ""
        return soql + (f" ORDER BY {KEYSET if by_time else self.spec.order_by}" if order else "")

    def changes(self, state: dict[str, Any] | None) -> Iterator[tuple[list[Row], dict[str, Any]]]:
        if state is None:
            yield from self._backfill()
            return
        lower = (parse_dt(state["ts"]) or EPOCH) - OVERLAP if state.get("ts") else None
        where = f"SystemModstamp >= {sf_datetime(lower)}" if lower else ""
        # always in (SystemModstamp, Id) order here: every page's last row is then a safe resume point
        for page in self.client.query_pages(self.select(where, by_time=True), include_deleted=self.spec.deletable):
            fresh, state = advance(state, page)
            yield fresh, state

    def _backfill(self) -> Iterator[tuple[list[Row], dict[str, Any]]]:
        """Everything once. Bulk (or a non-time order) has no resumable position: pages carry {} and the
        final, empty page carries a cursor at the backfill's start (minus the overlap)."""
        keyset = self.spec.order_by == KEYSET
        use_bulk = self.spec.bulk and self.client.count(self.spec.sobject) > BULK_THRESHOLD
        started = self.client.now()
        if keyset and not use_bulk:
            state: dict[str, Any] = {"ts": None, "id": "", "seen": {}, "del": started.isoformat()}
            for page in self.client.query_pages(self.select()):
                fresh, state = advance(state, page)
                yield fresh, state
            return
        pages = self._bulk_or_rest(keyset) if use_bulk else self.client.query_pages(self.select())
        for page in pages:
            yield page, {}
        yield [], {"ts": (started - OVERLAP).strftime("%Y-%m-%dT%H:%M:%S.000+0000"), "id": "", "seen": {},
                   "del": started.isoformat()}

    def _bulk_or_rest(self, keyset: bool) -> Iterator[list[Row]]:
        """Bulk API 2.0 pages; REST paging when Bulk refuses the object before the first page (INVALIDENTITY)."""
        logger.info("backfill of %s through Bulk API 2.0", self.spec.sobject)
        pages = self.client.bulk_pages(self.spec.sobject, self.select(order=not keyset))
        try:
            first = next(pages, None)
        except CrmBadRequest as exc:
            logger.warning("Bulk API refused %s (%s); backfilling through REST", self.spec.sobject, exc)
            yield from self.client.query_pages(self.select())
            return
        if first is not None:
            yield first
            yield from pages

    def hard_deletes(self, state: dict[str, Any]) -> tuple[list[tuple[str, datetime]] | None, dict[str, Any]]:
        """Ids in the delete log since the last look; None when the log no longer reaches back (reconcile)."""
        if not self.spec.deletable or not state.get("del"):
            return [], state
        start = parse_dt(state["del"]) or self.client.now()
        end = self.client.now()
        if end - start < timedelta(minutes=1):
            return [], state
        end = min(end, start + GET_DELETED_MAX)
        sobject = self.spec.sobject
        try:
            body = self.client.call("getDeleted", lambda sf: getattr(sf, sobject).deleted(start, end))
        except CrmBadRequest as exc:
            if code_of(exc) != "INVALID_REPLICATION_DATE":
                raise
            # more than 30 days since the last look, or the delete log was purged: only a reconcile can tell
            logger.warning("getDeleted of %s refused its window from %s (INVALID_REPLICATION_DATE): full reconcile",
                           sobject, start)
            return None, {**state, "del": self.client.now().isoformat()}
        earliest = parse_dt(body.get("earliestDateAvailable"))
        covered = body.get("latestDateCovered") or end.isoformat()
        new_state = {**state, "del": (parse_dt(covered) or end).isoformat()}
        if earliest is not None and earliest > start:
            logger.warning("delete log of %s starts %s, after our last look %s: full reconcile", sobject, earliest, start)
            return None, new_state
        deleted = [(str(d["id"]), parse_dt(d.get("deletedDate")) or end) for d in body.get("deletedRecords", [])]
        return deleted, new_state

    def live_ids(self) -> set[str]:
        soql = f"SELECT Id FROM {self.spec.sobject}"
        return {str(r["Id"]) for page in self.client.query_pages(soql) for r in page}


def chunks(items: Iterable[str], size: int = 200) -> Iterator[list[str]]:
    """IN-lists of at most `size` ids: a URI beyond ~16 KB is refused (414)."""
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def in_list(ids: Iterable[str]) -> str:
    return "(" + ", ".join("'" + i.replace("\\", "\\\\").replace("'", "\\'") + "'" for i in ids) + ")"


KnownIds = Callable[[str], Iterable[str]]
