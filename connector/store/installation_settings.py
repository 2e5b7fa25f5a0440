"""A tenant's settings (the Installation.settings JSON column), typed: read and written here only.

Every key the app keeps per tenant is a field; keys this code does not know are kept as they were.
The JSON stays what it was (a key absent until it is set), so rows written before this type read back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

from connector.store.tables import Installation
from crm_adapters.model import Crm


@dataclass(frozen=True)
class InstallationSettings:
    """None: never set (the reader's default applies)."""

    loops: Mapping[str, Any] | None = None  # per loop: {"enabled": bool, "schedule": str} (admin page)
    mappings: Mapping[str, Any] | None = None  # SDR roles, champion role, SDR field (admin page)
    paused: Mapping[str, Any] | None = None  # loop -> {"reason", "since"}: dropped to draft-only by drift
    quality: Mapping[str, Any] | None = None  # the quality gate's knobs (QualitySettings)
    attention: Mapping[str, Any] | None = None  # caps on what salesloop asks of each person (jobs.state.attention)
    fields_ready: bool | None = None  # our CRM fields exist
    drift_checked_at: str | None = None  # ISO time of the last weekly drift check
    time_zone: str | None = None  # the morning at-risk lists go out in this zone (default UTC)
    sandbox_url: str | None = None  # a sandbox tenant: its CRM's tables (a database URL)
    clock: str | None = None  # a sandbox tenant's simulated time (ISO); ignored for any real CRM
    hubspot_mapping: Mapping[str, Any] | None = None  # roles by team/owner, labels, properties
    salesforce_mapping: Mapping[str, Any] | None = None  # the org's SDR/reason/transcript fields
    api_budget: Mapping[str, Any] | None = None  # API calls used today against the allowance
    qualification: Sequence[Mapping[str, Any]] | None = None  # CRM fields -> qualification items (admin page)
    qualification_suggested: Sequence[Mapping[str, Any]] | None = None  # suggested from the CRM's describe, unconfirmed
    qualification_described: Sequence[Mapping[str, Any]] | None = None  # the CRM's fields at that describe (Loops page's list)
    other: Mapping[str, Any] = field(default_factory=dict)  # keys this code does not know, kept as they were

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None) -> InstallationSettings:
        raw = dict(raw or {})
        known = {f.name for f in fields(cls)} - {"other"}
        return cls(**{k: raw.pop(k) for k in known if k in raw}, other=raw)

    def to_json(self) -> dict[str, Any]:
        out = dict(self.other)
        out.update({f.name: getattr(self, f.name) for f in fields(self) if f.name != "other" and getattr(self, f.name) is not None})
        return out

    def simulated_now(self, crm: str) -> datetime | None:
        """The time a sandbox tenant runs on; None (the wall clock) for every real CRM, whatever is stored."""
        return datetime.fromisoformat(self.clock) if self.clock and crm == Crm.SANDBOX else None


def read(installation: Installation) -> InstallationSettings:
    """The tenant's settings, typed."""
    return InstallationSettings.from_json(installation.settings)


def write(installation: Installation, **changes: Any) -> InstallationSettings:
    """Set some settings (the others unchanged) and store them on the row; returns the new settings."""
    updated = replace(read(installation), **changes)
    installation.settings = updated.to_json()
    return updated
