"""Qualification fields through the sandbox and the handoff loop: the simulator fills them with SDR
habits and discovery twins; the store keeps them; the loop learns rules from them and its post-mortem
names the claims discovery contradicted."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from crm_adapters.model import DealStatus, Entity, QualificationAnswer
from crm_adapters.sandbox import SandboxCrm, SimulatedWorld
from crm_adapters.sandbox._qualification import overclaimers
from jobs.loops.handoff.model import fit
from jobs.loops.handoff.playbook import BASELINE, apply, candidate_changes, diff_line
from jobs.loops.handoff.postmortem import contradictions, postmortem
from jobs.loops.handoff.signals import DealSignals
from tests.factories import T0, a_deal, a_pipeline

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def _answer(label: str, level: str, item: str, stage: str = "sdr", claim: str = "Yes") -> QualificationAnswer:
    return QualificationAnswer(label=label, level=level, item=item, stage=stage, claimed=level == claim)


def signals(n: int = 1200, seed: int = 2) -> list[DealSignals]:
    """Closed deals: Budget allocated = Yes wins, Competitors = Yes loses, Timeline is noise; some SDRs over-claim."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        budget, rivals = rnd.random() < 0.4, rnd.random() < 0.4
        timeline = rnd.choice(["This quarter", "Next quarter", "Later"])
        p = 0.3 + (0.3 if budget else 0.0) - (0.2 if rivals else 0.0)
        said_budget = "Yes" if budget or (i % 4 == 0 and rnd.random() < 0.5) else rnd.choice(["No", "unknown"])
        answers = (_answer("Budget allocated", said_budget, "budget"), _answer("Competitors", "Yes" if rivals else "No",
                                                                              "competition", claim="No"),
                   _answer("Timeline", timeline, "timeline", claim="This quarter"),
                   _answer("Budget confirmed in discovery", "Yes" if budget else "No", "budget", "discovery"))
        out.append(DealSignals(
            deal_id=str(i), sdr_id=f"s{i % 4}", owner_id="b1", status=DealStatus.WON if rnd.random() < p else DealStatus.LOST,
            created_at=T0, closed_on="2026-03-01", amount=1000.0, claimed_pains=frozenset(), meddic=frozenset(),
            questions=frozenset(), budget="unknown", timeline="unknown",
            firmographics={"industry": "Software", "country": "DE", "employees": "50-199", "lead_source": "inbound"},
            discovered_pains=frozenset(), qualification=answers))
    return out


def test_the_loop_proposes_one_rule_per_planted_field_in_the_crm_labels() -> None:
    summary = fit(signals(), T0 + timedelta(days=365))
    changes = [c for c in candidate_changes(summary, BASELINE) if c["op"] == "field_rule"]
    fields = [c["rule"]["field"] for c in changes]
    assert sorted(fields) == ["Budget allocated", "Competitors"]
    lines = [diff_line(c) for c in changes]
    assert any(line.startswith(("require Budget allocated = Yes", "disqualify Budget allocated = No")) for line in lines)
    assert any(line.startswith("disqualify Competitors = Yes") for line in lines)
    assert not any(f["field"] == "Budget confirmed in discovery" for f in summary["fields"])  # discovery is not SDR-stage
    book = apply(BASELINE, changes, 1)
    assert len(book["field_rules"]) == 2
    assert not [c for c in candidate_changes(summary, book) if c["op"] == "field_rule"]  # nothing proposed twice


def test_a_fact_field_gives_a_treat_as_qualified_rule() -> None:
    rnd = random.Random(5)
    deals = []
    for d in signals(900, seed=5):
        upsell = rnd.random() < 0.3
        won = DealStatus.WON if rnd.random() < (0.7 if upsell else 0.3) else DealStatus.LOST
        answers = (*d.qualification, QualificationAnswer(label="Up-sell", level="Yes" if upsell else "No", item="upsell"))
        deals.append(dataclasses.replace(d, status=won, qualification=answers))
    changes = candidate_changes(fit(deals, T0 + timedelta(days=365)), BASELINE)
    lines = [diff_line(c) for c in changes if c["op"] == "field_rule" and c["rule"]["field"] == "Up-sell"]
    assert len(lines) == 1 and lines[0].startswith("treat Up-sell = Yes deals as qualified")


