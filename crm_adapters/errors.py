"""One error root for every adapter; each subclass tells the caller what to do."""

from __future__ import annotations


class CrmError(Exception):
    """Something went wrong talking to a CRM."""

    retryable = False


class CrmAuthError(CrmError):
    """Refresh failed or the grant was revoked: the installation must reconnect."""

    def __init__(self, message: str, *, uninstalled: bool = False) -> None:
        super().__init__(message)
        self.uninstalled = uninstalled


class CrmRateLimited(CrmError):
    """Over the CRM's rate limit or API budget; retry after `retry_after` seconds."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, daily: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.daily = daily


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
