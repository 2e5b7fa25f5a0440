"""The backtest's mapping TOML: what an export's columns mean, checked with every problem reported at once.

    id = "Opportunity Number"          # unique deal id; optional with --split cv (the row number serves)
    closed = "close_date"              # time order for --split time: close date (preferred), else
    created = "engage_date"            #   the created date, else
    order = "Opportunity Number"       #   any numeric column that grows with time, or
    row_order = true                   #   the rows themselves are in time order (oldest first)
    date_format = "%Y-%m-%d"           # optional; ISO 8601 by default
    delimiter = ";"                    # optional; detected (, ; tab |) when left out
    encoding = "cp1252"                # optional; detected (UTF-8, else charset-normalizer's guess)
    amount = "Opportunity Amount USD"  # optional: binned, plus how round it is (placeholder amounts)
    numeric = ["employees"]            # numbers, binned on training quantiles
    categorical = ["Region", "sector"] # categories (rarer than 5 training rows -> "other"; empty -> "(empty)")
    qualification = ["Budget"]         # handoff loop: the SDR's qualification items (default: categorical)
    attributes = ["Deal Type"]         # handoff loop: deal attributes known at handoff ("treat as qualified")
    firmographic = ["sector"]          # ICP loop: account columns (default: categorical)
    stage_timing = []                  # time-in-stage numbers; allowed only with allow_stage_timing = true,
    allow_stage_timing = false         #   because exports measure them at close: they leak the outcome

    [outcome]
    column = "Opportunity Result"
    won = ["Won"]
    lost = ["Loss"]                    # optional: every other non-empty value; other rows (open deals) are skipped

    [[join]]                           # optional: columns from another CSV, matched on a key
    file = "accounts.csv"              # relative to the deals CSV's folder
    on = "account"                     # key column present in both files
    columns = ["sector", "employees"]
"""

from __future__ import annotations

import codecs
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KNOWN = {"id", "closed", "created", "order", "date_format", "delimiter", "encoding", "amount", "numeric", "categorical",
         "qualification", "attributes", "firmographic", "stage_timing", "allow_stage_timing", "row_order", "outcome", "join"}
LISTS = ("numeric", "categorical", "qualification", "attributes", "firmographic", "stage_timing")


class BacktestError(ValueError):
    """A mapping or CSV the backtest cannot use; the message says what to fix."""


@dataclass(frozen=True)
class Join:
    file: Path
    on: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class DealMapping:
    """What the columns of an opportunities CSV mean (see the module docstring for the TOML)."""

    id: str | None
    outcome: str
    won: tuple[str, ...]
    lost: tuple[str, ...] = ()
    closed: str | None = None
    created: str | None = None
    order: str | None = None
    date_format: str | None = None
    delimiter: str | None = None
    encoding: str | None = None
    amount: str | None = None
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    qualification: tuple[str, ...] = ()
    attributes: tuple[str, ...] = ()
    firmographic: tuple[str, ...] = ()
    stage_timing: tuple[str, ...] = ()
    row_order: bool = False
    joins: tuple[Join, ...] = field(default_factory=tuple)

    @property
    def time_column(self) -> str:
        return self.closed or self.created or self.order or ""

    @property
    def timed(self) -> bool:
        """Can the rows be put in time order?"""
        return bool(self.time_column) or self.row_order

    @property
    def handoff_fields(self) -> tuple[str, ...]:
        """Columns the handoff loop reads: qualification items and deal attributes (default: the categories)."""
        named = (*self.qualification, *self.attributes)
        return named or self.categorical

    @property
    def icp_fields(self) -> tuple[str, ...]:
        return self.firmographic or self.categorical

    def columns(self) -> dict[str, str]:
        """Every column the mapping reads, with what it is for."""
        named = {self.outcome: "outcome"}
        if self.id:
            named[self.id] = "id"
        if self.time_column:
            named[self.time_column] = "time order"
        if self.amount:
            named[self.amount] = "amount"
        for kind in LISTS:
            named.update({c: kind for c in getattr(self, kind)})
        return named


def load_mapping(path: Path) -> DealMapping:
    """Read and check a mapping TOML; every problem is reported at once."""
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise BacktestError(f"mapping file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise BacktestError(f"mapping file {path} is not valid TOML: {exc}") from exc
    problems = _problems(raw)
    outcome: dict[str, Any] = raw["outcome"] if isinstance(raw.get("outcome"), dict) else {}
    joins, join_problems = _joins(raw.get("join", []))
    problems += join_problems
    if problems:
        raise BacktestError(f"mapping {path}:\n  - " + "\n  - ".join(problems))
    lists = {k: tuple(map(str, raw.get(k, ()))) for k in LISTS}
    return DealMapping(
        id=raw.get("id"), outcome=outcome["column"], won=tuple(map(str, outcome["won"])),
        lost=tuple(map(str, outcome.get("lost", ()))), closed=raw.get("closed"), created=raw.get("created"),
        order=raw.get("order"), date_format=raw.get("date_format"), delimiter=_delimiter(raw.get("delimiter")),
        encoding=raw.get("encoding"), amount=raw.get("amount"), row_order=bool(raw.get("row_order", False)),
        joins=tuple(joins), **lists,
    )


def _delimiter(value: Any) -> str | None:
    return {"tab": "\t", "\\t": "\t"}.get(value, value) if value else None


def _problems(raw: dict[str, Any]) -> list[str]:
    problems = [f"unknown key {k!r} (known: {', '.join(sorted(KNOWN))})" for k in raw if k not in KNOWN]
    outcome = raw.get("outcome")
    if not isinstance(outcome, dict) or not outcome.get("column") or not outcome.get("won"):
        problems.append('[outcome] needs column = "..." and won = ["..."]')
        outcome = {}
    problems += [f"[outcome] has unknown key {k!r}" for k in outcome if k not in ("column", "won", "lost")]
    if raw.get("stage_timing") and not raw.get("allow_stage_timing"):
        problems.append("stage_timing columns are usually measured at close and leak the outcome; "
                        "set allow_stage_timing = true only if your export took them while deals were open")
    if not any(raw.get(k) for k in ("amount", *LISTS)):
        problems.append("no feature columns: name amount, numeric, categorical or qualification columns")
    problems += [f"{k} must be a list of column names" for k in LISTS if k in raw and not isinstance(raw[k], list)]
    delimiter = _delimiter(raw.get("delimiter"))
    if delimiter is not None and (not isinstance(delimiter, str) or len(delimiter) != 1):
        problems.append(f'delimiter must be one character (",", ";", "tab", "|"), got {raw.get("delimiter")!r}')
    if raw.get("encoding"):

        try:
            codecs.lookup(str(raw["encoding"]))
        except LookupError:
            problems.append(f"unknown encoding {raw['encoding']!r} (e.g. utf-8, cp1252, latin-1)")
    return problems


def _joins(specs: Any) -> tuple[list[Join], list[str]]:
    joins, problems = [], []
    for j, spec in enumerate(specs):
        if not isinstance(spec, dict) or not spec.get("file") or not spec.get("on") or not spec.get("columns"):
            problems.append(f"[[join]] #{j + 1} needs file, on and columns")
            continue
        problems += [f"[[join]] #{j + 1} has unknown key {k!r}" for k in spec if k not in ("file", "on", "columns")]
        joins.append(Join(Path(spec["file"]), str(spec["on"]), tuple(spec["columns"])))
    return joins, problems
