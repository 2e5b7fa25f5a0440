"""REST routes of the fake: query/queryAll with nextRecordsUrl paging, sObjects, getUpdated/getDeleted,
sObject Collections, Composite, Tooling CustomField, limits. Bodies match ../shared/contracts/salesforce/."""

from __future__ import annotations

import itertools
import json
import re
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from tests.fakes.salesforce.describe import TOOLING_TYPES, describe_field
from tests.fakes.salesforce.org import FakeOrg, SfError, wire_datetime
from tests.fakes.salesforce.soql import SoqlError, parse_datetime

bp = Blueprint("sf_rest", __name__)
_locators = itertools.count(1)
_ID = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")
REPLICATION_DAYS = 30  # getUpdated/getDeleted reach back at most 30 days (research §2.2, resources-getupdated)


def check_id(rid: str | None) -> None:
    """MALFORMED_ID for a value that is not a 15/18-character record id (errorcodes.html, research §2.5). Ids a
    test seeded as given (short numeric ones) are accepted as the org's own."""
    if rid and not _ID.match(rid) and org().find(rid) is None:
        raise SfError(400, "MALFORMED_ID", f"malformed id {rid}")


def org() -> FakeOrg:
    return current_app.config["ORG"]  # type: ignore[no-any-return]


def _user() -> str:
    return request.environ["sf.user"]


def _page(records: list[dict[str, Any]], total: int, start: int, kind: str) -> dict[str, Any]:
    size = org().batch_size
    hint = request.headers.get("Sforce-Query-Options", "")
    if hint.startswith("batchSize="):
        size = max(200, min(2000, int(hint.split("=", 1)[1])))
    chunk = records[start : start + size]
    body: dict[str, Any] = {"totalSize": total, "done": start + size >= len(records), "records": chunk}
    if not body["done"]:
        locator = f"01g{next(_locators):09d}"
        org().cursors[locator] = (records, start + size)
        body["nextRecordsUrl"] = f"/services/data/v{org().version}/{kind}/{locator}-{start + size}"
        body = {"totalSize": total, "done": False, "nextRecordsUrl": body["nextRecordsUrl"], "records": chunk}
    return body


@bp.get("/services/data/v<ver>/query/")
@bp.get("/services/data/v<ver>/queryAll/")
def query(ver: str) -> Any:
    include_deleted = "/queryAll/" in request.path
    try:
        q, rows = org().run_query(request.args.get("q", ""), include_deleted=include_deleted)
    except SoqlError as exc:
        raise SfError(400, "MALFORMED_QUERY", str(exc)) from exc
    if q.count_only:
        return jsonify({"totalSize": len(rows), "done": True, "records": []})
    return jsonify(_page(rows, len(rows), 0, "queryAll" if include_deleted else "query"))


@bp.get("/services/data/v<ver>/query/<locator>")
@bp.get("/services/data/v<ver>/queryAll/<locator>")
def query_more(ver: str, locator: str) -> Any:
    key = locator.split("-", 1)[0]
    if key not in org().cursors:
        raise SfError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    records, start = org().cursors.pop(key)
    return jsonify(_page(records, len(records), start, "queryAll" if "/queryAll/" in request.path else "query"))


@bp.get("/services/data/v<ver>/sobjects/<sobject>/describe/")
def describe(ver: str, sobject: str) -> Any:
    if sobject not in org().fields:
        raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
    o = org()
    fields = [describe_field(sobject, n, o.field_types.get(sobject, {}), o.field_labels.get(sobject, {}).get(n, ""),
                             o.picklists.get(sobject, {}).get(n)) for n in sorted(o.fields[sobject])]
    return jsonify({"name": sobject, "label": sobject, "custom": False, "createable": True, "updateable": True,
                    "queryable": True, "fields": fields,
                    "urls": {"sobject": f"/services/data/v{org().version}/sobjects/{sobject}"}})


def _window(*, delete_log: bool = False) -> tuple[datetime, datetime]:
    """getUpdated/getDeleted's window; INVALID_REPLICATION_DATE for a start more than 30 days back, or (getDeleted)
    before the delete log's earliest date when it was purged (research §2.2; resources-getupdated.md:
    "startDate ... cannot be more than 30 days ago")."""
    try:
        start, end = parse_datetime(request.args["start"]), parse_datetime(request.args["end"])
    except (KeyError, ValueError) as exc:
        raise SfError(400, "INVALID_REPLICATION_DATE", "start and end must be valid dateTimes") from exc
    if start < org().clock() - timedelta(days=REPLICATION_DAYS):
        raise SfError(400, "INVALID_REPLICATION_DATE", "startDate cannot be more than 30 days ago")
    if delete_log and org().delete_log_floor is not None and start < org().delete_log_floor:
        raise SfError(400, "INVALID_REPLICATION_DATE", "startDate is before the earliest date available in the "
                      "delete log: " + wire_datetime(org().earliest_delete_available()))
    return start, end