def test_levels_are_judged_against_all_the_other_deals() -> None:
    summary = fit(signals(), T0 + timedelta(days=365))
    timeline = [e for e in summary["levels"] if e["field"] == "Timeline"]
    assert len(timeline) == 3 and all(e["n_with"] + e["n_without"] == summary["n"] for e in timeline)


def test_the_postmortem_names_a_field_discovery_contradicted() -> None:
    deals = signals()
    summary = fit(deals, T0 + timedelta(days=365))
    overclaimed = next(d for d in deals if d.qualification[0].level == "Yes" and d.qualification[3].level == "No")
    found = [c for c in contradictions(overclaimed) if c["code"] == "field_contradicted"]
    assert found[0]["text"] == "SDR set Budget allocated to Yes; after discovery Budget confirmed in discovery is No"
    assert found[0] in postmortem(overclaimed, summary)["contradictions"]
    honest = next(d for d in deals if d.qualification[0].level == "Yes" and d.qualification[3].level == "Yes")
    assert not [c for c in contradictions(honest) if c["code"] == "field_contradicted"]


def test_the_simulator_fills_fields_with_sdr_habits_and_discovery_twins() -> None:
    world = SimulatedWorld("qualification")
    world.advance(6)
    org = world.org()
    deals = [d for d in org.deals if d.qualification]
    assert deals and len(deals) == len(org.deals)
    labels = {a.label for d in deals for a in d.qualification}
    assert {"Budget allocated", "Authority", "Budget confirmed in discovery"} <= labels
    before = [p for p in world.plans if not p._discovered(world.now)]
    assert all(a.stage == "sdr" for p in before for a in p.deal_at(world.now).qualification)
    over = {int(i) for i, o in enumerate(overclaimers(world.scenario.sdrs, world.scenario.qualification_noise.overclaim_share))
            if o}
    sdr_index = {sid: i for i, sid in enumerate(world._dir.sdr_ids)}
    rates = {True: [0, 0], False: [0, 0]}
    for p in world.plans:
        twin = {a.item: a for a in p.discovery_qualification}
        budget = next(a for a in p.qualification if a.label == "Budget allocated")
        if twin["budget"].level == "No":
            bucket = rates[sdr_index[p.sdr_id] in over]
            bucket[0] += budget.level == "Yes"
            bucket[1] += 1
    assert 0 < len(over) < world.scenario.sdrs
    assert rates[True][0] / rates[True][1] > 0.4 and rates[False][0] == 0


def test_the_default_world_has_no_qualification_fields() -> None:
    world = SimulatedWorld()
    world.advance(1)
    assert all(not d.qualification for d in world.org().deals)


def test_the_sandbox_store_keeps_the_answers(tmp_path: Path) -> None:
    crm = SandboxCrm.open(f"sqlite:///{tmp_path / 'sb.db'}", clock=lambda: NOW)
    crm.save_pipelines([a_pipeline()])
    deal = a_deal(qualification=(_answer("Budget allocated", "Yes", "budget"),
                                 _answer("Budget confirmed in discovery", "No", "budget", "discovery")))
    crm.upsert([deal])
    read = [r for b in crm.read_changes(Entity.DEAL, since=None) for r in b.records]
    assert read[0].qualification == deal.qualification


def test_handoff_texts_about_fields_pass_the_quality_gate() -> None:
    """On a ~1,200-deal org with qualification fields, every handoff text (post-mortems naming contradicted
    fields, proposals worded in the fields' labels) passes the real gate."""
    from connector.store.tables import GateStatus
    from crm_adapters.sandbox import load_scenario, simulate
    from jobs.engine.quality import generated_texts
    from jobs.loops.decision import ActionKind
    from jobs.loops.handoff import loop as handoff
    from tests.unit.test_loop_texts_gate import _gated

    org = simulate(load_scenario("qualification").scaled(1200), seed=7)
    snapshot, now = org.snapshot(), org.now
    decisions = handoff.decide(snapshot, handoff.learn(snapshot, None, now).state, now)
    texted = [d for d in decisions if generated_texts(d)]
    notes = [d.payload["body"] for d in texted if d.kind is ActionKind.CREATE_NOTE]
    assert any("after discovery Budget confirmed in discovery is No" in body for body in notes)
    blocked = [(d.key, r.reason) for d in texted if (r := _gated(snapshot, now, decisions, d)).status is GateStatus.BLOCKED]
    assert blocked == []
