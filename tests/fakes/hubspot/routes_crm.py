"""The fake's CRM endpoints: objects (list/get/create/update/batch/search), associations v4,
properties and groups, pipelines and owners, with HubSpot's batch limits and 207 multi-status."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Flask, Response, request

from tests.fakes.hubspot import search as search_mod
from tests.fakes.hubspot import validate
from tests.fakes.hubspot.portal import OBJECT_TYPES, TYPE_IDS, FakeError, Obj, Portal, iso
from tests.fakes.hubspot.rules import EMAIL_CONTENT, object_scopes, schema_scopes

if TYPE_CHECKING:
    from tests.fakes.hubspot.app import FakeHubSpot

MAX_BATCH = 100
MAX_ASSOC_READ = 1000


def _otype(name: str) -> str:
    otype = TYPE_IDS.get(name, name)
    if otype not in OBJECT_TYPES:
        raise FakeError(400, "VALIDATION_ERROR", f"Unable to infer object type from: {name}")
    return otype


def _multi(name: str) -> list[str]:
    """Query lists arrive repeated (?p=a&p=b) or comma-separated (?p=a,b); accept both."""
    return [v for raw in request.args.getlist(name) for v in raw.split(",") if v]


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise FakeError(400, "VALIDATION_ERROR", "Invalid input JSON")
    return body


def _now(portal: Portal) -> str:
    return iso(portal.now_ms())


def _error(category: str, message: str, ids: list[str], status: str = "error") -> dict[str, Any]:
    return {"status": status, "category": category, "message": message, "context": {"ids": ids},
            "links": {}, "errors": []}


def _batch(portal: Portal, results: list[Any], errors: list[dict[str, Any]], started: str) -> tuple[dict[str, Any], int]:
    body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": _now(portal)}
    if errors:
        body.update(numErrors=len(errors), errors=errors)
    return body, 207 if errors else 200


def hidden(otype: str) -> frozenset[str]:
    """Email bodies read as null without sales-email-read (research §1.2, §4.6: "Reading content needs
    sales-email-read")."""
    scopes = request.environ.get("fake.scopes", ())
    return EMAIL_CONTENT if otype == "emails" and "sales-email-read" not in scopes else frozenset()


def shown(portal: Portal, obj: Obj, props: Any, history: Any = ()) -> dict[str, Any]:
    """The JSON of `obj` as this token may see it: defaults, nulls, email content gated."""
    return obj.to_json(props, history, known=portal.defined(obj.type), hidden=hidden(obj.type))


def _with_assoc(portal: Portal, obj: Obj, to_types: list[str]) -> dict[str, Any]:
    body = shown(portal, obj, _multi("properties"), _multi("propertiesWithHistory"))
    found: dict[str, Any] = {}
    for to in to_types:
        to_type = _otype(to)
        rows = [{"id": str(tid), "type": portal.v3_type_name(obj.type, to_type, type_id, label)}
                for tid, specs in sorted(portal.associations(obj.type, obj.id, to_type).items())
                for _, type_id, label in specs]
        if rows:
            found[to] = {"results": rows}
    if found:
        body["associations"] = found
    return body


def _create_one(portal: Portal, otype: str, item: dict[str, Any]) -> Obj:
    props = dict(item.get("properties") or {})
    if otype in ("tasks", "notes", "calls", "emails", "meetings") and not props.get("hs_timestamp"):
        raise FakeError(400, "VALIDATION_ERROR", "Property values were not valid: hs_timestamp is required")
    for assoc in item.get("associations") or []:
        for spec in assoc.get("types", []):
            target = next((t for (f, t), i in _default_pairs() if f == otype and i == spec.get("associationTypeId")), None)
            if target is None:
                raise FakeError(400, "VALIDATION_ERROR", f"Unknown association type {spec.get('associationTypeId')}")
            portal.live(target, int(assoc["to"]["id"]))
    obj = portal.put(otype, props)
    for assoc in item.get("associations") or []:
        for spec in assoc.get("types", []):
            target = next(t for (f, t), i in _default_pairs() if f == otype and i == spec["associationTypeId"])
            portal.associate(otype, obj.id, target, int(assoc["to"]["id"]),
                             [(spec.get("associationCategory", "HUBSPOT_DEFINED"), spec["associationTypeId"])])
    return obj


def _default_pairs() -> list[tuple[tuple[str, str], int]]:
    from tests.fakes.hubspot.portal import DEFAULT_TYPES, PRIMARY_TYPES

    return list(DEFAULT_TYPES.items()) + list(PRIMARY_TYPES.items())


def _scopes_for(view: str, kwargs: dict[str, Any]) -> tuple[str, ...]:
    """The scopes a route needs (any one of them), research §1.2."""
    otype = TYPE_IDS.get(kwargs.get("otype", ""), kwargs.get("otype", ""))
    if view in ("list_objects", "get_object", "search", "batch_read"):
        return object_scopes(otype, False)
    if view in ("update_object", "archive_object", "create_object", "batch_update", "batch_create"):
        return object_scopes(otype, True)
    if view in ("list_properties", "list_groups"):
        return schema_scopes(otype, False)
    if view in ("create_property", "create_group"):
        return schema_scopes(otype, True)
    if view == "pipelines":
        return object_scopes(otype, False)
    if view in ("assoc_batch_read", "assoc_page", "assoc_labels"):
        ends = [TYPE_IDS.get(kwargs[k], kwargs[k]) for k in ("from_type", "to_type") if k in kwargs]
        return tuple(s for t in ends for s in object_scopes(t, False))
    if view == "owners":
        return ("crm.objects.owners.read",)
    return ("oauth",)


def register(app: Flask, fake: FakeHubSpot) -> None:  # noqa: C901 - one place lists every route
    def guarded(view: Any) -> Any:
        def wrapper(**kwargs: Any) -> Response:
            gate = fake.preflight()
            if isinstance(gate, Response):
                return gate
            refused = fake.scope_check(_scopes_for(view.__name__, kwargs))
            if refused is not None:
                return refused
            with fake.lock:
                result = view(gate, **kwargs)
            body, status = result if isinstance(result, tuple) else (result, 200)
            lost = request.environ.get("fake.after_fault")
            return fake.fault_response(lost) if lost is not None else fake.ok(body, status)
        wrapper.__name__ = view.__name__
        return wrapper

    def route(rule: str, methods: list[str], *more: str) -> Any:
        def add(view: Any) -> Any:
            for i, path in enumerate((rule, *more)):
                app.add_url_rule(path, endpoint=f"{view.__name__}_{methods[0]}_{i}", view_func=guarded(view),
                                 methods=methods)
            return view
        return add

    @route("/crm/v3/objects/<otype>", ["GET"])
    def list_objects(portal: Portal, otype: str) -> Any:
        otype = _otype(otype)
        history = _multi("propertiesWithHistory")
        limit = min(int(request.args.get("limit", 10)), 50 if history else 100)
        after = int(request.args.get("after") or 0)
        archived = request.args.get("archived", "false").lower() == "true"
        objs, nxt = portal.page(otype, after=after, limit=limit, archived=archived)
        body: dict[str, Any] = {"results": [_with_assoc(portal, o, _multi("associations")) for o in objs]}
        if nxt is not None:
            body["paging"] = {"next": {"after": str(nxt), "link": f"?after={nxt}"}}
        return body

    @route("/crm/v3/objects/<otype>/<int:oid>", ["GET"])
    def get_object(portal: Portal, otype: str, oid: int) -> Any:
        return _with_assoc(portal, portal.live(_otype(otype), oid), _multi("associations"))

    @route("/crm/v3/objects/<otype>/<int:oid>", ["PATCH"])
    def update_object(portal: Portal, otype: str, oid: int) -> Any:
        otype = _otype(otype)
        props = _body().get("properties") or {}
        errors = validate.property_errors(portal, otype, props)
        if errors:
            raise validate.refuse(errors)
        validate.conflicts(portal, otype, [{"properties": props}], updating=[portal.live(otype, oid).id])
        return shown(portal, portal.update(otype, oid, props), list(props))

    @route("/crm/v3/objects/<otype>/<int:oid>", ["DELETE"])
    def archive_object(portal: Portal, otype: str, oid: int) -> Any:
        portal.archive(_otype(otype), oid)
        return None, 204

    @route("/crm/v3/objects/<otype>", ["POST"])
    def create_object(portal: Portal, otype: str) -> Any:
        otype = _otype(otype)
        item = _body()
        validate.check_inputs(portal, otype, [item])
        validate.conflicts(portal, otype, [item], updating=[None])
        return shown(portal, _create_one(portal, otype, item), list((item.get("properties") or {}).keys())), 201

    @route("/crm/v3/objects/<otype>/search", ["POST"])
    def search(portal: Portal, otype: str) -> Any:
        otype = _otype(otype)
        return search_mod.search(portal, otype, _body(), hidden(otype))

    @route("/crm/v3/objects/<otype>/batch/read", ["POST"])
    def batch_read(portal: Portal, otype: str) -> Any:
        otype, body, started = _otype(otype), _body(), _now(portal)
        inputs = body.get("inputs") or []
        if len(inputs) > MAX_BATCH:
            raise FakeError(400, "VALIDATION_ERROR", f"Too many inputs: at most {MAX_BATCH}")
        id_prop = body.get("idProperty")
        validate.id_property(portal, otype, id_prop)
        results, missing = [], []
        for item in inputs:
            key = str(item.get("id"))
            match = ([o for o in portal.objects[otype].values() if o.archived_ms is None
                      and o.properties.get(id_prop) == key] if id_prop else
                     [o for o in [portal.objects[otype].get(int(key)) if key.isdigit() else None]
                      if o is not None and o.archived_ms is None])
            if match:
                results.append(shown(portal, match[0], body.get("properties"), body.get("propertiesWithHistory") or ()))
            else:
                missing.append(key)
        errors = [_error("OBJECT_NOT_FOUND", f"Could not get some {otype} objects, they may be deleted or not exist.",
                         missing)] if missing else []
        return _batch(portal, results, errors, started)

    @route("/crm/v3/objects/<otype>/batch/update", ["POST"])
    def batch_update(portal: Portal, otype: str) -> Any:
        otype, started = _otype(otype), _now(portal)
        inputs = _body().get("inputs") or []
        if len(inputs) > MAX_BATCH:
            raise FakeError(400, "VALIDATION_ERROR", f"Too many inputs: at most {MAX_BATCH}")
        validate.check_inputs(portal, otype, inputs)  # one invalid value: the whole batch is refused
        results, errors, found = [], [], []
        for item in inputs:
            oid = str(item.get("id"))
            obj = portal.objects[otype].get(int(oid)) if oid.isdigit() else None
            if obj is None or obj.archived_ms is not None:
                errors.append(_error("OBJECT_NOT_FOUND", f"Object {oid} not found", [oid]))
            else:
                found.append(item)
        validate.conflicts(portal, otype, found, updating=[int(i["id"]) for i in found])
        for item in found:
            props = item.get("properties") or {}
            results.append(shown(portal, portal.update(otype, int(item["id"]), props), list(props)))
        return _batch(portal, results, errors, started)

    @route("/crm/v3/objects/<otype>/batch/create", ["POST"])
    def batch_create(portal: Portal, otype: str) -> Any:
        otype, started = _otype(otype), _now(portal)
        inputs = _body().get("inputs") or []
        if len(inputs) > MAX_BATCH:
            raise FakeError(400, "VALIDATION_ERROR", f"Too many inputs: at most {MAX_BATCH}")
        validate.check_inputs(portal, otype, inputs)  # one invalid value: the whole batch is refused
        validate.conflicts(portal, otype, inputs, updating=[None] * len(inputs))  # one taken unique value: 409
        results, errors = [], []
        for item in inputs:
            trace = item.get("objectWriteTraceId")
            try:
                created = shown(portal, _create_one(portal, otype, item), list((item.get("properties") or {}).keys()))
            except FakeError as err:
                errors.append(_error(err.category, err.message, [], ) | {"context": {"objectWriteTraceId": [trace]}})
                continue
            if trace:
                created["objectWriteTraceId"] = trace
            results.append(created)
        body, status = _batch(portal, results, errors, started)
        return body, 207 if errors else 201

    @route("/crm/v4/associations/<from_type>/<to_type>/batch/read", ["POST"])
    def assoc_batch_read(portal: Portal, from_type: str, to_type: str) -> Any:
        from_type, to_type, started = _otype(from_type), _otype(to_type), _now(portal)
        inputs = _body().get("inputs") or []
        if len(inputs) > MAX_ASSOC_READ:
            raise FakeError(400, "VALIDATION_ERROR", f"Too many inputs: at most {MAX_ASSOC_READ}")
        results, errors = [], []
        for item in inputs:
            oid = str(item.get("id"))
            found = portal.associations(from_type, int(oid), to_type) if oid.isdigit() else {}
            if not found:
                errors.append(_error("NO_ASSOCIATIONS_FOUND", f"No {to_type} is associated with {from_type} {oid}.",
                                     [oid]))
                continue
            results.append({"from": {"id": oid}, "to": [
                {"toObjectId": tid, "associationTypes": [{"category": c, "typeId": t, "label": lab}
                                                         for c, t, lab in specs]}
                for tid, specs in sorted(found.items())]})
        return _batch(portal, results, errors, started)

    @route("/crm/v4/objects/<from_type>/<int:oid>/associations/<to_type>", ["GET"])
    def assoc_page(portal: Portal, from_type: str, oid: int, to_type: str) -> Any:
        found = sorted(portal.associations(_otype(from_type), oid, _otype(to_type)).items())
        limit, after = min(int(request.args.get("limit", 500)), 500), int(request.args.get("after") or 0)
        body: dict[str, Any] = {"results": [
            {"toObjectId": tid, "associationTypes": [{"category": c, "typeId": t, "label": lab} for c, t, lab in specs]}
            for tid, specs in found[after:after + limit]]}
        if after + limit < len(found):  # pages of at most 500 (research §4.3)
            body["paging"] = {"next": {"after": str(after + limit), "link": f"?after={after + limit}"}}
        return body

    @route("/crm/v4/associations/<from_type>/<to_type>/labels", ["GET"])
    def assoc_labels(portal: Portal, from_type: str, to_type: str) -> Any:
        from_type, to_type = _otype(from_type), _otype(to_type)
        from tests.fakes.hubspot.portal import DEFAULT_TYPES

        rows = [{"category": "HUBSPOT_DEFINED", "typeId": DEFAULT_TYPES[(from_type, to_type)], "label": None}] \
            if (from_type, to_type) in DEFAULT_TYPES else []
        rows += [{"category": "USER_DEFINED", "typeId": t, "label": lab}
                 for t, lab in sorted(portal.labels.get((from_type, to_type), {}).items())]
        return {"results": rows}

    @route("/crm/v3/properties/<otype>", ["GET"])
    def list_properties(portal: Portal, otype: str) -> Any:
        return {"results": list(portal.properties[_otype(otype)].values())}

    @route("/crm/v3/properties/<otype>", ["POST"])
    def create_property(portal: Portal, otype: str) -> Any:
        return portal.create_property(_otype(otype), _body()), 201

    @route("/crm/v3/properties/<otype>/groups", ["POST"])
    def create_group(portal: Portal, otype: str) -> Any:
        return portal.create_group(_otype(otype), _body()), 201

    @route("/crm/v3/properties/<otype>/groups", ["GET"])
    def list_groups(portal: Portal, otype: str) -> Any:
        return {"results": list(portal.groups[_otype(otype)].values())}

    @route("/crm/v3/pipelines/<otype>", ["GET"])
    def pipelines(portal: Portal, otype: str) -> Any:
        return {"results": portal.pipelines.get(_otype(otype), [])}

    @route("/crm/v3/owners/", ["GET"], "/crm/v3/owners")
    def owners(portal: Portal) -> Any:
        archived = request.args.get("archived", "false").lower() == "true"
        limit, after = min(int(request.args.get("limit", 100)), 500), int(request.args.get("after") or 0)
        rows = [o for k, o in sorted(portal.owners.items()) if o["archived"] == archived and k >= after]
        body: dict[str, Any] = {"results": rows[:limit]}
        if len(rows) > limit:
            body["paging"] = {"next": {"after": rows[limit]["id"]}}
        return body

    @route("/appinstalls/2026-03/external-install", ["DELETE"])
    def uninstall(portal: Portal) -> Any:
        token = request.headers["Authorization"].removeprefix("Bearer ").strip()
        fake.oauth.check(token).revoked = True  # type: ignore[union-attr]
        return None, 204
