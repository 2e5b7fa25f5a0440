"""How an adapter gets its access token without knowing where tokens are kept.

The store (with a Redis lock and compare-and-set) lives on the jobs side; adapters only see
this protocol. `refreshed(stale)` refreshes unless another worker already did, in which case
it returns the newer tokens: a worker that loses the race re-reads instead of refreshing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class Tokens:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None  # None: unknown (Salesforce sends no expires_in)
    instance_url: str | None = None
    version: int = 0


class TokenSource(Protocol):
    def current(self) -> Tokens:
        """The stored tokens (refreshed ahead of expiry where the expiry is known)."""
        ...

    def refreshed(self, stale: Tokens) -> Tokens:
        """Fresh tokens after `stale` was refused; raises CrmAuthError when the grant is gone."""
        ...


Refresher = Callable[[Tokens], Tokens]


class StaticTokens:
    """A token source for one process that refreshes with `refresher` (tests, benchmarks, scripts)."""

    def __init__(self, tokens: Tokens, refresher: Refresher | None = None) -> None:
        self._tokens = tokens
        self._refresher = refresher

    def current(self) -> Tokens:
        return self._tokens

    def refreshed(self, stale: Tokens) -> Tokens:
        if stale.version < self._tokens.version or self._refresher is None:
            return self._tokens
        self._tokens = replace(self._refresher(self._tokens), version=self._tokens.version + 1)
        return self._tokens
