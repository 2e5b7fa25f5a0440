"""A small SOQL parser and evaluator: the subset the Salesforce adapter issues, and no more.

SELECT f, Rel.f FROM Obj [WHERE cond] [ORDER BY f [ASC|DESC], ...] [LIMIT n], where cond has
AND/OR/NOT/parentheses, = != <> < <= > >=, [NOT] IN (...), LIKE, true/false/null, numbers,
'strings', dates and unquoted datetime literals. Anything else is a MALFORMED_QUERY.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

_TOKEN = re.compile(
    r"""\s*(?:
    (?P<str>'(?:[^'\\]|\\.)*')
  | (?P<dt>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<num>-?\d+(?:\.\d+)?)
  | (?P<op>!=|<>|<=|>=|=|<|>|\(|\)|,)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)
KEYWORDS = {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "ASC", "DESC",
            "LIMIT", "TRUE", "FALSE", "NULL", "NULLS", "FIRST", "LAST", "COUNT"}


class SoqlError(ValueError):
    """The query is outside the subset or malformed; the server answers MALFORMED_QUERY."""


def parse_datetime(text: str) -> datetime:
    """Salesforce datetimes: 2026-08-15T09:12:44.000+0000 or ...Z."""
    text = text.replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass
class Query:
    fields: list[str]
    sobject: str
    where: Callable[[Getter], bool] | None = None
    order: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)
    limit: int | None = None
    count_only: bool = False
    where_fields: list[str] = field(default_factory=list)


Getter = Callable[[str], Any]


def tokenize(soql: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    soql = soql.strip()
    while pos < len(soql):
        m = _TOKEN.match(soql, pos)
        if not m or m.end() == pos:
            raise SoqlError(f"unexpected token at position {pos}: {soql[pos:pos + 20]!r}")
        kind = m.lastgroup or ""
        value = m.group(kind)
        if kind == "ident" and value.upper() in KEYWORDS:
            kind, value = "kw", value.upper()
        tokens.append((kind, value))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.t, self.i = tokens, 0
        self.where_fields: list[str] = []

    def peek(self, value: str | None = None) -> bool:
        if self.i >= len(self.t):
            return False
        return value is None or self.t[self.i][1] == value

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        if self.i >= len(self.t):
            raise SoqlError(f"unexpected end of query, expecting {value or kind}")
        k, v = self.t[self.i]
        if (value and v != value) or (kind and k != kind):
            raise SoqlError(f"unexpected token {v!r}, expecting {value or kind}")
        self.i += 1
        return v

    def query(self) -> Query:
        self.take("SELECT")
        fields, count_only = self.select_list()
        self.take("FROM")
        q = Query(fields=fields, sobject=self.take(kind="ident"), count_only=count_only)
        if self.peek("WHERE"):
            self.take()
            q.where = self.expr()
        if self.peek("ORDER"):
            self.take(), self.take("BY")
            q.order.append(self.order_item())
            while self.peek(","):
                self.take()
                q.order.append(self.order_item())
        if self.peek("LIMIT"):
            self.take()
            q.limit = int(self.take(kind="num"))
        if self.i != len(self.t):
            raise SoqlError(f"unexpected token {self.t[self.i][1]!r}")
        q.where_fields = self.where_fields
        return q

    def select_list(self) -> tuple[list[str], bool]:
        if self.peek("COUNT"):
            self.take(), self.take("("), self.take(")")
            return [], True
        fields = [self.take(kind="ident")]
        while self.peek(","):
            self.take()
            fields.append(self.take(kind="ident"))
        return fields, False

    def order_item(self) -> tuple[str, bool]:
        name = self.take(kind="ident")
        desc = False
        if self.peek("ASC") or self.peek("DESC"):
            desc = self.take() == "DESC"
        if self.peek("NULLS"):
            self.take(), self.take()
        return name, desc

    def expr(self) -> Callable[[Getter], bool]:
        parts = [self.term()]
        while self.peek("OR"):
            self.take()
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else (lambda g, ps=parts: any(p(g) for p in ps))

    def term(self) -> Callable[[Getter], bool]:
        parts = [self.factor()]
        while self.peek("AND"):
            self.take()
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else (lambda g, ps=parts: all(p(g) for p in ps))

    def factor(self) -> Callable[[Getter], bool]:
        if self.peek("NOT"):
            self.take()
            inner = self.factor()
            return lambda g: not inner(g)
        if self.peek("("):
            self.take()
            inner = self.expr()
            self.take(")")
            return inner
        return self.comparison()

    def comparison(self) -> Callable[[Getter], bool]:
        name = self.take(kind="ident")
        self.where_fields.append(name)
        negate = False
        if self.peek("NOT"):
            self.take()
            negate = True
        if self.peek("IN"):
            self.take(), self.take("(")
            values = [self.literal()]
            while self.peek(","):
                self.take()
                values.append(self.literal())
            self.take(")")
            return lambda g: (any(_compare(g(name), "=", v) for v in values)) != negate
        if negate:
            raise SoqlError("NOT must be followed by IN here")
        if self.peek("LIKE"):
            self.take()
            pattern = self.literal()
            rx = re.compile("^" + re.escape(str(pattern)).replace("%", ".*").replace("_", ".") + "$", re.I)
            return lambda g: g(name) is not None and bool(rx.match(str(g(name))))
        op = self.take(kind="op")
        if op not in ("=", "!=", "<>", "<", "<=", ">", ">="):
            raise SoqlError(f"unexpected operator {op!r}")
        value = self.literal()
        return lambda g: _compare(g(name), op, value)

    def literal(self) -> Any:
        kind, value = self.t[self.i] if self.i < len(self.t) else ("", "")
        self.take()
        if kind == "str":
            return re.sub(r"\\(.)", r"\1", value[1:-1])
        if kind == "dt":
            return parse_datetime(value)
        if kind == "date":
            return date.fromisoformat(value)
        if kind == "num":
            return float(value)
        if kind == "kw" and value in ("TRUE", "FALSE", "NULL"):
            return {"TRUE": True, "FALSE": False, "NULL": None}[value]
        raise SoqlError(f"expected a literal, got {value!r}")


def _coerce(stored: Any, literal: Any) -> Any:
    if stored is None or literal is None:
        return stored
    if isinstance(literal, bool):
        return bool(stored)
    if isinstance(literal, datetime):
        return parse_datetime(stored) if isinstance(stored, str) else stored
    if isinstance(literal, date):
        return date.fromisoformat(stored[:10]) if isinstance(stored, str) else stored
    if isinstance(literal, float):
        return float(stored)
    return str(stored).lower()


def _compare(stored: Any, op: str, literal: Any) -> bool:
    left = _coerce(stored, literal)
    right = literal.lower() if isinstance(literal, str) else literal
    if op == "=":
        return left == right
    if op in ("!=", "<>"):
        return left != right
    if left is None or right is None:
        return False
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]


def parse(soql: str) -> Query:
    """Parse one SOQL statement or raise SoqlError with where it went wrong."""
    return _Parser(tokenize(soql)).query()


def sort_key(value: Any) -> tuple[int, Any]:
    """Nulls first, then by value (datetimes as stored strings sort correctly: one format)."""
    return (0, "") if value is None else (1, value)
