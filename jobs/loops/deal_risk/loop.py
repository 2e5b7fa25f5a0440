"""Deal risk: warning signs, a calibrated probability of losing, its top reasons and the next move.

learn() fits on closed deals featurised before they closed (time-ordered validation), blended
with documented rules while outcomes are few; decide() scores every open deal at once and returns
deal fields, the deal card's "risk" section and one morning at-risk task per owner.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np

from crm_adapters.model import Entity
from crm_adapters.snapshot import Snapshot
from crm_adapters.writes import AppField
from jobs.loops import labels
from jobs.loops.base import Learned, LoopDefinition
from jobs.loops.deal_risk._moves import move_stats, next_move
from jobs.loops.deal_risk._prior import learned_weight, prior_loss_rate, rules_model
from jobs.loops.deal_risk._reasons import deal_reasons
from jobs.loops.deal_risk.evaluation import auc_interval, figures, time_split, top_signals
from jobs.loops.deal_risk.features import (
    MOMENTS,
    MOVE_MOMENT,
    Featurised,
    at_fraction,
    closed_table,
    open_table,
)
from jobs.loops.deal_risk.levels import RiskScale, display, score_of, stage_win_rates
from jobs.loops.deal_risk.model import FeatureTable, RiskModel, fit_recipe, predict, score_chunks
from jobs.loops.deal_risk.signs import SIGNS, StageNorms
from jobs.loops.deal_risk.state import DealRiskState
from jobs.loops.decision import ActionKind, Decision, Reason
from jobs.loops.stats import fingerprint

LOOP = "deal_risk"
TASK_LIMIT = 10
BODY_LIMIT = 3800  # the gate refuses task bodies over 4,000 characters: the list ends with how many more wait


def learn(snapshot: Snapshot, state: DealRiskState | None, now: datetime) -> Learned[DealRiskState]:
    """Fit on the tenant's closed deals (older -> newer), blend with rules, rank recovery moves."""
    norms = StageNorms.from_snapshot(snapshot)
    closed = closed_table(snapshot, norms)
    middle = at_fraction(closed, MOVE_MOMENT)  # the recovery moves' moment is one of MOMENTS: no second featurising
    y = middle.table.y if middle.table.y is not None else np.zeros(0)
    lost, won = int(y.sum()), int(len(y) - y.sum())
    rules = rules_model(won, lost)
    weight = learned_weight(won, lost)
    model, metrics = None, {"n_won": won, "n_lost": lost, "weight": weight}
    if weight > 0:
        model, weight, more = _fit(closed.table, rules, weight)
        metrics.update(more, weight=weight)
    levels = RiskScale.for_base_rate(prior_loss_rate(won, lost)).to_json()  # cut-offs relative to the tenant's base rate
    learned_state: dict[str, Any] = {
        "moments": list(MOMENTS), "weight": weight,
        "mode": "rules" if weight == 0 else "learned" if weight >= 1 else "blended",
        "rules": rules.to_json(), "model": model.to_json() if model else None,
        "stage_norms": norms.to_json(), "levels": levels, "stage_win": _stage_win(closed.table),
        "moves": move_stats(snapshot, middle.deals, middle.as_of, middle.signs),
        "top_signals": top_signals(model, closed.table) if model and metrics.get("signal_found") else [],
        "metrics": metrics, "trained_at": now.isoformat(),
    }
    learned_state["model_version"] = _version(learned_state)
    return Learned(DealRiskState.from_json(learned_state), metrics)  # what a stored version of it decodes to


