"""A loop's pause: drift drops it to draft-only (InstallationSettings.paused) until a person clears it."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from connector.store import installation_settings
from connector.store.installations import audit
from connector.store.tables import Installation

logger = logging.getLogger(__name__)


def pause_loop(session: Session, installation: Installation, loop: str, why: str, now: datetime) -> bool:
    """Drop a loop to draft-only; False when it already was (no second manager task)."""
    paused = dict(installation_settings.read(installation).paused or {})
    if loop in paused:
        return False
    paused[loop] = {"reason": why, "since": now.isoformat()}
    installation_settings.write(installation, paused=paused)
    audit(session, installation.id, "system:drift", "autonomy:paused", {"loop": loop, "reason": why})
    logger.warning("loop %s of %s paused to draft-only: %s", loop, installation.id, why)
    return True


def clear_pause(session: Session, installation: Installation, loop: str, *, by: str) -> bool:
    """A person looked at the drift and lets the loop act alone again."""
    paused = dict(installation_settings.read(installation).paused or {})
    if paused.pop(loop, None) is None:
        return False
    installation_settings.write(installation, paused=paused)
    audit(session, installation.id, by, "autonomy:resumed", {"loop": loop})
    return True