@bp.get("/services/data/v<ver>/sobjects/<sobject>/updated/")
def updated(ver: str, sobject: str) -> Any:
    start, end = _window()
    end = end.replace(second=0, microsecond=0)
    return jsonify({"ids": org().changed_between(sobject, start, end), "latestDateCovered": wire_datetime(end)})


@bp.get("/services/data/v<ver>/sobjects/<sobject>/deleted/")
def deleted(ver: str, sobject: str) -> Any:
    start, end = _window(delete_log=True)
    end = end.replace(second=0, microsecond=0)
    rows = [{"id": rid, "deletedDate": wire_datetime(when)} for rid, when in org().deleted_between(sobject, start, end)]
    return jsonify({"deletedRecords": rows, "earliestDateAvailable": wire_datetime(org().earliest_delete_available()),
                    "latestDateCovered": wire_datetime(end)})


@bp.route("/services/data/v<ver>/sobjects/<sobject>/<rid>", methods=["GET", "PATCH", "DELETE"])
def one_record(ver: str, sobject: str, rid: str) -> Any:
    check_id(rid)
    if request.method == "PATCH":
        org().update(sobject, rid, _json_body(), by=_user())
        return Response(status=204)
    if request.method == "DELETE":
        org().delete(sobject, rid)
        return Response(status=204)
    record = org().records.get(sobject, {}).get(rid)
    if record is None or record["IsDeleted"]:
        raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
    return jsonify(org().shape(sobject, record, sorted(record)))


@bp.post("/services/data/v<ver>/sobjects/<sobject>/")
def create(ver: str, sobject: str) -> Any:
    return jsonify(_create(sobject, _json_body())), 201


def _create(sobject: str, values: dict[str, Any]) -> dict[str, Any]:
    if sobject not in org().records:
        raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
    return {"id": org().insert(sobject, values, by=_user()), "success": True, "errors": []}


def _json_body() -> Any:
    try:
        return json.loads(request.get_data() or b"null")
    except ValueError as exc:
        raise SfError(400, "JSON_PARSER_ERROR", "Unexpected character in JSON") from exc


