"""The versioned qualification playbook and the changes the handoff loop proposes to it.

A playbook is the dict SimulatedWorld and the cards read: {version, questions, meddic, disqualify,
verify_pains, weights}. Control keeps the baseline; approved changes make a new treatment version.
A change is proposed only when its evidence is decisive (Bonferroni-strict z on a shrunk effect).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from jobs.loops.handoff.model import COUNTS, decisive_z
from jobs.loops.handoff.rules import field_changes, field_rule_line

BASELINE: dict[str, Any] = {"version": 0, "questions": [], "meddic": [], "disqualify": [], "verify_pains": False,
                            "weights": {}}
MIN_EFFECT = 0.10  # shrunk log-odds a question / MEDDIC element must reach to be worth adding
MIN_ICP_EFFECT = 0.50  # a segment must be this much worse (shrunk log-odds) to be disqualified
REWEIGHT_GAP = 0.25
REPROPOSE_GROWTH = 1.5  # a rejected change comes back only once its n grew by 50%
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


def candidate_changes(summary: Mapping[str, Any], playbook: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every change the evidence decisively supports, strongest first."""
    signals: Mapping[str, Mapping[str, Any]] = summary.get("signals", {})
    z_needed = decisive_z(sum(1 for name in signals if actionable(name)) + len(summary.get("levels", [])))
    out: list[dict[str, Any]] = []
    for name, s in signals.items():
        change = _change_for(name, s, playbook, z_needed)
        if change is not None:
            out.append(change)
    out.extend(_reweights(signals, playbook, z_needed))
    out.extend(field_changes(summary, playbook, z_needed))
    return sorted(out, key=lambda c: (-c["z"], c["op"], c["target"]))


def _z(s: Mapping[str, Any], direction: int) -> float:
    """How many sds the effect sits on the `direction` side of zero."""
    return direction * float(s["effect"]) / max(float(s["sd"]), 1e-9)


def _change_for(name: str, s: Mapping[str, Any], playbook: Mapping[str, Any], z_needed: float) -> dict[str, Any] | None:
    """Decisive = the sign is beyond doubt (Bonferroni z) and the shrunk effect is big enough to matter."""
    kind, _, ident = name.partition(":")
    effect = float(s["effect"])
    listed = {"question": playbook.get("questions", []), "meddic": playbook.get("meddic", [])}
    if kind in listed:
        if ident not in listed[kind] and _z(s, +1) >= z_needed and effect >= MIN_EFFECT:
            op = "add_question" if kind == "question" else "capture_meddic"
            return _make(op, ident, name, s, _z(s, +1), weight=round(effect, 2))
        if ident in listed[kind] and _z(s, -1) >= z_needed:
            op = "drop_question" if kind == "question" else "drop_meddic"
            return _make(op, ident, name, s, _z(s, -1))
        return None
    if name in COUNTS and not playbook.get("verify_pains") and _z(s, -1) >= z_needed and -effect >= MIN_EFFECT:
        return _make("verify_pains", "pains", name, s, _z(s, -1))
    rule = rule_for(name)
    if (rule is not None and rule not in playbook.get("disqualify", []) and _z(s, -1) >= z_needed
            and -effect >= MIN_ICP_EFFECT):
        return _make("disqualify", name, name, s, _z(s, -1), rule=rule)
    return None


def _reweights(signals: Mapping[str, Mapping[str, Any]], playbook: Mapping[str, Any], z_needed: float) -> list[dict[str, Any]]:
    out = []
    for name, weight in dict(playbook.get("weights", {})).items():
        s = signals.get(name)
        if s is None:
            continue
        gap = float(s["effect"]) - float(weight)
        z = (abs(gap) - 0.0) / max(float(s["sd"]), 1e-9)
        if abs(gap) >= REWEIGHT_GAP and z >= z_needed:
            out.append(_make("reweight", name, name, s, z, weight=round(float(s["effect"]), 2), previous=weight))
    return out


def _make(op: str, target: str, signal: str, s: Mapping[str, Any], z: float, **extra: Any) -> dict[str, Any]:
    change = {"op": op, "target": target, "signal": signal, "z": round(z, 2), "n": int(s["n_with"]),
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
    figures = f"{pts:+.1f} points (n={change['n']}, 90% interval {lo:+.1f} to {hi:+.1f})"
    op, target = change["op"], change["target"]
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
        "reweight": f"reweight {target}: {change.get('previous')} -> {change.get('weight')} (log-odds; {figures})",
    }[op]


def _rule_text(rule: Mapping[str, Any] | None) -> str:
    return "" if not rule else f"{rule['field']} {rule['op']} {rule['value']}"


def is_rejected(state: Mapping[str, Any], fp: str, n: int) -> bool:
    """Rejected before, and the evidence has not grown by half since."""
    seen = state.get("rejected", {}).get(fp)
    return seen is not None and n < REPROPOSE_GROWTH * int(seen.get("n", 0))


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
