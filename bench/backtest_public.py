"""Benchmark: `salesloop backtest --loop all` on the public data sets, forward in time and cross-validated.

    .venv/bin/python bench/backtest_public.py [--data ../shared/data] [--folds 5] [--repeats 1] [--refit-blocks N]

Per data set and split: the risk model against logistic regression, naive Bayes and gradient boosting on
the same folds (ROC AUC, Brier, calibration error), the majority class's calibration error (the base rate
to beat), and the handoff and ICP proposals made on training parts with their held-out check (does the
win rate of held-out deals that meet the rule beat those that fail it, as claimed?). The data sets are
read where they lie (never copied); PersuasionForGood has no deals and is left out. With --refit-blocks N the
time split is also scored as production scores it: every model refitted before each of N stretches of the
held-out period on the deals closed before it (evaluation.rolling_refit). The last line is one JSON object
with the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jobs.loops.deal_risk.evaluation import figures as scored  # noqa: E402
from jobs.loops.deal_risk.evaluation import rolling_refit  # noqa: E402
from jobs.loops.deal_risk.model import FeatureTable, fit_recipe, predict  # noqa: E402
from jobs.tools.backtest import _prepare, run_backtest  # noqa: E402
from jobs.tools.backtest_mapping import load_mapping  # noqa: E402
from jobs.tools.risk_baselines import BASELINES  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MAPPINGS = ROOT / "jobs" / "tools" / "backtest_mappings"
SETS = {
    "IBM": ("ibm-sales-win-loss/WA_Fn-UseC_-Sales-Win-Loss.csv", "ibm-sales-win-loss.toml"),
    "Bank": ("uci-bank-marketing/bank-additional-full.csv", "uci-bank-marketing.toml"),
    "Maven": ("maven-crm-sales-opportunities/sales_pipeline.csv", "maven-crm-sales-opportunities.toml"),
}
MODELS = ("salesloop risk model", "logistic regression", "naive Bayes (Odoo-style)", "gradient boosting")


def one(data: Path, name: str, split: str, folds: int, repeats: int) -> dict[str, Any]:
    csv, mapping = SETS[name]
    started = time.perf_counter()
    r = run_backtest(data / csv, MAPPINGS / mapping, loop="all", split=split, folds=folds, repeats=repeats)
    out: dict[str, Any] = {"n": r["n"], "folds": r["folds"], "seconds": round(time.perf_counter() - started, 1),
                           "models": {m: {k: r["models"][m][k] for k in ("auc", "brier", "ece")} for m in MODELS},
                           "base_rate_ece": r["models"]["majority class"]["ece"]}
    for loop in ("handoff", "icp"):
        props = r[loop]["proposals"]
        out[loop] = {"proposals": len(props), "sign_held": sum(p["claimed_sign_held"] for p in props),
                     "rules": [f"{p['rule']} ({p['proposed_in']}/{p['of_folds']}; held out "
                               f"{_pts(p['difference'])}, 90% {_pts(p['interval'][0])}..{_pts(p['interval'][1])})"
                               for p in props if p["difference"] is not None]}
        if "model" in r[loop]:
            out[loop]["auc"], out[loop]["ece"] = r[loop]["model"]["auc"], r[loop]["model"]["ece"]
    return out


REFITTED = ("salesloop risk model", "logistic regression", "gradient boosting")


def refitted(data: Path, name: str, blocks: int) -> dict[str, Any]:
    """The time split scored as production scores it: each model refitted before each of `blocks` stretches."""
    csv, mapping = SETS[name]
    _, table, _ = _prepare(data / csv, load_mapping(MAPPINGS / mapping), "time")

    def ours(train: FeatureTable, valid: FeatureTable) -> Any:  # it serves one stretch before its next refit
        return predict(fit_recipe(train, horizon=len(valid) / len(train)), valid)

    fits = {REFITTED[0]: ours, **{m: BASELINES[m] for m in REFITTED[1:]}}
    out: dict[str, Any] = {}
    for model, fit in fits.items():
        started = time.perf_counter()
        f = scored(*rolling_refit(table, fit, blocks=blocks))
        out[model] = {k: f[k] for k in ("auc", "brier", "ece")} | {"seconds": round(time.perf_counter() - started, 1)}
    return out


def _pts(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:+.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    found = [p for p in (ROOT.parent / "shared" / "data", ROOT.parent.parent / "shared" / "data") if p.is_dir()]
    parser.add_argument("--data", type=Path, default=found[0] if found else Path("../shared/data"),
                        help="the folder of the public data sets (default: ../shared/data next to the checkout)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated: IBM,Bank,Maven")
    parser.add_argument("--splits", default="time,cv", help="comma-separated: time,cv")
    parser.add_argument("--refit-blocks", type=int, default=0,
                        help="also score the time split refitting every model before each of N stretches (0: off)")
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    print(f"{'data':<6} {'split':<5} {'model':<26} {'AUC':>6} {'Brier':>6} {'cal.err':>7}")
    for name in args.sets.split(","):
        for split in args.splits.split(","):
            f = one(args.data, name, split, args.folds, args.repeats)
            figures[f"{name} {split}"] = f
            for m, v in f["models"].items():
                print(f"{name:<6} {split:<5} {m:<26} {v['auc']:>6.3f} {v['brier']:>6.3f} {v['ece']:>7.3f}")
            print(f"{name:<6} {split:<5} {'(base rate: calibration error)':<26} {'':>6} {'':>6} {f['base_rate_ece']:>7.3f}")
            for loop in ("handoff", "icp"):
                g = f[loop]
                print(f"       {loop}: {g['proposals']} proposals, claimed sign held out-of-sample in {g['sign_held']}"
                      f"; model AUC {g.get('auc')}, calibration error {g.get('ece')}")
                for rule in g["rules"]:
                    print(f"         - {rule}")
    for name in args.sets.split(",") if args.refit_blocks else ():
        got = refitted(args.data, name, args.refit_blocks)
        figures[f"{name} time, refitted before each of {args.refit_blocks} stretches"] = got
        for m, v in got.items():
            print(f"{name:<6} {'time*':<5} {m:<26} {v['auc']:>6.3f} {v['brier']:>6.3f} {v['ece']:>7.3f}   "
                  f"(* refitted before each of {args.refit_blocks} stretches; {v['seconds']:.0f} s)")
    held = [f[loop] for key, f in figures.items() if "refitted" not in key for loop in ("handoff", "icp")]
    figures["all_signs_held"] = all(g["sign_held"] == g["proposals"] for g in held)
    print(f"every proposal's held-out effect has the claimed sign: {figures['all_signs_held']}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
