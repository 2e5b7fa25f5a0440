"""The store's tables (SQLAlchemy 2). Every tenant-owned row carries installation_id."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


# The closed vocabularies of the status and kind columns (stored as their string values).
class InstallationStatus(StrEnum):
    ACTIVE = "active"
    NEEDS_REAUTH = "needs_reauth"
    UNINSTALLED = "uninstalled"


class LoopRunStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class WriteStatus(StrEnum):
    """What became of a decision: its CRM write, its card, its proposal, or why nothing was written."""

    NONE = ""  # not routed yet
    PENDING = "pending"  # in the outbox
    WRITTEN = "written"
    FAILED = "failed"
    AWAITING = "awaiting"  # a manager's approval (a proposal)
    WAITING = "waiting"  # the person's attention budget is full this period: the task waits
    SKIPPED = "skipped"  # the same proposal is already pending or was rejected
    BLOCKED = "blocked"  # the quality gate
    FORBIDDEN = "forbidden"  # the tenant's policy


class ProposalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"


class VersionKind(StrEnum):
    MODEL = "model"
    PLAYBOOK = "playbook"


class Arm(StrEnum):
    """Which deals a version serves: all of them, or one arm of a playbook experiment."""

    ALL = "all"
    CONTROL = "control"
    TREATMENT = "treatment"


class GateStatus(StrEnum):
    """What the quality gate made of a decision (DecisionRecord.gate_verdict), and a spot-check's rejection."""

    PASSED = "passed"
    SAMPLED = "spot_check"  # written, and queued for a manager's spot-check
    BLOCKED = "blocked"  # an eval failed: nothing is written
    DOWNGRADED = "downgraded"  # the loop is paused to draft-only: auto became draft
    NOT_APPLICABLE = "n/a"  # forbidden: nothing to gate
    SPOT_CHECK_REJECTED = "spot_check_rejected"  # written, then a manager rejected the spot-check covering it


class OutboxKind(StrEnum):
    FIELD = "field"
    TASK = "task"
    NOTE = "note"
    TASK_CLOSE = "task_close"  # a proposal's CRM task closed with the verdict given outside the CRM


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # retried by the next run
    DEAD = "dead"  # out of attempts, or refused for good


class WebhookStatus(StrEnum):
    RECEIVED = "received"
    ENQUEUED = "enqueued"
    DONE = "done"
    IGNORED = "ignored"  # unknown or disconnected tenant, kept for inspection
    MALFORMED = "malformed"


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: DateTime(timezone=True)}


class Installation(Base):
    """One CRM org/portal that installed the app: the tenant."""

    __tablename__ = "installations"
    __table_args__ = (UniqueConstraint("crm", "tenant_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    crm: Mapped[str] = mapped_column(String(16))
    tenant_id: Mapped[str] = mapped_column(String(64))  # HubSpot portal id / Salesforce org id
    name: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default=InstallationStatus.ACTIVE)  # InstallationStatus
    status_reason: Mapped[str] = mapped_column(Text, default="")
    instance_url: Mapped[str | None] = mapped_column(String(300))
    login_host: Mapped[str | None] = mapped_column(String(300))
    installed_by: Mapped[str | None] = mapped_column(String(200))
    scopes: Mapped[str] = mapped_column(Text, default="")
    tokens: Mapped[bytes | None] = mapped_column(LargeBinary)  # AES-GCM, see connector.store.crypto
    token_version: Mapped[int] = mapped_column(Integer, default=0)
    access_expires_at: Mapped[datetime | None]
    last_refresh_at: Mapped[datetime | None]
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)  # mappings, loops on/off, time zone
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    uninstalled_at: Mapped[datetime | None]


class SyncCursor(Base):
    __tablename__ = "sync_cursors"

    installation_id: Mapped[str] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"), primary_key=True)
    entity: Mapped[str] = mapped_column(String(32), primary_key=True)
    cursor: Mapped[str | None] = mapped_column(Text)
    records_synced: Mapped[int] = mapped_column(Integer, default=0)
    estimated_total: Mapped[int | None] = mapped_column(Integer)
    last_run_at: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="")


class CrmRecord(Base):
    """The per-tenant snapshot of the common model: one row per record, as JSON."""

    __tablename__ = "crm_records"
    __table_args__ = (Index("ix_crm_records_synced", "installation_id", "synced_at"),)  # related.py: what changed since

    installation_id: Mapped[str] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"), primary_key=True)
    entity: Mapped[str] = mapped_column(String(32), primary_key=True)
    remote_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    payload: Mapped[dict[str, Any]]
    payload_hash: Mapped[str] = mapped_column(String(40))
    remote_updated_at: Mapped[datetime | None]
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    synced_at: Mapped[datetime] = mapped_column(default=utcnow)


