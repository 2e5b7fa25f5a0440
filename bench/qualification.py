"""Benchmark: qualification fields as SDR-stage signals, scored against the simulator's planted truth.

    .venv/bin/python bench/qualification.py [--weeks 52] [--seed N]

The `qualification` scenario (the default org plus six MEDDIC / BANT picklists, a third of the SDRs
ticking the optimistic answer without evidence, one field in ten left empty) runs for `weeks`; the
handoff model is then fitted three ways on the same closed deals: fields alone (text signals removed),
text alone (fields removed) and both. For each it lists the playbook changes the evidence supports
(all of them, not capped per run) and scores them against the planted truth: the text family (the
oracle playbook's questions, MEDDIC items, disqualify rules, verify-pains) and the field family (a rule
on each field with a planted effect, in the planted direction). Then: how many over-claimed fields the
post-mortem catches as contradicted by discovery. The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _handoff_eval import playbook_items, precision_recall  # noqa: E402

from crm_adapters.sandbox.simulator import SimulatedWorld, oracle_playbook  # noqa: E402
from jobs.loops.handoff.model import fit  # noqa: E402
from jobs.loops.handoff.playbook import BASELINE, candidate_changes, diff_line  # noqa: E402
from jobs.loops.handoff.postmortem import field_contradictions  # noqa: E402
from jobs.loops.handoff.signals import DealSignals, deal_signals  # noqa: E402

TEXT_FIELDS = {"claimed_pains": frozenset(), "meddic": frozenset(), "questions": frozenset(), "budget": "unknown",
               "timeline": "unknown", "discovered_pains": None, "denied_pains": frozenset()}


def views(deals: Sequence[DealSignals]) -> dict[str, list[DealSignals]]:
    """The same deals seen through fields alone, text alone, and both."""
    return {"fields alone": [dataclasses.replace(d, **TEXT_FIELDS) for d in deals],
            "text alone": [dataclasses.replace(d, qualification=()) for d in deals],
            "fields and text": list(deals)}


def planted_field_rules(world: SimulatedWorld) -> dict[str, set[tuple[str, str]]]:
    """Per field with a planted effect, the (op, level) rules that point the planted way."""
    out: dict[str, set[tuple[str, str]]] = {}
    for f in world.scenario.qualification:
        effects = {level: effect for level, _, effect in f.levels}
        if len(set(effects.values())) < 2:
            continue
        best, worst = max(effects.values()), min(effects.values())
        out[f.label] = {(op, lv) for lv, e in effects.items() if e == best for op in ("require", "qualify")} | {
            ("disqualify", lv) for lv, e in effects.items() if e == worst}
    return out


def score(changes: Sequence[Mapping[str, Any]], oracle: set[str], planted: Mapping[str, set[tuple[str, str]]]
          ) -> dict[str, Any]:
    """Precision and recall of the changes against the planted truth, per family and overall."""
    field_rules = [c["rule"] for c in changes if c["op"] == "field_rule"]
    right = {r["field"] for r in field_rules if (r["op"], r["level"]) in planted.get(r["field"], set())}
    text_items = playbook_items(_applied(c for c in changes if c["op"] != "field_rule"))
    text_p, text_r = precision_recall(text_items, oracle)
    field_p = len(right) / len(field_rules) if field_rules else 1.0
    field_r = len(right) / len(planted) if planted else 1.0
    tp = len(text_items & oracle) + len(right)
    found, want = len(text_items) + len(field_rules), len(oracle) + len(planted)
    return {"text": [round(text_p, 2), round(text_r, 2)], "fields": [round(field_p, 2), round(field_r, 2)],
            "all": [round(tp / found, 2) if found else 1.0, round(tp / want, 2) if want else 1.0],
            "changes": [diff_line(c) for c in changes]}


def _applied(changes: Any) -> dict[str, Any]:
    from jobs.loops.handoff.playbook import apply

    return apply(BASELINE, [c for c in changes if c["op"] != "reweight"], 1)


def contradictions(world: SimulatedWorld, signals: Mapping[str, DealSignals]) -> dict[str, Any]:
    """Over-claimed fields (the SDR's optimistic answer where discovery found otherwise) vs what the loop caught."""
    now = world.now
    truth, caught = set(), set()
    for plan in world.plans:
        if not plan._discovered(now):
            continue
        found = {a.item: a for a in plan.discovery_qualification}
        for a in plan.qualification:
            if a.claimed and a.item in found and not found[a.item].claimed:
                truth.add((plan.deal_id, a.label))
    for deal_id, s in signals.items():
        caught |= {(deal_id, c["claim"].split(" = ")[0]) for c in field_contradictions(s)
                   if "after discovery" in c["text"]}
    tp = len(truth & caught)
    return {"over_claims": len(truth), "caught": len(caught), "precision": round(tp / len(caught), 4) if caught else 1.0,
            "recall": round(tp / len(truth), 4) if truth else 1.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="qualification",
                        help="scenario TOML or name; it needs [[qualification.fields]] (default: qualification)")
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    world = SimulatedWorld(args.scenario, seed=args.seed)
    if not world.scenario.qualification:
        parser.error(f"scenario {args.scenario!r} has no qualification fields to score")
    world.advance(args.weeks)
    snapshot = world.org().snapshot()
    signals = deal_signals(snapshot)
    oracle = playbook_items(oracle_playbook(world.truth))
    planted = planted_field_rules(world)
    print(f"{args.scenario} scenario: {args.weeks} weeks, {len(snapshot.deals)} deals, "
          f"{sum(d.closed for d in signals.values())} closed with an SDR; planted field rules: {sorted(planted)}")
    print(f"{'view':<16} {'text P/R':>10} {'fields P/R':>11} {'all P/R':>10}  changes")
    figures: dict[str, Any] = {"deals": len(snapshot.deals), "weeks": args.weeks}
    for name, deals in views(list(signals.values())).items():
        summary = fit(deals, world.now)
        changes = [c for c in candidate_changes(summary, BASELINE) if c["op"] != "reweight"]
        s = score(changes, oracle, planted)
        figures[name] = {k: v for k, v in s.items() if k != "changes"}
        print(f"{name:<16} {s['text'][0]:.2f}/{s['text'][1]:.2f} {s['fields'][0]:>6.2f}/{s['fields'][1]:.2f} "
              f"{s['all'][0]:>5.2f}/{s['all'][1]:.2f}  {len(changes)}")
        for line in s["changes"]:
            print(f"    - {line}")
    figures["contradictions"] = contradictions(world, signals)
    c = figures["contradictions"]
    print(f"over-claimed fields contradicted by discovery: {c['over_claims']}; caught by the post-mortem "
          f"{c['caught']} (precision {c['precision']:.3f}, recall {c['recall']:.3f})")
    figures["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
