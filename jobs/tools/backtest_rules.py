"""The handoff and ICP loops in a backtest: the rules each would have proposed on the training part, with
their evidence, and what following them meant on the held-out part (win rate of deals that meet the rule
vs those that do not, with a 90% interval of the difference).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from jobs.loops import icp
from jobs.loops.deal_risk.evaluation import figures
from jobs.loops.handoff.attributes import (
    Rule,
    code_fields,
    design,
    evidence_line,
    fit_attributes,
    level_effects,
    level_of,
    propose_rules,
    rule_outcome,
)
from jobs.loops.stats import difference, posterior
from jobs.tools.backtest_splits import Fold

Row = dict[str, str]
Proposer = Callable[[list[Row], list[bool]], tuple[list[tuple[Rule, str]], Callable[[list[Row]], np.ndarray] | None]]


def _handoff_proposer(fields: Sequence[str], attributes: Sequence[str]) -> Proposer:
    def propose(rows: list[Row], won: list[bool]) -> tuple[list[tuple[Rule, str]], Callable[[list[Row]], np.ndarray] | None]:
        codings = code_fields(rows, fields, attributes=attributes)
        if not codings:
            return [], None
        model = fit_attributes(rows, won, codings)
        rules = propose_rules(level_effects(model, rows), codings)
        return ([(rule, evidence_line(rule, e)) for rule, e in rules],
                lambda held: model.fit.predict(design(held, model.codings, model.pairs)[0]))
    return propose


def _icp_proposer(fields: Sequence[str]) -> Proposer:
    def propose(rows: list[Row], won: list[bool]) -> tuple[list[tuple[Rule, str]], None]:
        feats = [{f: level_of(r.get(f)) for f in fields} for r in rows]
        segments = icp.segment_stats(list(zip(feats, won, strict=True)), icp.PARAMS)
        out = []
        for s in sorted(segments.values(), key=lambda s: -abs(s["lift"])):
            if s["verdict"] in ("better", "worse"):
                rule = Rule("qualify" if s["verdict"] == "better" else "disqualify", s["field"], s["value"])
                seg, rest = s["segment"], s["rest"]
                out.append((rule, f"{s['field']} = {s['value']}: won {seg['k']} of {seg['n']} vs {rest['k']} of "
                                  f"{rest['n']} elsewhere (shrunk {100 * seg['mean']:.0f}% vs {100 * rest['mean']:.0f}%, "
                                  f"P(better) {s['p_better']:.4f})"))
        return out, None
    return propose


def handoff_backtest(rows: list[Row], won: list[bool], folds: Sequence[Fold], fields: Sequence[str], *,
                     attributes: Sequence[str] = ()) -> dict[str, Any]:
    """Qualification rules from the SDR-stage columns (one reference level per field, levels vs the rest)."""
    return _rules_backtest(rows, won, folds, _handoff_proposer(fields, attributes), fields)


def icp_backtest(rows: list[Row], won: list[bool], folds: Sequence[Fold], fields: Sequence[str]) -> dict[str, Any]:
    """ICP include / exclude segments from the account columns (shrunk segment vs rest win rates)."""
    return _rules_backtest(rows, won, folds, _icp_proposer(fields), fields)


def _rules_backtest(rows: list[Row], won: list[bool], folds: Sequence[Fold], propose: Proposer,
                    fields: Sequence[str]) -> dict[str, Any]:
    found: dict[str, dict[str, Any]] = {}
    repeats = max(f.repeat for f in folds) + 1
    p_win = np.full((repeats, len(rows)), np.nan)
    for k, fold in enumerate(folds):
        train, valid = [rows[i] for i in fold.train], [rows[i] for i in fold.valid]
        rules, scorer = propose(train, [won[i] for i in fold.train])
        if scorer is not None:
            p_win[fold.repeat, fold.valid] = scorer(valid)
        for rule, evidence in rules:
            entry = found.setdefault(rule.text, {"rule": rule.text, "op": rule.op, "field": rule.field,
                                                 "level": rule.level, "evidence": evidence, "folds": []})
            entry["folds"].append(rule_outcome(rule, valid, [won[i] for i in fold.valid], seed=str(k)))
    proposals = [_pooled(entry, len(folds)) for entry in found.values()]
    proposals.sort(key=lambda p: (-p["proposed_in"], p["rule"]))
    out: dict[str, Any] = {"fields": list(fields), "proposals": proposals,
                           "claimed_sign_held": all(p["claimed_sign_held"] for p in proposals if p["difference"] is not None)}
    scored = np.isfinite(p_win[0])
    if scored.any():
        y_lost = np.array([not w for w in won], dtype=float)
        out["model"] = figures(y_lost[scored], 1.0 - p_win[0][scored])
    return out


def _pooled(entry: dict[str, Any], n_folds: int) -> dict[str, Any]:
    """Held-out counts summed over the folds that proposed the rule; in how many folds its sign held."""
    folds = entry.pop("folds")
    n_in, k_in = sum(f["n_meets"] for f in folds), sum(f["wins_meets"] for f in folds)
    n_out, k_out = sum(f["n_fails"] for f in folds), sum(f["wins_fails"] for f in folds)
    held = [f["claimed_sign_held"] for f in folds if f["claimed_sign_held"] is not None]
    mean, interval = (None, None)
    if n_in and n_out:
        m, (lo, hi) = difference(posterior(k_in, n_in), posterior(k_out, n_out), seed=entry["rule"])
        mean, interval = round(m, 4), [round(lo, 4), round(hi, 4)]
    return {**entry, "proposed_in": len(folds), "of_folds": n_folds, "n_meets": n_in, "wins_meets": k_in,
            "n_fails": n_out, "wins_fails": k_out, "win_rate_meets": round(k_in / n_in, 4) if n_in else None,
            "win_rate_fails": round(k_out / n_out, 4) if n_out else None, "difference": mean, "interval": interval,
            "sign_held_in": sum(held), "claimed_sign_held": mean is not None and mean > 0}
