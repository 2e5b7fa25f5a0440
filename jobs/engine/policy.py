"""Per-tenant policy: what the system may do alone, per action kind, with thresholds.

A policy is an ordered list of rules (JSON in the Policy table). The first rule whose
action and conditions match a decision decides its autonomy. Compensation and
employment changes are forbidden by locked rules that are checked before the tenant's
own rules and can be neither edited nor shadowed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from connector.store.installations import audit
from connector.store.tables import Policy as PolicyRow
from jobs.loops import labels
from jobs.loops.decision import ActionKind, Decision


class Autonomy(StrEnum):
    AUTO = "auto"
    DRAFT = "draft"
    NEEDS_APPROVAL = "needs_approval"
    FORBIDDEN = "forbidden"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What policy says about one decision, and which rule said it (shown in the audit)."""

    autonomy: Autonomy
    rule: str


class PolicyError(ValueError):
    """A policy that cannot be saved; the message names the bad rule."""


LOCKED_RULES: tuple[dict[str, Any], ...] = (
    {"id": "locked-no-compensation", "action": "change_compensation", "autonomy": "forbidden", "locked": True},
    {"id": "locked-no-employment", "action": "change_employment", "autonomy": "forbidden", "locked": True},
)
LOCKED_ACTIONS = frozenset(rule["action"] for rule in LOCKED_RULES)

DEFAULT_RULES: tuple[dict[str, Any], ...] = (
    {"id": "crm-fields-auto", "action": "update_field", "autonomy": "auto"},
    {"id": "cards-auto", "action": "update_card", "autonomy": "auto"},
    {"id": "tasks-auto", "action": "create_task", "autonomy": "auto"},
    {"id": "notes-auto", "action": "create_note", "autonomy": "auto"},
    {"id": "follow-ups-draft", "action": "draft_email", "autonomy": "draft"},
    {"id": "send-email-small", "action": "send_email", "autonomy": "auto", "when": {"mrr_below": 1000}},
    {"id": "send-email-approval", "action": "send_email", "autonomy": "needs_approval"},
    {"id": "discount-approval", "action": "offer_discount", "autonomy": "needs_approval"},
    {"id": "flag-sdr-approval", "action": "flag_sdr", "autonomy": "needs_approval"},
    {"id": "playbook-approval", "action": "propose_playbook_change", "autonomy": "needs_approval"},
)
FALLBACK = Verdict(Autonomy.NEEDS_APPROVAL, "fallback: no rule matched, a person decides")

_CONDITIONS = {
    "amount_below": "number",
    "amount_at_least": "number",
    "mrr_below": "number",
    "mrr_at_least": "number",
    "stages": "strings",
    "loops": "strings",
}
_RULE_KEYS = {"id", "action", "autonomy", "when", "locked", "note"}


def default_rules() -> list[dict[str, Any]]:
    """The seed policy every new installation starts with (a fresh copy it may edit)."""
    return [dict(rule, when=dict(rule["when"])) if "when" in rule else dict(rule) for rule in DEFAULT_RULES]


def evaluate(rules: Sequence[Mapping[str, Any]], decision: Decision) -> Verdict:
    """The autonomy of one decision: locked rules first, then the tenant's rules in order."""
    for rule in (*LOCKED_RULES, *rules):
        if _matches(rule, decision):
            return Verdict(Autonomy(rule["autonomy"]), _describe(rule))
    return FALLBACK


def _matches(rule: Mapping[str, Any], decision: Decision) -> bool:
    if rule["action"] not in ("*", decision.kind.value):
        return False
    when = rule.get("when") or {}
    mrr = monthly_value(decision)
    amount = decision.amount
    checks = {
        "amount_below": lambda v: amount is not None and amount < Decimal(str(v)),
        "amount_at_least": lambda v: amount is not None and amount >= Decimal(str(v)),
        "mrr_below": lambda v: mrr is not None and mrr < Decimal(str(v)),
        "mrr_at_least": lambda v: mrr is not None and mrr >= Decimal(str(v)),
        "stages": lambda v: decision.stage_id in v,
        "loops": lambda v: decision.loop in v,
    }
    return all(checks[name](value) for name, value in when.items())


