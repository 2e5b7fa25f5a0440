"""Printing a backtest: figures per model, the reliability table, the top signals (rich tables)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def models_table(result: dict[str, Any], title: str = "Validation on the newest 20% (trained on older deals)") -> Table:
    table = Table(title=title)
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


def render(result: dict[str, Any], console: Console) -> None:
    """The whole backtest report for people."""
    skipped = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in result["skipped"].items() if v) or "none"
    console.print(f"[bold]{result['deals']}[/bold]: {result['n']} closed deals ({result['n_won']} won, "
                  f"{result['n_lost']} lost), skipped: {skipped}")
    console.print(f"time order by {result['time_order']!r}: train {result['n_train']} older "
                  f"(lost {result['loss_rate_train']:.1%}), validate {result['n_valid']} newer "
                  f"(lost {result['loss_rate_valid']:.1%})")
    for warning in result["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    console.print(models_table(result))
    console.print(reliability_table(result["models"]["salesloop risk model"]["reliability"]))
    console.print(signals_table(result["top_signals"]))
