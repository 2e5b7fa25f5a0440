"""Printing a backtest: figures per model, the reliability table, the top signals, the proposed rules (rich tables)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

LOOP_TITLES = {"handoff": "Handoff loop: qualification rules", "icp": "ICP loop: segments to include or exclude"}


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _held_out(result: dict[str, Any]) -> str:
    if result["split"] == "cv":
        return f"Held out by {result['folds']}-fold cross-validation (stratified, repeated; figures averaged)"
    return "Validation on the newest 20% (trained on older deals)"


def models_table(result: dict[str, Any], title: str | None = None) -> Table:
    table = Table(title=title or _held_out(result))
    for column in ("model", "ROC AUC", "Brier", "calibration error"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, fig in result["models"].items():
        table.add_row(name, _fmt(fig["auc"]), _fmt(fig["brier"]), _fmt(fig["ece"]))
    return table


def reliability_table(rows: list[dict[str, Any]], title: str = "Reliability (salesloop risk model)") -> Table:
    table = Table(title=title)
    for column in ("predicted P(lost)", "deals", "mean predicted", "observed lost"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(f"{row['lo']:.1f}-{row['hi']:.1f}", str(row["n"]), f"{row['predicted']:.3f}", f"{row['observed']:.3f}")
    return table


def signals_table(signals: list[dict[str, Any]]) -> Table:
    table = Table(title="Top signals (mean |log-odds| moved; riskiest and safest level)")
    for column in ("signal", "weight", "riskiest", "safest"):
        table.add_column(column, justify="right" if column == "weight" else "left")
    for s in signals:
        table.add_row(s["signal"], f"{s['mean_abs_logodds']:.3f}", s["riskiest"], s["safest"])
    return table


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.1f}%"


def rules_table(loop: str, part: dict[str, Any], split: str) -> Table:
    """Each proposal and the held-out win rates of deals meeting vs failing it (evidence printed below)."""
    table = Table(title=LOOP_TITLES[loop] + " proposed on the training part, checked on the held-out part")
    for column in ("proposal", "proposed in", "held out: meets", "fails", "difference (90%)", "sign held"):
        table.add_column(column, justify="left" if column == "proposal" else "right")
    for p in part["proposals"]:
        diff = "-" if p["difference"] is None else (
            f"{100 * p['difference']:+.1f} pts ({100 * p['interval'][0]:+.1f} to {100 * p['interval'][1]:+.1f})")
        folds = f"{p['proposed_in']} of {p['of_folds']}" if split == "cv" else "training part"
        table.add_row(p["rule"], folds, f"{_pct(p['win_rate_meets'])} of {p['n_meets']}",
                      f"{_pct(p['win_rate_fails'])} of {p['n_fails']}", diff, "yes" if p["claimed_sign_held"] else "NO")
    return table


def render(result: dict[str, Any], console: Console) -> None:
    """The whole backtest report for people."""
    skipped = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in result["skipped"].items() if v) or "none"
    read = result["read"]
    console.print(f"[bold]{result['deals']}[/bold] (delimiter {read['delimiter']!r}, {read['encoding']}): "
                  f"{result['n']} closed deals ({result['n_won']} won, {result['n_lost']} lost), skipped: {skipped}")
    if result["split"] == "time":
        console.print(f"time order by {result['time_order']!r}: train {result['n_train']} older, "
                      f"validate {result['n_valid']} newer")
    else:
        console.print(f"cross-validation: {result['folds']} folds, each training on {result['n_train']} and holding "
                      f"out {result['n_valid']} deals")
    for warning in result["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    if "models" in result:
        console.print(f"loss rate: training {result['loss_rate_train']:.1%}, held out {result['loss_rate_valid']:.1%}")
        console.print(models_table(result))
        console.print(reliability_table(result["models"]["salesloop risk model"]["reliability"]))
        console.print(signals_table(result["top_signals"]))
    for loop in ("handoff", "icp"):
        if loop in result:
            _render_rules(console, loop, result[loop], result["split"])
    if result.get("predictions_file"):
        console.print(f"per-deal probabilities and reasons written to {result['predictions_file']}")


def _render_rules(console: Console, loop: str, part: dict[str, Any], split: str) -> None:
    if "model" in part:
        m = part["model"]
        console.print(f"{LOOP_TITLES[loop]}: model on held-out deals ROC AUC {_fmt(m['auc'])}, Brier {_fmt(m['brier'])}, "
                      f"calibration error {_fmt(m['ece'])}")
    if not part["proposals"]:
        console.print(f"{LOOP_TITLES[loop]}: no proposal; the training data supports no rule beyond doubt")
        return
    console.print(rules_table(loop, part, split))
    console.print("Evidence on the training part:")
    for p in part["proposals"]:
        console.print(f"- {p['rule']}: {p['evidence']}")
