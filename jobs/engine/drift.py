"""Drift checks: PSI of score and reason distributions, calibration on newly closed deals.

Pure figures first (psi, calibration); `measure` reads what the loop wrote from the store.
jobs.engine.drift_check drops a loop to draft-only past the tenant's threshold (jobs.state.pause)
and asks the manager, through a CRM task, to clear it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.store.tables import DecisionRecord

SCORE_FIELDS = ("risk_score", "icp_fit")
EPS = 1e-4


def psi(expected: Sequence[float], actual: Sequence[float], *, bins: int = 10, low: float = 0.0, high: float = 100.0) -> float:
    """Population stability index of two samples over equal-width bins on [low, high]."""
    if not expected or not actual:
        return 0.0
    return psi_of_counts(_histogram(expected, bins, low, high), _histogram(actual, bins, low, high))


def psi_of_counts(expected: Sequence[float], actual: Sequence[float]) -> float:
    """PSI of two aligned histograms (categorical: reason codes); empty bins are smoothed."""
    e_total, a_total = sum(expected) or 1, sum(actual) or 1
    value = 0.0
    for e, a in zip(expected, actual, strict=True):
        pe, pa = max(e / e_total, EPS), max(a / a_total, EPS)
        value += (pa - pe) * math.log(pa / pe)
    return value


def _histogram(values: Sequence[float], bins: int, low: float, high: float) -> list[int]:
    counts = [0] * bins
    width = (high - low) / bins
    for v in values:
        counts[min(bins - 1, max(0, int((v - low) / width)))] += 1
    return counts


@dataclass(frozen=True)
class Calibration:
    n: int
    brier: float
    bins: list[dict[str, float]] = field(default_factory=list)  # predicted mean, observed rate, count


def calibration(predicted: Sequence[float], outcomes: Sequence[int], *, bins: int = 10) -> Calibration:
    """Brier score and reliability bins of probabilities against 0/1 outcomes."""
    if not predicted:
        return Calibration(0, 0.0, [])
    brier = sum((p - y) ** 2 for p, y in zip(predicted, outcomes, strict=True)) / len(predicted)
    grouped: dict[int, list[tuple[float, int]]] = {}
    for p, y in zip(predicted, outcomes, strict=True):
        grouped.setdefault(min(bins - 1, int(p * bins)), []).append((p, y))
    table = [
        {"bin": b, "predicted": sum(p for p, _ in items) / len(items), "observed": sum(y for _, y in items) / len(items),
         "n": len(items)}
        for b, items in sorted(grouped.items())
    ]
    return Calibration(len(predicted), brier, table)


@dataclass(frozen=True)
class DriftReport:
    loop: str
    score_psi: float
    reason_psi: float
    calibration: Calibration
    breached: list[str]
    n_reference: int
    n_current: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "loop": self.loop, "score_psi": round(self.score_psi, 4), "reason_psi": round(self.reason_psi, 4),
            "brier": round(self.calibration.brier, 4), "calibration_n": self.calibration.n,
            "reliability": self.calibration.bins, "breached": self.breached,
            "n_reference": self.n_reference, "n_current": self.n_current,
        }


def _scores(session: Session, installation_id: str, loop: str, since: datetime, until: datetime) -> tuple[list[float], Counter[str]]:
    stmt = select(DecisionRecord.payload, DecisionRecord.reasons).where(
        DecisionRecord.installation_id == installation_id, DecisionRecord.loop == loop,
        DecisionRecord.kind == "update_field", DecisionRecord.created_at >= since, DecisionRecord.created_at < until,
    )
    scores: list[float] = []
    reasons: Counter[str] = Counter()
    for payload, rows in session.execute(stmt):
        for name in SCORE_FIELDS:
            if isinstance(payload.get(name), int | float):
                scores.append(float(payload[name]))
        reasons.update(r.get("code", "") for r in rows or [] if isinstance(r, dict))
    return scores, reasons


def measure(
    session: Session, installation_id: str, loop: str, now: datetime, outcomes: Sequence[tuple[float, int]],
    *, psi_threshold: float, brier_threshold: float, min_n: int,
) -> DriftReport:
    """This week's scores and reasons against the four weeks before, plus calibration on closed deals."""
    week = timedelta(days=7)
    ref_scores, ref_reasons = _scores(session, installation_id, loop, now - 5 * week, now - week)
    cur_scores, cur_reasons = _scores(session, installation_id, loop, now - week, now + timedelta(seconds=1))
    codes = sorted(set(ref_reasons) | set(cur_reasons))
    score_psi = psi(ref_scores, cur_scores) if len(ref_scores) >= min_n and len(cur_scores) >= min_n else 0.0
    reason_psi = (
        psi_of_counts([ref_reasons[c] for c in codes], [cur_reasons[c] for c in codes])
        if sum(ref_reasons.values()) >= min_n and sum(cur_reasons.values()) >= min_n else 0.0
    )
    calib = calibration([p for p, _ in outcomes], [y for _, y in outcomes])
    breached = []
    if score_psi > psi_threshold:
        breached.append(f"score distribution shifted (PSI {score_psi:.2f} > {psi_threshold})")
    if reason_psi > psi_threshold:
        breached.append(f"top reasons shifted (PSI {reason_psi:.2f} > {psi_threshold})")
    if calib.n >= min_n and calib.brier > brier_threshold:
        breached.append(f"scores are miscalibrated on {calib.n} newly closed deals (Brier {calib.brier:.2f} > {brier_threshold})")
    return DriftReport(loop, score_psi, reason_psi, calib, breached, len(ref_scores), len(cur_scores))
