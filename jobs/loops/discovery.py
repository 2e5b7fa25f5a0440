"""Discovery questions loop: which questions asked in BDM discovery calls go with progress, which with stalls.

learn: per question, deals where the rep asked it vs deals where nobody did, against what happened next:
outcome "won" (default): won = success, lost or stalled (no stage move for N days) = failure, still
moving = not counted; outcome "progress": a stage up within N days of the call, or won. Beta-binomial
with a prior pooled over the questions, so a question asked twice is shrunk to the common rate.
decide: a framework proposal only when the always-valid evidence (e-values, e-BH over the questions at
false-discovery rate 5%) is decisive, however many weeks were looked at;
a "discovery" card on early open deals: the questions that matter most and were not asked yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Self

from crm_adapters.snapshot import Snapshot
from jobs.loops import labels
from jobs.loops import stats as bayes
from jobs.loops._outcomes import is_early, outcome
from jobs.loops._proposals import applied, card, describe, pct, proposal
from jobs.loops._talk import TRANSCRIPTS, is_discovery_call, transcript_turns
from jobs.loops.base import Learned, LoopDefinition
from jobs.loops.decision import Decision, Reason

NAME = "discovery"
PARAMS: dict[str, Any] = {"horizon_days": 30, "outcome": "won", "min_n": 8, "min_lift": 0.03, "card_top": 3}


def _no_framework() -> dict[str, list[str]]:
    """A fresh empty playbook (each state its own lists)."""
    return {"ask": [], "stall_signals": []}


@dataclass(frozen=True)
class DiscoveryState:
    """Per question asked in discovery calls: its statistics and verdict; the approved framework (questions
    to ask, stall signals) and the proposals approved into it."""

    params: Mapping[str, Any] = field(default_factory=lambda: dict(PARAMS))
    questions: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    framework: Mapping[str, Any] = field(default_factory=_no_framework)
    n_deals: int = 0
    base_rate: float = 0.0
    approved: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(params=dict(data.get("params") or PARAMS), questions=dict(data.get("questions") or {}),
                   framework=dict(data.get("framework") or _no_framework()), n_deals=int(data.get("n_deals", 0)),
                   base_rate=float(data.get("base_rate", 0.0)), approved=tuple(data.get("approved") or ()))

    def to_json(self) -> dict[str, Any]:
        return {"params": dict(self.params), "questions": dict(self.questions), "framework": dict(self.framework),
                "n_deals": self.n_deals, "base_rate": self.base_rate, "approved": list(self.approved)}


def _params(state: DiscoveryState | None) -> dict[str, Any]:
    return {**PARAMS, **dict(state.params if state else {})}


def asked_in(snapshot: Snapshot, deal_id: str) -> tuple[frozenset[str], datetime | None]:
    """Questions the rep asked in a deal's discovery calls, and when the first such call was."""
    calls = [a for a in snapshot.activities_for(deal_id) if is_discovery_call(a)]
    asked: set[str] = set()
    for call in calls:
        for turn in transcript_turns(snapshot, call):
            if turn.speaker == "rep":
                asked |= turn.questions
    return frozenset(asked), (calls[0].occurred_at if calls else None)


def _rows(snapshot: Snapshot, now: datetime, params: Mapping[str, Any]) -> list[tuple[frozenset[str], bool]]:
    rows = []
    for deal in snapshot.deals:
        asked, first = asked_in(snapshot, deal.remote_id)
        if first is None or first > now:
            continue
        result = outcome(snapshot, deal, first, now, params["horizon_days"], params["outcome"])
        if result is not None:
            rows.append((asked, result))
    return rows


