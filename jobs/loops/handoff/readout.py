"""Control vs treatment: stable arm assignment and the weekly Bayesian readout of the experiment.

Closes take weeks, so the readout also carries a leading indicator (stage-2 conversion). Open deals
are censored: they count in neither numerator nor denominator until they resolve. Promote and revert
both need always-valid evidence (an e-value on the close-rate lift net of the arms' baseline gap) that
clears the same bar the adopted change cleared: a good change is not undone on a weaker swing.
"""

from __future__ import annotations

import hashlib
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from jobs.loops.handoff.signals import DealSignals
from jobs.loops.stats import ALPHA, TAU_POINTS, difference, e_normal, posterior, prob_greater

ARMS = ("control", "treatment")
DEFAULT_BAR = 1.0 / ALPHA  # one hypothesis (treatment vs control) watched at every weekly look
MIN_CLOSED = 40  # closed deals per arm before the readout may recommend anything


def assign_arm(tenant: str, unit_id: str) -> str:
    """Stable 50/50 split: the same tenant and SDR (or lead) always land in the same arm."""
    digest = hashlib.sha256(f"{tenant}:{unit_id}".encode()).digest()
    return ARMS[digest[0] & 1]


def arm_of(deal_id: str, sdr_id: str | None, *, tenant: str, unit: str,
           assigned: Mapping[str, str] | None = None) -> str:
    """The arm of a deal: by its SDR (default) or by the lead itself; an explicit SDR assignment
    (an org that already runs its own split) wins over the hash."""
    if unit == "sdr" and sdr_id and assigned and sdr_id in assigned:
        return assigned[sdr_id]
    return assign_arm(tenant, deal_id if unit == "lead" or not sdr_id else sdr_id)


def arm_counts(deals: Sequence[DealSignals], resolved: Callable[[DealSignals], bool],
               success: Callable[[DealSignals], bool]) -> tuple[int, int]:
    pool = [d for d in deals if resolved(d)]
    return sum(1 for d in pool if success(d)), len(pool)


def _accepted(d: DealSignals) -> bool:
    return d.max_stage >= 2 or d.won


def _past_stage2(d: DealSignals) -> bool:
    return d.max_stage >= 3 or d.won


METRICS: dict[str, tuple[Callable[[DealSignals], bool], Callable[[DealSignals], bool]]] = {
    "acceptance": (lambda d: d.closed or _accepted(d), _accepted),
    "stage2_conversion": (lambda d: _accepted(d) and (d.closed or _past_stage2(d)), _past_stage2),
    "close_rate": (lambda d: d.closed, lambda d: d.won),
}


def arm_figures(deals: Sequence[DealSignals], sdrs: int) -> dict[str, Any]:
    """Per-arm figures: rates with their counts, pipeline per SDR, median cycle time of won deals."""
    out: dict[str, Any] = {"deals": len(deals), "sdrs": sdrs}
    for name, (resolved, success) in METRICS.items():
        k, n = arm_counts(deals, resolved, success)
        out[name] = {"k": k, "n": n, "rate": round(k / n, 4) if n else None}
    out["pipeline_per_sdr"] = round(sum(d.amount for d in deals) / sdrs, 2) if sdrs else None
    cycles = [_days(d) for d in deals if d.won and d.created_at and d.closed_on]
    out["cycle_days_median"] = round(statistics.median(cycles), 1) if cycles else None
    return out


def _days(d: DealSignals) -> float:
    assert d.created_at is not None and d.closed_on is not None
    return float((date.fromisoformat(d.closed_on) - d.created_at.date()).days)


def compare(control: Mapping[str, Any], treatment: Mapping[str, Any], *, seed: str = "") -> dict[str, Any]:
    """Beta(1+k, 1+n-k) per arm: P(treatment > control), lift in points and its 90% interval."""
    out = {}
    for name in METRICS:
        c, t = control[name], treatment[name]
        post_c, post_t = posterior(c["k"], c["n"]), posterior(t["k"], t["n"])
        lift, (lo, hi) = difference(post_t, post_c, seed=f"{seed}:{name}")
        out[name] = {"p_treatment_better": round(prob_greater(post_t, post_c), 4), "lift_points": round(100 * lift, 2),
                     "interval_points": [round(100 * lo, 2), round(100 * hi, 2)]}
    return out


