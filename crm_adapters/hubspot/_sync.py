"""read_changes for HubSpot: backfill through list endpoints, then incremental through search.

The cursor (JSON) says which phase a read is in. A backfill pages by object id (resumable) and
hands over an incremental cursor at (min(backfill start, newest modified time seen), highest id
at that time): an edit made while the backfill ran is read by the next sync, a record sharing the
newest timestamp is not lost, and nothing already read comes back. Incremental reads search on
hs_lastmodifieddate from that cursor (minus a lookback, when set: HubSpot's search index lags a
few seconds behind writes), then list archived records for deletions - at most once per
`deletion_scan`, since that listing cannot be filtered by time (one call per 100 archived records).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from crm_adapters.errors import MAPPING_FAILURES
from crm_adapters.hubspot import _mapping as m
from crm_adapters.hubspot._reads import Reads, newest
from crm_adapters.model import Entity, Record, Stage
from crm_adapters.port import Batch, Cursor, Quarantined

logger = logging.getLogger(__name__)
ENGAGEMENTS = tuple(m.ENGAGEMENT_TYPES)
OTYPES: dict[Entity, tuple[str, ...]] = {
    Entity.ACCOUNT: ("companies",), Entity.CONTACT: ("contacts",), Entity.DEAL: ("deals",),
    Entity.DEAL_CONTACT_ROLE: ("deals",), Entity.STAGE_CHANGE: ("deals",), Entity.ACTIVITY: ENGAGEMENTS,
}


@dataclass
class Mapped:
    records: list[Record]
    quarantined: list[Quarantined]


class Sync:
    """Turns HubSpot pages into Batches of common-model records for one entity."""

    def __init__(self, reads: Reads, mapping: m.HubSpotMapping, stages: Callable[[], Mapping[tuple[str, str], Stage]],
                 clock: Callable[[], datetime], lookback: timedelta, deletion_scan: timedelta = timedelta(0)) -> None:
        self.reads, self.mapping, self._stages, self._clock, self._lookback = reads, mapping, stages, clock, lookback
        self._scan_ms = int(deletion_scan.total_seconds() * 1000)

    # ---- entry -----------------------------------------------------------------------------------
    def read(self, entity: Entity, since: Cursor | None) -> Iterator[Batch]:
        state = json.loads(since.value) if since else {"phase": "backfill", "started": self._now_ms(), "i": 0}
        if state.get("phase") == "backfill":
            yield from self._backfill(entity, state)
        else:
            yield from self._incremental(entity, state)

    def _now_ms(self) -> int:
        return int(self._clock().timestamp() * 1000)

    # ---- backfill --------------------------------------------------------------------------------
    def _backfill(self, entity: Entity, state: dict[str, Any]) -> Iterator[Batch]:
        """List every object by id; hand over at min(start, newest modified time seen) so that neither an
        edit made during the backfill nor a record sharing the newest timestamp is lost."""
        otypes = OTYPES[entity]
        started = int(state["started"])
        seen: dict[str, list[int]] = dict(state.get("seen") or {})  # otype -> [newest time, highest id there]
        # Roles: deals listed 100 a page, their labels read 1,000 deals a call - so pages are pooled first.
        pool = 1000 if entity is Entity.DEAL_CONTACT_ROLE else 1
        for i in range(int(state.get("i", 0)), len(otypes)):
            otype = otypes[i]
            after = state.get("after") if i == int(state.get("i", 0)) else None
            pooled: list[dict[str, Any]] = []
            for rows, nxt in self.reads.list_all(otype, after=after, **self._list_args(entity, otype)):
                if rows:
                    seen[otype] = list(max(tuple(seen.get(otype, (0, 0))), newest(rows)))
                pooled.extend(rows)
                if nxt is not None and len(pooled) + 100 <= pool:
                    continue
                mapped = self._map(entity, otype, pooled, listed=True)
                pooled = []
                if nxt is None and i == len(otypes) - 1:
                    hand = {t: seen[t] if t in seen and seen[t][0] <= started else [started, 0] for t in otypes}
                    cursor: dict[str, Any] = {"phase": "incremental", "since": {t: v[0] for t, v in hand.items()},
                                              "ids": {t: v[1] for t, v in hand.items()},
                                              "deleted": {t: started for t in otypes}}
                else:
                    cursor = {"phase": "backfill", "started": started, "seen": seen, "i": i if nxt else i + 1}
                    if nxt:
                        cursor["after"] = nxt
                yield self._batch(entity, mapped, cursor)

    def _list_args(self, entity: Entity, otype: str) -> dict[str, Any]:
        if entity is Entity.DEAL:
            return {"properties": self.mapping.deal_properties(), "associations": ["companies"]}
        if entity is Entity.STAGE_CHANGE:
            return {"properties": ["hs_lastmodifieddate"], "history": ["dealstage"]}
        if entity is Entity.DEAL_CONTACT_ROLE:
            return {"properties": ["hs_lastmodifieddate"], "associations": ["contacts"]}
        return {"properties": self._properties(entity, otype),
                **({"associations": ["deals", "contacts", "companies"]} if entity is Entity.ACTIVITY else {})}

    def _properties(self, entity: Entity, otype: str) -> list[str]:
        if entity is Entity.ACCOUNT:
            return m.COMPANY_PROPERTIES
        if entity is Entity.CONTACT:
            return m.CONTACT_PROPERTIES
        if entity is Entity.ACTIVITY:
            return m.engagement_properties(otype, self.mapping)
        if entity is Entity.DEAL:
            return self.mapping.deal_properties()
        return ["hs_lastmodifieddate"]

    # ---- incremental -----------------------------------------------------------------------------
    def _incremental(self, entity: Entity, state: dict[str, Any]) -> Iterator[Batch]:
        started = self._now_ms()
        lookback = int(self._lookback.total_seconds() * 1000)
        state.setdefault("ids", {})
        for otype in OTYPES[entity]:
            since, done_id = int(state["since"].get(otype, 0)), int(state["ids"].get(otype, 0))
            start, done = (since - lookback, 0) if lookback else (since, done_id)
            for rows in self.reads.changed(otype, max(0, start), self._properties(entity, otype), done_id=done):
                top, top_id = newest(rows)
                if (top, top_id) > (int(state["since"].get(otype, 0)), int(state["ids"].get(otype, 0))):
                    state["since"][otype], state["ids"][otype] = top, top_id
                yield self._batch(entity, self._map(entity, otype, rows, listed=False), state)
            # HubSpot cannot filter archived listings by time: the scan costs one call per 100 archived
            # records, so it runs at most once per `deletion_scan` (webhooks report deletions in between).
            if started - int(state["deleted"].get(otype, 0)) >= self._scan_ms:
                yield from self._deleted(entity, otype, state, lookback)
                state["deleted"][otype] = started
        yield Batch(entity=entity, records=(), cursor=Cursor(json.dumps(state)))

    def _deleted(self, entity: Entity, otype: str, state: dict[str, Any], lookback: int) -> Iterator[Batch]:
        if entity is Entity.DEAL_CONTACT_ROLE:
            return  # association removals are not listed by HubSpot; see adapter docs
        floor = int(state["deleted"].get(otype, 0)) - lookback
        args = self._list_args(entity, otype)
        args.pop("associations", None)
        for rows, _ in self.reads.list_all(otype, archived=True, **args):
            recent = [r for r in rows if (m.parse_dt(r.get("archivedAt")) is None or
                                          m.parse_dt(r.get("archivedAt")).timestamp() * 1000 >= floor)]  # type: ignore[union-attr]
            if recent:
                yield self._batch(entity, self._map(entity, otype, recent, listed=True), state)

    # ---- mapping -----------------------------------------------------------------------------------
    def _batch(self, entity: Entity, mapped: Mapped, cursor: dict[str, Any]) -> Batch:
        return Batch(entity=entity, records=tuple(mapped.records), cursor=Cursor(json.dumps(cursor)),
                     quarantined=tuple(mapped.quarantined))

    def _map(self, entity: Entity, otype: str, rows: list[dict[str, Any]], *, listed: bool) -> Mapped:
        if entity is Entity.DEAL_CONTACT_ROLE:
            return self._roles(rows, listed=listed)
        if entity is Entity.STAGE_CHANGE and not listed:
            rows = self.reads.batch_read("deals", [r["id"] for r in rows], ["hs_lastmodifieddate"], ["dealstage"])
        if entity in (Entity.DEAL, Entity.ACTIVITY) and not listed:
            self._attach_associations(entity, otype, rows)
        out = Mapped([], [])
        stages = self._stages() if entity is Entity.DEAL else {}
        for row in rows:
            try:  # one record at a time: whatever an odd record raises quarantines it, never the page
                out.records.extend(self._one(entity, otype, row, stages))
            except MAPPING_FAILURES as exc:
                out.quarantined.append(unmapped(otype, row, exc))
        return out

    def _one(self, entity: Entity, otype: str, row: dict[str, Any], stages: Mapping[tuple[str, str], Stage]) -> list[Record]:
        if entity is Entity.ACCOUNT:
            return [m.account_from_hubspot(row)]
        if entity is Entity.CONTACT:
            return [m.contact_from_hubspot(row)]
        if entity is Entity.DEAL:
            companies = m.associations(row).get("companies") or []
            return [m.deal_from_hubspot(row, stages=stages, mapping=self.mapping,
                                        account_id=companies[0] if companies else None)]
        if entity is Entity.STAGE_CHANGE:
            changes = m.stage_changes_from_hubspot(row)
            return [replace(c, deleted=True) for c in changes] if row.get("archived") else list(changes)
        return [m.activity_from_hubspot(otype, row, self.mapping)]

    def _attach_associations(self, entity: Entity, otype: str, rows: list[dict[str, Any]]) -> None:
        """Search results carry no associations: read them for the page (v4, 1,000 ids per call)."""
        ids = [r["id"] for r in rows]
        targets: Sequence[str] = ("companies",) if entity is Entity.DEAL else ("deals", "contacts", "companies")
        for target in targets:
            found = self.reads.associations(otype, target, ids)
            primary_first = {k: sorted(v, key=lambda t: not any(s["typeId"] in (1, 5) for s in t[1]))
                             for k, v in found.items()}
            for row in rows:
                row.setdefault("associations", {})[target] = [to for to, _ in primary_first.get(row["id"], [])]

    def _roles(self, rows: list[dict[str, Any]], *, listed: bool) -> Mapped:
        out = Mapped([], [])
        ids, updated = [], {}
        for r in rows:
            try:
                if not listed or m.associations(r).get("contacts"):
                    ids.append(str(r["id"]))
                updated[str(r["id"])] = m.parse_dt(r["properties"].get("hs_lastmodifieddate"))
            except MAPPING_FAILURES as exc:
                out.quarantined.append(unmapped("deals", r, exc))
        if not ids:
            return out
        for deal_id, contacts in self.reads.associations("deals", "contacts", ids).items():
            for contact_id, types in contacts:
                try:
                    out.records.append(m.role_from_hubspot(deal_id, contact_id, types, self.mapping, updated.get(deal_id)))
                except MAPPING_FAILURES as exc:
                    out.quarantined.append(unmapped("deal contact roles", {"id": f"{deal_id}-{contact_id}",
                                                                            "types": types}, exc))
        return out


def unmapped(otype: str, row: Any, exc: BaseException) -> Quarantined:
    """A row that could not be mapped, kept with why (the row may not even be an object)."""
    raw = row if isinstance(row, Mapping) else {"_value": row}
    remote_id = raw.get("id")
    logger.warning("hubspot %s %s quarantined: %s", otype, str(remote_id)[:64], str(exc)[:300])
    return Quarantined(remote_id=None if remote_id is None else str(remote_id), reason=f"{otype}: {exc}"[:2000],
                       raw=raw)
