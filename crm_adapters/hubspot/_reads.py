"""The HubSpot requests the sync is built from: list pages, keyset search, batch and association reads.

Search pages by time with a moving lower bound instead of `after` offsets: HubSpot's `after` on
search is an offset, capped at 10,000 results, and a record modified mid-sync shifts every
offset behind it. Restarting each page at the last timestamp seen (deduplicating ids already
read at that timestamp, walking by hs_object_id when a whole page shares one timestamp) never
reaches the cap and never skips a record.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from crm_adapters.errors import MalformedRecord
from crm_adapters.hubspot._client import HubSpotClient
from crm_adapters.hubspot._mapping import parse_dt
from crm_adapters.hubspot.limiter import SEARCH

SEARCH_PAGE = 200
LIST_PAGE = 100
HISTORY_PAGE = 50
BATCH = 100
ASSOC_BATCH = 1000
MODIFIED = "hs_lastmodifieddate"


def raw(obj: Any) -> dict[str, Any]:
    """An SDK object as a plain JSON-ready dict (what the mappers and the quarantine take)."""
    out: dict[str, Any] = {"id": str(obj.id), "properties": dict(obj.properties or {}),
                           "updatedAt": obj.updated_at.isoformat() if obj.updated_at else None,
                           "archived": bool(obj.archived)}
    if getattr(obj, "archived_at", None):
        out["archivedAt"] = obj.archived_at.isoformat()
    history = getattr(obj, "properties_with_history", None)
    if history:
        out["history"] = {k: [{"value": v.value, "timestamp": v.timestamp.isoformat() if v.timestamp else None}
                              for v in values or []] for k, values in history.items()}
    assoc = getattr(obj, "associations", None)
    if assoc:
        out["associations"] = {
            name: [a.id for a in sorted(coll.results or [], key=lambda a: str(a.type).endswith("_unlabeled"))]
            for name, coll in assoc.items()}
    return out


def newest(rows: Sequence[dict[str, Any]]) -> tuple[int, int]:
    """(newest modified time, highest id at that time): where a cursor stands after these rows."""
    top = max(modified_ms(r) for r in rows)
    return top, max(_id_number(r) for r in rows if modified_ms(r) == top)


def _id_number(obj: dict[str, Any]) -> int:
    """HubSpot ids are numbers; an odd one must not stop the read (its record is quarantined by the mapper)."""
    text = str(obj.get("id") or "")
    return int(text) if text.isascii() and text.isdigit() else 0


def modified_ms(obj: dict[str, Any]) -> int:
    try:
        parsed = parse_dt((obj.get("properties") or {}).get(MODIFIED) or obj.get("updatedAt"))
    except MalformedRecord:  # the mapper quarantines the record; the cursor just does not move for it
        return 0
    return int(parsed.timestamp() * 1000) if parsed else 0


class Reads:
    """Read requests for one portal, each through the client's budget and retries."""

    def __init__(self, client: HubSpotClient) -> None:
        self.client = client

    def list_page(self, otype: str, *, after: str | None, properties: Sequence[str], history: Sequence[str] = (),
                  associations: Sequence[str] = (), archived: bool = False) -> tuple[list[dict[str, Any]], str | None]:
        limit = HISTORY_PAGE if history else LIST_PAGE
        kwargs: dict[str, Any] = {"limit": limit, "properties": list(properties), "archived": archived}
        if after:
            kwargs["after"] = after
        if history:
            kwargs["properties_with_history"] = list(history)
        if associations:
            kwargs["associations"] = list(associations)
        page = self.client.call(f"list:{otype}", lambda api: api("crm.objects.basic_api").get_page(otype, **kwargs))
        nxt = page.paging.next.after if page.paging and page.paging.next else None
        return [raw(o) for o in page.results or []], nxt

    def list_all(self, otype: str, **kwargs: Any) -> Iterator[tuple[list[dict[str, Any]], str | None]]:
        after: str | None = kwargs.pop("after", None)
        while True:
            rows, after = self.list_page(otype, after=after, **kwargs)
            yield rows, after
            if after is None:
                return

    def _search(self, otype: str, filters: list[dict[str, Any]], sort: str, properties: Sequence[str]) -> list[dict[str, Any]]:
        body = {"filterGroups": [{"filters": filters}], "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
                "properties": list(properties), "limit": SEARCH_PAGE, "after": "0"}
        resp = self.client.call(f"search:{otype}", lambda api: api("crm.objects.search_api").do_search(
            otype, public_object_search_request=body), bucket=SEARCH)
        return [raw(o) for o in resp.results or []]

    def changed(self, otype: str, since_ms: int, properties: Sequence[str], *,
                done_id: int = 0) -> Iterator[list[dict[str, Any]]]:
        """Pages of records modified at or after `since_ms` (those at `since_ms` with id <= `done_id`
        were read before), oldest first, each record once."""
        props = sorted({*properties, MODIFIED})
        lower, seen, id_floor = since_ms, set[str](), None

        def old(row: dict[str, Any]) -> bool:
            ts = modified_ms(row)
            return ts == lower and (row["id"] in seen or (ts == since_ms and int(row["id"]) <= done_id))

        while True:
            if id_floor is None:
                rows = self._search(otype, [{"propertyName": MODIFIED, "operator": "GTE", "value": str(lower)}],
                                    MODIFIED, props)
            else:
                rows = self._search(otype, [{"propertyName": MODIFIED, "operator": "EQ", "value": str(lower)},
                                            {"propertyName": "hs_object_id", "operator": "GT", "value": str(id_floor)}],
                                    "hs_object_id", props)
            fresh = [r for r in rows if not old(r)]
            if fresh:
                yield fresh
            if id_floor is not None:  # walking one crowded timestamp by id
                if len(rows) < SEARCH_PAGE:
                    lower, seen, id_floor = lower + 1, set(), None
                else:
                    seen |= {r["id"] for r in rows}
                    id_floor = int(rows[-1]["id"])
                continue
            if len(rows) < SEARCH_PAGE:
                return
            top = modified_ms(rows[-1])
            at_top = {r["id"] for r in rows if modified_ms(r) == top}
            if top == lower:  # a whole page at one timestamp: time cannot move on, walk it by id
                seen |= at_top
                id_floor = done_id if lower == since_ms else 0
            else:
                lower, seen = top, at_top

    def batch_read(self, otype: str, ids: Sequence[str], properties: Sequence[str],
                   history: Sequence[str] = (), id_property: str | None = None) -> list[dict[str, Any]]:
        """Objects by id (or by a unique property's value); ids not found are simply absent."""
        size = HISTORY_PAGE if history else BATCH
        out: list[dict[str, Any]] = []
        for i in range(0, len(ids), size):
            body: dict[str, Any] = {"inputs": [{"id": x} for x in ids[i:i + size]], "properties": list(properties)}
            if history:
                body["propertiesWithHistory"] = list(history)
            if id_property:
                body["idProperty"] = id_property
            resp = self.client.call(f"batch_read:{otype}", lambda api, body=body: api("crm.objects.batch_api").read(
                otype, batch_read_input_simple_public_object_id=body))
            out.extend(raw(o) for o in resp.results or [])
        return out

    def associations(self, from_type: str, to_type: str, ids: Sequence[str]) -> dict[str, list[tuple[str, list[dict[str, Any]]]]]:
        """from id -> [(to id, association types with labels)], via v4 batch read (1,000 ids per call)."""
        out: dict[str, list[tuple[str, list[dict[str, Any]]]]] = {}
        for i in range(0, len(ids), ASSOC_BATCH):
            body = {"inputs": [{"id": x} for x in ids[i:i + ASSOC_BATCH]]}
            resp = self.client.call(f"assoc:{from_type}->{to_type}", lambda api, body=body: api(
                "crm.associations.v4.batch_api").get_page(from_type, to_type,
                                                          batch_input_public_fetch_associations_batch_request=body))
            for row in resp.results or []:
                out[str(row._from.id)] = [
                    (str(t.to_object_id), [{"category": s.category, "typeId": s.type_id, "label": s.label}
                                           for s in t.association_types or []]) for t in row.to or []]
            # ids with no associations come back as per-input errors (207): they simply have none
        return out
