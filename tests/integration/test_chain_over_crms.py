"""The whole system over the real adapters: a simulated org in the fake HubSpot (hubspot-api-client over
HTTP) and in the fake Salesforce (simple-salesforce over HTTPS), an installation as the OAuth callback
leaves it, and the tenant's chain run by the engine with the adapter jobs.adapters.adapter_for builds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from connector.store import Store
from connector.store import installations as inst
from connector.store.installations import InstallationStatus
from connector.store.records import count_records, get_cursor, load_snapshot
from connector.store.tables import Proposal
from crm_adapters.errors import CrmRateLimited
from crm_adapters.model import Entity, TaskStatus
from crm_adapters.writes import AppField
from jobs.approvals import proposals
from jobs.engine.chain import Options
from jobs.engine.route import manager_for
from jobs.loops.decision import ActionKind, Decision, Reason
from jobs.rq import tasks
from jobs.state import versions
from tests.integration.crm_rigs import Rig, hubspot_rig, salesforce_rig, simulated_org

SYNCED = (Entity.ACCOUNT, Entity.CONTACT, Entity.DEAL, Entity.ACTIVITY)


@pytest.fixture(params=["hubspot", "salesforce"])
def rig(request: pytest.FixtureRequest, store: Store, redis_conn: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    if request.param == "hubspot":
        with hubspot_rig(store, redis_conn) as r:
            yield r
    else:
        with salesforce_rig(store, redis_conn, monkeypatch) as r:
            yield r


def _business(deals: Any) -> dict[str, Any]:
    """A deal's facts without the CRM's modification stamps (which our own writes move)."""
    return {d.remote_id: replace(d, remote_updated_at=None) for d in deals}


def _at_risk_tasks(rig: Rig) -> list[dict[str, Any]]:
    return [t for t in rig.app_tasks() if ":at_risk_list:" in t["key"]]


def test_chain_syncs_writes_back_once_and_reads_approvals_back(rig: Rig, store: Store) -> None:
    org = simulated_org()
    now = org.now
    before = {e: rig.crm_count(e) for e in SYNCED}
    first = rig.run(now)
    assert first.status == "done", first.status

    # 1. the store holds the synced snapshot, as many records as the CRM
    with store.session() as s:
        assert {e: count_records(s, rig.installation_id, e) for e in SYNCED} == before
        snapshot = load_snapshot(s, rig.installation_id)
    assert len(snapshot.deals) == len(org.deals) and len(snapshot.users) >= len(org.users)
    kinds = {a.custom.get("kind") for a in snapshot.activities}
    assert {"discovery_call", "sdr_qualification"} <= kinds, kinds  # the simulator's tags survive the CRM's fields
    open_deals = snapshot.open_deals()
    assert len(open_deals) == sum(1 for d in org.deals if d.status.value == "open") > 10

    # 2. our fields are written back into the CRM for every open deal
    for deal in open_deals:
        level = rig.field_value(deal.remote_id, AppField.RISK_LEVEL)
        assert level in ("low", "medium", "high"), (deal.remote_id, level)
        assert rig.field_value(deal.remote_id, AppField.RISK_SCORE) is not None
        assert rig.field_value(deal.remote_id, AppField.NEXT_MOVE)
        assert rig.field_value(deal.remote_id, AppField.RISK_REASONS) is not None

    # 3. the morning at-risk tasks exist, each exactly once
    at_risk = _at_risk_tasks(rig)
    assert at_risk, "no at-risk task was created"
    assert len({t["key"] for t in at_risk}) == len(at_risk)

    # 4. a second run later that day writes nothing: no second task, no field rewritten
    tasks_before, writes_before = len(rig.app_tasks()), rig.write_calls()
    second = rig.run(now + timedelta(hours=3))
    assert second.status == "done", second.status
    assert len(rig.app_tasks()) == tasks_before
    assert rig.write_calls() - writes_before == 0, second.outbox
    assert second.outbox.sent == 0
    with store.session() as s:
        again = load_snapshot(s, rig.installation_id)
    assert _business(again.deals) == _business(snapshot.deals)  # our own writes changed no synced deal fact

    # 5. a proposal task completed in the CRM is read back and activates a new version
    _approve_a_proposal(rig, store, now)


def _icp_proposal(rig: Rig, store: Store, now: datetime) -> str:
    """A playbook proposal through the engine's own path (proposals.propose: row + manager task in the outbox).

    The 200-deal org is too small for a loop to propose on its own (the ICP and handoff loops first do at
    ~800 deals, too slow here), so the decision is the one the ICP loop makes, written out.
    """
    decision = Decision(loop="icp", kind=ActionKind.PROPOSE_PLAYBOOK_CHANGE, target=Entity.USER,
                        target_id="playbook:icp", key="icp:proposal:chain-test", payload={
                            "title": "ICP definition: include employee_band=200-999",
                            "diff": [{"op": "add", "field": "include", "value": "employee_band=200-999"}],
                            "evidence": {"n": 304}, "fingerprint": "chain-test-icp"},
                        reasons=(Reason("icp_segment", "won 38% vs 28% elsewhere (n=304)", 0.1),))
    with store.session() as s:
        manager = manager_for(load_snapshot(s, rig.installation_id), None)
        made = proposals.propose(s, rig.installation_id, decision, decision_id=None, manager_id=manager, now=now,
                                 kind=proposals.PLAYBOOK)
        assert made is not None
        return made.id


def _approve_a_proposal(rig: Rig, store: Store, now: datetime) -> None:
    proposal_id = _icp_proposal(rig, store, now)
    quick = {"sync": False, "learn": False, "decide": False}  # run_writeback's mix: approvals read back, outbox sent
    sent = rig.run(now, **quick)  # the outbox sends the manager's task
    assert sent.outbox.sent == 1, sent.outbox
    with store.session() as s:
        task_id = s.get(Proposal, proposal_id).task_remote_id  # type: ignore[union-attr]
    assert task_id is not None and task_id in {t["id"] for t in rig.app_tasks()}
    unchanged = rig.run(now + timedelta(minutes=5), **quick)
    assert unchanged.approvals.open >= 1 and not unchanged.approvals.activated  # (+ spot-check reviews)
    rig.set_task_status(task_id, TaskStatus.COMPLETED)
    read = rig.run(now + timedelta(hours=1), **quick)
    assert read.approvals.approved == 1 and read.approvals.activated, read.approvals
    with store.session() as s:
        row = s.get(Proposal, proposal_id)
        assert row is not None and row.status == "approved"
        active = versions.active(s, rig.installation_id, "icp")
        assert active is not None and active.proposal_id == proposal_id
        assert "employee_band=200-999" in active.state["definition"]["include"]


def test_daily_limit_mid_sync_ends_cleanly_and_the_next_run_resumes(rig: Rig, store: Store) -> None:
    now = simulated_org().now
    rig.daily_limit_mid_sync()
    first = rig.run(now, learn=False, decide=False)
    assert first.sync is not None and first.sync.stopped, first.sync
    with store.session() as s:
        deals_cursor = get_cursor(s, rig.installation_id, Entity.DEAL)
        assert deals_cursor is not None and deals_cursor.cursor, "the deals read before the limit kept no cursor"
        assert count_records(s, rig.installation_id, Entity.DEAL) == rig.crm_count(Entity.DEAL)
        assert count_records(s, rig.installation_id, rig.limited) < rig.crm_count(rig.limited)
    second = rig.run(now, learn=False, decide=False)
    assert second.sync is not None and not second.sync.stopped
    assert second.sync.synced.get("deal", 0) < rig.crm_count(Entity.DEAL), "deals were read again from the start"
    with store.session() as s:
        assert count_records(s, rig.installation_id, rig.limited) == rig.crm_count(rig.limited)
        assert count_records(s, rig.installation_id, Entity.ACTIVITY) == rig.crm_count(Entity.ACTIVITY)


def test_daily_limit_during_write_back_sends_everything_once_on_the_next_run(rig: Rig, store: Store) -> None:
    now = simulated_org().now
    rig.daily_limit_on_field_writes()
    first = rig.run(now)
    assert first.outbox.failed >= 1 and first.outbox.dead == 0, first.outbox
    with store.session() as s:
        open_deals = load_snapshot(s, rig.installation_id).open_deals()
    assert any(rig.field_value(d.remote_id, AppField.RISK_LEVEL) is None for d in open_deals)
    second = rig.run(now + timedelta(minutes=10), sync=False, learn=False, decide=False)
    assert second.outbox.sent >= first.outbox.failed and second.outbox.failed == 0, second.outbox
    assert all(rig.field_value(d.remote_id, AppField.RISK_LEVEL) in ("low", "medium", "high") for d in open_deals)
    keys = [t["key"] for t in rig.app_tasks()]
    assert len(set(keys)) == len(keys), "a task was created twice"
    assert _at_risk_tasks(rig)


def test_a_hubspot_429_storm_ends_the_job_for_rq_retry_with_cursors_saved(store: Store, redis_conn: Any) -> None:
    now = simulated_org().now
    with hubspot_rig(store, redis_conn) as rig:
        rig.fake.inject("/crm/v3/objects/emails", 429, times=50, headers={"Retry-After": "0"},
                        body={"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
                              "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING",
                              "correlationId": "c0ffee"})
        with pytest.raises(CrmRateLimited) as err:
            tasks._execute(store, rig.settings, rig.installation_id, Options(learn=False, decide=False, workers=1),
                           now, rig.redis)
        assert err.value.retryable and not err.value.daily  # RQ's Retry takes it from here
        storm = rig.fake.count(path="/crm/v3/objects/emails", status=429)
        assert storm == 7, storm  # the client's own retries, bounded
        with store.session() as s:
            assert inst.get(s, rig.installation_id).status == InstallationStatus.ACTIVE
            deals = count_records(s, rig.installation_id, Entity.DEAL)
            cursor = get_cursor(s, rig.installation_id, Entity.ACTIVITY)
        assert deals == rig.crm_count(Entity.DEAL) and cursor is not None and "rate limited" in cursor.last_error
        rig.fake.faults.clear()
        again = rig.run(now, learn=False, decide=False)
        assert again.sync is not None and again.sync.synced.get("deal", 0) < deals  # resumed, not restarted
        with store.session() as s:
            assert count_records(s, rig.installation_id, Entity.ACTIVITY) == rig.crm_count(Entity.ACTIVITY)


def test_an_expired_access_token_is_refreshed_once_and_the_chain_goes_on(rig: Rig, store: Store) -> None:
    rig.expire_access_token()
    with store.session() as s:
        version = inst.get(s, rig.installation_id).token_version
    tokens_before = rig.token_calls()
    report = rig.run(simulated_org().now, learn=False, decide=False)
    assert report.status == "done" and report.sync is not None and report.sync.synced["deal"] == rig.crm_count(Entity.DEAL)
    assert rig.token_calls() - tokens_before == 1
    with store.session() as s:
        row = inst.get(s, rig.installation_id)
        assert row.token_version == version + 1 and row.status == InstallationStatus.ACTIVE


def test_a_revoked_refresh_token_marks_needs_reauth_without_a_retry_storm(rig: Rig, store: Store) -> None:
    now = simulated_org().now
    rig.revoke_refresh_token()
    rig.expire_access_token()
    tokens_before, writes_before = rig.token_calls(), rig.write_calls()
    result = tasks._execute(store, rig.settings, rig.installation_id, Options(workers=1), now, rig.redis)
    assert result["status"] == rig.dead_grant_status, result  # the job ends, no retry
    with store.session() as s:
        assert inst.get(s, rig.installation_id).status == rig.dead_grant_status
    assert rig.token_calls() - tokens_before == 1, "the dead refresh token was tried more than once"
    # the next scheduled run does not call the CRM at all
    again = tasks._execute(store, rig.settings, rig.installation_id, Options(workers=1), now, rig.redis)
    assert again["status"].startswith("skipped"), again
    assert rig.token_calls() - tokens_before == 1 and rig.write_calls() == writes_before
