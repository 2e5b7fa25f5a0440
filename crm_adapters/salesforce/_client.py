"""simple-salesforce behind one door: token refresh on 401 (once), the error table, the API budget, paging.

Every REST call goes through `call()`: budget check, the SDK call, and on SalesforceExpiredSession a
single refresh through the TokenSource and a single retry; a second 401 is CrmAuthError.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession, SalesforceOperationError

from crm_adapters.auth import Tokens, TokenSource
from crm_adapters.errors import ConfigError, CrmAuthError, CrmError, CrmRateLimited
from crm_adapters.salesforce._errors import code_of, describe, translate
from crm_adapters.salesforce.budget import ApiBudget

logger = logging.getLogger(__name__)
T = TypeVar("T")
API_VERSION = "66.0"
LOCK_RETRIES = 3  # UNABLE_TO_LOCK_ROW for the whole request: another transaction holds the row; it frees soon
LOCK_WAIT_S = 0.5
CONCURRENT_RETRIES = 2  # REQUEST_LIMIT_EXCEEDED while the daily allocation remains: 25 long requests are running
CONCURRENT_WAIT_S = 20.0  # a long-running request is one of 20 s or more (research §2.5)
SDK_ERRORS = (SalesforceError, SalesforceOperationError, requests.RequestException)


class SalesforceClient:
    def __init__(self, tokens: TokenSource, *, budget: ApiBudget, session: requests.Session | None = None,
                 version: str = API_VERSION, sleep: Callable[[float], None] = time.sleep) -> None:
        self._tokens = tokens
        self.sleep = sleep
        self._version = version
        self.budget = budget
        self.session = session or requests.Session()
        self.session.hooks["response"].append(self._on_response)
        self.server_now: datetime | None = None
        self._current = tokens.current()
        self.sf = self._build(self._current)

    def _build(self, tokens: Tokens) -> Salesforce:
        if not tokens.instance_url:
            raise ConfigError("salesforce tokens carry no instance_url")
        return Salesforce(instance_url=tokens.instance_url, session_id=tokens.access_token, version=self._version,
                          session=self.session, object_pairs_hook=dict)

    def _on_response(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        self.budget.response_hook(response)
        stamp = response.headers.get("Date")
        if stamp:
            with contextlib.suppress(TypeError, ValueError):
                self.server_now = parsedate_to_datetime(stamp).astimezone(UTC)
        return response

    def now(self) -> datetime:
        """The server's clock as last seen (Date header); ours until the first response."""
        return self.server_now or datetime.now(UTC)

    def call(self, what: str, fn: Callable[[Salesforce], T]) -> T:
        """One API call; a locked row (request level) and the concurrent-request limit are waited out and
        retried, the daily limit is not (REQUEST_LIMIT_EXCEEDED means either: the org's /limits tells which)."""
        attempt = 0
        while True:
            try:
                return self._once(what, fn)
            except CrmError as err:
                code = code_of(err)
                if code == "UNABLE_TO_LOCK_ROW" and attempt < LOCK_RETRIES:
                    delay = LOCK_WAIT_S * 2**attempt
                elif code == "REQUEST_LIMIT_EXCEEDED" and self.daily_requests_left() > 0:
                    if attempt >= CONCURRENT_RETRIES:
                        raise CrmRateLimited(f"salesforce {what}: the org's concurrent long-running requests are "
                                             "taken", retry_after=CONCURRENT_WAIT_S) from err.__cause__
                    delay = CONCURRENT_WAIT_S
                else:
                    raise
            attempt += 1
            logger.info("salesforce %s: %s, retrying in %.1fs (attempt %d)", what, code, delay, attempt)
            self.sleep(delay)

    def daily_requests_left(self) -> int:
        """DailyApiRequests.Remaining from /limits; 0 when the org answers nothing (the daily form)."""
        try:
            body = self.sf.limits()
        except (*SDK_ERRORS, ValueError):
            return 0
        return int((body.get("DailyApiRequests") or {}).get("Remaining") or 0)

    def _once(self, what: str, fn: Callable[[Salesforce], T]) -> T:
        """One API call with the budget check, the 401 refresh-once-retry-once rule and the error table."""
        self.budget.check()
        try:
            return fn(self.sf)
        except SalesforceExpiredSession:
            logger.info("salesforce %s: session expired, refreshing once", what)
            self._refresh()
        except SDK_ERRORS as exc:
            logger.warning("salesforce %s failed: %s", what, describe(exc))
            raise translate(exc, what) from exc
        try:
            return fn(self.sf)
        except SalesforceExpiredSession as exc:
            raise CrmAuthError(f"salesforce {what}: session refused again after refresh") from exc
        except SDK_ERRORS as exc:
            logger.warning("salesforce %s failed after refresh: %s", what, describe(exc))
            raise translate(exc, what) from exc

    def _refresh(self) -> None:
        self._current = self._tokens.refreshed(self._current)
        self.sf = self._build(self._current)

    def query_pages(self, soql: str, *, include_deleted: bool = False) -> Iterator[list[dict[str, Any]]]:
        """Pages of a SOQL result (up to 2,000 rows each), following nextRecordsUrl."""
        page = self.call("query", lambda sf: sf.query(soql, include_deleted=include_deleted))
        while True:
            yield page["records"]
            if page.get("done", True):
                return
            next_url = page["nextRecordsUrl"]
            page = self.call("query_more", lambda sf, url=next_url: sf.query_more(url, identifier_is_url=True))

    def query_all(self, soql: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        return [r for page in self.query_pages(soql, include_deleted=include_deleted) for r in page]

    def bulk_pages(self, sobject: str, soql: str, *, page_size: int = 50_000) -> Iterator[list[dict[str, Any]]]:
        """Bulk API 2.0 query job: CSV pages by Sforce-Locator, parsed back into query-shaped dicts."""
        self.budget.check()
        for attempt in (1, 2):
            pages = getattr(self.sf.bulk2, sobject).query(soql, max_records=page_size, wait=0)
            try:
                for text in pages:
                    self.budget.check()
                    yield csv_records(str(text))
                return
            except SalesforceExpiredSession as exc:
                if attempt == 2:
                    raise CrmAuthError("salesforce bulk query: session refused again after refresh") from exc
                self._refresh()  # the job restarts; records already yielded come again (upserts are idempotent)
            except SDK_ERRORS as exc:
                logger.warning("salesforce bulk query on %s failed: %s", sobject, describe(exc))
                raise translate(exc, f"bulk query {sobject}") from exc

    def count(self, sobject: str, where: str = "") -> int:
        soql = f"SELECT COUNT() FROM {sobject}" + (f" WHERE {where}" if where else "")
        return int(self.call("count", lambda sf: sf.query(soql))["totalSize"])


_BOOLEAN = {"true": True, "false": False}


def csv_records(text: str) -> list[dict[str, Any]]:
    """Bulk CSV rows -> dicts like the REST API's: '' -> None, Is* booleans, 'A.B' columns nested."""
    out = []
    for row in csv.DictReader(io.StringIO(text)):
        record: dict[str, Any] = {}
        for column, value in row.items():
            parsed: Any = None if value == "" else value
            leaf = column.rsplit(".", 1)[-1]
            if parsed is not None and leaf.startswith("Is") and value in _BOOLEAN:
                parsed = _BOOLEAN[value]
            if "." in column:
                rel, name = column.split(".", 1)
                nested = record.get(rel) or {}
                nested[name] = parsed
                record[rel] = nested
            else:
                record[column] = parsed
        out.append(record)
    return out
