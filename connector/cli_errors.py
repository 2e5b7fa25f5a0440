"""What a failed command says: one line naming the fix, never a traceback, for the errors an
operator can fix (configuration, an unreachable Redis or database, an old schema)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import InterfaceError, OperationalError

from connector.settings import Settings
from connector.store.db import SchemaError
from crm_adapters.errors import ConfigError


class FriendlyGroup(click.Group):
    """A click group that turns known start-up failures into one-line errors."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException:
            raise
        except Exception as exc:
            message = plain_message(exc)
            if message is None:
                raise
            raise click.ClickException(message) from exc


def plain_message(exc: BaseException) -> str | None:
    """One line for an operator, or None when the error is a bug (then the traceback helps)."""
    if isinstance(exc, ConfigError):
        lines = [line.strip(" -") for line in str(exc).splitlines() if line.strip(" -")]
        head, rest = (lines[0], lines[1:]) if len(lines) > 1 else ("invalid configuration:", lines)
        return f"{head} {'; '.join(rest)} (set these in the environment; unset REDIS_URL to run embedded)"
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return (f"cannot reach Redis at {_hide_password(_configured().redis_url or '')} ({_first_line(exc)}): "
                "start Redis there or fix REDIS_URL (unset it to run jobs in-process)")
    if isinstance(exc, OperationalError | InterfaceError):
        where = _hide_password(_configured().database_url or "") or "the embedded SQLite file"
        return (f"cannot reach the database at {where} ({_first_line(exc.orig or exc)}): "
                "start PostgreSQL or fix DATABASE_URL (unset it to use the embedded SQLite file)")
    if isinstance(exc, SchemaError):
        return _first_line(exc)
    return None


def _configured() -> Settings:
    """The URLs as Settings read them (the one reader of the environment); the defaults when the
    environment itself is invalid (that error is reported on its own)."""
    try:
        return Settings.from_env()
    except ConfigError:
        return Settings()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _hide_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
