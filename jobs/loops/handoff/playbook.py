"""The versioned qualification playbook and the changes the handoff loop proposes to it.

A playbook is the dict SimulatedWorld and the cards read: {version, questions, meddic, disqualify,
verify_pains, weights}. Control keeps the baseline; approved changes make a new treatment version.
A change is proposed only when its evidence is decisive: an always-valid e-value per candidate (the
Bayes factor of the model's own N(0, 0.5^2) effect prior against "no effect", from the running
estimate, valid at every weekly look), with e-BH across every actionable signal at false-discovery
rate 5%. Undoing an adopted item needs evidence past the bar its adoption cleared.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from jobs.loops import labels
from jobs.loops.handoff.attributes import OTHER, UNKNOWN
from jobs.loops.handoff.model import COUNTS, PRIOR_SD
from jobs.loops.handoff.rules import (
    FIRMOGRAPHIC,
    attribute_rule,
    field_candidates,
    field_rule_line,
    one_per_field,
)
from jobs.loops.stats import ALPHA, carried, e_bh, e_normal, e_threshold

BASELINE: dict[str, Any] = {"version": 0, "questions": [], "meddic": [], "disqualify": [], "verify_pains": False,
                            "weights": {}}
MIN_EFFECT = 0.10  # shrunk log-odds a question / MEDDIC element must reach to be worth adding
MIN_ICP_EFFECT = 0.25  # a segment must be this much worse (shrunk log-odds) to be disqualified
REWEIGHT_GAP = 0.25
MAX_PER_RUN = 3
_BANDS = {"<50": ("<", 50), "2000+": (">=", 2000)}  # bands a single disqualify rule can express


def fingerprint(changes: list[Mapping[str, Any]]) -> str:
    """Identity of a change set without its evidence: same change, same fingerprint."""
    core = [{k: c.get(k) for k in ("op", "target", "rule")} for c in changes]
    return hashlib.sha256(json.dumps(core, sort_keys=True, default=str).encode()).hexdigest()[:24]


def rule_for(signal: str) -> dict[str, Any] | None:
    """The disqualify rule a firmographic signal turns into (None: not expressible as one rule)."""
    kind, _, value = signal.partition(":")
    if kind == "employees":
        band = _BANDS.get(value)
        return {"field": "employees", "op": band[0], "value": band[1]} if band else None
    if kind in ("industry", "country", "lead_source"):
        return {"field": kind, "op": "==", "value": value}
    return None


def actionable(signal: str) -> bool:
    """Signals a playbook change can act on (the family the multiplicity correction counts)."""
    kind = signal.partition(":")[0]
    return kind in ("question", "meddic") or signal in COUNTS or rule_for(signal) is not None


def evidence(summary: Mapping[str, Any], previous: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Per actionable signal, the running e-values that its effect is above / below zero (JSON-ready,
    carried in the learned state so the weekly record of the evidence is kept with the playbook)."""
    out = {}
    for name, s in dict(summary.get("signals", {})).items():
        if not actionable(name):
            continue
        up, down = e_values(s)
        record = carried(dict(previous or {}).get(name), up if up >= down else -down)
        out[name] = {**record, "e_up": round(up, 4), "e_down": round(down, 4)}
    return out


def e_values(s: Mapping[str, Any]) -> tuple[float, float]:
    """Always-valid evidence for a positive and for a negative effect, from the likelihood part of the
    shrunk fit (the posterior minus the N(0, PRIOR_SD^2) prior), mixed over that same prior."""
    sd = max(float(s["sd"]), 1e-9)
    information = 1.0 / sd**2 - 1.0 / PRIOR_SD**2
    if information <= 1e-6:
        return 1.0, 1.0
    estimate = float(s["effect"]) / sd**2 / information
    se = information**-0.5
    return e_normal(estimate, se, tau=PRIOR_SD), e_normal(estimate, se, direction=-1, tau=PRIOR_SD)


def candidate_changes(summary: Mapping[str, Any], playbook: Mapping[str, Any],
                      bars: Mapping[str, float] | None = None, alpha: float = ALPHA) -> list[dict[str, Any]]:
    """Every change the evidence supports (e-BH discoveries among the actionable signals), strongest first.

    `bars`: per signal, the e-value its adoption cleared; undoing it needs at least as much.
    """
    signals: Mapping[str, Mapping[str, Any]] = summary.get("signals", {})
    tests = family_size(summary, playbook)
    wanted = [c for name, s in signals.items() if (c := _change_for(name, s, playbook)) is not None]
    wanted.extend(_reweights(signals, playbook))
    wanted.extend(_field_changes(summary, playbook))
    best: dict[str, dict[str, Any]] = {}
    for c in wanted:
        if c["signal"] not in best or c["e_value"] > best[c["signal"]]["e_value"]:
            best[c["signal"]] = c
    held = held_evidence(summary, playbook)
    found = e_bh({name: c["e_value"] for name, c in best.items()} | held, tests=tests, alpha=alpha)
    bar = e_threshold(tests, max(len(found), 1), alpha)
    out = []
    for name in sorted(found - set(held)):
        c = {**best[name], "e_needed": round(bar, 2)}
        if c["op"] in UNDO and c["e_value"] < float(dict(bars or {}).get(name, 0.0)):
            continue
        out.append(c)
    fields = one_per_field([c for c in out if "=" in c["signal"] and c.get("rule")])
    out = [c for c in out if not ("=" in c["signal"] and c.get("rule"))] + fields
    return sorted(out, key=lambda c: (-c["e_value"], c["op"], c["target"]))


