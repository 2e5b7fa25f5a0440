"""The small worlds behind tests/unit/old_loop_states/: each loop learned on one of them with the code
before its state was typed (main at 3d7906c), the state stored as JSON and the decisions it made then.

Regenerate (only when a loop's behaviour is meant to change): check that commit out in a worktree and run
`PYTHONPATH=<that worktree> python tests/unit/old_state_worlds.py tests/unit/old_loop_states`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from crm_adapters.snapshot import Snapshot
from tests import factories
from tests.factories import T0
from tests.unit.handoff_world import build, random_specs
from tests.unit.loop_worlds import NOW, discovery_world, icp_world, objection_world, sequence_world
from tests.unit.risk_world import tenant

RISK_NOW = T0 + timedelta(days=500)
HANDOFF_NOW = T0 + timedelta(days=200)


def _handoff_world() -> Snapshot:
    return build(random_specs(400, seed=1, sdrs=["s1", "s2", "s3", "s4"],
                              win=lambda s: 0.2 + (0.3 if "cost_of_inaction" in s.asked else 0.0)))


def fresh(world: Callable[[], Snapshot]) -> Callable[[], Snapshot]:
    """The world with record ids counted from the start, whatever was built before it in the process."""
    def built() -> Snapshot:
        factories._ids = itertools.count(1000)
        return world()
    return built


WORLDS: dict[str, tuple[Callable[[], Snapshot], datetime]] = {
    "deal_risk": (fresh(lambda: tenant(200, n_open=6, now=RISK_NOW)), RISK_NOW),
    "discovery": (fresh(discovery_world), NOW),
    "objections": (fresh(objection_world), NOW),
    "sequences": (fresh(lambda: sequence_world({"A": 0.04, "B": 0.12}, 1500)), NOW),
    "icp": (fresh(icp_world), NOW),
    "handoff": (fresh(_handoff_world), HANDOFF_NOW),
}


def decisions_digest(decisions: list[Any]) -> list[list[str]]:
    """Each decision's key, kind and a digest of its payload and reasons: what must not change."""
    out = []
    for d in decisions:
        body = json.dumps({"payload": d.payload, "reasons": [list(map(str, (r.code, r.text, r.weight, r.evidence)))
                                                             for r in d.reasons]}, sort_keys=True, default=str)
        out.append([d.key, str(d.kind), hashlib.sha256(body.encode()).hexdigest()[:16]])
    return out


def _write(folder: Path) -> None:
    from jobs.loops.registry import LOOPS

    folder.mkdir(parents=True, exist_ok=True)
    for name, (world, now) in WORLDS.items():
        snapshot = world()
        learned = LOOPS[name].learn(snapshot, None, now)
        state = json.loads(json.dumps(learned.state, default=str))  # as the store kept it
        decided = LOOPS[name].decide(snapshot, learned.state, now)
        proposal = next((d for d in decided if d.kind == "propose_playbook_change"), None)
        approve = LOOPS[name].approve
        approved = json.loads(json.dumps(approve(learned.state, proposal.payload), default=str)) \
            if approve and proposal else None
        (folder / f"{name}.json").write_text(json.dumps({"state": state, "decisions": decisions_digest(decided),
                                                         "approved": approved}, sort_keys=True) + "\n")


if __name__ == "__main__":
    _write(Path(sys.argv[1]))
