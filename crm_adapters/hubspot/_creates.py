"""Creating tasks and notes exactly once, without trusting the search index.

HubSpot's search indexes a write seconds after it (research §4.2), so "search for the key, then
create" makes a second task when a retry follows a lost response within those seconds. Instead:

- our `salesloop_key` property is a unique-value property (hasUniqueValue): HubSpot itself refuses
  a second object with the same key (409 CONFLICT, HubSpot/hubspot-api-python#51), which makes the
  create idempotent at the source;
- keys are looked up by batch read with `idProperty=salesloop_key`, a read by unique value that sees
  a write at once (no index), before creating and again after any create whose outcome is unknown
  (5xx, timeout, lost response) or refused as a conflict;
- a batch HubSpot refuses whole (400: one invalid value) is split in halves until the bad input is
  alone, so every valid input lands and the bad one is reported with HubSpot's reason;
- inputs refused one by one (207) reach the caller in `CreatedRefs.failed`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from crm_adapters.errors import CrmBadRequest, CrmError, CrmUnavailable
from crm_adapters.hubspot import _errors
from crm_adapters.hubspot._client import HubSpotClient
from crm_adapters.hubspot._reads import BATCH, Reads
from crm_adapters.hubspot.limiter import SEARCH
from crm_adapters.writes import CreatedRef, CreatedRefs, WriteFailure

logger = logging.getLogger(__name__)
KEY_PROPERTY = "salesloop_key"
RETRYABLE_CATEGORIES = {"RATE_LIMITS", "INTERNAL_ERROR", "SERVICE_UNAVAILABLE", "LOCKED", "TIMEOUT"}
KEYS_PER_SEARCH = 40  # search bodies are capped at 3,000 characters
ATTEMPTS = 3
Drafts = dict[str, dict[str, Any]]


class Creates:
    """Idempotent creates of one object type's inputs (key -> SimplePublicObjectInputForCreate body)."""

    def __init__(self, client: HubSpotClient, reads: Reads) -> None:
        self.client, self.reads = client, reads

    def by_key(self, otype: str, keys: Sequence[str]) -> dict[str, str]:
        """key -> id of the objects holding these keys, read by unique value (no search index involved)."""
        try:
            rows = self.reads.batch_read(otype, list(keys), [KEY_PROPERTY], id_property=KEY_PROPERTY)
        except CrmBadRequest as exc:  # a portal whose key property predates hasUniqueValue: search instead
            logger.warning("hubspot %s: reading by %s refused (%s); falling back to search", otype, KEY_PROPERTY, exc)
            return self._searched(otype, keys)
        found = {str(r["properties"].get(KEY_PROPERTY) or ""): r["id"] for r in rows}
        return {k: found[k] for k in keys if k in found}

    def _searched(self, otype: str, keys: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for i in range(0, len(keys), KEYS_PER_SEARCH):
            body = {"filterGroups": [{"filters": [{"propertyName": KEY_PROPERTY, "operator": "IN",
                                                   "values": list(keys[i:i + KEYS_PER_SEARCH])}]}],
                    "properties": [KEY_PROPERTY], "limit": 200, "after": "0"}
            def run(api: Any, body: dict[str, Any] = body) -> Any:
                return api("crm.objects.search_api").do_search(otype, public_object_search_request=body)

            resp = self.client.call(f"search:{otype}", run, bucket=SEARCH)
            for obj in resp.results or []:
                found.setdefault(str(obj.properties.get(KEY_PROPERTY, "")), str(obj.id))
        return {k: found[k] for k in keys if k in found}

    def create(self, otype: str, drafts: Drafts) -> CreatedRefs:
        """Create what does not exist yet; a key seen before returns the object made then."""
        refs = [CreatedRef(k, rid, False) for k, rid in self.by_key(otype, list(drafts)).items()]
        failed: list[WriteFailure] = []
        todo = {k: v for k, v in drafts.items() if k not in {r.idempotency_key for r in refs}}
        for attempt in range(ATTEMPTS):
            keys = list(todo)
            unknown: dict[str, CrmError] = {}
            for i in range(0, len(keys), BATCH):
                made, refused, lost = self._send(otype, {k: todo[k] for k in keys[i:i + BATCH]})
                refs += made
                failed += refused
                unknown |= lost
            if not unknown:
                return CreatedRefs(refs, failed)
            found = self.by_key(otype, list(unknown))  # what the unanswered calls did make
            refs += [CreatedRef(k, rid, False) for k, rid in found.items()]
            todo = {k: todo[k] for k in unknown if k not in found}
            if not todo:
                return CreatedRefs(refs, failed)
            logger.warning("hubspot create %s: %d inputs without an answer, attempt %d", otype, len(todo), attempt + 1)
        error = next(iter(unknown.values()))
        if isinstance(error, CrmUnavailable):
            raise error  # the job is retried later; the keys make the retry find what was made
        return CreatedRefs(refs, failed + [WriteFailure(k, str(unknown[k])[:300], True) for k in todo])

    def _send(self, otype: str, chunk: Drafts) -> tuple[list[CreatedRef], list[WriteFailure], dict[str, CrmError]]:
        """One batch create: (made, refused inputs, keys whose outcome is unknown -> why)."""
        body = {"inputs": [dict(v, objectWriteTraceId=k) for k, v in chunk.items()]}
        try:
            resp = self.client.call(f"batch_create:{otype}", lambda api: api("crm.objects.batch_api").create(
                otype, batch_input_simple_public_object_batch_input_for_create=body), idempotent=False)
        except CrmUnavailable as exc:  # 5xx / timeout: it may have been done; read back before resending
            return [], [], dict.fromkeys(chunk, exc)
        except CrmBadRequest as exc:
            if _errors.is_conflict(exc):  # a key already taken (a concurrent worker, a lost answer): read back
                return [], [], dict.fromkeys(chunk, exc)
            if len(chunk) > 1 and _errors.status_behind(exc) == 400:
                return self._split(otype, chunk)
            return [], [WriteFailure(k, str(exc)[:300], False) for k in chunk], {}
        made = [CreatedRef(str(o.properties.get(KEY_PROPERTY) or o.object_write_trace_id), str(o.id), True)
                for o in resp.results or []]
        refused = []
        for err in getattr(resp, "errors", None) or []:
            traces = (err.context or {}).get("objectWriteTraceId") or []
            reason = f"{err.category}: {str(err.message)[:300]}"
            refused += [WriteFailure(str(t), reason, err.category in RETRYABLE_CATEGORIES) for t in traces if t]
        return made, refused, {}

    def _split(self, otype: str, chunk: Drafts) -> tuple[list[CreatedRef], list[WriteFailure], dict[str, CrmError]]:
        """HubSpot refused the whole batch for one bad input: send each half on its own."""
        keys = list(chunk)
        mid = len(keys) // 2
        made, refused, lost = self._send(otype, {k: chunk[k] for k in keys[:mid]})
        more = self._send(otype, {k: chunk[k] for k in keys[mid:]})
        return made + more[0], refused + more[1], lost | more[2]
