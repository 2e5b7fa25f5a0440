"""What the demo chain writes into the sandbox CRM, read back as a rep and a manager would read it.

One small simulated org runs the whole chain (sync, every loop, policy, gate, write-back) into the
sandbox CRM; the tests then walk every task, note, text field and card it produced: no internal
identifiers, no reason its own record refutes, no person asked more than the attention budget allows,
and approvals marked as such.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from connector.settings import Settings
from connector.store import Store
from connector.store.records import load_snapshot
from connector.store.tables import CardData, Installation, Proposal
from crm_adapters.model import Entity
from crm_adapters.sandbox import SandboxCrm, load_scenario, simulate
from crm_adapters.writes import APP_FIELDS
from jobs.adapters import SANDBOX_URL_KEY
from jobs.approvals.proposals import APPROVE_PREFIX
from jobs.engine.chain import Options, run_chain
from jobs.loops import labels
from jobs.loops.deal_risk._check import contradiction
from jobs.loops.deal_risk.levels import RiskScale
from jobs.loops.decision import Reason
from jobs.state.attention import AttentionBudget, task_load
from ui_extensions.cards import card_view

TENANT = "plain-org"
TEXT_FIELDS = [spec.field for spec in APP_FIELDS if spec.kind in ("text", "enumeration")]
MACHINE_KEYS = {"code", "id", "type", "strategy", "deal_id", "updated_at", "tone", "level", "verdict"}  # never shown


@dataclasses.dataclass
class Run:
    crm: SandboxCrm
    store: Store
    installation_id: str
    now: Any


def _run(tmp: Path, *, deals: int, team: int = 1) -> Run:
    scenario = load_scenario(None).scaled(deals)
    if team > 1:
        scenario = dataclasses.replace(scenario, managers=scenario.managers * team, sdrs=scenario.sdrs * team,
                                       bdms=scenario.bdms * team)
    org = simulate(scenario, seed=7)
    url = f"sqlite:///{tmp / 'crm.db'}"
    crm = SandboxCrm.open(url, TENANT)
    crm.load(org)
    store = Store.connect(f"sqlite:///{tmp / 'store.db'}")
    with store.session() as session:
        row = Installation(crm="sandbox", tenant_id=TENANT, name="plain", status="active",
                           settings={SANDBOX_URL_KEY: url, "time_zone": "UTC"})
        session.add(row)
        session.flush()
        iid = row.id
    run_chain(store, iid, settings=Settings(testing=True, public_base_url="https://app.example"), now=org.now, crm=crm,
              options=Options(job_id="plain", workers=1))
    return Run(crm, store, iid, org.now)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    yield _run(tmp_path_factory.mktemp("plain"), deals=900)


def _texts(run: Run) -> Iterator[tuple[str, str]]:
    """Every text the chain wrote where people read it: (where, text)."""
    for task in run.crm.list_tasks():
        yield f"task {task['idempotency_key']} subject", task["subject"]
        yield f"task {task['idempotency_key']} body", task["body"]
    for note in run.crm.list_notes():
        yield f"note {note['idempotency_key']}", note["body"]
    with run.store.session() as session:
        deal_ids = [d.remote_id for d in load_snapshot(session, run.installation_id).deals]
        cards = {c.deal_id: c.payload for c in session.execute(select(CardData)).scalars()}
        proposals = [{"id": p.id, "title": p.title, "loop": p.loop, "diff": p.diff, "created_at": p.created_at.isoformat()}
                     for p in session.execute(select(Proposal)).scalars()]
    for deal_id in deal_ids:
        for field in TEXT_FIELDS:
            value = run.crm.field_value(Entity.DEAL, deal_id, field)
            if isinstance(value, str):
                yield f"field {field.value} on {deal_id}", value
    for deal_id, payload in cards.items():
        view = card_view(payload, deal_id=deal_id, proposals=proposals, viewer_is_manager=True)
        yield from ((f"card {deal_id} {where}", text) for where, text in _shown(view))


def _shown(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            if key not in MACHINE_KEYS:
                yield from _shown(inner, f"{where}.{key}")
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _shown(inner, f"{where}[{i}]")
    elif isinstance(value, str):
        yield where, value


def test_no_internal_identifier_reaches_a_person(demo: Run) -> None:
    texts = list(_texts(demo))
    kinds = Counter(where.split()[0] for where, _ in texts)
    assert kinds["task"] > 10 and kinds["note"] > 10 and kinds["field"] > 100 and kinds["card"] > 100  # the walk saw it all
    problems = [(where, p, text[:160]) for where, text in texts for p in labels.plain_problems(text)]
    assert problems == []


def test_the_check_catches_what_the_issue_saw() -> None:
    seen = ["stage=Discovery", "employees=74", "cost_of_inaction", "employee_band=<50", "2026-01-05T00:00:00+00:00",
            "last reply 2026-05-10"]
    assert all(labels.plain_problems(text) for text in seen)
    assert labels.plain_problems("Win chance 18%, typical for deals in Discovery 41%; last heard from on 4 Dec 2026") == []


def test_no_deal_risk_reason_contradicts_its_record(demo: Run) -> None:
    with demo.store.session() as session:
        snapshot = load_snapshot(session, demo.installation_id)
        cards = {c.deal_id: c.payload.get("risk") for c in session.execute(select(CardData)).scalars()}
    risky = {d: r for d, r in cards.items() if r and r.get("reasons")}
    assert len(risky) > 50
    refuted = [(d, r["code"], r["text"], why) for d, risk in risky.items() for r in risk["reasons"]
               if (why := contradiction(snapshot, snapshot.deal_by_id[d], Reason(r["code"], r["text"]), demo.now))]
    assert refuted == []
    assert not [r for risk in risky.values() for r in risk["reasons"] if "amount_precision" in r["code"]]  # not actionable


def test_a_connected_call_is_never_reported_as_no_meeting(demo: Run) -> None:
    """The issue's riskiest deal: 'no meeting in 30 days' next to a connected call the day before."""
    with demo.store.session() as session:
        snapshot = load_snapshot(session, demo.installation_id)
        cards = {c.deal_id: c.payload.get("risk") or {} for c in session.execute(select(CardData)).scalars()}
    claims = [(d, r) for d, risk in cards.items() for r in risk.get("reasons", []) if "no meeting" in r["text"]]
    assert claims, "the org has deals with no meeting lately"
    for deal_id, _ in claims:
        calls = [a for a in snapshot.activities_for(deal_id) if a.type.value == "call" and a.outcome == "connected"
                 and demo.now - timedelta(days=30) <= a.occurred_at <= demo.now]
        assert calls == [], deal_id


