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
from jobs.loops._bayes import fingerprint
from jobs.loops.base import Learned, LoopDefinition, State
from jobs.loops.deal_risk._moves import move_stats, next_move
from jobs.loops.deal_risk._prior import learned_weight, rules_model
from jobs.loops.deal_risk.evaluation import auc_interval, figures, time_split, top_signals
from jobs.loops.deal_risk.features import LABELS, MOMENTS, MOVE_MOMENT, Featurised, closed_table, open_table
from jobs.loops.deal_risk.model import FeatureTable, RiskModel, fit_recipe, predict, score_chunks
from jobs.loops.deal_risk.signs import SIGNS, StageNorms
from jobs.loops.decision import ActionKind, Decision, Reason

LOOP = "deal_risk"
DEFAULT_LEVELS = {"medium": 0.6, "high": 0.72}
MIN_REASON = 0.05  # log-odds: smaller contributions are not worth a rep's attention
TASK_LIMIT = 10


def learn(snapshot: Snapshot, state: State | None, now: datetime) -> Learned:
    """Fit on the tenant's closed deals (older -> newer), blend with rules, rank recovery moves."""
    norms = StageNorms.from_snapshot(snapshot)
    closed = closed_table(snapshot, norms)
    middle = closed_table(snapshot, norms, (MOVE_MOMENT,))
    y = middle.table.y if middle.table.y is not None else np.zeros(0)
    lost, won = int(y.sum()), int(len(y) - y.sum())
    rules = rules_model(won, lost)
    weight = learned_weight(won, lost)
    model, metrics = None, {"n_won": won, "n_lost": lost, "weight": weight}
    if weight > 0:
        model, weight, more = _fit(closed.table, rules, weight)
        metrics.update(more, weight=weight)
    parts = _parts(rules, model, weight)
    levels = _levels(parts, closed.table)
    learned_state: dict[str, Any] = {
        "moments": list(MOMENTS), "weight": weight,
        "mode": "rules" if weight == 0 else "learned" if weight >= 1 else "blended",
        "rules": rules.to_json(), "model": model.to_json() if model else None,
        "stage_norms": norms.to_json(), "levels": levels,
        "moves": move_stats(snapshot, middle.deals, middle.as_of, middle.signs),
        "top_signals": top_signals(model, closed.table) if model and metrics.get("signal_found") else [],
        "metrics": metrics, "trained_at": now.isoformat(),
    }
    learned_state["model_version"] = _version(learned_state)
    return Learned(learned_state, metrics)


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


def _levels(parts: list[tuple[RiskModel, float]], table: FeatureTable) -> dict[str, float]:
    """Medium from the median risk of past deals, high from their top fifth (defaults when few)."""
    if len(table) < 20:
        return dict(DEFAULT_LEVELS)
    p = score_chunks(parts, table)[0]
    return {"medium": round(float(np.quantile(p, 0.5)), 4), "high": round(float(np.quantile(p, 0.8)), 4)}


def _version(state: Mapping[str, Any]) -> str:
    blob = json.dumps({k: state[k] for k in ("rules", "model", "weight", "levels")}, sort_keys=True, default=str)
    return "risk-" + hashlib.sha256(blob.encode()).hexdigest()[:12]


def decide(snapshot: Snapshot, state: State, now: datetime) -> list[Decision]:
    """Score every open deal at once; fields and a card per deal, an at-risk task per owner."""
    norms = StageNorms.from_json(state.get("stage_norms"))
    featurised = open_table(snapshot, now, norms)
    if not featurised.deals:
        return []
    rules = RiskModel.from_json(state["rules"])
    model = RiskModel.from_json(state["model"]) if state.get("model") else None
    probs, contribs, tops, names = score_chunks(_parts(rules, model, float(state.get("weight", 0.0))), featurised.table)
    levels = state.get("levels") or DEFAULT_LEVELS
    version = str(state.get("model_version", ""))
    decisions, at_risk = [], defaultdict(list)
    for i, deal in enumerate(featurised.deals):
        reasons = _reasons(featurised, i, contribs[i], tops[i], names)
        level = "high" if probs[i] >= levels["high"] else "medium" if probs[i] >= levels["medium"] else "low"
        move = next_move(state.get("moves", {}), [r.code for r in reasons if r.code in SIGNS] or _fired(featurised, i))
        drivers = [{"code": names[j], "weight": round(float(contribs[i][j]), 3)} for j in tops[i]]
        scored = _scored(deal.remote_id, float(probs[i]), level, reasons, move, now) | {"name": deal.name, "drivers": drivers}
        decisions += _deal_decisions(deal, scored, reasons, version, now)
        if level == "high" and deal.owner_id:
            at_risk[deal.owner_id].append(scored)
    for owner, deals in sorted(at_risk.items()):
        decisions.append(_task(owner, deals, version, now))
    return decisions


