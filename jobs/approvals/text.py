"""The words of a manager's approval task, built in one place so the quality gate evals exactly what is written.

Pure (the Decision only): jobs.approvals.proposals writes the task, jobs.engine.quality gates the same title and body.
"""

from __future__ import annotations

from collections.abc import Mapping

from jobs.loops import labels
from jobs.loops.decision import ActionKind, Decision

ANSWER = {False: "Complete this task to approve; reject it (with a comment) to decline.",
          True: "Complete this task when reviewed; reject it with a comment if something was wrong."}

# Kinds whose only output is a manager's task: their title and body are generated text like any other.
PROPOSAL_KINDS = frozenset({ActionKind.PROPOSE_PLAYBOOK_CHANGE, ActionKind.FLAG_SDR})


def title(decision: Decision) -> str:
    payload = decision.payload if isinstance(decision.payload, Mapping) else {}
    return str(payload.get("title") or payload.get("subject") or f"{labels.word(decision.kind.value)} for record {decision.target_id}")


def body(decision: Decision, review: bool = False) -> str:
    """The task body: what the loop wrote, its reasons, and how to answer (review: a spot-check)."""
    lines = [str(decision.payload.get("body") or decision.payload.get("summary") or "")]
    lines += [f"- {r.text}" for r in decision.reasons]
    lines.append(ANSWER[review])
    return "\n".join(line for line in lines if line)[:4000]


def texts(decision: Decision) -> dict[str, str]:
    """The approval task's generated text, by where it goes (the gate's `texts` shape)."""
    return {"proposal:title": title(decision), "proposal:body": body(decision)}
