"""Versioned loop state: every change to a model or playbook is a new ModelVersion row.

The newest active version is what a loop decides with. Approving a playbook change adds a
`treatment` version and keeps the version before it active as `control`, so the loop's
experiment readout can compare the two.

A loop's state is typed (its `LoopDefinition.state_type`); here, and only here, it meets JSON:
`state_of` decodes a stored version once, `save` encodes with the one encoder (`codec.jsonable`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import operator
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connector.store.tables import Arm, ModelVersion, VersionKind
from crm_adapters.codec import jsonable
from crm_adapters.snapshot import Snapshot
from jobs.loops.base import LoopState

CONTENT = "content_sha256"  # in a version's metrics: {"state": digest of the state, "data": digest of its training data}


def active(session: Session, installation_id: str, loop: str) -> ModelVersion | None:
    """The version a loop decides with now: the newest active one."""
    return session.execute(
        select(ModelVersion).where(
            ModelVersion.installation_id == installation_id, ModelVersion.loop == loop, ModelVersion.active.is_(True)
        ).order_by(ModelVersion.version.desc())
    ).scalars().first()


def state_of(version: ModelVersion | None, state_type: type[LoopState] | None) -> Any:
    """The loop's state a stored version holds, decoded once (None without a version)."""
    return None if version is None else decoded(version.state or {}, state_type)


def decoded(data: Mapping[str, Any], state_type: type[LoopState] | None) -> Any:
    """A state from its stored JSON; a loop without a state type (a test probe) keeps the plain dict."""
    return state_type.from_json(data) if state_type is not None else dict(data)


def encoded(state: LoopState | Mapping[str, Any]) -> dict[str, Any]:
    """The JSON a version stores of a state: its `to_json`, through the app's one encoder."""
    raw = dict(state) if isinstance(state, Mapping) else state.to_json()
    out: dict[str, Any] = jsonable(raw)
    return out


def save(
    session: Session, installation_id: str, loop: str, state: LoopState | Mapping[str, Any], metrics: Mapping[str, Any], *,
    kind: str = VersionKind.MODEL, arm: str | None = None, proposal_id: str | None = None, data_digest: str | None = None,
) -> ModelVersion:
    """Store a new active version; the one it replaces is retired (or kept as control for a treatment)."""
    latest = session.execute(
        select(func.max(ModelVersion.version)).where(ModelVersion.installation_id == installation_id, ModelVersion.loop == loop)
    ).scalar_one()
    current = active(session, installation_id, loop)
    if arm is None:
        arm = current.arm if current is not None and current.arm == Arm.TREATMENT else Arm.ALL
    if current is not None:
        if arm == Arm.TREATMENT and current.arm != Arm.TREATMENT:
            current.arm = Arm.CONTROL  # stays active: the experiment's baseline
        else:
            current.active = False
    stored = encoded(state)
    version = ModelVersion(
        installation_id=installation_id, loop=loop, version=(latest or 0) + 1, kind=kind, state=stored,
        metrics={**metrics, CONTENT: {"state": digest(stored), "data": data_digest}}, active=True, arm=arm,
        proposal_id=proposal_id,
    )
    session.add(version)
    session.flush()
    return version


def label(version: ModelVersion | None) -> str:
    return f"v{version.version}" if version is not None else ""


def digest(value: Any) -> str:
    """A content hash of JSON-like data: equal for a state and its round trip through the store."""
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def snapshot_digest(snapshot: Snapshot) -> str:
    """A content hash of what the loops learn from, without the CRM's modification stamps (our own writes move them)."""
    cached = snapshot._cache.get("content_sha256")
    if isinstance(cached, str):
        return cached
    h = hashlib.sha256()
    for group in (snapshot.users, snapshot.accounts, snapshot.contacts, snapshot.deals, snapshot.roles,
                  snapshot.stage_changes, snapshot.activities, snapshot.pipelines):
        for text in sorted(map(_unstamped, group)):
            h.update(text.encode())
        h.update(b"\x1e")
    snapshot._cache["content_sha256"] = h.hexdigest()
    return h.hexdigest()


def _unstamped(record: Any) -> str:
    """A record's field values but its modification stamp, as text (a copy of the record without the stamp
    cost 4x: it re-ran the record's checks)."""
    return repr(_content(type(record))(record))


@cache
def _content(cls: type) -> Callable[[Any], tuple[Any, ...]]:
    names = [f.name for f in dataclasses.fields(cls) if f.name != "remote_updated_at"]
    get = operator.attrgetter(*names)
    return get if len(names) > 1 else lambda record: (get(record),)


def unchanged(current: ModelVersion | None, state: LoopState | Mapping[str, Any], data_digest: str | None) -> bool:
    """Learning that would save nothing new: the same training data, or the same state, as the active version.
    Re-running an interrupted chain on unchanged data so saves no second version."""
    if current is None:
        return False
    content = (current.metrics or {}).get(CONTENT) or {}
    if data_digest is not None and content.get("data") == data_digest:
        return True
    return digest(current.state) == digest(encoded(state))