def monthly_value(decision: Decision) -> Decimal | None:
    """MRR of the deal: payload "mrr" when the loop knows it, else the (annual) amount / 12."""
    raw = decision.payload.get("mrr") if isinstance(decision.payload, Mapping) else None
    if raw is not None:
        try:
            return Decimal(str(raw))
        except InvalidOperation:
            return None
    return decision.amount / 12 if decision.amount is not None else None


def _describe(rule: Mapping[str, Any]) -> str:
    when = rule.get("when") or {}
    conditions = ", ".join(f"{k}={v}" for k, v in sorted(when.items()))
    return f"{rule['id']}: {rule['action']} -> {rule['autonomy']}" + (f" when {conditions}" if conditions else "")


def validate(rules: Any) -> list[dict[str, Any]]:
    """Check a policy before it is saved; raise PolicyError naming the first bad rule."""
    if not isinstance(rules, list):
        raise PolicyError("a policy is a list of rules")
    seen: set[str] = set()
    for index, rule in enumerate(rules):
        label = f"rule {index + 1}" + (f" ({rule.get('id')!r})" if isinstance(rule, dict) and rule.get("id") else "")
        problem = _rule_problem(rule, seen)
        if problem:
            raise PolicyError(f"{label}: {problem}")
        seen.add(rule["id"])
    return [dict(rule) for rule in rules]


def _rule_problem(rule: Any, seen: set[str]) -> str | None:
    if not isinstance(rule, dict):
        return "a rule is an object with id, action, autonomy and optional when"
    unknown = set(rule) - _RULE_KEYS
    if unknown:
        return f"unknown keys {sorted(unknown)}"
    if not isinstance(rule.get("id"), str) or not rule["id"].strip():
        return "needs a non-empty id"
    if rule["id"] in seen:
        return "duplicate id"
    if rule.get("locked"):
        return "locked rules are built in and cannot be added or edited"
    action = rule.get("action")
    if action != "*" and action not in {k.value for k in ActionKind}:
        return f"there is no action {action!r} (one of {', '.join(labels.phrase(k.value) for k in ActionKind)}, or any)"
    if action in LOCKED_ACTIONS:
        return f"{labels.phrase(action)} is always forbidden and cannot be allowed"
    if rule.get("autonomy") not in {a.value for a in Autonomy}:
        return f"what salesloop may do must be one of {', '.join(labels.phrase(a.value) for a in Autonomy)}, got {rule.get('autonomy')!r}"
    return _when_problem(rule.get("when"))


def _when_problem(when: Any) -> str | None:
    if when is None:
        return None
    if not isinstance(when, dict):
        return "when must be an object of conditions"
    for name, value in when.items():
        kind = _CONDITIONS.get(name)
        if kind is None:
            return f"there is no condition {name!r} (one of {', '.join(labels.phrase(c) for c in _CONDITIONS)})"
        if kind == "number" and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
            return f"“{labels.phrase(name)}” needs a number of 0 or more, got {value!r}"
        if kind == "strings" and (not isinstance(value, list) or not all(isinstance(v, str) for v in value) or not value):
            return f"“{labels.phrase(name)}” needs at least one name, got {value!r}"
    return None


def load_rules(session: Session, installation_id: str) -> list[dict[str, Any]]:
    """The tenant's rules, seeding the defaults on first use."""
    row = session.get(PolicyRow, installation_id)
    if row is None:
        row = PolicyRow(installation_id=installation_id, rules=default_rules(), updated_by="system:seed")
        session.add(row)
        session.flush()
    return list(row.rules)


def save_rules(session: Session, installation_id: str, rules: Any, *, by: str) -> list[dict[str, Any]]:
    """Validate and store a tenant's edited policy, with an audit entry (the admin editor calls this)."""
    checked = validate(rules)
    row = session.get(PolicyRow, installation_id)
    if row is None:
        row = PolicyRow(installation_id=installation_id)
        session.add(row)
    row.rules = checked
    row.updated_by = by
    audit(session, installation_id, by, "policy:saved", {"rules": len(checked)})
    return checked
