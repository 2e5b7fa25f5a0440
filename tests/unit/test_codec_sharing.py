"""A snapshot's records decoded with one memo share their equal values and stay equal to records decoded alone."""

from __future__ import annotations

from typing import Any

from crm_adapters.codec import record_from_dict
from crm_adapters.model import Activity

AT = "2026-01-01T09:00:00+00:00"


def _activity(remote_id: str, custom: dict[str, Any]) -> dict[str, Any]:
    return {"crm": "sandbox", "remote_id": remote_id, "type": "email", "occurred_at": AT, "remote_updated_at": AT,
            "subject": AT, "body": "Hello", "custom": custom, "contact_ids": ["c1", "c2"]}


def test_shared_values_leave_each_record_as_it_reads_alone() -> None:
    strings: dict[Any, Any] = {}
    rows = [_activity("a1", {"step": 1, "sequence": "s"}), _activity("a2", {"step": 1, "sequence": "s"}),
            _activity("a3", {"step": True, "sequence": "s"}), _activity("a4", {"history": [1, 2]})]
    shared = [record_from_dict(Activity, row, strings) for row in rows]
    assert shared == [record_from_dict(Activity, row) for row in rows]
    a1, a2, a3, a4 = shared
    assert a1.occurred_at is a1.remote_updated_at is a2.occurred_at and a1.subject == AT and type(a1.subject) is str
    assert a1.body is a2.body and a1.contact_ids is a2.contact_ids and a1.custom is a2.custom
    assert a3.custom == {"step": True, "sequence": "s"} and a3.custom["step"] is True  # 1 == True, yet not shared
    assert a4.custom == {"history": [1, 2]}
