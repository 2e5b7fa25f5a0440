"""Weekly drift check: a shifted score distribution pauses the loop to draft-only until a manager clears it."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import select

from connector.store import Store
from connector.store.tables import DecisionRecord, Installation, Metric, OutboxItem, Proposal
from crm_adapters.model import Entity, UserRole
from jobs.approvals.proposals import DRIFT, open_review, settle
from jobs.engine.drift_check import check_all
from tests.factories import T0, a_user

NOW = T0 + timedelta(days=60)


def _seed(store: Store, current_mean: float) -> None:
    rng = random.Random(1)
    from connector.store.records import upsert_records

    with store.session() as s:
        s.add(Installation(id="i1", crm="sandbox", tenant_id="t1", settings={}))
        s.flush()
        upsert_records(s, "i1", Entity.USER, [a_user(UserRole.MANAGER, remote_id="m1")])
        for i in range(200):
            for when, mean in ((NOW - timedelta(days=20), 35.0), (NOW - timedelta(days=2), current_mean)):
                s.add(DecisionRecord(installation_id="i1", loop="deal_risk", kind="update_field", target="deal",
                                     target_id=str(i), key=f"k{i}:{when:%j}", created_at=when,
                                     payload={"risk_score": max(0, min(100, rng.gauss(mean, 8)))},
                                     reasons=[{"code": "stalled_in_stage"}]))


def test_stable_scores_leave_the_loop_alone(store: Store) -> None:
    _seed(store, 35.0)
    report = check_all(store, "i1", ["deal_risk"], NOW)[0]
    assert report["breached"] == [] and report["score_psi"] < 0.1
    with store.session() as s:
        assert "deal_risk" not in (s.get(Installation, "i1").settings or {}).get("paused", {})  # type: ignore[union-attr]
        assert s.execute(select(Metric.name).where(Metric.loop == "deal_risk")).scalars().all()


def test_shifted_scores_pause_the_loop_and_ask_the_manager_who_clears_it(store: Store) -> None:
    _seed(store, 70.0)
    report = check_all(store, "i1", ["deal_risk"], NOW)[0]
    assert report["score_psi"] > 0.25 and "score distribution shifted" in report["breached"][0]
    with store.session() as s:
        installation = s.get(Installation, "i1")
        assert "PSI" in installation.settings["paused"]["deal_risk"]["reason"]  # type: ignore[union-attr]
        proposal = s.execute(select(Proposal)).scalar_one()
        task = s.execute(select(OutboxItem).where(OutboxItem.kind == "task")).scalar_one()
        assert task.payload["owner_id"] == "m1" and "draft" in task.payload["body"]
    assert check_all(store, "i1", ["deal_risk"], NOW)[0]["breached"]  # still drifting: no second task
    with store.session() as s:
        assert len(s.execute(select(OutboxItem)).all()) == 1
        settle(s, s.get(Proposal, proposal.id), approved=True, by="user:m1", reason="", loops={}, now=NOW)  # type: ignore[arg-type]
    with store.session() as s:
        assert s.get(Installation, "i1").settings["paused"] == {}  # type: ignore[union-attr]


def test_a_review_key_longer_than_the_fingerprint_column_opens_one_review(store: Store) -> None:
    with store.session() as s:
        s.add(Installation(id="i1", crm="sandbox", tenant_id="t1", settings={}))
        s.flush()
        asks = [open_review(s, "i1", loop="deal_risk", kind=DRIFT, title="Scores shifted", body="draft only",
                            key="drift:deal_risk:" + "x" * 100, manager_id="m1", now=NOW, diff=[]) for _ in range(2)]
        assert asks[0] is not None and asks[1] is None
        assert len(s.execute(select(Proposal)).all()) == 1