def family_size(summary: Mapping[str, Any], playbook: Mapping[str, Any]) -> int:
    """How many one-sided hypotheses the playbook's changes are claims about: the K e-BH divides by.

    Counted from the playbook and which signals and levels the fit has (never from their outcomes), so
    it is fixed before the evidence is read: a question "helps" (one test), and once listed also "hurts"
    (the drop); pains need verifying, one per count signal; a firmographic level only disqualifies, and
    only when one rule can say it (an employee band in the middle cannot); a qualification answer can
    be required or disqualified (two tests, since the data picks the direction), an up-sell fact only
    favoured. Adopted items stay in the family with their evidence (`held_evidence`).
    """
    count = 0
    listed = {"question": playbook.get("questions", []), "meddic": playbook.get("meddic", [])}
    for name in dict(summary.get("signals", {})):
        if actionable(name):
            kind, _, ident = name.partition(":")
            count += 1 + (ident in listed.get(kind, []))
    qualifying = {f["field"]: f["qualification"] for f in summary.get("fields", [])}
    for e in summary.get("levels", []):
        field, level, qualification = e["field"], e["level"], qualifying.get(e["field"], True)
        if level == OTHER:
            continue
        if not qualification and field in FIRMOGRAPHIC:
            count += attribute_rule(field, level) is not None
        elif not qualification:
            count += 1  # a fact (up-sell): only the better level is ever favoured
        else:
            count += 1 if level == UNKNOWN else 2
    return max(count, 1)


def held_evidence(summary: Mapping[str, Any], playbook: Mapping[str, Any]) -> dict[str, float]:
    """The e-values, now, of the claims the playbook already acts on (a listed question helps, a
    disqualified segment loses more, a required answer wins more). They stay in e-BH's ranking, so an
    adopted effect still counts among the discoveries and the next claim's bar is K/(alpha k) with that
    k, not K/alpha again: evidence found earlier keeps working for the family."""
    out: dict[str, float] = {}
    listed = {"question": playbook.get("questions", []), "meddic": playbook.get("meddic", [])}
    disqualify = playbook.get("disqualify", [])
    for name, s in dict(summary.get("signals", {})).items():
        kind, _, ident = name.partition(":")
        if ident in listed.get(kind, []):
            out[f"held:{name}"] = e_values(s)[0]
        elif (name in COUNTS and playbook.get("verify_pains")) or (rule_for(name) is not None and rule_for(name) in disqualify):
            out[f"held:{name}"] = e_values(s)[1]
    rules = {(r["field"], r["level"]): r["op"] for r in playbook.get("field_rules", [])}
    for e in summary.get("levels", []):
        op = rules.get((e["field"], e["level"]))
        if op is None and attribute_rule(e["field"], e["level"]) in disqualify:
            op = "disqualify"
        if op is not None:
            up, down = e_values(e)
            out[f"held:{e['field']}={e['level']}"] = down if op == "disqualify" else up
    return {name: round(min(e, 1e12), 2) for name, e in out.items()}


