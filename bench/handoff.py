"""Benchmark: the SDR -> BDM handoff loop running a simulated org's treatment arm, scored on the truth.

    .venv/bin/python bench/handoff.py [--scenario FILE] [--weeks 16] [--warmup 26] [--seed N]

Warm-up weeks run both arms on the baseline playbook; then every week the loop learns, decides, a
"manager" approves every proposal (recorded), and the world advances with the arms' playbooks.
Prints a weekly table, the pain-extraction scores, the approvals, the no-signal check; the last
line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _handoff_eval import (  # noqa: E402
    change_is_safe,
    flag_scores,
    item_effect,
    item_evidence,
    pain_scores,
    playbook_items,
    precision_recall,
    recall_by_size,
    revert_is_safe,
    truly_weaker,
    truly_weaker_on_same_leads,
    truth_lift,
    version_p_win,
)

from crm_adapters.sandbox.simulator import SimulatedWorld, oracle_playbook  # noqa: E402
from jobs.loops.decision import ActionKind  # noqa: E402
from jobs.loops.handoff import loop as H  # noqa: E402
from jobs.loops.handoff.flags import sdr_flags  # noqa: E402
from jobs.loops.handoff.signals import deal_signals  # noqa: E402
from jobs.loops.handoff.state import HandoffState  # noqa: E402
from jobs.nlp.phrases import propose_phrases  # noqa: E402


def run(scenario: str | None, *, weeks: int, warmup: int, seed: int | None, log: bool = True) -> dict[str, Any]:
    """Warm up, then let the loop drive the treatment arm for `weeks` weeks."""
    world = SimulatedWorld(scenario, seed=seed)
    world.advance(warmup)
    loop_start = world.now
    state: HandoffState = H.initial_state(tenant="bench", arms=world.arms)
    rows, approvals, flagged_ever, proposals = [], [], set(), 0
    raw_flagged: set[str] = set()  # the flag rule before the lead-mix adjustment, on the same weekly looks
    causes: dict[str, str] = {}
    versions = {0: dict(state.playbooks["treatment"])}
    for week in range(weeks):
        org = world.org()
        snap = org.snapshot()
        state = H.learn(snap, state, org.now).state
        decisions = H.decide(snap, state, org.now)
        flags = [d.target_id for d in decisions if d.kind is ActionKind.FLAG_SDR]
        flagged_ever |= set(flags)
        raw_flagged |= {f["sdr_id"] for f in sdr_flags(list(deal_signals(snap).values()),
                                                       state.sdr_arms if state.config["unit"] == "sdr" else {},
                                                       margin=float(state.config["flag_margin"]), lead_mix=False)}
        causes.update({d.target_id: d.payload["likely_cause"] for d in decisions if d.kind is ActionKind.FLAG_SDR})
        for d in (d for d in decisions if d.kind is ActionKind.PROPOSE_PLAYBOOK_CHANGE):
            proposals += 1
            approvals.append(_approval(d.payload, week, org, snap, state))
            state = H.approve(state, d.payload)
            versions[state.playbooks["treatment"]["version"]] = dict(state.playbooks["treatment"])
        rows.append(_row(week, world, state, flags, loop_start))
        if log:
            print(_format_row(rows[-1]), flush=True)
        world.advance(1, playbooks={"control": state.playbooks["control"],
                                    "treatment": state.playbooks["treatment"]})
    org = world.org()
    same_leads = truly_weaker_on_same_leads(org.truth, float(state.config["flag_margin"]))
    return {"world": world, "org": org, "state": state, "rows": rows, "approvals": approvals,
            "flagged": flag_scores(flagged_ever, org.truth.underperforming_sdrs,
                                   truly_weaker(org.truth, float(state.config["flag_margin"]))),
            "flagged_same_leads": flag_scores(flagged_ever, org.truth.underperforming_sdrs, same_leads),
            "flagged_raw": flag_scores(raw_flagged, org.truth.underperforming_sdrs, same_leads),
            "harder_leads": harder_leads(world), "proposals": proposals,
            "flags_raised": len(flagged_ever), "causes": causes,
            "oracle": sorted(playbook_items(oracle_playbook(org.truth))), "loop_start": loop_start, "versions": versions}


def harder_leads(world: SimulatedWorld) -> list[str]:
    """The SDRs a scenario's [[confounding.lead_routing]] sends a kind of lead to (harder-leads: the hard ones)."""
    ids = list(world.truth.sdr_skill)
    return sorted({ids[i] for route in world.scenario.lead_routing for i in route.sdrs})


