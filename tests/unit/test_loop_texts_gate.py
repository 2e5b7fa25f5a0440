"""Every loop's generated text (notes, task bodies, text fields) passes the real quality gate on a
simulated org, because each decision carries the figures it quotes; an invented figure is still blocked."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from connector.store.tables import GateStatus
from crm_adapters.sandbox import load_scenario, simulate
from jobs.engine.policy import Autonomy, Verdict
from jobs.engine.quality import (
    QualitySettings,
    computed_values,
    gate,
    generated_texts,
    source_text,
)
from jobs.loops.decision import ActionKind, Decision
from jobs.loops.registry import all_loops

AUTO = Verdict(Autonomy.AUTO, "test")
SETTINGS = QualitySettings(sample_rate=0.0, seed="t")


@pytest.fixture(scope="module")
def run():  # type: ignore[no-untyped-def]
    """A ~1,200-deal simulated org; every loop learns and decides once, like the engine's chain."""
    org = simulate(load_scenario(None).scaled(1200), seed=7)
    snapshot, now = org.snapshot(), org.now
    out = {}
    for name, loop in all_loops().items():
        state = loop.learn(snapshot, None, now).state
        out[name] = loop.decide(snapshot, state, now)
    return snapshot, now, out


def _gated(snapshot, now, decisions: list[Decision], decision: Decision):  # type: ignore[no-untyped-def]
    """The gate exactly as jobs.engine.route calls it: source = the records, the evidence, this run's figures."""
    computed = computed_values(decisions, now.date().isoformat())
    return gate(decision, AUTO, source_text(snapshot, decision, computed), SETTINGS)


def _texted(decisions: list[Decision], kind: ActionKind | None = None) -> list[Decision]:
    return [d for d in decisions if generated_texts(d) and (kind is None or d.kind is kind)]


def test_only_these_loops_write_text_on_this_org(run) -> None:  # type: ignore[no-untyped-def]
    """Keeps the per-loop tests below honest: discovery, objections and sequences write cards and proposals only."""
    assert {name for name, ds in run[2].items() if _texted(ds)} == {"handoff", "deal_risk", "icp"}


@pytest.mark.parametrize("loop", ["handoff", "deal_risk", "icp"])
def test_every_generated_text_of_the_loop_passes_the_gate(run, loop: str) -> None:  # type: ignore[no-untyped-def]
    snapshot, now, out = run
    decisions = out[loop]
    assert _texted(decisions)
    blocked = [(d.key, r.reason) for d in _texted(decisions)
               if (r := _gated(snapshot, now, decisions, d)).status is GateStatus.BLOCKED]
    assert blocked == []


def test_the_org_has_handoff_postmortems_quoting_model_figures(run) -> None:  # type: ignore[no-untyped-def]
    """Guards the test above: post-mortem notes exist and do quote odds ratios and employee bands."""
    notes = _texted(run[2]["handoff"], ActionKind.CREATE_NOTE)
    assert len(notes) >= 10
    bodies = "\n".join(n.payload["body"] for n in notes)
    assert "odds ratio" in bodies and re.search(r"\d[\d,]* to [\d,]+ employees", bodies) and "win chance" in bodies


def test_deal_risk_has_at_risk_tasks(run) -> None:  # type: ignore[no-untyped-def]
    assert _texted(run[2]["deal_risk"], ActionKind.CREATE_TASK)


def _swap_first(pattern: str, new: str, body: str) -> str:
    changed, n = re.subn(pattern, new, body, count=1)
    assert n == 1, f"{pattern!r} not in {body!r}"
    return changed


@pytest.mark.parametrize(("pattern", "invented", "problem"), [
    (r"odds ratio [\d.]+", "odds ratio 7.31", "7.31"),
    (r"\d[\d,]* to [\d,]+ employees", "3,100 to 3,199 employees", "3,100"),
    (r"win chance from SDR-stage signals: \d+%", "win chance from SDR-stage signals: 97%", "97%"),
])
def test_an_invented_figure_in_a_postmortem_is_still_blocked(run, pattern: str, invented: str, problem: str) -> None:  # type: ignore[no-untyped-def]
    snapshot, now, out = run
    decisions = out["handoff"]
    note = next(n for n in _texted(decisions, ActionKind.CREATE_NOTE) if re.search(pattern, n.payload["body"])
                and problem not in n.payload["body"])
    forged = replace(note, payload={**note.payload, "body": _swap_first(pattern, invented, note.payload["body"])})
    assert _gated(snapshot, now, decisions, note).status is not GateStatus.BLOCKED
    result = _gated(snapshot, now, decisions, forged)
    assert result.status is GateStatus.BLOCKED and problem in result.reason


def test_an_invented_figure_in_an_at_risk_task_is_still_blocked(run) -> None:  # type: ignore[no-untyped-def]
    snapshot, now, out = run
    decisions = out["deal_risk"]
    task = _texted(decisions, ActionKind.CREATE_TASK)[0]
    forged = replace(task, payload={**task.payload, "body": _swap_first(r"risk \d+", "risk 9731", task.payload["body"])})
    assert _gated(snapshot, now, decisions, task).status is not GateStatus.BLOCKED
    result = _gated(snapshot, now, decisions, forged)
    assert result.status is GateStatus.BLOCKED and "9731" in result.reason


def test_an_invented_name_in_a_postmortem_is_still_blocked(run) -> None:  # type: ignore[no-untyped-def]
    snapshot, now, out = run
    decisions = out["handoff"]
    note = _texted(decisions, ActionKind.CREATE_NOTE)[0]
    forged = replace(note, payload={**note.payload, "body": note.payload["body"] + "\nSpoke with Quentin Zabriskie."})
    result = _gated(snapshot, now, decisions, forged)
    assert result.status is GateStatus.BLOCKED and "Quentin Zabriskie" in result.reason


@pytest.fixture(scope="module")
def discovery_run():  # type: ignore[no-untyped-def]
    """Discovery on a ~2,000-deal org: at one look its always-valid evidence needs more deals than 1,200
    to propose a change (the price of being valid at every weekly look)."""
    org = simulate(load_scenario(None).scaled(2000), seed=7)
    snapshot, now = org.snapshot(), org.now
    loop = all_loops()["discovery"]
    return snapshot, now, {"discovery": loop.decide(snapshot, loop.learn(snapshot, None, now).state, now)}


@pytest.mark.parametrize("loop", ["handoff", "discovery", "icp"])
def test_proposal_and_flag_tasks_cite_only_their_evidence(request, loop: str) -> None:  # type: ignore[no-untyped-def]
    """A proposal's CRM task title and body are held to the same evals (the gate runs them at runtime too,
    see gated_texts): every figure and name in them comes from the decision's reasons and payload."""
    from jobs.approvals.proposals import APPROVAL, _task_body
    from jobs.engine.quality import eval_text

    snapshot, now, out = request.getfixturevalue("discovery_run" if loop == "discovery" else "run")
    decisions = out[loop]
    computed = computed_values(decisions, now.date().isoformat())
    asks = [d for d in decisions if d.kind in (ActionKind.PROPOSE_PLAYBOOK_CHANGE, ActionKind.FLAG_SDR)]
    assert asks
    problems = [(d.key, p) for d in asks for text in (str(d.payload.get("title", "")), _task_body(d, APPROVAL))
                for p in eval_text(text, source_text(snapshot, d, computed), SETTINGS)]
    assert problems == []
