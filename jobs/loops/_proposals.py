"""Building the decisions the learning loops share: playbook proposals and deal-card sections."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crm_adapters.model import Entity
from jobs.loops.decision import ActionKind, Decision, Reason
from jobs.loops.stats import Posterior, fingerprint


def pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def describe(post: Posterior, noun: str = "deals") -> str:
    """'62% of 40 deals (90% range 48%-74%)': a rate as people should read it, with its sample and interval."""
    return f"{pct(post.mean)} of {post.n:,} {noun} (90% range {pct(post.lo)}-{pct(post.hi)})"


def proposal(loop: str, title: str, diff: Sequence[Mapping[str, Any]], evidence: Mapping[str, Any],
             reasons: Sequence[Reason], *, n: int, model_version: str = "") -> Decision:
    """A PROPOSE_PLAYBOOK_CHANGE whose key and fingerprint depend only on the change itself.

    evidence["n"] is the sample behind it: the engine asks again after a rejection only when n grew.
    """
    fp = fingerprint({"loop": loop, "diff": list(diff)})
    payload = {"title": title, "diff": [dict(d) for d in diff], "evidence": {**evidence, "n": int(n)}, "fingerprint": fp}
    return Decision(loop=loop, kind=ActionKind.PROPOSE_PLAYBOOK_CHANGE, target=Entity.USER,
                    target_id=f"playbook:{loop}", key=f"{loop}:proposal:{fp}", payload=payload,
                    reasons=tuple(reasons), model_version=model_version)


def card(loop: str, section: str, deal_id: str, data: Mapping[str, Any], reasons: Sequence[Reason],
         model_version: str = "") -> Decision:
    """An UPDATE_CARD section for one deal; the key changes only when what it shows changes."""
    payload = {"section": section, **data}
    return Decision(loop=loop, kind=ActionKind.UPDATE_CARD, target=Entity.DEAL, target_id=deal_id,
                    key=f"{loop}:card:{deal_id}:{fingerprint(payload)}", payload=payload,
                    reasons=tuple(reasons), model_version=model_version)


def applied(book: Mapping[str, Any], approved: Sequence[str], payload: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """A playbook (`book`) with a proposal's {op: add|remove|set, field, value} changes applied, and the
    approval history with the proposal's fingerprint added."""
    target = {k: list(v) if isinstance(v, list) else v for k, v in book.items()}
    for change in payload.get("diff", ()):
        field, value, op = change["field"], change["value"], change.get("op", "add")
        if op == "set":
            target[field] = value
            continue
        items = list(target.get(field, []))
        if op == "add" and value not in items:
            items.append(value)
        elif op == "remove" and value in items:
            items.remove(value)
        target[field] = items
    return target, (*approved, payload.get("fingerprint", ""))

