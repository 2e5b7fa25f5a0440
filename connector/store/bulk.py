"""Many rows in one statement on PostgreSQL, whatever its planner knows; the plain statement on SQLite.

A tenant's first run writes and looks up its records in batches of hundreds. On PostgreSQL the obvious forms cost
more than they should: executemany sends a statement per row, a multi-row VALUES of thousands of placeholders costs
psycopg more to parse than the server to run, and `IN (...)` over a tenant the planner has no statistics for becomes a
scan of all the tenant's rows per batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import JSON, CursorResult, Select, String, bindparam, func, literal_column, select, true
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from connector.store.tables import Base


def probe_each(keys: Sequence[str], query: Callable[[Any], Select[Any]]) -> Select[Any]:
    """PostgreSQL: `query(key)` run once per distinct key (an index probe each), finding what
    `query(column).where(column.in_(keys))` finds. With no statistics for a tenant (its first run, or a table
    autovacuum has not analysed yet) the planner takes the tenant's rows for a handful, so it scans them all and
    compares each with every key, a key list it plans once as parameters (psycopg prepares a statement run five
    times): quadratic over a backfill, about 1 s a batch of 500 at 30,000 activities. A LATERAL subquery fenced by
    OFFSET 0 cannot be turned into that scan."""
    unique = list(dict.fromkeys(keys))
    each = func.unnest(bindparam("keys", unique, type_=ARRAY(String))).table_valued("key").render_derived(name="want")
    one = query(each.c.key).offset(literal_column("0")).lateral("one")
    return select(one).select_from(each).join(one, true())


def upsert(session: Session, model: type[Base], rows: Sequence[Mapping[str, Any]], *, key: Sequence[str],
           on_conflict: Callable[[Any], Any]) -> CursorResult[Any]:
    """INSERT ... ON CONFLICT (`key`) of `rows` (dicts with the same keys; a key given twice: the last row wins, as
    row after row would), `on_conflict(insert)` adding the conflict clause and any RETURNING. On PostgreSQL one
    statement of one parameter per column, its rows unnested in step (`_column`). Elsewhere the dialect's
    executemany."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        return connection.execute(on_conflict(sqlite_insert(model)), list(rows))
    rows = list({tuple(row[k] for k in key): row for row in rows}.values())
    names = list(rows[0])
    values = select(*(_column(model.__table__.c[name], [row[name] for row in rows]) for name in names))
    return connection.execute(on_conflict(pg_insert(model).from_select(names, values)))


def _column(column: ColumnElement[Any], values: list[Any]) -> Any:
    """One column's values as one parameter: a value every row shares (the tenant, the time of the batch) once, else
    one element a row (set-returning functions in a select list run in step). JSON values go as one JSON array, each
    serialised as the column always serialises it (json_array_elements keeps each element's text: what is stored is
    the same); an array of JSON texts would cost psycopg a regex substitution per quote to escape."""
    name = column.key
    param = f"each_{name}"
    if isinstance(column.type, JSON):
        return func.json_array_elements(bindparam(param, values, type_=column.type)).label(name)
    if all(value == values[0] and type(value) is type(values[0]) for value in values):
        return bindparam(param, values[0], type_=column.type).label(name)
    return func.unnest(bindparam(param, values, type_=ARRAY(column.type))).label(name)