def test_score_and_level_agree_on_card_field_and_morning_task(demo: Run) -> None:
    with demo.store.session() as session:
        cards = {c.deal_id: c.payload["risk"] for c in session.execute(select(CardData)).scalars() if "risk" in c.payload}
    scale = RiskScale.from_json(next(iter(cards.values()))["scale"])
    for deal_id, risk in cards.items():
        field_score = demo.crm.field_value(Entity.DEAL, deal_id, next(f for f in TEXT_FIELDS if f.value == "risk_level"))
        assert risk["level"] == scale.level(risk["score"]) == field_score
        assert card_view({"risk": risk}, deal_id=deal_id)["risk"]["level"] == risk["level"]
    by_level = {lvl: sorted(r["score"] for r in cards.values() if r["level"] == lvl) for lvl in ("low", "medium", "high")}
    spans = [(s[0], s[-1]) for s in by_level.values() if s]
    assert all(a[1] < b[0] for a, b in zip(spans, spans[1:], strict=False))  # levels never overlap on the deal list
    morning = [t for t in demo.crm.list_tasks() if t["idempotency_key"].startswith("deal_risk:at_risk_list:")]
    assert morning and all("(High;" in line for t in morning for line in t["body"].splitlines())


def test_approvals_are_marked_and_findable(demo: Run) -> None:
    tasks = demo.crm.list_tasks()
    approvals = [t for t in tasks if t["subject"].startswith(APPROVE_PREFIX)]
    assert approvals and all(t["priority"] == "high" for t in approvals)
    assert all(t["priority"] == "normal" for t in tasks if t["idempotency_key"].startswith(("deal_risk:", "icp:")))


def _per_person_day(run: Run) -> tuple[dict[str, Any], Counter[tuple[str, str]]]:
    tasks = run.crm.list_tasks()
    load = task_load((t["owner_id"], date.fromisoformat(t["due_at"][:10])) for t in tasks)
    kinds = Counter((t["owner_id"] or "", t["idempotency_key"].split(":")[0]) for t in tasks)
    return load, kinds


def _within_budget(run: Run) -> dict[str, Any]:
    budget = AttentionBudget()
    load, kinds = _per_person_day(run)
    assert [k for k, n in kinds.items() if k[1] == "icp" and n > budget.icp_digests_per_lead_per_week] == []
    assert [k for k, n in kinds.items() if k[1] == "approval" and n > budget.approvals_per_manager_per_week] == []
    assert [k for k, n in kinds.items() if k[1] == "review" and n > budget.spot_checks_per_manager_per_week + 1] == []
    daily_cap = (budget.digests_per_rep_per_day + budget.approvals_per_manager_per_week + 1 + budget.icp_digests_per_lead_per_week
                 + budget.spot_checks_per_manager_per_week + budget.other_tasks_per_person_per_day + 1)
    assert load["max_per_person_day"] <= daily_cap
    return load


def test_tasks_per_person_per_day_stay_within_the_budget(demo: Run) -> None:
    load = _within_budget(demo)
    assert load["median_per_person_day"] <= 2
    spot = [t for t in demo.crm.list_tasks() if "Spot-check" in t["subject"]]
    assert len(spot) <= 1 and all(t["body"].count("\n- ") <= AttentionBudget().spot_check_items for t in spot)


def test_a_three_times_larger_team_stays_within_the_budget(tmp_path: Path) -> None:
    load = _within_budget(_run(tmp_path, deals=900, team=3))
    assert load["people"] > 3


def test_the_gate_blocks_nothing_the_loops_write(demo: Run) -> None:
    """Every text above was actually written: the checks did not pass because the gate held texts back."""
    from connector.store.tables import DecisionRecord

    with demo.store.session() as session:
        blocked = session.execute(select(DecisionRecord.key, DecisionRecord.gate_reason)
                                  .where(DecisionRecord.gate_verdict == "blocked")).all()
    assert [tuple(b) for b in blocked] == []
