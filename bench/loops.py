"""Benchmark of the learning loops (discovery, objections, sequences, ICP): simulator and real data.

    .venv/bin/python bench/loops.py [--scenario FILE] [--seed N] [--equal-runs 200] [--skip-real]

Simulator: recovery of the planted effects week by week as data accrues, the same on the no-signal
world (must find nothing), and the bandit against a fixed 50/50 A/B on the same sends. Real data
(../shared/data, read in place): PersuasionForGood objections, bank-marketing contact policy month by
month, IBM ICP fit, and Maven as the negative control. Last line: one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (str(ROOT), str(ROOT / "bench")):
    if path not in sys.path:
        sys.path.insert(0, path)

import _loops_real as real  # noqa: E402
import _loops_sim as sim  # noqa: E402

CHECKPOINTS = (8, 13, 26, 39, 52)
SEED = 7


def _f(x: Any, digits: int = 2) -> str:
    if x is None:
        return "-"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _table(title: str, head: list[str], rows: list[list[Any]]) -> None:
    cells = [[_f(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(head)] if cells else [len(h) for h in head]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def simulator_part(scenario: str | None, seed: int) -> dict[str, Any]:
    rows = sim.recovery(scenario, seed, CHECKPOINTS)
    _table(f"Simulator ({scenario or 'default'} scenario, seed {seed}): recovery of planted effects as data accrues",
           ["week", "deals", "disc n", "disc P", "disc R", "obj n", "obj P", "obj R", "obj top1", "icp n", "icp P", "icp R",
            "icp AUC", "seq right/wrong", "s"],
           [[r["week"], r["deals"], r["discovery"]["n"], r["discovery"]["precision"], r["discovery"]["recall"],
             r["objections"]["n"], r["objections"]["precision"], r["objections"]["recall"], r["objections"]["top1"],
             r["icp"]["n"], r["icp"]["precision"], r["icp"]["recall"], r["icp"]["cv_auc"],
             f"{r['sequences']['correct']}/{r['sequences']['wrong']}", r["seconds"]] for r in rows])
    last = rows[-1]
    print(f"  week 52 found questions: {last['discovery']['found']}; objection claims: {last['objections']['claims']}")
    print(f"  week 52 ICP drivers: {last['icp']['drivers']}")
    print("  week 52 recall by planted effect size (log-odds): "
          + "; ".join(f"{k} {last[k]['by_size']}" for k in ("discovery", "objections", "icp")))
    null = sim.recovery("no-signal", seed, (52,))[-1]
    null_props = {k: null[k]["proposals"] for k in ("discovery", "objections", "icp")}
    null_props["sequences"] = len(null["sequences"]["promoted"])
    _table("Simulator no-signal world (every effect 0), week 52: proposals (must be 0)",
           ["loop", "n", "proposals", "found"],
           [["discovery", null["discovery"]["n"], null_props["discovery"], null["discovery"]["found"]],
            ["objections", null["objections"]["n"], null_props["objections"], null["objections"]["claims"]],
            ["icp", null["icp"]["n"], null_props["icp"], list(null["icp"]["drivers"])],
            ["sequences", "-", null_props["sequences"], null["sequences"]["promoted"]]])
    return {"weekly": [{"week": r["week"], **{k: {m: r[k][m] for m in ("precision", "recall", "by_size") if m in r[k]}
                                               for k in ("discovery", "objections", "icp")},
                        "objections_top1": r["objections"]["top1"], "sequences_correct": r["sequences"]["correct"],
                        "sequences_wrong": r["sequences"]["wrong"]} for r in rows],
            "no_signal_proposals": null_props}


def bandit_part(scenario: str | None, equal_runs: int) -> dict[str, Any]:
    from crm_adapters.sandbox import load_scenario

    sc = load_scenario(scenario)
    out, rows = {}, []
    for spec in sc.sequences:
        rates = {v: r * sc.positive_share for v, r in dict(spec.variants).items()}
        res = sim.bandit(rates, weeks=sc.weeks, per_week=int(sc.enrollments_per_week / len(sc.sequences)))
        out[spec.id] = res
        rows.append([spec.id, " / ".join(f"{v}={p:.3f}" for v, p in sorted(rates.items())), res["sends"],
                     res["ts_regret"], res["ab_regret"], res["ts_worst"], res["ab_worst"], res["ts_success"], res["ab_success"],
                     res.get("stop_week"), res.get("stop_correct"), res["stopped_share"]])
    null = sim.bandit({"A": 0.05, "B": 0.05}, weeks=sc.weeks, per_week=75, seeds=equal_runs)
    out["equal_arms"] = null
    print(f"\nequal arms (A = B = 5%), {equal_runs} runs of {sc.weeks} weekly looks: a winner declared in "
          f"{100 * null['stopped_share']:.1f}% of runs (the always-valid stopping rule promises at most 5%)")
    rows.append(["equal arms", "A=B=0.050", null["sends"], null["ts_regret"], null["ab_regret"], null["ts_worst"], null["ab_worst"],
                 null["ts_success"], null["ab_success"], null.get("stop_week"), null.get("stop_correct"), null["stopped_share"]])
    _table("Bandit vs fixed 50/50 A/B on the same sends (true positive-reply rates from the scenario; mean of 30 runs; "
           f"equal arms: {equal_runs} runs)",
           ["sequence", "true rates", "sends", "TS regret", "A/B regret", "TS worst share", "A/B worst share",
            "TS successes", "A/B successes", "stop week", "stop right", "stopped"], rows)
    return out


def real_part() -> dict[str, Any]:
    if not real.DATA.is_dir():
        print(f"\nReal data: {real.DATA} is absent; real-data evaluations skipped")
        return {"absent": str(real.DATA)}
    out: dict[str, Any] = {}
    p = real.persuasion()
    _table(f"PersuasionForGood (300 annotated dialogs; {p['events']} objection->response events in {p['dialogs']} dialogs; "
           "success = the persuadee donated): Bayesian library vs frequency table",
           ["objection", "response", "n", "k", "raw rate", "post mean", "90% lo", "90% hi", "verdict", "raw #1"],
           [[r["objection"], r["strategy"], r["n"], r["k"], r["raw"], r["mean"], r["lo"], r["hi"], r["verdict"],
             "yes" if r["raw_top"] else ""] for r in p["rows"]])
    print(f"  decisive findings: {p['decisive']}; half/half splits by dialog (40): held-out log loss frequency "
          f"{p['holdout_logloss_frequency']} vs Bayes {p['holdout_logloss_bayes']}; held-out lift of the #1 pick: "
          f"frequency {p['holdout_top_pick_lift_frequency']:+.3f} (scored {p['top_pick_evaluated_frequency']}x: a tiny-n pick is often "
          f"absent from the other half) vs Bayes {p['holdout_top_pick_lift_bayes']:+.3f} (scored {p['top_pick_evaluated_bayes']}x)")
    t = p["text_path"]
    print(f"  text path on all dialogs (extractor + response classifier): {t['events']} events from {t['persuadee_turns']} "
          f"persuadee turns; objections {t['objections']}; decisive {t['decisive']}; top {t['top']}")
    out["persuasion"] = {k: v for k, v in p.items() if k != "rows"}
    b = real.bank()
    _table(f"Bank marketing, {b['contacts']} contacts in {b['periods']} months, forward in time: conversion per contact "
           "under each policy (arms = channel x contacts this campaign)",
           ["policy", "conversion"], [[k, v] for k, v in b["rate"].items()])
    print("  bandit = Thompson allocation learned on earlier months only, applied to each month's per-arm rates "
          "(direct method: an arm's month rate counts from 30 contacts; the logged contacts were not randomised, so arm rates carry selection); "
          "logged = what the bank did; oracle = the month's best arm in hindsight")
    out["bank"] = {k: v for k, v in b.items() if k != "monthly"}
    i = real.ibm()
    _table(f"IBM Sales Win/Loss, ICP fit on {', '.join(i['fields'])} (ROC AUC on the 20% test)",
           ["split", "ICP loop (L2 logistic)", "naive Bayes", "gradient boosting", "train", "test"],
           [[how, i[how]["icp_loop_lr"], i[how]["naive_bayes"], i[how]["gradient_boosting"], i[how]["train"], i[how]["test"]]
            for how in ("random", "by_opportunity_number")])
    print(f"  drivers (random split): {i['random']['drivers']}")
    out["ibm"] = i
    m = real.maven()
    _table("Maven CRM (fictitious company): negative control, every loop must propose nothing",
           ["loop", "proposals", "actions"], [[k, m[k]["proposals"], m[k]["actions"]] for k in ("discovery", "objections", "sequences", "icp")])
    print(f"  {m['closed_with_account']} closed deals with accounts; ICP drivers {m['icp']['drivers']}; ICP CV AUC {m['icp']['cv_auc']}; "
          "Maven has no call text or sequences, so discovery/objections/sequences have no events (n=0)")
    out["maven"] = m
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=None, help="scenario TOML or name (default: the simulator's default org)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--equal-runs", type=int, default=100, help="runs of the equal-arms bandit (the 5%% promise)")
    parser.add_argument("--skip-real", action="store_true", help="simulator only")
    args = parser.parse_args(argv)
    started = time.time()
    figures = {"scenario": args.scenario or "default", "seed": args.seed,
               "simulator": simulator_part(args.scenario, args.seed), "bandit": bandit_part(args.scenario, args.equal_runs),
               "real": {} if args.skip_real else real_part()}
    figures["seconds"] = round(time.time() - started, 1)
    print(f"\ntotal {figures['seconds']} s")
    print(json.dumps(figures, default=str, separators=(",", ":")))


if __name__ == "__main__":
    main()
