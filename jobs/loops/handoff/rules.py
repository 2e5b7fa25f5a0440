"""Qualification rules the handoff loop proposes from categorical fields, worded in the CRM's own labels.

A level is judged against the rest of the deals (the contrasts `handoff_model.fit` stores in
`levels`); a field yields at most one rule (its strongest decisive level), so the loop never switches
on one level of a field while another is already on. Qualification fields give "require <field> =
<level>" or "disqualify <field> = <level>"; deal attributes (industry, country, size, lead source)
give the playbook's disqualify rules, which the sandbox and the cards already understand.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from jobs.loops.handoff.attributes import OTHER, UNKNOWN, Rule

MIN_FIELD_EFFECT = 0.25  # log-odds a level must move against the rest to be worth a rule
_BANDS = {"<50": ("<", 50), "2000+": (">=", 2000)}
FIRMOGRAPHIC = ("industry", "country", "employees", "lead_source")  # fields the playbook's disqualify rules know  # employee bands a single disqualify rule can express


def attribute_rule(field: str, level: str) -> dict[str, Any] | None:
    """The playbook disqualify rule for a deal attribute's level (None: not expressible as one rule)."""
    if field == "employees":
        band = _BANDS.get(level)
        return {"field": "employees", "op": band[0], "value": band[1]} if band else None
    if field in ("industry", "country", "lead_source") and level not in (UNKNOWN, OTHER):
        return {"field": field, "op": "==", "value": level}
    return None


def field_changes(summary: Mapping[str, Any], playbook: Mapping[str, Any], z_needed: float) -> list[dict[str, Any]]:
    """At most one change per categorical field: its strongest level beyond doubt, not already in the playbook."""
    return one_per_field([c for c in field_candidates(summary, playbook) if c["z"] >= z_needed])


def field_candidates(summary: Mapping[str, Any], playbook: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every level whose effect against the rest is big enough to matter, as the change it asks for (with
    its effect, sd and z): the decision rule judges the evidence, then `one_per_field` keeps one per field."""
    qualifying = {f["field"]: f["qualification"] for f in summary.get("fields", [])}
    out = []
    for e in summary.get("levels", []):
        change = _change(e, qualifying.get(e["field"], True), playbook)
        if change is not None:
            out.append(change)
    return out


def one_per_field(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The strongest change per field (z, or the e-value when the decision rule gives one)."""
    best: dict[str, dict[str, Any]] = {}
    for c in changes:
        field = c["signal"].split("=", 1)[0]
        if field not in best or _rank(c) > _rank(best[field]):
            best[field] = c
    return list(best.values())


def _rank(change: Mapping[str, Any]) -> tuple[float, bool]:
    """Strongest first; on a tie (the two levels of a yes/no field) the disqualify wording wins."""
    strength = float(change.get("e_value", change["z"]))
    return round(strength, 1), change["op"] == "disqualify" or change["rule"].get("op") == "disqualify"


def _change(e: Mapping[str, Any], qualification: bool, playbook: Mapping[str, Any]) -> dict[str, Any] | None:
    effect, z = float(e["effect"]), float(e["effect"]) / max(float(e["sd"]), 1e-9)
    if e["level"] == OTHER or abs(effect) < MIN_FIELD_EFFECT:
        return None
    if not qualification and e["field"] not in FIRMOGRAPHIC:  # a fact (up-sell): favour the better level only
        return _field_change("qualify", e, z, playbook) if effect > 0 else None
    if not qualification:
        rule = attribute_rule(e["field"], e["level"]) if effect < 0 else None
        if rule is None or rule in playbook.get("disqualify", []):
            return None
        return _make("disqualify", f"{e['field']}:{e['level']}", e, abs(z), rule=rule)
    return _field_change("require" if effect > 0 else "disqualify", e, z, playbook)


def _field_change(op: str, e: Mapping[str, Any], z: float, playbook: Mapping[str, Any]) -> dict[str, Any] | None:
    """A rule on a CRM field in its own labels; one per field, never on the level 'unknown' as a requirement."""
    if (op != "disqualify" and e["level"] in (UNKNOWN, OTHER)) or any(
            r["field"] == e["field"] for r in playbook.get("field_rules", [])):
        return None  # one rule per qualification field: a second level would contradict or repeat the first
    field_rule = {"op": op, "field": e["field"], "level": e["level"]}
    return _make("field_rule", Rule(field_rule["op"], e["field"], e["level"]).text, e, abs(z), rule=field_rule)


def _make(op: str, target: str, e: Mapping[str, Any], z: float, **extra: Any) -> dict[str, Any]:
    """A playbook change with the evidence keys the proposal and the quality gate read."""
    rate_with = e["wins_with"] / e["n_with"] if e["n_with"] else None
    rate_without = e["wins_without"] / e["n_without"] if e["n_without"] else None
    base = min(max(rate_without if rate_without is not None else 0.5, 0.01), 0.99)
    points = [round(100 * (_shift(base, b) - base), 2) for b in (e["effect"], *e["interval"])]
    return {"op": op, "target": target, "signal": f"{e['field']}={e['level']}", "z": round(z, 2), "n": int(e["n_with"]),
            "effect": e["effect"], "sd": e["sd"], "interval": e["interval"], "points": points,
            "win_rate_with": None if rate_with is None else round(rate_with, 4),
            "win_rate_without": None if rate_without is None else round(rate_without, 4), **extra}


def _shift(p: float, log_odds: float) -> float:
    return 1.0 / (1.0 + math.exp(-(math.log(p / (1 - p)) + log_odds)))


def field_rule_line(change: Mapping[str, Any], figures: str) -> str:
    """The manager's line for a field rule: the rule in the CRM's labels, then its figures."""
    rule = change["rule"]
    return f"{Rule(rule['op'], rule['field'], rule['level']).text}: win rate {figures} for deals with that answer"
