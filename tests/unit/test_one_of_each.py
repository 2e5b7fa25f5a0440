"""Ideas that exist once: the JSON encoding, the outbox key, the loop list (issue 17)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from types import MappingProxyType

import pytest

from crm_adapters.codec import jsonable
from crm_adapters.model import Entity
from jobs.loops import registry
from jobs.state import outbox_keys


@dataclass(frozen=True)
class _Reason:
    text: str
    entity: Entity
    at: date


def test_one_json_encoding_for_every_value_the_app_stores() -> None:
    value = {"when": datetime(2026, 3, 2, 9, 30, tzinfo=UTC), "amount": Decimal("1200.50"), "entity": Entity.DEAL,
             "pair": (1, 2), "one": {3}, "reason": _Reason("idle 30 days", Entity.DEAL, date(2026, 3, 1)),
             "view": MappingProxyType({"a": 1}), "other": object}
    out = jsonable(value)
    assert out["when"] == "2026-03-02T09:30:00+00:00" and out["amount"] == "1200.50" and out["entity"] == "deal"
    assert out["pair"] == [1, 2] and out["one"] == [3] and out["view"] == {"a": 1}
    assert out["reason"] == {"text": "idle 30 days", "entity": "deal", "at": "2026-03-01"}
    assert out["other"] == str(object)


def test_outbox_keys_are_built_one_way_and_fit_the_column() -> None:
    assert outbox_keys.key("review", "drift:deal_risk:2026-10") == "review:drift:deal_risk:2026-10"
    assert outbox_keys.key("", "deal_risk:d1:update_field") == "deal_risk:d1:update_field"
    assert outbox_keys.key("approval", "f" * 64, "0123abcd") == f"approval:{'f' * 64}:0123abcd"
    assert len(outbox_keys.key("draft", "k" * 500)) == outbox_keys.KEY_LENGTH


def test_the_registry_lists_every_loop_and_cannot_be_changed_by_a_caller() -> None:
    assert list(registry.all_loops()) == ["deal_risk", "handoff", "discovery", "objections", "sequences", "icp"]
    with pytest.raises(TypeError):
        registry.LOOPS["typo"] = registry.LOOPS["icp"]  # type: ignore[index]
