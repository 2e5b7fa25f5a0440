"""One table from simple-salesforce errors to our CrmError family; SDK exceptions never leave the adapter.

Never log str() of an SDK exception: simple-salesforce puts the response body in it. Log
`describe(exc)` instead (status and errorCode only).
"""

from __future__ import annotations

from typing import Any

import requests
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceOperationError,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from crm_adapters.errors import (
    CrmAuthError,
    CrmBadRequest,
    CrmBudgetExhausted,
    CrmError,
    CrmNotFound,
    CrmPermissionError,
    CrmUnavailable,
)

RATE_LIMIT_CODES = {"REQUEST_LIMIT_EXCEEDED"}
PERMISSION_CODES = {"INSUFFICIENT_ACCESS", "INSUFFICIENT_ACCESS_OR_READONLY", "API_DISABLED_FOR_ORG",
                    "TXN_SECURITY_METERING_ERROR", "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY"}
TRANSIENT_STATUS = {406, 420, 429, 500, 502, 503, 504}
# Per-record SaveResult codes worth another try (the row was locked by a concurrent transaction).
RETRYABLE_RECORD_CODES = {"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG"}


def error_code(exc: SalesforceError) -> str:
    """The first `errorCode` of a Salesforce error body (`[{message, errorCode}]`), '' if none."""
    content: Any = getattr(exc, "content", None)
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode", ""))
    if isinstance(content, dict):
        return str(content.get("errorCode") or content.get("error") or "")
    return ""


def code_of(err: BaseException) -> str:
    """The Salesforce errorCode behind a translated CrmError (its SDK cause), '' if none."""
    cause = err.__cause__
    return error_code(cause) if isinstance(cause, SalesforceError) else ""


def errors_of(exc: BaseException | None) -> list[dict[str, Any]]:
    """Every error of a Salesforce error body (`[{message, errorCode, fields}]`)."""
    content: Any = getattr(exc, "content", None)
    return [e for e in content if isinstance(e, dict)] if isinstance(content, list) else []


def describe(exc: BaseException) -> str:
    """A log-safe summary: class, status and errorCode, never the body."""
    if isinstance(exc, SalesforceError):
        return f"{type(exc).__name__} status={exc.status} code={error_code(exc) or '-'}"
    return type(exc).__name__


def is_expired_session(exc: BaseException) -> bool:
    return isinstance(exc, SalesforceExpiredSession)


def translate(exc: BaseException, what: str) -> CrmError:
    """Map an SDK or transport error to what the caller should do; the message carries no body or token."""
    if isinstance(exc, CrmError):
        return exc
    summary = f"salesforce {what}: {describe(exc)}"
    if isinstance(exc, requests.Timeout | requests.ConnectionError):
        return CrmUnavailable(summary)
    if isinstance(exc, SalesforceOperationError):
        return CrmUnavailable(f"salesforce {what}: bulk job failed")
    if not isinstance(exc, SalesforceError):
        return CrmError(summary)
    code = error_code(exc)
    if code in RATE_LIMIT_CODES:
        return CrmBudgetExhausted(summary, retry_after=3600.0)
    if isinstance(exc, SalesforceExpiredSession):
        return CrmAuthError(summary)
    if code in PERMISSION_CODES:
        return CrmPermissionError(summary)
    if isinstance(exc, SalesforceResourceNotFound):
        return CrmNotFound(summary)
    if isinstance(exc, SalesforceMalformedRequest | SalesforceMoreThanOneRecord):
        return CrmBadRequest(summary)
    if isinstance(exc, SalesforceRefusedRequest):
        return CrmPermissionError(summary)
    if exc.status in TRANSIENT_STATUS or exc.status >= 500:
        return CrmUnavailable(summary)
    return CrmBadRequest(summary)
