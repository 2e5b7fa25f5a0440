"""What a view needs from the app, in one place: settings, store, cipher, clock, and the input guard."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app, request

from connector.errors import ApiError
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


def refuse_nul_characters() -> None:
    """No URL, query or form value may hold a NUL character: none is legitimate, and PostgreSQL refuses
    them in text, which would turn a typo or a probe into a 500 deep inside a view. One 400 here instead."""
    values = [request.path, *request.args.keys(), *request.args.values()]
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        request.get_data(cache=True, parse_form_data=False)  # keep the raw body for a signature check after us
        values += [*request.form.keys(), *request.form.values()]
    if any("\x00" in value for value in values):
        raise ApiError(400, "bad_request", "the request contains a NUL character, which no field may hold")