class ActivityReadingRow(Base):
    """What NLP read from one activity's text (jobs.nlp.reading), stored once so no loop reads the text again.
    Current while taxonomy_version is the reader's and text_hash is the activity's payload_hash."""

    __tablename__ = "activity_readings"

    installation_id: Mapped[str] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"), primary_key=True)
    activity_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    taxonomy_version: Mapped[str] = mapped_column(String(32))
    text_hash: Mapped[str] = mapped_column(String(40))
    reading: Mapped[dict[str, Any]] = mapped_column(default=dict)
    read_at: Mapped[datetime] = mapped_column(default=utcnow)


class QuarantinedRecord(Base):
    """A CRM record that could not be mapped; kept with its reason, never dropped."""

    __tablename__ = "quarantine"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    installation_id: Mapped[str] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"), index=True)
    entity: Mapped[str] = mapped_column(String(32))
    remote_id: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LoopRun(Base):
    __tablename__ = "loop_runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    installation_id: Mapped[str] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"), index=True)
    loop: Mapped[str] = mapped_column(String(32))
    job_id: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=LoopRunStatus.RUNNING)  # LoopRunStatus
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    stats: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str] = mapped_column(Text, default="")


class DecisionRecord(Base):
    """Every decision a loop makes, with what policy and the gate said and what was written."""

    __tablename__ = "decisions"
    __table_args__ = (UniqueConstraint("installation_id", "key"), Index("ix_decisions_target", "installation_id", "target_id"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    installation_id: Mapped[str] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"))
    loop_run_id: Mapped[str | None] = mapped_column(ForeignKey("loop_runs.id", ondelete="SET NULL"))
    loop: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    model_version: Mapped[str] = mapped_column(String(64), default="")
    policy_verdict: Mapped[str] = mapped_column(String(20), default="")
    policy_rule: Mapped[str] = mapped_column(Text, default="")
    gate_verdict: Mapped[str] = mapped_column(String(20), default="")  # GateStatus
    gate_reason: Mapped[str] = mapped_column(Text, default="")
    write_status: Mapped[str] = mapped_column(String(16), default=WriteStatus.NONE)  # WriteStatus
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Proposal(Base):
    """A change a loop proposes (playbook, ICP, sequence winner) that a manager approves in the CRM."""

    __tablename__ = "proposals"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    installation_id: Mapped[str] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"), index=True)
    loop: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(300))
    fingerprint: Mapped[str] = mapped_column(String(64))  # same change, same fingerprint: never re-proposed without new evidence
    diff: Mapped[list[Any]] = mapped_column(default=list)
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default=ProposalStatus.PENDING)  # ProposalStatus
    task_remote_id: Mapped[str | None] = mapped_column(String(64))
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None]
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelVersion(Base):
    """A versioned learned state (risk model, playbook, ICP definition) with its validation figures."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("installation_id", "loop", "version"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    installation_id: Mapped[str] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"))
    loop: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16), default=VersionKind.MODEL)  # VersionKind
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    arm: Mapped[str] = mapped_column(String(16), default=Arm.ALL)  # Arm
    proposal_id: Mapped[str | None] = mapped_column(ForeignKey("proposals.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    installation_id: Mapped[str | None] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))  # "loop:deal_risk", "user:<crm user id>", "system"
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class OutboxItem(Base):
    """A write to the CRM, queued until the adapter confirms it; the idempotency key makes retries safe."""

    __tablename__ = "outbox"
    __table_args__ = (UniqueConstraint("installation_id", "idempotency_key"), Index("ix_outbox_status", "installation_id", "status"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    installation_id: Mapped[str] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # OutboxKind
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)  # OutboxStatus
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")
    remote_id: Mapped[str | None] = mapped_column(String(64))
    decision_id: Mapped[str | None] = mapped_column(ForeignKey("decisions.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Policy(Base):
    __tablename__ = "policies"

    installation_id: Mapped[str] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"), primary_key=True)
    rules: Mapped[list[Any]] = mapped_column(default=list)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200), default="")


class CardData(Base):
    """What the CRM card shows for one deal, precomputed so the card never waits on the CRM."""

    __tablename__ = "card_data"

    installation_id: Mapped[str] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"), primary_key=True)
    deal_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookEvent(Base):
    """Every webhook delivery, raw, so a malformed one can be inspected and none is processed twice."""

    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("crm", "event_key"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    crm: Mapped[str] = mapped_column(String(16))
    event_key: Mapped[str] = mapped_column(String(200))
    installation_id: Mapped[str | None] = mapped_column(String(32))
    raw: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=WebhookStatus.RECEIVED)  # WebhookStatus
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class OAuthState(Base):
    """One install attempt's state nonce (and PKCE verifier); consumed once, so a replayed callback fails."""

    __tablename__ = "oauth_states"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    crm: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None]


class Metric(Base):
    """A time series point a chart or a readout needs (e.g. weekly control vs treatment close rate)."""

    __tablename__ = "metrics"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    installation_id: Mapped[str] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"), index=True)
    loop: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    value: Mapped[float] = mapped_column(Float)
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