def _check_collection(records: list[Any]) -> None:
    """Refuse the request as a whole, as Salesforce does before saving anything: more than 200 records, a record
    without attributes.type, or a field the object does not have (resources-composite-sobjects-collections:
    "each record must include attributes.type"; an unknown column is a request-level INVALID_FIELD)."""
    if len(records) > 200:
        raise SfError(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records into this call")
    for record in records:
        sobject = (record.get("attributes") or {}).get("type") if isinstance(record, dict) else None
        if not sobject:
            raise SfError(400, "INVALID_INPUT", "When creating or updating records, each record must have "
                          "attributes with a type")
        if sobject not in org().fields:
            raise SfError(400, "INVALID_TYPE", f"sObject type '{sobject}' is not supported.")
        unknown = [k for k in record if k not in org().fields[sobject] and k not in ("attributes", "id")]
        if unknown:
            raise SfError(400, "INVALID_FIELD", f"No such column '{unknown[0]}' on sobject of type {sobject}", unknown)


def _all_or_none(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r if not r["success"] else {"id": None if request.method == "POST" else r["id"], "success": False,
                                        "errors": [{"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK", "message":
                                                    "Record rolled back because not all records were valid and the "
                                                    "request was using AllOrNone header", "fields": []}]}
            for r in results]


@bp.route("/services/data/v<ver>/composite/sobjects", methods=["PATCH", "POST"])
def collections(ver: str) -> Any:
    body = _json_body()
    records = body.get("records") or []
    _check_collection(records)
    saved = org().snapshot() if body.get("allOrNone") else None
    results = [_save_one(r, create=request.method == "POST") for r in records]
    if saved is not None and not all(r["success"] for r in results):
        org().restore(saved)  # allOrNone really rolls back: nothing of this request stays
        results = _all_or_none(results)
    return jsonify(results)


@bp.patch("/services/data/v<ver>/composite/sobjects/<sobject>/<ext_field>")
def upsert_collection(ver: str, sobject: str, ext_field: str) -> Any:
    """Upsert by external id, up to 200 records (API v46+): the existing record with that key is updated,
    otherwise one is created; `created` says which (resources-composite-sobjects-collections-upsert)."""
    body = _json_body()
    records = body.get("records") or []
    _check_collection(records)
    if ext_field not in org().fields.get(sobject, set()) or ext_field not in org().external_ids.get(sobject, set()):
        raise SfError(400, "INVALID_FIELD", f"Field {ext_field} is not an External ID or indexed field for {sobject}")
    saved = org().snapshot() if body.get("allOrNone") else None
    results = [_upsert_one(sobject, ext_field, r) for r in records]
    if saved is not None and not all(r["success"] for r in results):
        org().restore(saved)
        results = _all_or_none(results)
    return jsonify(results)


def _upsert_one(sobject: str, ext_field: str, record: dict[str, Any]) -> dict[str, Any]:
    key = record.get(ext_field)
    values = {k: v for k, v in record.items() if k != "attributes"}
    if not key:
        return {"id": None, "success": False, "errors": [{"statusCode": "MISSING_ARGUMENT", "message":
                                                          f"{ext_field} not specified", "fields": [ext_field]}]}
    try:
        found = [r for r in org().records[sobject].values() if r.get(ext_field) == key and not r["IsDeleted"]]
        if found:
            org().update(sobject, found[0]["Id"], values, by=_user())
            return {"id": found[0]["Id"], "success": True, "errors": [], "created": False}
        return {"id": org().insert(sobject, values, by=_user()), "success": True, "errors": [], "created": True}
    except SfError as exc:
        return {"id": None, "success": False, "errors": [{"statusCode": exc.code, "message": exc.message,
                                                          "fields": exc.fields or []}]}


def _save_one(record: dict[str, Any], *, create: bool) -> dict[str, Any]:
    sobject = (record.get("attributes") or {}).get("type", "")
    values = {k: v for k, v in record.items() if k not in ("attributes", "id")}
    rid = record.get("id")
    if not create and rid and not _ID.match(rid) and org().find(rid) is None:
        return {"id": rid, "success": False, "errors": [{"statusCode": "MALFORMED_ID", "message":
                                                         f"malformed id {rid}", "fields": []}]}
    queued = org().take_record_error(rid)
    if queued:
        return {"id": rid, "success": False, "errors": [{"statusCode": queued[0], "message": queued[1], "fields": []}]}
    try:
        if create:
            return _create(sobject, values)
        org().update(sobject, rid or "", values, by=_user())
        return {"id": rid, "success": True, "errors": []}
    except SfError as exc:
        return {"id": rid, "success": False, "errors": [{"statusCode": exc.code, "message": exc.message,
                                                        "fields": exc.fields or []}]}


@bp.post("/services/data/v<ver>/composite")
def composite(ver: str) -> Any:
    subs = _json_body().get("compositeRequest") or []
    if len(subs) > 25:
        raise SfError(400, "INVALID_REQUEST", "Composite request limit exceeded: 25 subrequests")
    client = current_app.test_client()
    out = []
    for sub in subs:
        resp = client.open(sub["url"], method=sub["method"], json=sub.get("body"),
                           headers={"Authorization": request.headers.get("Authorization", ""), "X-Sf-Internal": "1"})
        body = resp.get_json(silent=True)
        out.append({"body": body, "httpHeaders": {}, "httpStatusCode": resp.status_code, "referenceId": sub["referenceId"]})
    return jsonify({"compositeResponse": out})


@bp.post("/services/data/v<ver>/tooling/sobjects/CustomField/")
@bp.post("/services/data/v<ver>/tooling/sobjects/CustomField")
def create_custom_field(ver: str) -> Any:
    if not org().admin:
        raise SfError(403, "INSUFFICIENT_ACCESS_OR_READONLY", "insufficient access rights on cross-reference id")
    body = _json_body()
    full = body.get("FullName", "")
    sobject, _, name = full.partition(".")
    meta = body.get("Metadata") or {}
    if sobject in ("Task", "Event"):  # activity custom fields live on Activity (object reference, research §3)
        raise SfError(400, "FIELD_INTEGRITY_EXCEPTION", f"Cannot create a custom field on {sobject}: task and "
                      "event custom fields are created on Activity", ["FullName"])
    if (sobject not in org().fields and sobject != "Activity") or not name.endswith("__c"):
        raise SfError(400, "INVALID_FIELD", f"invalid field full name: {full}")
    target = "Task" if sobject == "Activity" else sobject
    if name in org().fields[target]:
        raise SfError(400, "DUPLICATE_DEVELOPER_NAME", "There is already a field named " + name[:-3] + " on " + sobject)
    kind = TOOLING_TYPES.get(str(meta.get("type")), "string")
    if sobject == "Activity":
        org().add_activity_field(name, kind)
    else:  # Metadata.valueSet.valueSetDefinition.value: [{fullName, label}] (Tooling API CustomField, metadata)
        values = ((meta.get("valueSet") or {}).get("valueSetDefinition") or {}).get("value") or []
        org().add_custom_field(sobject, name, kind, str(meta.get("label") or ""),
                               [(str(v["fullName"]), str(v.get("label") or v["fullName"])) for v in values])
    if meta.get("externalId"):
        for each in ("Task", "Event") if sobject == "Activity" else (sobject,):
            org().external_ids.setdefault(each, set()).add(name)
    rid = org().new_id("CustomField")
    org().custom_fields.append({"Id": rid, "FullName": full, "Metadata": body.get("Metadata", {})})
    return jsonify({"id": rid, "success": True, "errors": [], "warnings": [], "infos": []}), 201


@bp.get("/services/data/v<ver>/limits/")
@bp.get("/services/data/v<ver>/limits")
def limits(ver: str) -> Any:
    o = org()
    remaining = max(0, o.api_max - o.api_used)
    if o.limits_exhausted > 0:
        o.limits_exhausted -= 1
        remaining = 0
    return jsonify({"DailyApiRequests": {"Max": o.api_max, "Remaining": remaining},
                    "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000 - len(o.bulk_jobs)}})


def register(app: Flask) -> None:
    app.register_blueprint(bp)