def _field_changes(summary: Mapping[str, Any], playbook: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Qualification-field rules (one level against the rest), with the e-value of their direction."""
    out = []
    for c in field_candidates(summary, playbook):
        up, down = e_values(c)
        out.append({**c, "e_value": round(min(up if float(c["effect"]) > 0 else down, 1e12), 2)})
    return out


UNDO = ("drop_question", "drop_meddic")


def _change_for(name: str, s: Mapping[str, Any], playbook: Mapping[str, Any]) -> dict[str, Any] | None:
    """The change a signal asks for, if its shrunk effect is big enough to matter (evidence is judged later)."""
    kind, _, ident = name.partition(":")
    effect = float(s["effect"])
    up, down = e_values(s)
    listed = {"question": playbook.get("questions", []), "meddic": playbook.get("meddic", [])}
    if kind in listed:
        if ident not in listed[kind] and effect >= MIN_EFFECT:
            op = "add_question" if kind == "question" else "capture_meddic"
            return _make(op, ident, name, s, up, weight=round(effect, 2))
        if ident in listed[kind] and effect < 0:
            op = "drop_question" if kind == "question" else "drop_meddic"
            return _make(op, ident, name, s, down)
        return None
    if name in COUNTS and not playbook.get("verify_pains") and -effect >= MIN_EFFECT:
        return _make("verify_pains", "pains", name, s, down)
    rule = rule_for(name)
    if rule is not None and rule not in playbook.get("disqualify", []) and -effect >= MIN_ICP_EFFECT:
        return _make("disqualify", name, name, s, down, rule=rule)
    return None


def _reweights(signals: Mapping[str, Mapping[str, Any]], playbook: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A weight far from the current estimate; the evidence is that of a sign change when it flips."""
    out = []
    for name, weight in dict(playbook.get("weights", {})).items():
        s = signals.get(name)
        if s is None:
            continue
        gap = float(s["effect"]) - float(weight)
        shifted = {**s, "effect": gap}
        up, down = e_values(shifted)
        if abs(gap) >= REWEIGHT_GAP:
            out.append(_make("reweight", name, name, s, up if gap > 0 else down,
                             weight=round(float(s["effect"]), 2), previous=weight))
    return out


def _make(op: str, target: str, signal: str, s: Mapping[str, Any], e: float, **extra: Any) -> dict[str, Any]:
    change = {"op": op, "target": target, "signal": signal, "e_value": round(min(e, 1e12), 2), "n": int(s["n_with"]),
              "effect": s["effect"], "interval": s["interval"], "points": s["points"],
              "win_rate_with": _rate(s["wins_with"], s["n_with"]),
              "win_rate_without": _rate(s["wins_without"], s["n_without"])}
    change.update(extra)
    return change


def _rate(wins: int, n: int) -> float | None:
    return round(wins / n, 4) if n else None


def diff_line(change: Mapping[str, Any]) -> str:
    """One line a manager reads: what changes, by how much, on how much data, how sure."""
    pts, lo, hi = change["points"]
    evidence = f", evidence {min(float(change['e_value']), 1e6):,.0f} to 1" if "e_value" in change else ""
    figures = f"{pts:+.1f} points (on {change['n']:,} deals, 90% interval {lo:+.1f} to {hi:+.1f}{evidence})"
    op, target = change["op"], labels.signal(change["target"]) if ":" in str(change["target"]) else labels.phrase(change["target"])
    if op == "field_rule":
        return field_rule_line(change, figures)
    return {
        "add_question": f"add question {target}: win rate {figures} when asked",
        "drop_question": f"drop question {target}: win rate {figures} when asked",
        "capture_meddic": f"require MEDDIC {target} before handoff: win rate {figures} when captured",
        "drop_meddic": f"stop requiring MEDDIC {target}: win rate {figures} when captured",
        "disqualify": f"tighten ICP on {target}: disqualify leads where {_rule_text(change.get('rule'))}; "
                      f"win rate {figures} in that segment",
        "verify_pains": f"verify claimed pains with the prospect before handoff: each unconfirmed pain {figures}",
        "reweight": f"reweight {target} from {change.get('previous')} to {change.get('weight')} (log-odds; {figures})",
    }[op]


def _rule_text(rule: Mapping[str, Any] | None) -> str:
    return "" if not rule else f"{labels.phrase(rule['field'])} {rule['op']} {rule['value']}"


def apply(playbook: Mapping[str, Any], changes: list[Mapping[str, Any]], version: int) -> dict[str, Any]:
    """The playbook after the changes, as a new version."""
    new = copy.deepcopy(dict(playbook))
    for c in changes:
        op, target = c["op"], c["target"]
        if op == "add_question" and target not in new["questions"]:
            new["questions"].append(target)
        elif op == "drop_question":
            new["questions"] = [q for q in new["questions"] if q != target]
        elif op == "capture_meddic" and target not in new["meddic"]:
            new["meddic"].append(target)
        elif op == "drop_meddic":
            new["meddic"] = [m for m in new["meddic"] if m != target]
        elif op == "disqualify" and c.get("rule") and c["rule"] not in new["disqualify"]:
            new["disqualify"].append(dict(c["rule"]))
        elif op == "verify_pains":
            new["verify_pains"] = True
        elif op == "field_rule" and c.get("rule") and c["rule"] not in new.setdefault("field_rules", []):
            new["field_rules"].append(dict(c["rule"]))
        elif op not in ("reweight",):
            raise ValueError(f"unknown playbook change op {op!r}")
        if c.get("weight") is not None and op in ("add_question", "capture_meddic", "reweight"):
            new["weights"][c.get("signal", target)] = c["weight"]
        if op in ("drop_question", "drop_meddic"):
            new["weights"].pop(c.get("signal", target), None)
    new["version"] = version
    return new