def readout(deals: Iterable[DealSignals], *, arm_for: Callable[[DealSignals], str], unit: str,
            sdr_arms: Mapping[str, str], since: str | None, playbooks_differ: bool, seed: str = "",
            bar: float = DEFAULT_BAR) -> dict[str, Any]:
    """The experiment now: figures per arm, the comparison, its evidence, and a recommendation."""
    window = [d for d in deals if since is None or (d.created_at is not None and d.created_at.isoformat() >= since)]
    by_arm: dict[str, list[DealSignals]] = {arm: [] for arm in ARMS}
    for d in window:
        by_arm[arm_for(d)].append(d)
    sdrs = {arm: sum(1 for a in sdr_arms.values() if a == arm) for arm in ARMS}
    figures = {arm: arm_figures(by_arm[arm], sdrs[arm]) for arm in ARMS}
    comparison = compare(figures["control"], figures["treatment"], seed=f"{seed}:{since}")
    close = comparison["close_rate"]
    close.update(_baseline(deals, arm_for, since, close["lift_points"]))
    close.update(evidence(figures, close))
    close["e_needed"] = round(bar, 2)
    return {"since": since, "unit": unit, "arms": figures, "comparison": comparison,
            "recommendation": recommend(figures, comparison, playbooks_differ, bar)}


def evidence(figures: Mapping[str, Any], close: Mapping[str, Any]) -> dict[str, float]:
    """Always-valid e-values that the treatment's close rate is above / below control's, on the lift net
    of the baseline gap (whose own noise widens the standard error)."""
    c, t = figures["control"]["close_rate"], figures["treatment"]["close_rate"]
    if not c["n"] or not t["n"]:
        return {"e_better": 1.0, "e_worse": 1.0}
    pooled = (c["k"] + t["k"] + 1) / (c["n"] + t["n"] + 2)
    var = pooled * (1 - pooled) * (1 / c["n"] + 1 / t["n"])
    var += float(close.get("baseline_var") or 0.0)
    net, sd = float(close["net_lift_points"]) / 100, var**0.5
    return {"e_better": round(e_normal(net, sd, tau=TAU_POINTS), 4),
            "e_worse": round(e_normal(net, sd, direction=-1, tau=TAU_POINTS), 4)}


def _baseline(deals: Iterable[DealSignals], arm_for: Callable[[DealSignals], str], since: str | None,
              lift_points: float) -> dict[str, Any]:
    """The arms' close-rate gap before the experiment (arms of a dozen SDRs differ by chance) and
    the lift net of it (difference in differences), which a recommendation must agree with."""
    if since is None:
        return {"baseline_gap_points": None, "net_lift_points": lift_points}
    wins = {arm: [0, 0] for arm in ARMS}
    for d in deals:
        if d.closed and d.created_at is not None and d.created_at.isoformat() < since:
            wins[arm_for(d)][0] += d.won
            wins[arm_for(d)][1] += 1
    if not all(n >= MIN_CLOSED for _, n in wins.values()):
        return {"baseline_gap_points": None, "net_lift_points": lift_points}
    (kt, nt), (kc, nc) = wins["treatment"], wins["control"]
    gap = 100 * (kt / nt - kc / nc)
    pooled = (kt + kc + 1) / (nt + nc + 2)
    return {"baseline_gap_points": round(gap, 2), "net_lift_points": round(lift_points - gap, 2),
            "baseline_var": pooled * (1 - pooled) * (1 / nt + 1 / nc)}


def recommend(figures: Mapping[str, Any], comparison: Mapping[str, Any], playbooks_differ: bool,
              bar: float = DEFAULT_BAR) -> str:
    """promote | revert | continue | no_experiment: decisive only with enough closes in both arms and
    an e-value past `bar` in the direction of the move (the same bar for promoting and for reverting)."""
    if not playbooks_differ:
        return "no_experiment"
    enough = all(figures[arm]["close_rate"]["n"] >= MIN_CLOSED for arm in ARMS)
    close = comparison["close_rate"]
    p_lead = comparison["stage2_conversion"]["p_treatment_better"]
    if enough and close.get("e_better", 1.0) >= bar and p_lead >= 0.5:
        return "promote"
    if enough and close.get("e_worse", 1.0) >= bar and p_lead <= 0.5:
        return "revert"
    return "continue"