def _approval(payload: dict[str, Any], week: int, org: Any, snap: Any, state: HandoffState) -> dict[str, Any]:
    checks = [change_is_safe(c, org.truth, snap) for c in payload.get("changes", [])]
    if payload["kind"] == "revert":
        books = state.playbooks
        checks.append(revert_is_safe(books["treatment"], books["control"], org.truth, snap))
    if payload["kind"] == "promote":
        arms = payload["evidence"]["readout"]["arms"]
        checks.append((True, f"promote at observed close {arms['treatment']['close_rate']['rate']} vs "
                             f"{arms['control']['close_rate']['rate']}"))
    return {"week": week, "kind": payload["kind"], "diff": payload["diff"], "safe": all(ok for ok, _ in checks),
            "truth": [why for _, why in checks]}


def _row(week: int, world: SimulatedWorld, state: HandoffState, flags: list[str], loop_start: Any) -> dict[str, Any]:
    oracle = playbook_items(oracle_playbook(world.truth))  # this week's: effects may change over time
    treatment = state.playbooks["treatment"]
    precision, recall = precision_recall(playbook_items(treatment), oracle)
    read = state.readout or {}
    created = {p.deal_id: p.created_at for p in world.plans}
    lift, _ = truth_lift(world.truth, created, world.now - timedelta(weeks=4), world.now)
    planted = set(world.truth.underperforming_sdrs)
    return {"week": week, "version": treatment["version"], "control_version": state.playbooks["control"]["version"],
            "items": len(playbook_items(treatment)), "precision": round(precision, 3), "recall": round(recall, 3),
            "flags": len(flags), "true_flags": len(set(flags) & planted), "false_flags": len(set(flags) - planted),
            "recommendation": read["recommendation"],
            "p_better": read["comparison"]["close_rate"]["p_treatment_better"],
            "observed_lift": read["comparison"]["close_rate"]["lift_points"],
            "truth_lift_4w": round(100 * lift, 2)}


def _format_row(r: dict[str, Any]) -> str:
    return (f"{r['week']:>4} {r['version']:>3}/{r['control_version']:<3} {r['items']:>5} {r['precision']:>6.2f} "
            f"{r['recall']:>6.2f} {r['true_flags']:>4}/{r['false_flags']:<4} {r['recommendation']:>13} "
            f"{r['p_better']:>6.3f} {r['observed_lift']:>+8.2f} {r['truth_lift_4w']:>+8.2f}")


HEADER = (f"{'week':>4} {'tr/ct':>7} {'items':>5} {'prec':>6} {'recall':>6} {'TF/FF':>9} {'readout':>13} "
          f"{'P(T>C)':>6} {'obs lift':>8} {'true lift':>8}")


def playbook_lift(scenario: str | None, playbook: dict[str, Any], *, warmup: int, weeks: int, seed: int | None) -> float:
    """Planted mean P(win) lift of a fixed treatment playbook over the baseline, same world and seed."""
    world = SimulatedWorld(scenario, seed=seed)
    world.advance(warmup)
    start = world.now
    world.advance(weeks, playbooks={"treatment": playbook})
    created = {p.deal_id: p.created_at for p in world.plans}
    return truth_lift(world.truth, created, start)[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=None, help="scenario TOML (default: the simulator's default org)")
    parser.add_argument("--null-scenario", default="no-signal", help="scenario with no planted effect")
    parser.add_argument("--weeks", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=36)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--skip-null", action="store_true", help="skip the no-signal check (for runs over many worlds)")
    args = parser.parse_args(argv)
    if args.weeks < 12:
        parser.error("--weeks must be at least 12")
    started = time.time()
    print(f"handoff loop on {args.scenario or 'default'}: {args.warmup} warm-up weeks, {args.weeks} weeks in charge")
    print(HEADER)
    main_run = run(args.scenario, weeks=args.weeks, warmup=args.warmup, seed=args.seed)
    figures = _report(main_run, args)
    if not args.skip_null:
        print(f"\nno-signal check on {args.null_scenario}:")
        print(HEADER)
        null = run(args.null_scenario, weeks=args.weeks, warmup=args.warmup, seed=args.seed)
        figures["no_signal"] = {"proposals": null["proposals"], "flags": null["flags_raised"],
                                "final_items": len(playbook_items(null["state"].playbooks["treatment"]))}
        print(f"no-signal: {null['proposals']} proposals, {null['flags_raised']} SDR flags (both must be 0)")
    figures["seconds"] = round(time.time() - started, 1)
    print(json.dumps(figures, sort_keys=True, default=str))
    return 0


