"""Learning is idempotent: re-running a chain on unchanged data saves no new model or playbook version."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select

from connector.settings import Settings
from connector.store import Store
from connector.store.tables import ModelVersion
from crm_adapters.sandbox import load_scenario, simulate
from jobs.engine.chain import Options, run_chain
from jobs.loops.registry import all_loops
from jobs.state import versions
from tests.factories import a_sandbox_tenant

LOOPS = ("deal_risk", "handoff", "icp")


def _versions(store: Store, iid: str) -> dict[str, int]:
    with store.session() as s:
        rows = s.execute(select(ModelVersion.loop, func.count()).where(ModelVersion.installation_id == iid)
                         .group_by(ModelVersion.loop)).all()
    return {loop: int(n) for loop, n in rows}


def test_rerunning_a_chain_on_unchanged_data_saves_no_new_version(store: Store, tmp_path: Path) -> None:
    tenant = a_sandbox_tenant(store, tmp_path, deals=40, seed=4)
    iid, org = tenant.installation_id, tenant.org
    options = Options(loops={n: all_loops()[n] for n in LOOPS}, workers=1)
    for hours in (0, 0, 5):  # a retried job, then the next night on the same data
        run_chain(store, iid, settings=Settings(testing=True), now=org.now + timedelta(hours=hours), options=options)
    assert _versions(store, iid) == dict.fromkeys(LOOPS, 1)


def test_the_data_digest_sees_a_change_in_the_training_data_but_not_our_own_write_stamps() -> None:
    org = simulate(load_scenario(None).scaled(20), seed=4)
    base = org.snapshot()
    deals = list(base.deals)
    restamped = replace(base, deals=tuple(replace(d, remote_updated_at=org.now) for d in deals), _cache={})
    changed = replace(base, deals=(replace(deals[0], amount=(deals[0].amount or Decimal(0)) + 1), *deals[1:]), _cache={})
    assert versions.snapshot_digest(restamped) == versions.snapshot_digest(replace(base, _cache={}))
    assert versions.snapshot_digest(changed) != versions.snapshot_digest(replace(base, _cache={}))
