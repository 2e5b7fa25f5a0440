"""A failed command names the URL it could not reach as Settings read it, with the password hidden."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import OperationalError

from connector.cli_errors import plain_message
from connector.store.crypto import TokenCipher


def test_an_unreachable_redis_is_named_from_settings_with_its_password_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://worker:s3cret@queue.internal:6390/2")
    monkeypatch.setenv("SECRET_KEY", "k" * 32)  # a deployment (REDIS_URL set) refuses the dev secrets
    monkeypatch.setenv("TOKEN_ENCRYPTION_KEY", TokenCipher.generate_key_text())
    message = plain_message(RedisConnectionError("Connection refused"))
    assert message is not None and "redis://worker:***@queue.internal:6390/2" in message
    assert "s3cret" not in message and "Connection refused" in message


def test_an_unreachable_database_without_database_url_is_the_embedded_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    message = plain_message(OperationalError("connect", {}, Exception("could not connect")))
    assert message is not None and message.startswith("cannot reach the database at the embedded SQLite file")


def test_a_bug_keeps_its_traceback() -> None:
    assert plain_message(KeyError("x")) is None