def _report(r: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    last = r["rows"][-1]
    print("\napproved changes (a manager approved every proposal):")
    for a in r["approvals"]:
        print(f"  week {a['week']:>2} {a['kind']:<8} {'ok' if a['safe'] else 'HARMFUL':<7} {a['diff'][0]}")
        print(f"           truth: {'; '.join(a['truth'])}")
    print(f"oracle playbook items: {', '.join(r['oracle'])}")
    print(f"recall by planted effect size (log-odds): {recall_by_size(playbook_items(r['state'].playbooks['treatment']), set(r['oracle']), r['org'].truth)}")
    found_items = playbook_items(r["state"].playbooks["treatment"])
    evidence = {i: item_evidence(i, r["state"].model or {}, r["state"].playbooks["treatment"]) for i in r["oracle"]}
    print("evidence at the last look for the oracle items not adopted (bar: for one more claim next to the adopted ones):")
    for item, ev in evidence.items():
        if item not in found_items:
            print(f"  {item:<40} planted {item_effect(item, r['org'].truth):+.3f}  "
                  + (f"z {ev['z']:+.2f}, e-value {ev['e_value']:,.1f} vs bar {ev['bar']:,.0f} (z {ev['z_needed']:.2f})"
                     if ev else "no estimate (too few deals)"))
    final = r["state"].playbooks["treatment"]
    raw = {v: playbook_lift(args.scenario, pb, warmup=args.warmup, weeks=8, seed=args.seed)
           for v, pb in sorted(r["versions"].items())}
    gap = raw[0]  # the arms differ a little even on the same playbook (a dozen SDRs each): net it out
    lifts = {v: x - gap for v, x in raw.items()}
    learned = lifts[final["version"]]
    best = playbook_lift(args.scenario, oracle_playbook(r["world"].truth), warmup=args.warmup, weeks=8,
                         seed=args.seed) - gap
    print("\ntreatment playbook versions replayed on the same world (8 weeks from the warm-up, common random numbers;"
          f" lift net of the arms' gap on the baseline playbook, {100 * gap:+.2f} points):")
    for v, lift in lifts.items():
        print(f"  v{v}: planted close-rate lift over baseline {100 * lift:+.2f} points  {sorted(playbook_items(r['versions'][v]))}")
    print(f"learned playbook v{final['version']} {100 * learned:+.2f} points vs oracle {100 * best:+.2f} points "
          f"({_ratio(learned, best)} of the oracle)")
    steps = list(lifts.values())
    monotone = all(b >= a - 0.002 for a, b in zip(steps, steps[1:], strict=False))
    print(f"no approved change lowered the treatment arm's planted close rate: {monotone}")
    per_version = version_p_win(r["org"].truth)
    print(f"planted mean P(win) of treatment deals created under each version (in-run, noisy): {per_version}")
    pains = pain_scores(deal_signals(r["org"].snapshot()), r["org"].truth)
    print("\npain extraction vs the simulator's labels (precision / recall):")
    print(f"{'pain':<20} {'claimed (SDR note)':>20} {'discovered (BDM)':>20}")
    for pain in sorted(pains["claimed"]):
        c, d = pains["claimed"][pain], pains["discovered"].get(pain, {"precision": 0, "recall": 0})
        print(f"{pain:<20} {c['precision']:>9.3f} / {c['recall']:<8.3f} {d['precision']:>9.3f} / {d['recall']:<8.3f}")
    print(f"alignment MAE vs labels {pains['alignment_mae']}; 'claimed not confirmed' vs made-up pains "
          f"{pains['unconfirmed_vs_made_up']}")
    print(f"SDR flags: {r['flagged']}")
    hard = set(r["harder_leads"])
    for label, scored in (("before (raw close rates)", r["flagged_raw"]), ("after (peers on similar leads)", r["flagged_same_leads"])):
        print(f"SDR flags {label}: on planted weak SDRs {len(scored['true_flags'])} of "
              f"{len(scored['true_flags']) + len(scored['missed'])}, on SDRs given harder leads "
              f"{len(hard & set(scored['flagged']))} of {len(hard)}, on SDRs truly weaker on the same leads "
              f"{len(scored['weaker_flags'])}, false {len(scored['false_flags'])} {scored['false_flags']}")
    truth = r["org"].truth
    for sdr, cause in sorted(r["causes"].items()):
        print(f"  SDR {sdr}: likely cause found {cause!r}; planted: {truth.underperforming_sdrs.get(sdr, 'none')}, "
              f"hidden skill {truth.sdr_skill[sdr]:+.2f} (sd {r['world'].scenario.sdr_skill_sd})")
    proposals = _phrase_proposals(r["org"])
    print(f"pain phrases proposed from won vs lost SDR notes (for a person to review): "
          f"{[(p.pain_id, p.phrase, p.won_docs, p.lost_docs) for p in proposals]}")
    return {
        "scenario": args.scenario or "default", "weeks": args.weeks, "warmup": args.warmup,
        "playbook_precision": last["precision"], "playbook_recall": last["recall"],
        "treatment_version": final["version"], "approved": len(r["approvals"]),
        "harmful_approvals": sum(not a["safe"] for a in r["approvals"]),
        "harmful_reverts": sum(not a["safe"] for a in r["approvals"] if a["kind"] == "revert"),
        "reverts": sum(a["kind"] == "revert" for a in r["approvals"]),
        "missed_evidence": {i: ev for i, ev in evidence.items() if i not in found_items},
        "recall_by_effect_size": recall_by_size(playbook_items(final), set(r["oracle"]), r["org"].truth),
        "sdrs": len(r["org"].truth.sdr_skill),
        "version_lift_points": {v: round(100 * x, 2) for v, x in lifts.items()}, "no_change_lowered_close_rate": monotone,
        "lift_learned_points": round(100 * learned, 2), "lift_oracle_points": round(100 * best, 2),
        "true_flags": len(r["flagged"]["true_flags"]), "false_flags": len(r["flagged"]["false_flags"]),
        "flags_on_truly_weaker": len(r["flagged"]["weaker_flags"]),
        "missed_underperformers": len(r["flagged"]["missed"]),
        "sdr_flags_before_after": {
            when: {"true": len(sc["true_flags"]), "on_harder_leads": len(set(r["harder_leads"]) & set(sc["flagged"])),
                   "truly_weaker_same_leads": len(sc["weaker_flags"]), "false": len(sc["false_flags"]),
                   "missed": len(sc["missed"])}
            for when, sc in (("before", r["flagged_raw"]), ("after", r["flagged_same_leads"]))},
        "pain_claimed": pains["claimed_micro"], "pain_discovered": pains["discovered_micro"],
        "alignment_mae": pains["alignment_mae"], "unconfirmed_vs_made_up": pains["unconfirmed_vs_made_up"],
        "final_recommendation": last["recommendation"], "phrase_proposals": len(proposals),
    }


def _phrase_proposals(org: Any, sample: int = 600) -> list[Any]:
    """Taxonomy growth on the simulator's text: recurring pain phrases in won notes, not yet listed."""
    notes = {a.deal_ids[0]: a.text for a in org.activities if a.custom.get("kind") == "sdr_qualification" and a.deal_ids}
    closed = [d for d in org.deals if d.is_closed and d.remote_id in notes]
    won = [notes[d.remote_id] for d in closed if d.status.value == "won"][:sample]
    lost = [notes[d.remote_id] for d in closed if d.status.value == "lost"][:sample]
    return propose_phrases(won, lost, min_docs=5)


def _ratio(a: float, b: float) -> str:
    return f"{100 * a / b:.0f}%" if b > 0 else "n/a"


if __name__ == "__main__":
    raise SystemExit(main())
