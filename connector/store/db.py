"""Engine, sessions and migrations. SQLite file by default; PostgreSQL with DATABASE_URL."""

from __future__ import annotations

import json
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import orjson
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DatabaseError, DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")
T = TypeVar("T")


class SchemaError(RuntimeError):
    """The database is not at the schema this code expects; the message names the fix."""


def default_database_url(home: str = "var") -> str:
    """The embedded default: a SQLite file under `home` (Settings.home, SALESLOOP_HOME), created on first use."""
    path = Path(home) / "salesloop.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path.resolve()}"


def normalise_url(url: str) -> str:
    """Accept the postgres:// URLs hosting platforms hand out; use psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """An engine whose pooled connections never cross a fork (RQ forks a work-horse per job)."""
    url = normalise_url(url or default_database_url())
    kwargs.setdefault("json_deserializer", json_loads)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True, **kwargs)
    return fork_safe(engine)


_INT64 = 2.0**63  # orjson reads an integer beyond 64 bits as a float of at least this size


def json_loads(text: str | bytes) -> Any:
    """JSON columns read with orjson (about 3x faster than json on a snapshot's payloads). What orjson refuses
    (NaN) or reads otherwise (integers past 64 bits become floats) is read by json, as before. The check looks at
    the parsed values, not the text: a regex over every payload's text cost 5x the parse."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
    return json.loads(text) if _has_huge_float(value) else value


def _has_huge_float(value: Any) -> bool:
    """A float as large as 2^63 anywhere in a parsed JSON value (an integer orjson could not keep, or such a float
    written as one: json reads both the way the column always read them)."""
    kind = type(value)
    if kind is float:
        return abs(value) >= _INT64
    if kind is dict:
        value = value.values()
    elif kind is not list:
        return False
    for item in value:
        kind = type(item)
        if (kind is float or kind is dict or kind is list) and _has_huge_float(item):
            return True
    return False


# SQLAlchemy's recipe "Using Connection Pools with Multiprocessing or os.fork()": a child drops the
# pool it inherited without closing it (closing would end the parent's server session), and a
# connection checked out in another process than the one that opened it is refused and replaced.
# Without this, RQ's work-horses all talk over the worker's one PostgreSQL session: psycopg's
# prepared statements collide from the second job on, and a killed job's transaction stays open
# for as long as a sibling (RQ's scheduler child) holds the socket.
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def fork_safe(engine: Engine) -> Engine:
    """Register `engine` for the after-fork reset and the pid check on checkout (idempotent)."""
    if engine in _ENGINES:
        return engine
    _ENGINES.add(engine)
    event.listen(engine, "connect", _remember_pid)
    event.listen(engine, "checkout", _refuse_foreign)
    return engine


def _remember_pid(_dbapi_connection: Any, record: Any) -> None:
    record.info["pid"] = os.getpid()


def _refuse_foreign(_dbapi_connection: Any, record: Any, proxy: Any) -> None:
    if record.info.get("pid", os.getpid()) != os.getpid():
        record.dbapi_connection = proxy.dbapi_connection = None
        raise DisconnectionError(f"connection opened in process {record.info['pid']}, checked out in {os.getpid()}")


def _forget_inherited_pools() -> None:
    for engine in list(_ENGINES):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_inherited_pools)


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    command.upgrade(alembic_config(engine), "head")


def check_schema(engine: Engine) -> None:
    """Refuse to run on a corrupt or half-migrated database, naming the fix."""
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except DatabaseError as exc:
        raise SchemaError(
            f"cannot read the database at {engine.url.render_as_string(hide_password=True)}: "
            f"{exc.orig}. If the file is corrupt, move it away and run `salesloop db upgrade`."
        ) from exc
    if current != head:
        raise SchemaError(
            f"the database is at schema revision {current or 'none'}, this code needs {head}: "
            "run `salesloop db upgrade`"
        )


class Store:
    """The store's handle: an engine and a session factory, passed to whoever needs the database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = fork_safe(engine)
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        self._hint = threading.local()

    @classmethod
    def connect(cls, url: str | None = None, *, upgrade: bool = True) -> Store:
        engine = make_engine(url)
        if upgrade:
            migrate(engine)
        else:
            check_schema(engine)
        return cls(engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed on success, rolled back on error."""
        with self.sessions() as session, session.begin():
            yield session

    def hint_write(self, work: Callable[[Connection], T]) -> T:
        """Run `work` on this thread's own connection: outside the pool, autocommit, and on PostgreSQL with
        commits that do not wait for the disk. For idempotent writes whose loss in a crash costs nothing (a
        webhook saying "sync soon": the sync's cursors find every change anyway), one round trip per statement:
        no pre-ping, no BEGIN, no COMMIT, no fsync wait. A connection the server dropped (a restart) is
        replaced and `work` runs once more, so a restart costs no request."""
        for attempt in (1, 2):
            conn = self._hint_connection()
            try:
                return work(conn)
            except DBAPIError as exc:
                self._hint.conn = None
                conn.close()  # detached: this closes the DB-API connection, nothing returns to the pool
                if attempt == 2 or not exc.connection_invalidated:
                    raise
        raise AssertionError("unreachable")

    def _hint_connection(self) -> Connection:
        held: tuple[int, Connection] | None = getattr(self._hint, "conn", None)
        if held is not None and held[0] == os.getpid():
            return held[1]
        if held is not None:  # inherited across a fork: never touch (or close) the parent's session
            _INHERITED.append(held[1])
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        conn.detach()  # out of the pool: its settings must never reach the pool's other users
        if self.engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SET synchronous_commit TO OFF")
        self._hint.conn = (os.getpid(), conn)
        return conn


_INHERITED: list[Connection] = []  # kept referenced, so no finaliser closes a parent's connection in a child
