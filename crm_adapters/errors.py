"""One error root for every adapter; each subclass tells the caller what to do."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class CrmError(Exception):
    """Something went wrong talking to a CRM."""

    retryable = False


class CrmAuthError(CrmError):
    """Refresh failed or the grant was revoked: the installation must reconnect."""

    def __init__(self, message: str, *, uninstalled: bool = False) -> None:
        super().__init__(message)
        self.uninstalled = uninstalled


class CrmRateLimited(CrmError):
    """Over the CRM's rate limit; retry after `retry_after` seconds."""

    retryable = True
    daily = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CrmBudgetExhausted(CrmRateLimited):
    """The day's API budget is spent (HubSpot's DAILY 429, Salesforce's request limit or our share of it).
    Not retryable: sync, outbox and task closures stop cleanly on it (cursors and rows kept) until tomorrow."""

    retryable = False
    daily = True

    def stop_note(self) -> str:
        """The one line a report shows for the stop."""
        return f"daily API budget exhausted: {self}"[:300]


class CrmUnavailable(CrmError):
    """5xx or timeout: retry with backoff."""

    retryable = True


class CrmNotFound(CrmError):
    """The record is gone: skip it."""


class CrmBadRequest(CrmError):
    """The CRM refused what we sent: a bug or a mapping problem, not retryable."""


class CrmPermissionError(CrmError):
    """The installing user lacks a permission; the admin must grant it."""


class ConfigError(Exception):
    """Configuration is missing or invalid at start-up."""


class MalformedRecord(ValueError):
    """A CRM record that cannot be mapped to the common model; it is quarantined."""


# What mapping one odd record can raise (a wrong type where a dict was expected, a date out of range
# raising OSError or OverflowError, a bad Decimal): caught per record and quarantined, never the batch.
MAPPING_FAILURES: tuple[type[Exception], ...] = (
    ValueError, TypeError, LookupError, AttributeError, ArithmeticError, OSError,
)


def quarantines(kind: str) -> Callable[[F], F]:
    """Decorate a mapper so that whatever one odd record makes it raise becomes MalformedRecord (quarantined)."""

    def wrap(mapper: F) -> F:
        @functools.wraps(mapper)
        def mapped(*args: Any, **kwargs: Any) -> Any:
            try:
                return mapper(*args, **kwargs)
            except MalformedRecord:
                raise
            except MAPPING_FAILURES as exc:
                raise MalformedRecord(f"{kind}: {type(exc).__name__}: {str(exc)[:300]}") from exc

        return mapped  # type: ignore[return-value]

    return wrap
