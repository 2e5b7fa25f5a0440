"""connector/store/bulk.py stores and finds exactly what the plain statements did, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Text, cast, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from connector.store import Store, readings
from connector.store import installations as inst
from connector.store.bulk import upsert
from connector.store.crypto import TokenCipher
from connector.store.records import _KEY, _replace_changed
from connector.store.tables import ActivityReadingRow, CrmRecord

AT = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
PAYLOADS: list[dict[str, Any]] = [
    {"remote_id": "a1", "subject": "Caf\u00e9 \u2014 \"quoted\" \\ back", "amount": 1.5, "nested": {"b": [1, None, True]}},
    {"remote_id": "a2", "big": 2**70, "emoji": "\U0001f600", "empty": {}, "list": []},
    {"remote_id": "a3", "body": "line\nbreak\ttab", "n": -0.0},
]


def _rows(installation_id: str, payloads: list[dict[str, Any]], deleted: bool = False) -> list[dict[str, Any]]:
    return [{"installation_id": installation_id, "entity": "activity", "remote_id": p["remote_id"], "payload": p,
             "payload_hash": f"h{i}-{deleted}", "remote_updated_at": AT + timedelta(seconds=i) if i else None,
             "deleted": deleted, "synced_at": AT} for i, p in enumerate(payloads)]


def _plain(store: Store, rows: list[dict[str, Any]]) -> int:
    """What records._upsert ran before: the dialect's INSERT ... ON CONFLICT, executemany."""
    with store.session() as s:
        insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
        return len(s.connection().execute(_replace_changed(insert(CrmRecord)), rows).all())


def _stored(store: Store, installation_id: str) -> list[tuple[Any, ...]]:
    t = CrmRecord
    with store.session() as s:
        return [tuple(r) for r in s.execute(select(
            t.entity, t.remote_id, cast(t.payload, Text), t.payload_hash, t.remote_updated_at, t.deleted, t.synced_at,
        ).where(t.installation_id == installation_id).order_by(t.remote_id))]


def test_upsert_stores_what_executemany_stored_and_counts_the_same_changes(any_store: Store) -> None:
    cipher = TokenCipher.from_key_text(TokenCipher.generate_key_text())
    with any_store.session() as s:
        old, new = (inst.upsert(s, cipher, crm="sandbox", tenant_id=t, tokens={}).id for t in ("old", "new"))
    edited = [PAYLOADS[0], {**PAYLOADS[1], "emoji": "changed"}, PAYLOADS[2]]
    counts = []
    for iid, write in ((old, lambda rows: _plain(any_store, rows)), (new, lambda rows: _bulk(any_store, rows))):
        counts.append([write(_rows(iid, PAYLOADS)), write(_rows(iid, PAYLOADS)), write(_rows(iid, edited, deleted=True))])
    assert counts[0] == counts[1] == [3, 0, 3]
    assert _stored(any_store, old) == _stored(any_store, new)


def _bulk(store: Store, rows: list[dict[str, Any]]) -> int:
    with store.session() as s:
        return len(upsert(s, CrmRecord, rows, key=_KEY, on_conflict=_replace_changed).all())


def test_a_key_given_twice_keeps_the_last_row_as_executemany_did(any_store: Store) -> None:
    cipher = TokenCipher.from_key_text(TokenCipher.generate_key_text())
    with any_store.session() as s:
        iid = inst.upsert(s, cipher, crm="sandbox", tenant_id="t", tokens={}).id
    first, second = _rows(iid, [PAYLOADS[0]]), _rows(iid, [{**PAYLOADS[0], "subject": "later"}])
    second[0]["payload_hash"] = "later"
    _bulk(any_store, first + second)
    assert [(r[2], r[3]) for r in _stored(any_store, iid)] == [('{"remote_id": "a1", "subject": "later", "amount": 1.5, '
                                                               '"nested": {"b": [1, null, true]}}', "later")]


def test_unread_among_ids_finds_each_once_and_saved_readings_replace(any_store: Store) -> None:
    cipher = TokenCipher.from_key_text(TokenCipher.generate_key_text())
    with any_store.session() as s:
        iid = inst.upsert(s, cipher, crm="sandbox", tenant_id="t", tokens={}).id
    _bulk(any_store, _rows(iid, PAYLOADS))
    with any_store.session() as s:
        found = readings.unread(s, iid, "v1", ids=["a3", "a1", "a1", "missing"])
        assert sorted(r[0] for r in found) == ["a1", "a3"]
        readings.save(s, iid, "v1", [("a1", "h0-False", {"x": 1}), ("a3", "stale", {"x": 3}), ("a1", "h0-False", {"x": 2})])
        assert sorted(r[0] for r in readings.unread(s, iid, "v1", ids=["a1", "a2", "a3"])) == ["a2", "a3"]
        stored = dict(s.execute(select(ActivityReadingRow.activity_id, cast(ActivityReadingRow.reading, Text))).all())
    assert stored == {"a1": '{"x": 2}', "a3": '{"x": 3}'}
