"""sObject Collections, read strictly: every record's every error, no result dropped or misplaced.

- A SaveResult array that does not match the records sent one to one is a failure of every record
  of that call (never a silent zip).
- Every error of a record is kept (`statusCode: message`, joined), not only the first.
- Rows locked by another transaction are retried per record (UNABLE_TO_LOCK_ROW in a SaveResult);
  the whole-request form is retried by the client (_client.call).
- A request refused whole with INVALID_FIELD names the fields: the records carrying them fail with
  that reason, the others are sent again without them (one missing field does not stop the rest).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from crm_adapters.errors import CrmBadRequest
from crm_adapters.salesforce._client import SalesforceClient
from crm_adapters.salesforce._errors import RETRYABLE_RECORD_CODES, code_of, errors_of
from crm_adapters.writes import WriteFailure

logger = logging.getLogger(__name__)
COLLECTION_SIZE = 200
LOCK_RETRIES = 3
Result = dict[str, Any]


def reasons(result: Result) -> tuple[str, bool]:
    """All errors of one SaveResult as text, and whether every one of them is worth another try."""
    errors = result.get("errors") or [{"statusCode": "UNKNOWN", "message": "no error given"}]
    text = "; ".join(f"{e.get('statusCode', 'UNKNOWN')}: {str(e.get('message', ''))[:200]}" for e in errors)
    return text[:500], all(str(e.get("statusCode")) in RETRYABLE_RECORD_CODES for e in errors)


def paired(chunk: list[dict[str, Any]], results: Any, key: str) -> list[tuple[dict[str, Any], Result]] | None:
    """Records and their SaveResults in request order; None when the counts differ (then nothing is trusted)."""
    if not isinstance(results, list) or len(results) != len(chunk):
        logger.warning("salesforce answered %s results for %d records", len(results or []), len(chunk))
        return None
    return list(zip(chunk, results, strict=True))


def _send(client: SalesforceClient, what: str, path: str, method: str, chunk: list[dict[str, Any]],
          failed: list[WriteFailure], key: str) -> list[tuple[dict[str, Any], Result]]:
    """One collection call; records carrying a field the request was refused for are failed, the rest resent."""
    try:
        results = client.call(what, lambda sf: sf.restful(path, method=method, json={"allOrNone": False,
                                                                                     "records": chunk}))
    except CrmBadRequest as exc:
        if code_of(exc) != "INVALID_FIELD":
            raise
        bad_fields = {f for e in errors_of(exc.__cause__) for f in e.get("fields") or []}
        bad = [r for r in chunk if bad_fields & set(r)] if bad_fields else chunk
        failed.extend(WriteFailure(str(r.get(key)), f"INVALID_FIELD: {str(exc)[:300]}", False) for r in bad)
        rest = [r for r in chunk if r not in bad]
        return _send(client, what, path, method, rest, failed, key) if rest else []
    pairs = paired(chunk, results, key)
    if pairs is None:
        failed.extend(WriteFailure(str(r.get(key)), "Salesforce answered a different number of results", True)
                      for r in chunk)
        return []
    return pairs


def save(client: SalesforceClient, payloads: list[dict[str, Any]], sleep: Callable[[float], None], *,
         path: str = "composite/sobjects", method: str = "PATCH", key: str = "id",
         ) -> tuple[list[Result], list[WriteFailure]]:
    """Send records 200 at a time; retry locked rows; every other per-record error is a failure."""
    ok: list[Result] = []
    failed: list[WriteFailure] = []
    pending = payloads
    for attempt in range(1, LOCK_RETRIES + 2):
        retry = []
        for i in range(0, len(pending), COLLECTION_SIZE):
            for record, result in _send(client, "save collection", path, method, pending[i:i + COLLECTION_SIZE],
                                        failed, key):
                if result.get("success"):
                    ok.append({**result, key: record.get(key), "_record": record})
                    continue
                text, retryable = reasons(result)
                if retryable and attempt <= LOCK_RETRIES:
                    retry.append(record)
                else:
                    failed.append(WriteFailure(str(record.get(key)), text, retryable))
        if not retry:
            break
        sleep(0.05 * attempt)
        pending = retry
    return ok, failed