def _fit(table: FeatureTable, rules: RiskModel, weight: float) -> tuple[RiskModel | None, float, dict[str, Any]]:
    """Validate on the newest 20% of closes (learned, rules, blend), then refit on every close."""
    train, valid = time_split(table)
    try:
        held = fit_recipe(train)
        final = fit_recipe(table.time_sorted())
    except ValueError as exc:  # one outcome only among the older deals: stay on the rules
        return None, 0.0, {"fit_error": str(exc)[:200]}
    assert valid.y is not None
    blend = _sigmoid(weight * held.logit(held.contributions(valid)) + (1 - weight) * rules.logit(rules.contributions(valid)))
    found = figures(valid.y, predict(held, valid))
    k = len(MOMENTS)  # each deal is k rows: the interval must count deals, not rows
    lost = int(valid.y.sum()) // k
    interval = auc_interval(found["auc"], lost, len(valid) // k - lost) if found["auc"] is not None else None
    return final, weight, {"validation": figures(valid.y, blend), "validation_learned": found,
                           "signal_found": bool(interval and interval[0] > 0.5), "auc_95_by_deal": interval,
                           "validation_rules": figures(valid.y, predict(rules, valid)),
                           "n_train": len(train), "n_valid": len(valid)}


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
    return out


def _parts(rules: RiskModel, model: RiskModel | None, weight: float) -> list[tuple[RiskModel, float]]:
    if model is None or weight <= 0:
        return [(rules, 1.0)]
    return [(model, weight)] if weight >= 1 else [(model, weight), (rules, 1.0 - weight)]


def _stage_win(table: FeatureTable) -> dict[str, dict[str, float]]:
    """Typical win chance per stage: the share of closed deals won after being in it (what a card compares with)."""
    if table.y is None or "stage" not in table.categorical:
        return {}
    return stage_win_rates([str(s) for s in table.categorical["stage"]], [float(v) for v in table.y])


def _version(state: Mapping[str, Any]) -> str:
    blob = json.dumps({k: state[k] for k in ("rules", "model", "weight", "levels")}, sort_keys=True, default=str)
    return "risk-" + hashlib.sha256(blob.encode()).hexdigest()[:12]


def decide(snapshot: Snapshot, state: DealRiskState, now: datetime) -> list[Decision]:
    """Score every open deal at once; fields and a card per deal, an at-risk task per owner."""
    featurised = open_table(snapshot, now, state.stage_norms)
    if not featurised.deals:
        return []
    probs, contribs, tops, names = score_chunks(_parts(state.rules, state.model, state.weight), featurised.table)
    scale, version = state.levels, state.model_version
    decisions, at_risk = [], defaultdict(list)
    stages = featurised.table.categorical.get("stage")
    for i, deal in enumerate(featurised.deals):
        reasons = deal_reasons(snapshot, featurised, i, contribs[i], names, now)
        move = next_move(state.moves, [r.code for r in reasons if r.code in SIGNS] or _fired(featurised, i))
        drivers = [{"code": names[j], "weight": round(float(contribs[i][j]), 3)} for j in tops[i]]
        shown = display(score_of(probs[i]), scale, str(stages[i]) if stages is not None else "", state.stage_win)
        scored = _scored(deal.remote_id, float(probs[i]), reasons, move, now) | shown | {
            "name": deal.name, "drivers": drivers, "scale": scale.to_json()}
        decisions += _deal_decisions(deal, scored, reasons, version, now)
        if scored["level"] == "high" and deal.owner_id:
            at_risk[deal.owner_id].append(scored)
    for owner, deals in sorted(at_risk.items()):
        decisions.append(_task(owner, deals, version, now))
    return decisions


def _fired(featurised: Featurised, i: int) -> list[str]:
    signs = featurised.signs[i]
    return sorted((c for c in SIGNS if signs[c].fired), key=lambda c: -signs[c].value)


def _scored(deal_id: str, p: float, reasons: list[Reason], move: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {"deal_id": deal_id, "score": score_of(p), "probability": round(p, 4),
            "reasons": [{"code": r.code, "text": r.text, "weight": r.weight, "evidence": list(r.evidence)} for r in reasons],
            "next_move": move, "scored_at": now.isoformat()}


def _deal_decisions(deal: Any, scored: dict[str, Any], reasons: list[Reason], version: str, now: datetime) -> list[Decision]:
    day = f"{now.date().isoformat()}:{version or 'rules'}"  # a new model version rescores the same day
    # A person's edit to the deal (stage, close date, amount, owner ...) rescores it the same day; time passing
    # alone does not rewrite the CRM within a day, and our own write-back (which moves the CRM's modified stamp)
    # never makes a new key.
    edited = {k: v for k, v in deal.custom.items() if "salesloop" not in k.lower()}  # not our own fields
    what = fingerprint([deal.stage_id, deal.status, deal.amount, deal.close_date, deal.owner_id, deal.next_step,
                        deal.account_id, deal.qualification, edited])
    why = "; ".join(r["text"] for r in scored["reasons"]) or "no warning sign is firing"
    texts = f"{scored['chance_text']}. {why[:1].upper()}{why[1:]}"
    fields = {AppField.RISK_SCORE.value: scored["score"], AppField.RISK_LEVEL.value: scored["level"],
              AppField.RISK_REASONS.value: texts[:1000], AppField.NEXT_MOVE.value: scored["next_move"]["text"],
              AppField.SCORED_AT.value: scored["scored_at"]}
    common = dict(loop=LOOP, target=Entity.DEAL, target_id=deal.remote_id, reasons=tuple(reasons),
                  model_version=version, amount=deal.amount, stage_id=deal.stage_id)
    return [
        Decision(kind=ActionKind.UPDATE_FIELD, key=f"{LOOP}:fields:{deal.remote_id}:{day}:{what}", payload=fields, **common),
        Decision(kind=ActionKind.UPDATE_CARD, key=f"{LOOP}:card:{deal.remote_id}:{day}:{what}",
                 payload={"section": "risk", **scored}, **common),
    ]


def _task(owner: str, deals: list[dict[str, Any]], version: str, now: datetime) -> Decision:
    """The owner's morning list: their high-risk deals, riskiest first, each with its reasons and move."""
    deals = sorted(deals, key=lambda d: (-d["probability"], d["deal_id"]))[:TASK_LIMIT]
    lines = [f"- {d['name'] or 'Deal ' + d['deal_id']}: risk {d['score']} of 100 ({d['level_label']}; {d['chance_text']}). "
             f"Why: {'; '.join(r['text'] for r in d['reasons'][:2]) or 'no single sign stands out'}. Next: {d['next_move']['text']}"
             for d in deals]
    body = labels.bounded(lines, BODY_LIMIT, "{n} more high-risk deals: filter your deals by Risk level High.")
    day = now.date().isoformat()
    subject = f"{labels.count(len(deals), 'deal')} at high risk this morning ({labels.when(now)})"
    payload = {"subject": subject, "body": body, "owner_id": owner,
               "due_at": now.isoformat(), "deal_ids": [d["deal_id"] for d in deals]}
    return Decision(loop=LOOP, kind=ActionKind.CREATE_TASK, target=Entity.USER, target_id=owner,
                    key=f"{LOOP}:at_risk_list:{owner}:{day}", payload=payload,
                    reasons=(Reason("at_risk_list", f"{len(deals)} high-risk deals", 0.0, _quoted(deals)),),
                    model_version=version)


def _quoted(deals: list[dict[str, Any]]) -> tuple[str, ...]:
    """What the task body quotes from each deal's scoring (reasons, their evidence, the move): the gate's source."""
    out: list[str] = []
    for d in deals:
        for r in d["reasons"][:3]:
            out += [r["text"], *r["evidence"]]
        out.append(d["next_move"]["text"])
    return tuple(dict.fromkeys(t for t in out if t))


DEFINITION = LoopDefinition(name=LOOP, title="Deal risk", learn=learn, decide=decide, description=__doc__.splitlines()[0],
                            state_type=DealRiskState)
