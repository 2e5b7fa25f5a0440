"""Simulator evaluations of the learning loops: recovery of planted effects week by week, bandit regret."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from _handoff_eval import recall_by_effect

from crm_adapters.sandbox.simulator import SimulatedWorld
from jobs.loops import discovery, icp, objections, sequences
from jobs.loops.decision import ActionKind

ALIAS = {"discount": "discount_offer", "defer": "acknowledge_and_defer"}  # simulator response ids -> ours
PLANTED_ICP_KEYS = {  # planted segment / lead source -> the segment keys that express it, with the direction
    "too_small": ({"employee_band=<50"}, "worse"),
    "education": ({"industry=education"}, "worse"),
    "core_mid_market": ({"employee_band=200-999", "employee_band=1000-4999", "industry=software",
                         "industry=financial services"}, "better"),
}


def _pr(found: set[str], truth: set[str]) -> tuple[float | None, float | None]:
    precision = len(found & truth) / len(found) if found else None
    recall = len(found & truth) / len(truth) if truth else None
    return precision, recall


def _discovery(snap: Any, now: Any, truth: Any) -> dict[str, Any]:
    state = discovery.learn(snap, None, now).state
    found = {q for q, s in state.questions.items() if s["verdict"] == "better"}
    wrong_way = {q for q, s in state.questions.items() if s["verdict"] == "worse" and truth.question_effects.get(q, 0) >= 0}
    p, r = _pr(found, set(truth.effective_questions))
    sizes = {q: truth.question_effects[q] for q in truth.effective_questions}
    return {"n": state.n_deals, "found": sorted(found), "precision": p, "recall": r, "false_stall": sorted(wrong_way),
            "by_size": recall_by_effect({q: q in found for q in sizes}, sizes),
            "proposals": _proposals(discovery, snap, state, now)}


def _objections(snap: Any, now: Any, truth: Any) -> dict[str, Any]:
    state = objections.learn(snap, None, now).state
    best = {o: ALIAS.get(r, r) for o, r in truth.best_response.items()}
    claims = {(o, r["strategy"]) for o, e in state.library.items() for r in e["ranked"] if r["verdict"] == "better"}
    p, r = _pr(claims, set(best.items()))
    top = {o: e["ranked"][0]["strategy"] for o, e in state.library.items() if e["ranked"][0]["verdict"] != "too few to tell"}
    top1 = sum(top.get(o) == s for o, s in best.items()) / len(best)
    sizes = {f"{o}:{s}": truth.response_effects[o][truth.best_response[o]] for o, s in best.items()}
    hits = {f"{o}:{s}": (o, s) in claims for o, s in best.items()}
    return {"n": state.n_events, "precision": p, "recall": r, "top1": round(top1, 3), "claims": sorted(claims),
            "by_size": recall_by_effect(hits, sizes),
            "proposals": _proposals(objections, snap, state, now)}


def _icp(snap: Any, now: Any, truth: Any) -> dict[str, Any]:
    state = icp.learn(snap, None, now).state
    drivers = {k: s["verdict"] for k, s in state.segments.items() if s["verdict"] in ("better", "worse")}
    p_win = {d.remote_id: truth.deals[d.remote_id].p_win for d in snap.closed_deals() if d.remote_id in truth.deals}
    correct = 0
    for key, verdict in drivers.items():  # right if the planted p(win) really differs that way in that segment
        field, value = key.split("=", 1)
        inside = [p_win[d.remote_id] for d in snap.closed_deals() if d.remote_id in p_win and _value(snap, d, field) == value]
        outside = [p_win[d.remote_id] for d in snap.closed_deals() if d.remote_id in p_win and _value(snap, d, field) != value]
        diff = float(np.mean(inside) - np.mean(outside)) if inside and outside else 0.0
        correct += (diff > 0.02) if verdict == "better" else (diff < -0.02)
    planted = dict(PLANTED_ICP_KEYS)
    sizes = {s["name"]: s["effect"] for s in truth.icp_segments if s["name"] in planted}
    for source, effect in truth.lead_source_effects.items():
        if abs(effect) >= 0.3:
            planted[f"lead_source:{source}"] = ({f"lead_source={source}"}, "better" if effect > 0 else "worse")
            sizes[f"lead_source:{source}"] = effect
    found = {name: any(drivers.get(k) == way for k in keys) for name, (keys, way) in planted.items()}
    return {"n": state.n_deals, "drivers": drivers, "precision": correct / len(drivers) if drivers else None,
            "recall": sum(found.values()) / len(planted), "by_size": recall_by_effect(found, sizes), "cv_auc": state.cv_auc,
            "proposals": _proposals(icp, snap, state, now)}


def _value(snap: Any, deal: Any, field: str) -> str:
    if field == "lead_source":
        return (deal.lead_source or "unknown").strip().lower()
    return icp.account_features(snap.account_by_id[deal.account_id], [])[field] if deal.account_id in snap.account_by_id else ""


def _sequences(snap: Any, now: Any, truth: Any) -> dict[str, Any]:
    state = sequences.learn(snap, None, now).state
    decisions = sequences.decide(snap, state, now)
    promoted = {d.payload["diff"][0]["sequence"]: d.payload["diff"][0]["value"] for d in decisions}
    right = sum(promoted.get(s) == v for s, v in truth.better_variant.items() if promoted.get(s))
    return {"promoted": promoted, "correct": right, "wrong": len(promoted) - right, "sequences": len(truth.better_variant)}


def _proposals(loop: Any, snap: Any, state: Any, now: Any) -> int:
    return sum(d.kind is ActionKind.PROPOSE_PLAYBOOK_CHANGE for d in loop.decide(snap, state, now))


def recovery(scenario: str | None, seed: int, checkpoints: tuple[int, ...]) -> list[dict[str, Any]]:
    """Run the world forward; at each checkpoint every loop learns from all data so far and is scored."""
    world, out = SimulatedWorld(scenario, seed=seed), []
    for week in checkpoints:
        world.advance(week - world.week)
        org = world.org()
        snap, started = org.snapshot(), time.time()
        row = {"week": week, "deals": len(org.deals), "discovery": _discovery(snap, org.now, org.truth),
               "objections": _objections(snap, org.now, org.truth), "icp": _icp(snap, org.now, org.truth),
               "sequences": _sequences(snap, org.now, org.truth)}
        row["seconds"] = round(time.time() - started, 1)
        out.append(row)
    return out


def bandit(rates: dict[str, float], weeks: int, per_week: int, seeds: int = 30) -> dict[str, Any]:
    """Thompson (the loop's readout, holdout and stopping rule) vs a fixed 50/50 A/B on the same sends."""
    best, worst = max(rates.values()), min(rates.values())
    names = sorted(rates)
    res: dict[str, list[float]] = {"ts_regret": [], "ab_regret": [], "ts_worst": [], "ab_worst": [], "ts_success": [],
                                   "ab_success": [], "stop_week": [], "stop_correct": []}
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        cells = {v: {"n": 0, "k": 0, "holdout_n": 0, "holdout_k": 0} for v in names}
        retired: set[str] = set()
        ts = {"regret": 0.0, "worst": 0, "success": 0}
        stop_week = None
        for week in range(weeks):
            view = sequences.readout("sim", cells, retired, sequences.PARAMS)
            alloc = np.array([view["variants"][v]["allocation"] for v in names])
            if stop_week is None and view["stop"]:
                stop_week, retired = week, {v for v in names if v != view["leader"]}
                res["stop_correct"].append(float(rates[view["leader"]] == best))
                alloc = np.array([0.0 if v in retired else 1.0 for v in names])
            sends = rng.multinomial(per_week, alloc / alloc.sum())
            for v, n in zip(names, sends, strict=True):
                k = int(rng.binomial(n, rates[v]))
                cells[v]["n"] += int(n)
                cells[v]["k"] += k
                ts["regret"] += n * (best - rates[v])
                ts["worst"] += n if rates[v] == worst else 0
                ts["success"] += k
        total = weeks * per_week
        ab_k = sum(int(rng.binomial(total // len(names), rates[v])) for v in names)
        res["ts_regret"].append(ts["regret"])
        res["ab_regret"].append(sum(total / len(names) * (best - rates[v]) for v in names))
        res["ts_worst"].append(ts["worst"] / total)
        res["ab_worst"].append(1 / len(names))
        res["ts_success"].append(ts["success"])
        res["ab_success"].append(ab_k)
        res["stop_week"].append(stop_week if stop_week is not None else float("nan"))
    summary = {k: round(float(np.nanmean(v)), 3) for k, v in res.items() if v}
    summary["stopped_share"] = round(float(np.mean([not np.isnan(w) for w in res["stop_week"]])), 3)
    return {"rates": rates, "sends": weeks * per_week, "seeds": seeds, **summary}
