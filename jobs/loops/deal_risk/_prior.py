"""Day-one risk: documented rule weights and a prior loss rate, blended toward the learned model.

Weights are log-odds of losing per unit of a sign's severity (see _risk_signs for the units),
set from the sales-research consensus that silence, a quiet champion and a stall hurt most.
The learned model takes over as closed deals accrue: weight = min(1, won/MIN_WON, lost/MIN_LOST).
"""

from __future__ import annotations

import math

from jobs.loops.deal_risk.model import RiskModel

RULE_WEIGHTS: dict[str, float] = {
    "no_recent_activity": 0.6,  # per 2 weeks of silence beyond the first two
    "champion_quiet": 0.7,  # per multiple of the champion's quiet limit
    "meeting_slipped": 0.4,  # per slipped meeting (or none held nor scheduled)
    "close_date_pushed": 0.4,  # per push, plus per 60 days pushed
    "stalled_in_stage": 0.5,  # per multiple of the stage's 80th-percentile stay
    "single_threaded": 0.4,  # one contact only; no economic buyer engaged
    "proposal_unopened": 0.6,
    "risk_language": 0.4,  # per risk phrase the buyer said on the latest call
}
HEALTHY_OFFSET = 0.8  # a deal with no sign firing sits this far below the average log-odds
PRIOR_LOST, PRIOR_WON = 7.0, 3.0  # Beta prior on the loss rate: B2B pipelines lose ~70% of deals
MIN_WON, MIN_LOST = 50, 150
MIN_EACH = 10  # below this many of either outcome, no learned model at all


def prior_loss_rate(won: int, lost: int) -> float:
    return (lost + PRIOR_LOST) / (won + lost + PRIOR_LOST + PRIOR_WON)


def rules_model(won: int, lost: int) -> RiskModel:
    """The rule weights as an additive model (mean 0: a healthy deal contributes nothing)."""
    p = prior_loss_rate(won, lost)
    base = math.log(p / (1 - p)) - HEALTHY_OFFSET
    groups = [{"name": code, "kind": "linear", "coef": w, "mean": 0.0} for code, w in RULE_WEIGHTS.items()]
    return RiskModel(base, groups, meta={"kind": "rules", "prior_loss_rate": round(p, 4)})


def learned_weight(won: int, lost: int) -> float:
    """How much the learned model counts: 0 with too few outcomes, 1 from MIN_WON won and MIN_LOST lost."""
    if won < MIN_EACH or lost < MIN_EACH:
        return 0.0
    return round(min(1.0, won / MIN_WON, lost / MIN_LOST), 4)
