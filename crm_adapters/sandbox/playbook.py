"""Qualification playbooks: what treatment SDRs must ask, capture and disqualify in a SimulatedWorld."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crm_adapters.sandbox import _vocab as V
from crm_adapters.sandbox.scenario import Rule


@dataclass(frozen=True, slots=True)
class Playbook:
    """The parsed playbook dict (see README): questions, MEDDIC to capture, disqualify rules, weights."""

    version: int = 0
    questions: tuple[str, ...] = ()
    meddic: tuple[str, ...] = ()
    disqualify: tuple[Rule, ...] = ()
    verify_pains: bool = False
    weights: Mapping[str, float] = field(default_factory=dict)
    field_rules: tuple[Mapping[str, str], ...] = ()  # {op: require | qualify | disqualify, field: label, level}

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | Playbook | None) -> Playbook:
        """Validate a playbook dict; unknown ids and malformed rules are errors, not silently ignored."""
        if raw is None:
            return cls()
        if isinstance(raw, Playbook):
            return raw
        if not isinstance(raw, Mapping):
            raise ValueError(f"a playbook must be a dict, got {type(raw).__name__}")
        unknown = sorted(
            set(raw) - {"version", "questions", "meddic", "disqualify", "verify_pains", "weights", "field_rules"}
        )
        if unknown:
            raise ValueError(f"unknown playbook keys {unknown}")
        questions = _ids(raw.get("questions", ()), V.QUESTIONS, "question")
        meddic = _ids(raw.get("meddic", ()), V.MEDDIC, "MEDDIC element")
        rules = tuple(_rule(r) for r in raw.get("disqualify", ()))
        weights = raw.get("weights", {})
        if not isinstance(weights, Mapping) or not all(isinstance(v, int | float) for v in weights.values()):
            raise ValueError("playbook weights must be a dict of name -> number")
        version = raw.get("version", 0)
        if not isinstance(version, int):
            raise ValueError(f"playbook version must be an integer, got {version!r}")
        field_rules = tuple(_field_rule(r) for r in raw.get("field_rules", ()))
        return cls(version, questions, meddic, rules, bool(raw.get("verify_pains", False)), dict(weights), field_rules)

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "questions": list(self.questions),
            "meddic": list(self.meddic),
            "disqualify": [r.as_dict() for r in self.disqualify],
            "verify_pains": self.verify_pains,
            "weights": dict(self.weights),
            **({"field_rules": [dict(r) for r in self.field_rules]} if self.field_rules else {}),
        }


def _ids(values: Any, vocab: tuple[str, ...], what: str) -> tuple[str, ...]:
    if isinstance(values, str) or not all(isinstance(v, str) for v in values):
        raise ValueError(f"playbook {what}s must be a list of ids")
    bad = [v for v in values if v not in vocab]
    if bad:
        raise ValueError(f"unknown {what} ids {bad}; expected some of {list(vocab)}")
    return tuple(dict.fromkeys(values))


def _field_rule(raw: Any) -> Mapping[str, str]:
    if (not isinstance(raw, Mapping) or set(raw) != {"op", "field", "level"}
            or raw["op"] not in ("require", "qualify", "disqualify")):
        raise ValueError(f"a field rule is {{'op': 'require' | 'qualify' | 'disqualify', 'field', 'level'}}, got {raw!r}")
    return {k: str(v) for k, v in raw.items()}


def _rule(raw: Any) -> Rule:
    if not isinstance(raw, Mapping) or set(raw) != {"field", "op", "value"}:
        raise ValueError(f"a disqualify rule is {{'field', 'op', 'value'}}, got {raw!r}")
    if raw["field"] not in V.RULE_FIELDS or raw["op"] not in V.RULE_OPS:
        raise ValueError(f"bad rule {dict(raw)!r}: fields {list(V.RULE_FIELDS)}, ops {list(V.RULE_OPS)}")
    value = raw["value"]
    if raw["op"] in ("in", "not_in"):
        if isinstance(value, str) or not hasattr(value, "__iter__"):
            raise ValueError(f"rule op {raw['op']!r} needs a list value, got {value!r}")
        value = tuple(value)
    return Rule(raw["field"], raw["op"], value)


def rule_mask(rule: Rule, fields: Mapping[str, np.ndarray]) -> np.ndarray:
    """Which rows of column arrays match one rule (vectorised Rule.matches)."""
    col = fields[rule.field]
    op, want = rule.op, rule.value
    if op in ("in", "not_in"):
        hit = np.isin(col, np.array(list(want), dtype=col.dtype if col.dtype.kind != "U" else object))
        if col.dtype.kind == "U":
            hit = np.isin(col.astype(object), list(want))
        return hit if op == "in" else ~hit
    try:
        if op == "==":
            return np.asarray(col == want)
        if op == "!=":
            return np.asarray(col != want)
        return {"<": col < want, "<=": col <= want, ">": col > want, ">=": col >= want}[op]  # type: ignore[no-any-return]
    except TypeError:
        return np.zeros(len(col), dtype=bool)


def rules_mask(
    rules: tuple[Rule, ...], fields: Mapping[str, np.ndarray], n: int, *, any_of: bool
) -> np.ndarray:
    """Rows matching any (disqualify) or all (segment) of the rules."""
    if not rules:
        return np.zeros(n, dtype=bool)
    masks = [rule_mask(r, fields) for r in rules]
    out = masks[0].copy()
    for m in masks[1:]:
        out = (out | m) if any_of else (out & m)
    return out
