"""One table from HubSpot's answers to the CrmError taxonomy.

hubspot-api-client has an unrelated ApiException class per sub-package, so we translate on
`status` (duck-typed), never on the class. Bodies are capped before they reach a message and
never include headers (an Authorization header must not end up in a log).
"""

from __future__ import annotations

import json
from typing import Any

from crm_adapters.errors import (
    CrmAuthError,
    CrmBadRequest,
    CrmBudgetExhausted,
    CrmError,
    CrmNotFound,
    CrmPermissionError,
    CrmRateLimited,
    CrmUnavailable,
)

BODY_CAP = 1000
RETRYABLE_STATUSES = frozenset({423, 429, 477, 500, 502, 503, 504, 521, 523, 524})
CONFLICT_CATEGORIES = frozenset({"CONFLICT", "OBJECT_ALREADY_EXISTS"})
LOCKED_WAIT_S = 2.0  # 423 Locked: "wait at least 2 seconds" (research §4.9, HubSpot's error-handling guide)


class HubSpotRefused(CrmUnavailable):
    """HubSpot turned the request away without doing it (423 Locked, 477 Migration in progress): safe to
    send again, creates included, after `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def status_behind(err: BaseException) -> int | None:
    """The HTTP status of the SDK exception a CrmError was translated from (None: not an HTTP answer)."""
    return status_of(err.__cause__) if err.__cause__ is not None else None


def is_conflict(err: BaseException) -> bool:
    """409, or a CONFLICT / OBJECT_ALREADY_EXISTS category: by status and category, never by message text."""
    cause = err.__cause__
    if cause is None:
        return False
    return status_of(cause) == 409 or str(body_of(cause).get("category", "")) in CONFLICT_CATEGORIES


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of an SDK exception (0: no response), None for anything else."""
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


def body_of(exc: BaseException) -> dict[str, Any]:
    raw = getattr(exc, "body", None)
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        parsed = json.loads(raw) if raw else {}
    except ValueError:
        return {"message": str(raw)[:BODY_CAP]}
    return parsed if isinstance(parsed, dict) else {"message": str(parsed)[:BODY_CAP]}


def header(exc: BaseException, name: str) -> str | None:
    headers = getattr(exc, "headers", None) or {}
    try:
        return headers.get(name)  # type: ignore[no-any-return]
    except AttributeError:
        return None


def retry_after(exc: BaseException) -> float | None:
    """Seconds to wait: Retry-After when sent, else until HubSpot's window rolls for a 10 s policy."""
    value = header(exc, "Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            return None
    policy = body_of(exc).get("policyName", "")
    if policy == "SECONDLY":
        return 1.0
    interval = header(exc, "X-HubSpot-RateLimit-Interval-Milliseconds")
    if policy == "TEN_SECONDLY_ROLLING" and interval and interval.isdigit():
        return None  # rolling window: back off exponentially up to the interval, not a whole window at once
    return None


def _message(status: int, body: dict[str, Any]) -> str:
    text = str(body.get("message") or body.get("error_description") or "")[:BODY_CAP]
    category = body.get("category") or body.get("status") or ""
    return f"HubSpot {status} {category}: {text}".strip()


def translate(exc: BaseException) -> CrmError:
    """The CrmError a caller should see for an SDK (or transport) exception."""
    status = status_of(exc)
    if status is None or status == 0:
        return CrmUnavailable(f"HubSpot unreachable: {type(exc).__name__}")
    body = body_of(exc)
    message = _message(status, body)
    if status == 401:
        return CrmAuthError(message)
    if status == 403:
        return CrmPermissionError(message)
    if status == 404:
        return CrmNotFound(message)
    if status == 429:
        policy = str(body.get("policyName", ""))
        return (CrmBudgetExhausted if policy == "DAILY" else CrmRateLimited)(message, retry_after=retry_after(exc))
    if status == 423:
        return HubSpotRefused(message, retry_after=max(LOCKED_WAIT_S, retry_after(exc) or 0.0))
    if status == 477:  # "Migration in progress": honour Retry-After, which can be hours (research §4.9)
        return HubSpotRefused(message, retry_after=retry_after(exc) or 60.0)
    if status in RETRYABLE_STATUSES or status >= 500:
        return CrmUnavailable(message)
    return CrmBadRequest(message)
