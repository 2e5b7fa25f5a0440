"""What a view needs from the app, in one place: settings, store, cipher, clock."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app

from connector.settings import Settings
from connector.store import Store
from connector.store.crypto import TokenCipher


def settings() -> Settings:
    return current_app.extensions["salesloop.settings"]  # type: ignore[no-any-return]


def store() -> Store:
    return current_app.extensions["salesloop.store"]  # type: ignore[no-any-return]


def cipher() -> TokenCipher:
    return current_app.extensions["salesloop.cipher"]  # type: ignore[no-any-return]


def now() -> datetime:
    """The app's clock; tests inject one as app.extensions['salesloop.clock'] instead of patching time."""
    clock = current_app.extensions.get("salesloop.clock")
    return clock() if clock else datetime.now(UTC)


def now_ms() -> int:
    return int(now().timestamp() * 1000)
