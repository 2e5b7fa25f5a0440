"""The sandbox CRM's own tables (own metadata, never the store's): raw JSON rows as a CRM keeps them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# One row per CRM object; `data` is the raw JSON the CRM "API" returns, so it can be malformed.
rows = Table(
    "sandbox_rows",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("entity", String(32), nullable=False),
    Column("remote_id", String(64), nullable=True),  # NULL: a row whose id went missing
    Column("modified_us", BigInteger, nullable=False),  # microseconds since the epoch, UTC
    Column("deleted", Boolean, nullable=False, default=False),
    Column("data", Text, nullable=False),
    UniqueConstraint("tenant", "entity", "remote_id", name="uq_sandbox_rows_id"),
    Index("ix_sandbox_rows_cursor", "tenant", "entity", "modified_us", "pk"),
)

pipelines = Table(
    "sandbox_pipelines",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("remote_id", String(64), primary_key=True),
    Column("data", Text, nullable=False),
)

app_fields = Table(
    "sandbox_app_fields",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("entity", String(32), primary_key=True),
    Column("field", String(64), primary_key=True),
    Column("label", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("options", Text, nullable=False, default="[]"),
)

# Deal fields an admin of the sandbox CRM defined (qualification picklists, checkboxes ...): its describe.
deal_fields = Table(
    "sandbox_deal_fields",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("field", String(200), primary_key=True),
    Column("label", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("options", Text, nullable=False, default="[]"),  # JSON list of values
)

field_values = Table(
    "sandbox_field_values",
    metadata,
    Column("tenant", String(64), primary_key=True),
    Column("entity", String(32), primary_key=True),
    Column("remote_id", String(64), primary_key=True),
    Column("field", String(64), primary_key=True),
    Column("value", Text, nullable=True),  # JSON
    Column("modified_us", BigInteger, nullable=False),
)

tasks = Table(
    "sandbox_tasks",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("idempotency_key", String(255), nullable=False),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("owner_id", String(64), nullable=True),
    Column("due_at", String(40), nullable=False),
    Column("deal_id", String(64), nullable=True),
    Column("account_id", String(64), nullable=True),
    Column("status", String(16), nullable=False),
    Column("priority", String(8), nullable=False, default="normal"),
    Column("comment", Text, nullable=False, default=""),
    Column("completed_at", String(40), nullable=True),
    Column("created_us", BigInteger, nullable=False),
    UniqueConstraint("tenant", "idempotency_key", name="uq_sandbox_tasks_key"),
)

notes = Table(
    "sandbox_notes",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("idempotency_key", String(255), nullable=False),
    Column("deal_id", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    UniqueConstraint("tenant", "idempotency_key", name="uq_sandbox_notes_key"),
)
