"""Shared fixtures: a real store (SQLite and PostgreSQL), a real Redis, injected time."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from connector.store import Store
from connector.store.db import make_engine, migrate

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, why: str) -> None:
    """Skip a test whose outside need is missing, but fail instead in CI, where nothing may be missing."""
    if not condition:
        if IN_CI:
            pytest.fail(f"required in CI: {why}")
        pytest.skip(why)


@pytest.fixture
def now() -> datetime:
    return datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def _postgres_url() -> str | None:
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith("postgres") else None


@pytest.fixture(scope="session")
def _pg_schema() -> Iterator[str | None]:
    """A private schema per test session, so parallel runs on one server never collide."""
    url = _postgres_url()
    if url is None:
        yield None
        return
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    yield schema
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def _pg_engine(schema: str):  # type: ignore[no-untyped-def]
    from connector.store.db import normalise_url

    return create_engine(
        normalise_url(_postgres_url() or ""), connect_args={"options": f"-csearch_path={schema}"}, pool_pre_ping=True
    )


@pytest.fixture(scope="session")
def _pg_store(_pg_schema: str | None) -> Iterator[Store | None]:
    if _pg_schema is None:
        yield None
        return
    engine = _pg_engine(_pg_schema)
    migrate(engine)
    yield Store(engine)
    engine.dispose()


def _truncate(store: Store) -> None:
    from connector.store.tables import Base

    with store.engine.begin() as conn:
        names = ", ".join(t.name for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {names} CASCADE"))


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The store on both databases: every test using it runs twice."""
    if request.param == "sqlite":
        yield Store.connect(f"sqlite:///{tmp_path / 'store.db'}")
        return
    pg = request.getfixturevalue("_pg_store")
    require(pg is not None, "PostgreSQL: set DATABASE_URL=postgresql://... (make test does)")
    _truncate(pg)
    yield pg


@pytest.fixture
def store(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    """The store tests run on: PostgreSQL when DATABASE_URL names one (CI), else a SQLite file."""
    pg = request.getfixturevalue("_pg_store")
    if pg is not None:
        _truncate(pg)
        yield pg
        return
    yield Store.connect(f"sqlite:///{tmp_path / 'store.db'}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis: a private redis-server for this session when the binary exists, else REDIS_URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        url = os.environ.get("REDIS_URL")
        require(url is not None, "Redis: install redis-server or set REDIS_URL (make test does)")
        yield url  # type: ignore[misc]
        return
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def redis_conn(redis_url: str):  # type: ignore[no-untyped-def]
    import redis

    conn = redis.Redis.from_url(redis_url)
    conn.flushdb()
    yield conn
    conn.flushdb()
