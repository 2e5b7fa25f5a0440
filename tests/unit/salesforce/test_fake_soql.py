"""The fake's SOQL subset: what the adapter sends parses and filters like Salesforce; the rest is refused."""

from __future__ import annotations

import pytest

from tests.fakes.salesforce.soql import SoqlError, parse

ROWS = [
    {"Id": "006A", "SystemModstamp": "2026-01-01T00:00:00.000+0000", "IsDeleted": False, "StageName": "Won", "Amount": 5},
    {"Id": "006B", "SystemModstamp": "2026-01-01T00:00:00.000+0000", "IsDeleted": True, "StageName": "won", "Amount": None},
    {"Id": "006C", "SystemModstamp": "2026-02-01T00:00:00.000+0000", "IsDeleted": False, "StageName": "Lost", "Amount": 7},
]


def matching(where: str) -> list[str]:
    q = parse(f"SELECT Id FROM Opportunity WHERE {where}")
    assert q.where is not None
    return [r["Id"] for r in ROWS if q.where(r.get)]


@pytest.mark.parametrize(("where", "ids"), [
    ("SystemModstamp >= 2026-01-15T00:00:00Z", ["006C"]),
    ("(SystemModstamp > 2026-01-01T00:00:00Z OR (SystemModstamp = 2026-01-01T00:00:00.000+0000 AND Id > '006A'))",
     ["006B", "006C"]),
    ("IsDeleted = true", ["006B"]),
    ("StageName IN ('won', 'x')", ["006A", "006B"]),  # string comparison ignores case, as SOQL does
    ("StageName NOT IN ('Won')", ["006C"]),
    ("Amount > 6 AND NOT IsDeleted = true", ["006C"]),
    ("Amount = null", ["006B"]),
    ("StageName LIKE 'W%'", ["006A", "006B"]),
])
def test_where_clauses(where, ids):
    assert matching(where) == ids


def test_order_limit_and_relationship_fields():
    q = parse("SELECT Id, What.Type, Owner.Name FROM Task ORDER BY SystemModstamp DESC, Id LIMIT 5")
    assert q.fields == ["Id", "What.Type", "Owner.Name"] and q.order == [("SystemModstamp", True), ("Id", False)]
    assert q.limit == 5 and parse("SELECT COUNT() FROM Lead").count_only


@pytest.mark.parametrize("soql", ["SELECT FROM Account", "SELECT Id Account", "SELECT Id FROM Account WHERE",
                                  "SELECT Id FROM Account WHERE Name ~ 'x'", "SELECT Id FROM Account LIMIT x",
                                  "SELECT Id FROM Account GROUP BY Name"])
def test_outside_the_subset_is_malformed(soql):
    with pytest.raises(SoqlError):
        parse(soql)
