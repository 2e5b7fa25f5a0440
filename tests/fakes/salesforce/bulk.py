"""Bulk API 2.0 query jobs of the fake: create, poll, CSV results paged by Sforce-Locator."""

from __future__ import annotations

import csv
import io
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, request

from tests.fakes.salesforce.org import SfError
from tests.fakes.salesforce.rest import _json_body, _user, org
from tests.fakes.salesforce.soql import SoqlError, parse

bp = Blueprint("sf_bulk", __name__)


@bp.post("/services/data/v<ver>/jobs/query")
def create_job(ver: str) -> Any:
    body = _json_body()
    operation = body.get("operation")
    if operation not in ("query", "queryAll"):
        raise SfError(400, "INVALIDJOB", f"Invalid operation: {operation}")
    try:
        q = parse(body.get("query", ""))
    except SoqlError as exc:
        raise SfError(400, "MALFORMED_QUERY", str(exc)) from exc
    if q.sobject in org().no_bulk:
        raise SfError(400, "INVALIDENTITY", f"Entity '{q.sobject}' is not supported by the Bulk API.")
    _, rows = org().run_query(body["query"], include_deleted=operation == "queryAll")
    job_id = org().new_id("AsyncApexJob").replace("a00", "750", 1)
    now = org().now()
    job = {"id": job_id, "operation": operation, "object": q.sobject, "createdById": _user(), "createdDate": now,
           "systemModstamp": now, "state": "UploadComplete", "concurrencyMode": "Parallel", "contentType": "CSV",
           "apiVersion": float(org().version), "lineEnding": "LF", "columnDelimiter": "COMMA"}
    org().bulk_jobs[job_id] = {"info": job, "fields": q.fields, "rows": rows, "polls": 0}
    return jsonify(job)


@bp.get("/services/data/v<ver>/jobs/query/<job_id>")
def job_info(ver: str, job_id: str) -> Any:
    job = _job(job_id)
    job["polls"] += 1
    info = dict(job["info"], state="InProgress" if job["polls"] < 2 else "JobComplete")
    info.update(numberRecordsProcessed=len(job["rows"]), retries=0, totalProcessingTime=1)
    return jsonify(info)


def _job(job_id: str) -> dict[str, Any]:
    if job_id not in org().bulk_jobs:
        raise SfError(404, "NOT_FOUND", "The requested resource does not exist")
    return org().bulk_jobs[job_id]  # type: ignore[no-any-return]


def _cell(row: dict[str, Any], name: str) -> str:
    value: Any = row
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@bp.get("/services/data/v<ver>/jobs/query/<job_id>/results")
def results(ver: str, job_id: str) -> Any:
    job = _job(job_id)
    if job["polls"] < 2:
        raise SfError(400, "INVALIDJOBSTATE", "Job is not complete")
    start = int(request.args.get("locator") or 0)
    size = int(request.args.get("maxRecords") or 50000)
    chunk = job["rows"][start : start + size]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(job["fields"])
    for row in chunk:
        writer.writerow([_cell(row, f) for f in job["fields"]])
    nxt = start + size
    locator = str(nxt) if nxt < len(job["rows"]) else "null"
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Sforce-Locator": locator, "Sforce-NumberOfRecords": str(len(chunk))})


def register(app: Flask) -> None:
    app.register_blueprint(bp)
