"""Versioned loop state: every change to a model or playbook is a new ModelVersion row.

The newest active version is what a loop decides with. Approving a playbook change adds a
`treatment` version and keeps the version before it active as `control`, so the loop's
experiment readout can compare the two.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connector.store.tables import ModelVersion


def active(session: Session, installation_id: str, loop: str) -> ModelVersion | None:
    """The version a loop decides with now: the newest active one."""
    return session.execute(
        select(ModelVersion).where(
            ModelVersion.installation_id == installation_id, ModelVersion.loop == loop, ModelVersion.active.is_(True)
        ).order_by(ModelVersion.version.desc())
    ).scalars().first()


def save(
    session: Session, installation_id: str, loop: str, state: Mapping[str, Any], metrics: Mapping[str, Any], *,
    kind: str = "model", arm: str | None = None, proposal_id: str | None = None,
) -> ModelVersion:
    """Store a new active version; the one it replaces is retired (or kept as control for a treatment)."""
    latest = session.execute(
        select(func.max(ModelVersion.version)).where(ModelVersion.installation_id == installation_id, ModelVersion.loop == loop)
    ).scalar_one()
    current = active(session, installation_id, loop)
    if arm is None:
        arm = current.arm if current is not None and current.arm == "treatment" else "all"
    if current is not None:
        if arm == "treatment" and current.arm != "treatment":
            current.arm = "control"  # stays active: the experiment's baseline
        else:
            current.active = False
    version = ModelVersion(
        installation_id=installation_id, loop=loop, version=(latest or 0) + 1, kind=kind, state=dict(state),
        metrics=dict(metrics), active=True, arm=arm, proposal_id=proposal_id,
    )
    session.add(version)
    session.flush()
    return version


def label(version: ModelVersion | None) -> str:
    return f"v{version.version}" if version is not None else ""
