"""The fake HubSpot's state: one portal's objects, associations, properties, pipelines and owners.

Pure data and rules (no HTTP): ids are numeric strings, property values strings, timestamps ISO
with milliseconds, and the limits are HubSpot's (100 per batch, 200 per search page, 10,000
results per search). The WSGI app in app.py serves this over HTTP.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.fakes.hubspot.rules import DEFAULT_PROPERTIES, HUBSPOT_DEFINED

OBJECT_TYPES = ("deals", "companies", "contacts", "calls", "emails", "meetings", "notes", "tasks")
TYPE_IDS = {"0-3": "deals", "0-2": "companies", "0-1": "contacts", "0-48": "calls", "0-49": "emails",
            "0-47": "meetings", "0-46": "notes", "0-27": "tasks"}
SINGULAR = {"deals": "deal", "companies": "company", "contacts": "contact", "calls": "call", "emails": "email",
            "meetings": "meeting", "notes": "note", "tasks": "task"}
DATE_PROPS = {"hs_lastmodifieddate", "createdate", "hs_timestamp", "closedate", "lastmodifieddate",
              "hs_task_completion_date", "hs_meeting_start_time", "hs_meeting_end_time"}
NUMERIC_PROPS = {"hs_object_id", "amount"}
# HubSpot-defined association type ids (from -> to) and their inverse.
DEFAULT_TYPES: dict[tuple[str, str], int] = {
    ("deals", "contacts"): 3, ("contacts", "deals"): 4, ("deals", "companies"): 341, ("companies", "deals"): 342,
    ("contacts", "companies"): 279, ("companies", "contacts"): 280, ("tasks", "deals"): 216, ("deals", "tasks"): 215,
    ("notes", "deals"): 214, ("deals", "notes"): 213, ("calls", "deals"): 206, ("deals", "calls"): 205,
    ("emails", "deals"): 210, ("deals", "emails"): 209, ("meetings", "deals"): 212, ("deals", "meetings"): 211,
    ("tasks", "contacts"): 204, ("notes", "contacts"): 202, ("calls", "contacts"): 194, ("emails", "contacts"): 198,
    ("meetings", "contacts"): 200, ("tasks", "companies"): 192, ("notes", "companies"): 190,
    ("calls", "companies"): 182, ("emails", "companies"): 186, ("meetings", "companies"): 188,
    ("contacts", "calls"): 193, ("contacts", "emails"): 197, ("contacts", "meetings"): 199,
    ("contacts", "notes"): 201, ("contacts", "tasks"): 203, ("companies", "calls"): 181,
    ("companies", "emails"): 185, ("companies", "meetings"): 187, ("companies", "notes"): 189,
    ("companies", "tasks"): 191,
}
PRIMARY_TYPES = {("deals", "companies"): 5, ("companies", "deals"): 6, ("contacts", "companies"): 1,
                 ("companies", "contacts"): 2}


class FakeError(Exception):
    """An HTTP error the app turns into HubSpot's error body."""

    def __init__(self, status: int, category: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.category, self.message, self.extra = status, category, message, extra


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def to_ms(value: Any) -> int | None:
    """HubSpot accepts ms epoch or ISO-8601 (date or datetime) for dates."""
    if value is None or value == "":
        return None
    text = str(value)
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


@dataclass
class Obj:
    id: int
    type: str
    properties: dict[str, str]
    created_ms: int
    modified_ms: int
    history: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    archived_ms: int | None = None
    # The search index: what search sees until `visible_ms` (fake clock) is the previous version
    # (`indexed`, None for an object created since); afterwards the current one. Real search indexes
    # "a few moments" after a write (research §4.2; https://developers.hubspot.com/docs/api-reference/latest/
    # crm/search: "It may take a few moments for newly created or updated CRM objects to appear in search").
    visible_ms: int = 0
    indexed: tuple[dict[str, str], int] | None = None

    def to_json(self, props: Iterable[str] | None, with_history: Iterable[str] = (), *,
                known: frozenset[str] = frozenset(), hidden: frozenset[str] = frozenset(),
                version: tuple[dict[str, str], int] | None = None) -> dict[str, Any]:
        """The object's JSON; without `props`, HubSpot's default set (rules.DEFAULT_PROPERTIES). Requested
        properties the portal defines but the object lacks come back null, as HubSpot sends them."""
        values, modified = version if version is not None else (self.properties, self.modified_ms)
        wanted = set(props) if props else set(DEFAULT_PROPERTIES.get(self.type, ()))
        wanted |= {"hs_object_id", "createdate", "hs_lastmodifieddate"}
        body: dict[str, Any] = {
            "id": str(self.id),
            "properties": {k: (None if k in hidden else values.get(k)) for k in sorted(wanted)
                           if k in values or k in known},
            "createdAt": iso(self.created_ms), "updatedAt": iso(modified),
            "archived": self.archived_ms is not None,
        }
        if self.archived_ms is not None:
            body["archivedAt"] = iso(self.archived_ms)
        hist = {p: [{"value": v, "timestamp": iso(ts), "sourceType": "CRM_UI", "sourceId": "userId:1"}
                    for v, ts in reversed(self.history.get(p, []))] for p in with_history}
        if hist:
            body["propertiesWithHistory"] = hist
        return body


@dataclass
class Portal:
    """One HubSpot account, as the fake holds it."""

    hub_id: int
    clock: Callable[[], float]
    objects: dict[str, dict[int, Obj]] = field(default_factory=lambda: {t: {} for t in OBJECT_TYPES})
    sorted_ids: dict[str, list[int]] = field(default_factory=lambda: {t: [] for t in OBJECT_TYPES})
    # (from_type, from_id) -> to_type -> to_id -> [(category, typeId, label)]
    assoc: dict[tuple[str, int], dict[str, dict[int, list[tuple[str, int, str | None]]]]] = field(default_factory=dict)
    labels: dict[tuple[str, str], dict[int, str]] = field(default_factory=dict)
    properties: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {t: {} for t in OBJECT_TYPES})
    groups: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {t: {} for t in OBJECT_TYPES})
    pipelines: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {"deals": []})
    owners: dict[int, dict[str, Any]] = field(default_factory=dict)
    index_delay_ms: int = 0
    _ids: Any = field(default_factory=lambda: itertools.count(90_000_000))

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # ---- objects -------------------------------------------------------------------------------
    def put(self, otype: str, props: dict[str, Any], *, id: int | None = None, created_ms: int | None = None,
            modified_ms: int | None = None) -> Obj:
        """Create an object as a user would (seeding); returns it."""
        now = self.now_ms()
        oid = int(id) if id is not None else next(self._ids)
        created = created_ms if created_ms is not None else now
        obj = Obj(oid, otype, {}, created, modified_ms if modified_ms is not None else now,
                  visible_ms=now + self.index_delay_ms)
        self.objects[otype][oid] = obj
        bisect.insort(self.sorted_ids[otype], oid)
        self._set(obj, {k: v for k, v in props.items() if v is not None}, created)
        obj.properties.update({"hs_object_id": str(oid), "createdate": iso(created)})
        obj.properties["hs_lastmodifieddate"] = iso(obj.modified_ms)
        return obj

    def _set(self, obj: Obj, props: dict[str, Any], ts: int) -> None:
        for name, value in props.items():
            text = "" if value is None else str(value)
            if obj.properties.get(name) == text:
                continue
            obj.properties[name] = text
            obj.history.setdefault(name, []).append((text, ts))

    def update(self, otype: str, oid: int, props: dict[str, Any], *, modified_ms: int | None = None) -> Obj:
        obj = self.live(otype, oid)
        self._reindex(obj)
        ts = modified_ms if modified_ms is not None else max(self.now_ms(), obj.modified_ms + 1)
        if (otype == "tasks" and str(props.get("hs_task_status", "")).upper() == "COMPLETED"
                and not obj.properties.get("hs_task_completion_date") and "hs_task_completion_date" not in props):
            props = {**props, "hs_task_completion_date": str(ts)}  # HubSpot stamps the moment a task is completed
        self._set(obj, props, ts)
        obj.modified_ms = ts
        obj.properties["hs_lastmodifieddate"] = iso(ts)
        return obj

    def _reindex(self, obj: Obj) -> None:
        """Before a write: search keeps serving the version it has indexed until the delay has passed."""
        now = self.now_ms()
        if obj.visible_ms <= now:  # the current version was indexed: it is what search shows meanwhile
            obj.indexed = (dict(obj.properties), obj.modified_ms)
        obj.visible_ms = now + self.index_delay_ms

    def searchable(self, obj: Obj) -> tuple[dict[str, str], int] | None:
        """The version of `obj` the search index holds now (None: not indexed yet)."""
        if obj.visible_ms <= self.now_ms():
            return obj.properties, obj.modified_ms
        return obj.indexed

    def index_now(self) -> None:
        """Let the index catch up with every write (as if the delay had passed)."""
        now = self.now_ms()
        for table in self.objects.values():
            for obj in table.values():
                obj.visible_ms = min(obj.visible_ms, now)

    def defined(self, otype: str) -> frozenset[str]:
        """Property names the portal knows for `otype`: HubSpot's own plus the custom ones created."""
        return HUBSPOT_DEFINED.get(otype, frozenset()) | frozenset(self.properties[otype])

    def unique_properties(self, otype: str) -> set[str]:
        return {n for n, p in self.properties[otype].items() if p.get("hasUniqueValue")}

    def holder(self, otype: str, name: str, value: str) -> Obj | None:
        """The live object whose unique property `name` holds `value`."""
        return next((o for o in self.objects[otype].values()
                     if o.archived_ms is None and o.properties.get(name) == value), None)

    def live(self, otype: str, oid: int) -> Obj:
        obj = self.objects[otype].get(int(oid))
        if obj is None or obj.archived_ms is not None:
            raise FakeError(404, "OBJECT_NOT_FOUND", f"Object not found.  objectId are usually numeric. {oid}")
        return obj

    def archive(self, otype: str, oid: int) -> None:
        obj = self.live(otype, oid)
        obj.archived_ms = self.now_ms()
        obj.properties = {k: v for k, v in obj.properties.items() if k not in self.unique_properties(otype)}

    def page(self, otype: str, *, after: int, limit: int, archived: bool) -> tuple[list[Obj], int | None]:
        """Objects ordered by id from `after`, HubSpot's list paging."""
        ids = self.sorted_ids[otype]
        out: list[Obj] = []
        i = bisect.bisect_left(ids, after)
        while i < len(ids) and len(out) < limit:
            obj = self.objects[otype][ids[i]]
            if (obj.archived_ms is not None) == archived:
                out.append(obj)
            i += 1
        while i < len(ids) and (self.objects[otype][ids[i]].archived_ms is not None) != archived:
            i += 1
        return out, (ids[i] if i < len(ids) else None)

    # ---- associations --------------------------------------------------------------------------
    def associate(self, from_type: str, from_id: int, to_type: str, to_id: int,
                  types: Iterable[tuple[str, int]] = ()) -> None:
        """Associate both ways; `types` are (category, typeId), default type when empty."""
        specs = list(types) or [("HUBSPOT_DEFINED", DEFAULT_TYPES[(from_type, to_type)])]
        fwd = self.assoc.setdefault((from_type, int(from_id)), {}).setdefault(to_type, {}).setdefault(int(to_id), [])
        back = self.assoc.setdefault((to_type, int(to_id)), {}).setdefault(from_type, {}).setdefault(int(from_id), [])
        for category, type_id in specs:
            label = self.labels.get((from_type, to_type), {}).get(type_id)
            if (category, type_id, label) not in fwd:
                fwd.append((category, type_id, label))
                back.append((category, self._inverse(from_type, to_type, type_id), label))

    def _inverse(self, from_type: str, to_type: str, type_id: int) -> int:
        for table in (DEFAULT_TYPES, PRIMARY_TYPES):
            if table.get((from_type, to_type)) == type_id and (to_type, from_type) in table:
                return table[(to_type, from_type)]
        return type_id + 1  # user-defined labels come in pairs

    def define_label(self, from_type: str, to_type: str, label: str) -> int:
        """A portal's custom association label (USER_DEFINED), both directions."""
        existing = self.labels.setdefault((from_type, to_type), {})
        for type_id, name in existing.items():
            if name == label:
                return type_id
        type_id = 1000 + 2 * (sum(len(v) for v in self.labels.values()))
        existing[type_id] = label
        self.labels.setdefault((to_type, from_type), {})[type_id + 1] = label
        return type_id

    def associations(self, from_type: str, from_id: int, to_type: str) -> dict[int, list[tuple[str, int, str | None]]]:
        found = self.assoc.get((from_type, int(from_id)), {}).get(to_type, {})
        return {k: v for k, v in found.items() if self._alive(to_type, k)}

    def _alive(self, otype: str, oid: int) -> bool:
        obj = self.objects[otype].get(oid)
        return obj is not None and obj.archived_ms is None

    def v3_type_name(self, from_type: str, to_type: str, type_id: int, label: str | None) -> str:
        if label:
            return label.lower().replace(" ", "_")
        base = f"{SINGULAR[from_type]}_to_{SINGULAR[to_type]}"
        if PRIMARY_TYPES.get((from_type, to_type)) == type_id or (from_type, to_type) not in PRIMARY_TYPES:
            return base
        return base + "_unlabeled"

    # ---- owners, properties, pipelines -----------------------------------------------------------
    def add_owner(self, oid: int, *, email: str, first: str, last: str, teams: Iterable[tuple[str, str]] = (),
                  archived: bool = False) -> None:
        now = iso(self.now_ms())
        self.owners[int(oid)] = {
            "id": str(oid), "email": email, "firstName": first, "lastName": last, "userId": int(oid) + 7,
            "userIdIncludingInactive": int(oid) + 7, "type": "PERSON", "createdAt": now, "updatedAt": now,
            "archived": archived, "teams": [{"id": tid, "name": name, "primary": i == 0}
                                            for i, (tid, name) in enumerate(teams)],
        }

    def add_pipeline(self, pid: str, label: str, order: int, stages: Iterable[dict[str, Any]]) -> None:
        now = iso(self.now_ms())
        self.pipelines["deals"].append({
            "id": pid, "label": label, "displayOrder": order, "archived": False, "createdAt": now, "updatedAt": now,
            "stages": [{"id": s["id"], "label": s["label"], "displayOrder": s["order"], "archived": False,
                        "createdAt": now, "updatedAt": now, "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
                        "metadata": {"probability": str(s["probability"]), "isClosed": str(s["closed"]).lower()}}
                       for s in stages],
        })

    def create_property(self, otype: str, body: dict[str, Any]) -> dict[str, Any]:
        for key in ("name", "label", "type", "fieldType", "groupName"):
            if not body.get(key):
                raise FakeError(400, "VALIDATION_ERROR", f"Property {key} is required")
        if body["name"] in self.properties[otype]:
            raise FakeError(409, "OBJECT_ALREADY_EXISTS", f"Property named '{body['name']}' already exists.")
        if body["groupName"] not in self.groups[otype]:
            raise FakeError(400, "VALIDATION_ERROR", f"Property group {body['groupName']} does not exist.")
        now = iso(self.now_ms())
        prop = {"name": body["name"], "label": body["label"], "type": body["type"], "fieldType": body["fieldType"],
                "groupName": body["groupName"], "description": body.get("description", ""),
                "options": [{"label": o["label"], "value": o["value"], "displayOrder": o.get("displayOrder", i),
                             "hidden": bool(o.get("hidden", False))} for i, o in enumerate(body.get("options", []))],
                "displayOrder": body.get("displayOrder", -1), "hidden": bool(body.get("hidden", False)),
                "formField": bool(body.get("formField", False)), "hasUniqueValue": bool(body.get("hasUniqueValue", False)),
                "calculated": False, "externalOptions": False, "hubspotDefined": False, "archived": False,
                "createdAt": now, "updatedAt": now,
                "modificationMetadata": {"archivable": True, "readOnlyDefinition": False, "readOnlyValue": False}}
        self.properties[otype][body["name"]] = prop
        return prop

    def create_group(self, otype: str, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("name") or not body.get("label"):
            raise FakeError(400, "VALIDATION_ERROR", "Property group name and label are required")
        if body["name"] in self.groups[otype]:
            raise FakeError(409, "OBJECT_ALREADY_EXISTS", f"Property group named '{body['name']}' already exists.")
        group = {"name": body["name"], "label": body["label"], "displayOrder": body.get("displayOrder", -1),
                 "archived": False}
        self.groups[otype][body["name"]] = group
        return group

    def check_value(self, otype: str, name: str, value: Any) -> str | None:
        """Why HubSpot would refuse this value for a custom property (None: fine)."""
        if name == "hubspot_owner_id" and value not in (None, "") and (
                not str(value).isdigit() or int(value) not in self.owners):
            return f"{value!r} is not a valid owner id"  # HubSpot checks owners (research §4.8: the owner `id`)
        prop = self.properties[otype].get(name)
        if prop is None or value in (None, ""):
            return None
        if prop["type"] == "number":
            try:
                float(str(value))
            except ValueError:
                return f"{value!r} was not a valid number."
        if prop["type"] == "enumeration" and str(value) not in {o["value"] for o in prop["options"]}:
            return f"{value!r} was not one of the allowed options: {[o['value'] for o in prop['options']]}"
        return None
