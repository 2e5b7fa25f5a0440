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
    if status in RETRYABLE_STATUSES or status >= 500:
        return CrmUnavailable(message)
    return CrmBadRequest(message)
