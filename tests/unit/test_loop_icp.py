"""ICP loop: planted segments found and scored, nothing on noise, lookalike tasks, approval."""

from __future__ import annotations

import re

from crm_adapters.model import DealStatus, Entity
from crm_adapters.snapshot import Snapshot
from crm_adapters.writes import AppField
from jobs.loops import icp
from jobs.loops.decision import ActionKind
from jobs.loops.stats import TOO_FEW
from tests.factories import a_deal, a_pipeline, an_account
from tests.unit.loop_worlds import NOW, icp_world


def test_planted_segments_are_the_only_drivers() -> None:
    learned = icp.learn(icp_world(effect=True), None, NOW)
    assert learned.metrics["drivers"] == {"industry=fintech": "better", "industry=retail": "worse"}
    assert learned.metrics["cv_auc"] > 0.65


def test_fit_scores_rank_fintech_above_retail_with_reasons() -> None:
    snap = icp_world(effect=True)
    state = icp.learn(snap, None, NOW).state
    fits = {d.target_id: d for d in icp.decide(snap, state, NOW) if d.kind is ActionKind.UPDATE_FIELD}
    industry = {a.remote_id: a.industry for a in snap.accounts}
    fintech = [d.payload[AppField.ICP_FIT.value] for i, d in fits.items() if industry[i] == "fintech"]
    retail = [d.payload[AppField.ICP_FIT.value] for i, d in fits.items() if industry[i] == "retail"]
    assert min(fintech) > max(retail)
    assert all(0 <= v <= 100 for d in fits.values() for v in d.payload.values())
    assert next(iter(fits.values())).reasons[0].code in ("segment_better", "segment_worse")


def test_lookalikes_without_open_deal_go_in_one_weekly_digest_for_the_sdr_lead() -> None:
    snap = icp_world(effect=True)
    state = icp.learn(snap, None, NOW).state
    busy = an_account(name="Busy fintech", industry="fintech")
    world = Snapshot.of([*snap.users, *snap.accounts, *snap.deals, busy, a_deal(account_id=busy.remote_id)], [a_pipeline()])
    tasks = [d for d in icp.decide(world, state, NOW) if d.kind is ActionKind.CREATE_TASK]
    industry = {a.remote_id: a.industry for a in world.accounts}
    lead = next(u for u in world.users if u.role.value == "sdr").manager_id
    [digest] = tasks
    year, week, _ = NOW.isocalendar()
    assert digest.key == f"icp:digest:{lead}:{year}-w{week:02d}" and digest.target is Entity.USER
    assert digest.payload["owner_id"] == lead
    listed = digest.payload["account_ids"]
    assert listed and {industry[a] for a in listed} == {"fintech"} and busy.remote_id not in listed
    assert len(listed) <= icp.PARAMS["digest_size"]


def test_the_digest_lists_only_accounts_above_the_fit_percentile_and_cites_only_segments_that_win_more() -> None:
    snap = icp_world(effect=True)
    state = icp.learn(snap, None, NOW).state
    decisions = icp.decide(snap, state, NOW)
    fits = {d.target_id: d.payload[AppField.ICP_FIT.value] for d in decisions if d.kind is ActionKind.UPDATE_FIELD}
    [digest] = [d for d in decisions if d.kind is ActionKind.CREATE_TASK]
    cut = digest.payload["cut_off"]
    assert sum(f >= cut for f in fits.values()) <= 0.2 * len(fits)  # the 90th percentile, give or take ties
    assert all(fits[a] >= cut for a in digest.payload["account_ids"])
    accounts = [line for line in digest.payload["body"].splitlines() if line.startswith("- ")]
    segments = [line for line in digest.payload["body"].splitlines() if line.startswith("* ")]
    assert accounts and segments and all("retail" not in line.lower() for line in accounts + segments)
    rates = [re.search(r"won (\d+)% of [\d,]+ deals \(90% range [^)]*\) vs (\d+)%", line) for line in segments]
    assert all(m and int(m[1]) > int(m[2]) for m in rates), segments  # every cited segment wins more than the rest


def test_noise_gives_no_scores_no_tasks_no_proposal() -> None:
    snap = icp_world(effect=False, seed=12)
    state = icp.learn(snap, None, NOW).state
    assert state.signal is False
    assert icp.decide(snap, state, NOW) == []


def test_approve_writes_the_icp_definition() -> None:
    snap = icp_world(effect=True)
    state = icp.learn(snap, None, NOW).state
    prop = next(d for d in icp.decide(snap, state, NOW) if d.kind is ActionKind.PROPOSE_PLAYBOOK_CHANGE)
    approved = icp.approve(state, prop.payload)
    assert approved.definition == {"include": ["industry=fintech"], "exclude": ["industry=retail"]}
    relearned = icp.learn(snap, approved, NOW).state
    assert not [d for d in icp.decide(snap, relearned, NOW) if d.kind is ActionKind.PROPOSE_PLAYBOOK_CHANGE]


def test_tiny_segment_is_too_few_to_tell() -> None:
    records: list[object] = []
    for i in range(30):
        account = an_account(industry="mining" if i == 0 else "software")
        won = i % 2 == 0
        records += [account, a_deal(stage_id="105" if won else "106", status=DealStatus.WON if won else DealStatus.LOST,
                                    account_id=account.remote_id)]
    state = icp.learn(Snapshot.of(records, [a_pipeline()]), None, NOW).state
    assert state.segments["industry=mining"]["verdict"] == TOO_FEW
