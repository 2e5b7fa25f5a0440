"""The fake's CRM search: HubSpot's filter operators, one sort, 200 per page and the 10,000 cap."""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.hubspot.portal import DATE_PROPS, NUMERIC_PROPS, FakeError, Obj, Portal, to_ms

MAX_PAGE = 200
MAX_RESULTS = 10_000
MAX_BODY = 3_000


def _key(prop: str, value: Any) -> Any:
    """Comparable form of a property value: dates as ms, numbers as floats, text lower-cased."""
    if value is None or value == "":
        return None
    if prop in DATE_PROPS:
        return to_ms(value)
    if prop in NUMERIC_PROPS:
        try:
            return float(value)
        except ValueError:
            return None
    return str(value).lower()


Version = tuple[dict[str, str], int]  # what the index holds for an object: (properties, modified ms)


def _have(obj: Obj, ver: Version, prop: str) -> Any:
    if prop == "hs_lastmodifieddate":  # kept as ms: the hot path of every sync
        return ver[1]
    if prop == "hs_object_id":
        return float(obj.id)
    return _key(prop, ver[0].get(prop))


def _match(obj: Obj, ver: Version, flt: dict[str, Any]) -> bool:
    prop, op = flt.get("propertyName"), flt.get("operator", "EQ")
    if not prop:
        raise FakeError(400, "VALIDATION_ERROR", "filter needs a propertyName")
    have = _have(obj, ver, prop)
    if op == "HAS_PROPERTY":
        return have is not None
    if op == "NOT_HAS_PROPERTY":
        return have is None
    if op in ("IN", "NOT_IN"):
        values = {_key(prop, v) for v in flt.get("values", [])}
        return (have in values) == (op == "IN")
    want = _key(prop, flt.get("value"))
    if op == "EQ":
        return have == want
    if op == "NEQ":
        return have != want
    if op == "CONTAINS_TOKEN":
        return have is not None and str(want).strip("*") in str(have)
    if have is None or want is None:
        return False
    if op == "BETWEEN":
        return want <= have <= _key(prop, flt.get("highValue"))
    ops = {"GT": have > want, "GTE": have >= want, "LT": have < want, "LTE": have <= want}
    if op not in ops:
        raise FakeError(400, "VALIDATION_ERROR", f"Unknown operator {op}")
    return ops[op]


def _validate(body: dict[str, Any], raw_len: int) -> tuple[int, int]:
    if raw_len > MAX_BODY:
        raise FakeError(400, "VALIDATION_ERROR", f"Request body exceeds {MAX_BODY} characters")
    groups = body.get("filterGroups") or []
    if len(groups) > 5 or any(len(g.get("filters", [])) > 6 for g in groups) or \
            sum(len(g.get("filters", [])) for g in groups) > 18:
        raise FakeError(400, "VALIDATION_ERROR", "Too many filters: at most 5 groups, 6 per group, 18 in total")
    if len(body.get("sorts") or []) > 1:
        raise FakeError(400, "VALIDATION_ERROR", "Only one sort is allowed")
    limit = int(body.get("limit") or 10)
    if limit > MAX_PAGE:
        raise FakeError(400, "VALIDATION_ERROR", f"limit must be <= {MAX_PAGE}")
    after = int(body.get("after") or 0)
    if after >= MAX_RESULTS:
        raise FakeError(400, "VALIDATION_ERROR",
                        f"The search API returns at most {MAX_RESULTS} results; paging past it is refused")
    return limit, after


def _indexed(portal: Portal, otype: str) -> dict[int, Version]:
    """The search index: objects as of their last indexed version; new ones appear after the delay
    (Portal.index_delay_ms, research §4.2 "newly created or updated records can take a few moments to appear")."""
    out = {}
    for obj in portal.objects[otype].values():
        ver = portal.searchable(obj) if obj.archived_ms is None else None
        if ver is not None:
            out[obj.id] = ver
    return out


def search(portal: Portal, otype: str, body: dict[str, Any], hidden: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The /search response body for one request."""
    limit, after = _validate(body, len(json.dumps(body)))
    groups = body.get("filterGroups") or []
    index = _indexed(portal, otype)
    objs = portal.objects[otype]
    hits = [objs[i] for i, ver in index.items()
            if not groups or any(all(_match(objs[i], ver, f) for f in g.get("filters", [])) for g in groups)]
    sorts = body.get("sorts") or []
    if sorts:
        sort = sorts[0] if isinstance(sorts[0], dict) else {"propertyName": str(sorts[0]).lstrip("-"),
                                                           "direction": "DESCENDING" if str(sorts[0]).startswith("-") else "ASCENDING"}
        prop = sort["propertyName"]
        desc = sort.get("direction", "ASCENDING") == "DESCENDING"
        present = [o for o in hits if _have(o, index[o.id], prop) is not None]
        absent = [o for o in hits if _have(o, index[o.id], prop) is None]
        present.sort(key=lambda o: (_have(o, index[o.id], prop), o.id), reverse=desc)
        hits = present + sorted(absent, key=lambda o: o.id)
    else:
        hits.sort(key=lambda o: o.id)
    window = hits[after:min(after + limit, MAX_RESULTS)]
    result: dict[str, Any] = {"total": len(hits), "results": [
        o.to_json(body.get("properties"), known=portal.defined(otype), hidden=hidden, version=index[o.id])
        for o in window]}
    if after + limit < len(hits):
        result["paging"] = {"next": {"after": str(after + limit)}}
    return result
