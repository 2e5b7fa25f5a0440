"""A deal's risk reasons as a rep reads them: actionable signs first, in words, each checked against the record.

A model may learn from anything (how round an amount is, the stage, pairs of attributes); a reason
shown to a rep must be something they can check and act on. So: features in HIDDEN inform the
score but are never shown, context attributes (stage, industry ...) are shown in words with the
value, and every warning sign is re-checked against the deal's own timeline before it is shown
(`_check.contradiction`): a reason the record contradicts is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np

from crm_adapters.snapshot import Snapshot
from jobs.loops import labels
from jobs.loops.deal_risk._check import contradiction
from jobs.loops.deal_risk.features import Featurised
from jobs.loops.deal_risk.model import FeatureTable
from jobs.loops.decision import Reason

MIN_REASON = 0.05  # log-odds: smaller contributions are not worth a rep's attention
MAX_REASONS = 3
HIDDEN = frozenset({"amount_precision"})  # informs the score; no rep can act on how round an amount is
UNITS = {"employees": "employees"}


def hidden(name: str) -> bool:
    """A feature (or a pair containing one) that is never shown as a reason."""
    return any(part in HIDDEN for part in name.split(" x "))


def deal_reasons(snapshot: Snapshot, featurised: Featurised, i: int, contrib: np.ndarray, names: list[str],
                 now: datetime) -> list[Reason]:
    """Up to three reasons that raise this deal's risk, signs first, none contradicted by its timeline."""
    deal = featurised.deals[i]
    signs = featurised.signs[i]
    raising = [int(j) for j in np.argsort(-contrib) if contrib[j] >= MIN_REASON and not hidden(names[j])]
    actionable = [j for j in raising if names[j] in signs and signs[names[j]].fired]
    context = [j for j in raising if names[j] not in signs]
    reasons: list[Reason] = []
    for j in actionable + context:
        reason = _reason(featurised, i, names[j], float(contrib[j]))
        if reason is not None and contradiction(snapshot, deal, reason, now) is None:
            reasons.append(reason)
        if len(reasons) == MAX_REASONS:
            break
    return reasons


def _reason(featurised: Featurised, i: int, name: str, weight: float) -> Reason | None:
    sign = featurised.signs[i].get(name)
    if sign is not None:
        text = sign.evidence or labels.word(name)
        return Reason(name, text, round(weight, 3), (sign.evidence,) if sign.evidence else ())
    parts = name.split(" x ")
    values = [_value(featurised.table, part, i) for part in parts]
    if any(v is None for v in values):
        return None
    described = " with ".join(f"{labels.phrase(p)} {v}" for p, v in zip(parts, values, strict=True))
    described = described[:1].upper() + described[1:]
    return Reason(name, f"{described}: past deals like this were lost more often", round(weight, 3), (described,))


def _value(table: FeatureTable, name: str, i: int) -> str | None:
    """The deal's value of one attribute in words, None when it is blank (nothing to show)."""
    if name in table.categorical:
        value = str(table.categorical[name][i])
        return (value if value[:1].isupper() else labels.word(value)) if value else None
    if name in table.binned:
        x = table.binned[name][i]
        return None if not np.isfinite(x) else f"{x:,.0f}" + (f" {UNITS[name]}" if name in UNITS else "")
    return None


def reason_codes(reasons: Sequence[Reason], signs: Sequence[str]) -> list[str]:
    return [r.code for r in reasons if r.code in signs]