def _fired(featurised: Featurised, i: int) -> list[str]:
    signs = featurised.signs[i]
    return sorted((c for c in SIGNS if signs[c].fired), key=lambda c: -signs[c].value)


def _shown(featurised: Featurised, i: int, contrib: np.ndarray, names: list[str]) -> list[int]:
    """Which contributions to show: firing warning signs first (a rep can act on them), then the rest; three at most."""
    raising = [j for j in np.argsort(-contrib) if contrib[j] >= MIN_REASON]
    signs = featurised.signs[i]
    actionable = [j for j in raising if names[j] in signs and signs[names[j]].fired]
    context = [j for j in raising if names[j] not in signs]
    return [int(j) for j in (actionable + context)[:3]]


def _reasons(featurised: Featurised, i: int, contrib: np.ndarray, top: np.ndarray, names: list[str]) -> list[Reason]:
    """The deal's reasons: contributions that raise its risk, each as a sentence with its evidence."""
    reasons = []
    for j in _shown(featurised, i, contrib, names):
        weight = float(contrib[j])
        name = names[j]
        sign = featurised.signs[i].get(name)
        if sign is not None:
            text = sign.evidence or name.replace("_", " ")
            reasons.append(Reason(name, text, round(weight, 3), (sign.evidence,) if sign.evidence else ()))
        else:
            value = _value(featurised.table, name, i)
            label = " & ".join(LABELS.get(part, part) for part in name.split(" x "))
            reasons.append(Reason(name, f"{label}: {value} (raises risk in past deals)", round(weight, 3),
                                  (f"{name}={value}",)))
    return reasons


def _value(table: FeatureTable, name: str, i: int) -> str:
    if name not in table.categorical and name not in table.binned and " x " in name:
        return " & ".join(_value(table, part, i) for part in name.split(" x ", 1))
    if name in table.categorical:
        return str(table.categorical[name][i]) or "(blank)"
    if name in table.binned:
        x = table.binned[name][i]
        return "unknown" if not np.isfinite(x) else f"{x:,.0f}"
    return f"{table.linear[name][i]:g}" if name in table.linear else "?"


def _scored(deal_id: str, p: float, level: str, reasons: list[Reason], move: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {"deal_id": deal_id, "score": int(round(100 * p)), "probability": round(p, 4), "level": level,
            "reasons": [{"code": r.code, "text": r.text, "weight": r.weight, "evidence": list(r.evidence)} for r in reasons],
            "next_move": move, "scored_at": now.isoformat()}


def _deal_decisions(deal: Any, scored: dict[str, Any], reasons: list[Reason], version: str, now: datetime) -> list[Decision]:
    day = f"{now.date().isoformat()}:{version or 'rules'}"  # a new model version rescores the same day
    what = fingerprint({k: v for k, v in scored.items() if k != "scored_at"})  # an edited deal's new score: new key
    texts = "; ".join(r["text"] for r in scored["reasons"]) or "no warning sign firing"
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
    lines = [f"- {d['name'] or d['deal_id']} ({d['deal_id']}): risk {d['score']} - "
             f"{'; '.join(r['text'] for r in d['reasons'][:3]) or 'no single sign'} -> {d['next_move']['text']}"
             for d in deals]
    day = now.date().isoformat()
    payload = {"subject": f"At-risk deals for {day}: {len(deals)}", "body": "\n".join(lines), "owner_id": owner,
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


DEFINITION = LoopDefinition(name=LOOP, learn=learn, decide=decide, description=__doc__.splitlines()[0])