def question_stats(rows: list[tuple[frozenset[str], bool]], params: Mapping[str, Any],
                   previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Per question: asked vs not asked posteriors, P(asked is better), lift, the running e-value and a verdict."""
    questions = sorted(set().union(*(asked for asked, _ in rows))) if rows else []
    groups = {q: [(q in asked, ok) for asked, ok in rows] for q in questions}
    counts = {q: (sum(ok for a, ok in g if a), sum(1 for a, _ in g if a),
                  sum(ok for a, ok in g if not a), sum(1 for a, _ in g if not a)) for q, g in groups.items()}
    prior = bayes.pooled_prior([(k1, n1) for k1, n1, _, _ in counts.values()])
    out: dict[str, Any] = {}
    for q, (k1, n1, k0, n0) in counts.items():
        with_q, without = bayes.posterior(k1, n1, prior), bayes.posterior(k0, n0, prior)
        p = bayes.prob_greater(with_q, without)
        lift = with_q.mean - without.mean
        e = bayes.e_gap(k1, n1, k0, n0)
        out[q] = {"asked": with_q.as_dict(), "not_asked": without.as_dict(), "p_better": round(p, 4),
                  "lift": round(lift, 4), **bayes.carried(dict(previous or {}).get(q), e)}
    verdicts = bayes.judge({q: (s["e_value"], s["lift"], min(s["asked"]["n"], s["not_asked"]["n"]))
                            for q, s in out.items()}, min_n=params["min_n"], min_lift=params["min_lift"])
    for q, v in verdicts.items():
        out[q]["verdict"] = v
    return out


def learn(snapshot: Snapshot, state: DiscoveryState | None, now: datetime) -> Learned[DiscoveryState]:
    """Relate questions asked to what happened next; keep the approved framework as it was."""
    params = _params(state)
    rows = _rows(snapshot, now, params)
    questions = question_stats(rows, params, state.questions if state else None)
    base = sum(ok for _, ok in rows) / len(rows) if rows else 0.0
    new_state = DiscoveryState(params=params, questions=questions, framework=dict(state.framework if state else _no_framework()),
                               n_deals=len(rows), base_rate=round(base, 4), approved=state.approved if state else ())
    verdicts = {q: s["verdict"] for q, s in questions.items()}
    metrics = {"n_deals": len(rows), "base_rate": round(base, 4), "verdicts": verdicts,
               "questions": {q: {"lift": s["lift"], "p_better": s["p_better"], **s["asked"]} for q, s in questions.items()}}
    return Learned(state=new_state, metrics=metrics)


VERB = {"won": "were won", "progress": "progressed"}


def _reason(q: str, s: Mapping[str, Any], mode: str) -> Reason:
    with_q, without = bayes.Posterior(**s["asked"]), bayes.Posterior(**s["not_asked"])
    text = (f"Deals where the rep asked about {labels.phrase(q)} {VERB[mode]} {describe(with_q)} vs {describe(without)} "
            f"without it; {labels.pct(float(s['p_better']))} chance that asking helps, "
            f"evidence {abs(float(s.get('e_value', 1.0))):,.0f} to 1")
    return Reason(code=f"question_{s['verdict']}", text=text, weight=float(s["lift"]),
                  evidence=(f"asked: {with_q.k} of {with_q.n}", f"not asked: {without.k} of {without.n}"))


def _proposal(state: DiscoveryState) -> Decision | None:
    framework = state.framework
    diff: list[dict[str, Any]] = []
    for q, s in sorted(state.questions.items()):
        if s["verdict"] == "better" and q not in framework.get("ask", []):
            diff.append({"op": "add", "field": "ask", "value": q})
        elif s["verdict"] == "worse" and q not in framework.get("stall_signals", []):
            diff.append({"op": "add", "field": "stall_signals", "value": q})
    if not diff:
        return None
    questions = state.questions
    reasons = [_reason(d["value"], questions[d["value"]], state.params["outcome"]) for d in diff]
    ask = [d["value"] for d in diff if d["field"] == "ask"]
    title = (f"Discovery framework: ask about {' and '.join(labels.phrase(q) for q in ask)}" if ask
             else "Discovery framework: new stall signals")
    evidence = {d["value"]: questions[d["value"]] for d in diff}
    evidence["_base"] = {"n_deals": state.n_deals, "success_rate": state.base_rate, "outcome": state.params["outcome"]}
    return proposal(NAME, title, diff, evidence, reasons, n=state.n_deals)


def _recommended(state: DiscoveryState) -> list[tuple[str, float]]:
    """Questions worth asking, best first: decisive ones, then approved ones, by lift."""
    questions = state.questions
    approved = set(state.framework.get("ask", []))
    picks = {q: s["lift"] for q, s in questions.items() if s["verdict"] == "better"}
    picks.update({q: questions.get(q, {}).get("lift", 0.0) for q in approved if q not in picks})
    return sorted(picks.items(), key=lambda kv: (-kv[1], kv[0]))


def decide(snapshot: Snapshot, state: DiscoveryState, now: datetime) -> list[Decision]:
    """Propose decisive framework changes; show early open deals the best questions not yet asked."""
    decisions: list[Decision] = []
    prop = _proposal(state)
    if prop is not None:
        decisions.append(prop)
    recommended = _recommended(state)
    if not recommended:
        return decisions
    top = int(state.params.get("card_top", 3))
    for deal in sorted(snapshot.open_deals(), key=lambda d: d.remote_id):
        if not is_early(snapshot, deal):
            continue
        asked, _ = asked_in(snapshot, deal.remote_id)
        todo = [(q, lift) for q, lift in recommended if q not in asked][:top]
        if not todo:
            continue
        items = [{"question": q, "lift": round(lift, 3), "when_asked": state.questions.get(q, {}).get("asked")}
                 for q, lift in todo]
        reasons = [Reason(code="question_not_asked", text=f"Not asked yet: {labels.phrase(q)} (+{pct(lift)} success when asked)",
                          weight=lift) for q, lift in todo]
        decisions.append(card(NAME, "discovery", deal.remote_id, {"questions": items, "asked": sorted(asked)}, reasons))
    return decisions


def approve(state: DiscoveryState, payload: Mapping[str, Any]) -> DiscoveryState:
    """A manager approved the proposal: the discovery framework takes the change."""
    framework, approved = applied(state.framework, state.approved, payload)
    return replace(state, framework=framework, approved=approved)


DEFINITION = LoopDefinition(name=NAME, title="Discovery questions", learn=learn, decide=decide, approve=approve,
                            description="Discovery questions that go with deals that close vs stall",
                            process_group=TRANSCRIPTS, state_type=DiscoveryState)
