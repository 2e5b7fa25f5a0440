"""From the snapshot to the risk model's feature table: warning signs plus a few firmographics.

Closed deals are featurised "as of" several moments of their open life (MOMENTS: a quarter, half,
three quarters and nine tenths of the way from creation to close, never later than LEAD_DAYS before
close). Only what was recorded by each moment is read, so nothing from the outcome leaks; and the
rows look like the open pipeline does (deals at every age), so a deal early in Qualification is
not judged as if it were a week from closing (one moment per deal, near close, made stage
dominate and mis-scored young deals).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import numpy as np

from crm_adapters.model import Deal, DealStatus
from crm_adapters.snapshot import Snapshot
from jobs.loops.deal_risk.model import FeatureTable
from jobs.loops.deal_risk.signs import SIGNS, Sign, StageNorms, stage_at, warning_signs

LEAD_DAYS = 3
MOMENTS = (0.25, 0.5, 0.75, 0.9)
MAX_CLOSED = 20_000  # newest closed deals learned from (x MOMENTS rows): minutes, not hours, on big tenants
MOVE_MOMENT = 0.5  # recovery moves are judged from the midpoint on: what was done after a sign showed
NUMBERS = ("amount", "employees")
CATEGORIES = ("industry", "lead_source", "deal_type", "stage", "amount_precision")
LABELS = {"amount": "deal amount", "employees": "account size", "industry": "industry", "lead_source": "lead source",
          "deal_type": "deal type", "stage": "stage", "amount_precision": "amount rounded to"}


@dataclass(frozen=True)
class Featurised:
    """The table the model reads and, per deal, the signs behind it (for evidence)."""

    table: FeatureTable
    signs: list[dict[str, Sign]]
    deals: list[Deal]
    as_of: list[datetime]

    def rows(self, index: Sequence[int]) -> Featurised:
        """These rows only (the table's, and their signs, deals and moments)."""
        return Featurised(self.table.take(np.asarray(index, dtype=np.int64)), [self.signs[i] for i in index],
                          [self.deals[i] for i in index], [self.as_of[i] for i in index])


def closed_on(deal: Deal) -> datetime | None:
    """When a closed deal closed, as an aware datetime (end of its close day)."""
    if deal.closed_at is None:
        return None
    return datetime.combine(deal.closed_at, time(23, 59), tzinfo=UTC)


def as_of_for(deal: Deal, fraction: float = MOVE_MOMENT, lead_days: int = LEAD_DAYS) -> datetime | None:
    """A moment in a closed deal's open life: `fraction` of the way to close, at least LEAD_DAYS before it."""
    end = closed_on(deal)
    if end is None:
        return None
    start = deal.created_at or end - timedelta(days=30)
    return min(start + (end - start) * fraction, max(end - timedelta(days=lead_days), start))


def featurise(snapshot: Snapshot, deals: Sequence[Deal], moments: Sequence[datetime], norms: StageNorms) -> Featurised:
    """Signs and attributes of each deal at its moment, as model columns."""
    signs = [warning_signs(snapshot, d, t, norms) for d, t in zip(deals, moments, strict=True)]
    linear = {code: np.array([s[code].value for s in signs], dtype=float) for code in SIGNS}
    amounts = np.array([float(d.amount) if d.amount is not None else np.nan for d in deals])
    accounts = [snapshot.account_by_id.get(d.account_id or "") for d in deals]
    employees = np.array([a.employees if a is not None and a.employees is not None else np.nan for a in accounts], dtype=float)
    categorical = {
        "industry": np.array([(a.industry or "") if a is not None else "" for a in accounts], dtype=object),
        "lead_source": np.array([d.lead_source or "" for d in deals], dtype=object),
        "deal_type": np.array([d.deal_type or "" for d in deals], dtype=object),
        "stage": np.array([_stage_label(snapshot, d, t) for d, t in zip(deals, moments, strict=True)], dtype=object),
        "amount_precision": amount_precision(amounts),
    }
    categorical = {  # fixed-width text, not Python objects: the model's look-ups then sort and compare in C
        name: values.astype(str) for name, values in categorical.items()
    }
    y = None
    if deals and all(d.is_closed for d in deals):
        y = np.array([d.status is DealStatus.LOST for d in deals], dtype=float)
    order = np.array([(closed_on(d) or t).timestamp() for d, t in zip(deals, moments, strict=True)])
    table = FeatureTable([d.remote_id for d in deals], linear, {"amount": amounts, "employees": employees},
                         categorical, y, order)
    return Featurised(table, signs, list(deals), list(moments))


def closed_table(snapshot: Snapshot, norms: StageNorms, fractions: Sequence[float] = MOMENTS) -> Featurised:
    """Every closed deal with a close date, featurised at each of the moments (one row per deal and moment)."""
    closed = sorted((d for d in snapshot.closed_deals() if d.closed_at is not None),
                    key=lambda d: (d.closed_at, d.remote_id))[-MAX_CLOSED:]  # the newest: learning time stays bounded
    deals = [d for d in closed for _ in fractions]
    moments = [as_of_for(d, f) for d in closed for f in fractions]
    return featurise(snapshot, deals, [m for m in moments if m is not None], norms)


def at_fraction(closed: Featurised, fraction: float, fractions: Sequence[float] = MOMENTS) -> Featurised:
    """The rows of a closed_table(fractions) at one of its fractions: what closed_table(fraction) gives, unfeaturised again."""
    step = len(fractions)
    return closed.rows(range(fractions.index(fraction), len(closed.deals), step))


def open_table(snapshot: Snapshot, now: datetime, norms: StageNorms) -> Featurised:
    deals = sorted(snapshot.open_deals(), key=lambda d: d.remote_id)
    return featurise(snapshot, deals, [now] * len(deals), norms)


def amount_precision(amounts: np.ndarray) -> np.ndarray:
    """How round each amount is: placeholder amounts (50,000; 0) are estimates nobody has priced yet."""
    out = np.full(len(amounts), "exact", dtype=object)
    finite = np.isfinite(amounts)
    for step, label in ((100, "hundreds"), (1000, "thousands"), (10000, "tens of thousands")):
        out[finite & (amounts > 0) & (np.mod(np.nan_to_num(amounts), step) == 0)] = label
    out[finite & (amounts == 0)] = "zero"
    out[~finite] = "missing"
    return out


def _stage_label(snapshot: Snapshot, deal: Deal, moment: datetime) -> str:
    stage_id, _ = stage_at(snapshot, deal, moment)
    stage = snapshot.stage_by_id.get(stage_id)
    return stage.label if stage is not None else stage_id
