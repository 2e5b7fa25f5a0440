"""Make whatever a CRM or a caller sends storable: PostgreSQL refuses NUL characters in text, lone
surrogates cannot be encoded as UTF-8, and JSON columns refuse NaN and Infinity. One bad value
must never fail the transaction that carries a whole batch, so values are cleaned at the store's
edge and keys that cannot be stored faithfully are refused with a reason (the record is quarantined).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Any

KEY_LENGTH = 64  # crm_records.remote_id and every other remote id column
REPLACEMENT = "\ufffd"


def db_text(value: str) -> str:
    """`value` with NUL characters and lone surrogates replaced by U+FFFD (valid pairs are joined)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value.replace("\x00", REPLACEMENT) if "\x00" in value else value


def json_safe(value: Any) -> Any:
    """A JSON value every database takes: texts cleaned, NaN/Infinity as strings, keys as strings."""
    if isinstance(value, str):
        return db_text(value)
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value).replace("inf", "Infinity").replace("nan", "NaN")
    if isinstance(value, Mapping):
        return {db_text(str(k)): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    return db_text(str(value))


def key_problem(remote_id: Any) -> str | None:
    """Why `remote_id` cannot be a store key as it is (None when it can): it must come back unchanged."""
    if not isinstance(remote_id, str):
        return f"its id is not text but {type(remote_id).__name__}"
    if not remote_id.strip():
        return "the record has no id"
    if len(remote_id) > KEY_LENGTH:
        return f"its id is {len(remote_id)} characters long; at most {KEY_LENGTH} can be stored"
    if db_text(remote_id) != remote_id:
        return "its id contains a NUL character or an invalid (lone surrogate) character"
    return None


def short_key(value: Any, limit: int = KEY_LENGTH) -> str | None:
    """A storable, recognisable stand-in for an id in a column of `limit` characters (quarantine, logs)."""
    if value is None:
        return None
    text = db_text(str(value))
    if len(text) <= limit:
        return text
    digest = hashlib.sha1(text.encode()).hexdigest()[:16]
    return f"{text[:limit - 17]}~{digest}"
