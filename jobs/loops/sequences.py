"""Outbound sequences loop: Thompson sampling over variants on positive replies and meetings, not opens.

learn: per sequence and variant, enrolments (distinct contacts sent to) and successes (a positive reply
or a meeting booked from that variant) -> Beta(1 + k, 1 + n - k). The next sends' allocation is
P(best) per active variant (probability matching), blended with a small permanent uniform holdout
so the bandit itself is measured. Stopping rule: every active variant has the minimum sample, the
leader's expected loss is below the threshold, its P(best) is decisive, and the always-valid e-value of
"the leader beats each other variant" clears 1/alpha (Bonferroni over the others), so peeking every
week declares a winner between equal variants in at most alpha (5%) of runs; then the winner is
proposed for promotion and the others for retirement (the engine's policy decides auto vs approval).

Tenant field mapping: the state's params["fields"] names the Activity.custom keys (sequence, variant, step,
reply, holdout). The sender reads the state's allocation[sequence] and tags sends drawn from the uniform
holdout with custom {holdout: true}, so learn() can report bandit-allocated vs holdout success rates.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Self

from crm_adapters.model import Activity, ActivityType, Direction
from crm_adapters.snapshot import Snapshot
from jobs.loops import labels
from jobs.loops import stats as bayes
from jobs.loops._proposals import describe, pct, proposal
from jobs.loops.base import Learned, LoopDefinition
from jobs.loops.decision import Decision, Reason

NAME = "sequences"
FIELDS = {"sequence": "sequence", "variant": "variant", "step": "step", "reply": "reply", "holdout": "holdout"}
PARAMS: dict[str, Any] = {"holdout": 0.05, "min_n": 200, "loss_threshold": 0.005, "p_best": 0.99,
                          "mature_days": 7, "fields": FIELDS, "alpha": bayes.ALPHA, "evidence_tau": list(bayes.TAU_POINTS)}
PRIOR = bayes.Prior(0.5, 2.0)  # Beta(1, 1)


@dataclass(frozen=True)
class SequencesState:
    """Per sequence: each variant's posterior and P(best), the stopping rule's readout, the promoted and
    retired variants; the allocation of the next sends per sequence and variant."""

    params: Mapping[str, Any] = field(default_factory=dict)
    sequences: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    allocation: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    approved: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(params=dict(data.get("params") or {}), sequences=dict(data.get("sequences") or {}),
                   allocation=dict(data.get("allocation") or {}), approved=tuple(data.get("approved") or ()))

    def to_json(self) -> dict[str, Any]:
        return {"params": dict(self.params), "sequences": dict(self.sequences), "allocation": dict(self.allocation),
                "approved": list(self.approved)}


def _params(state: SequencesState | None) -> dict[str, Any]:
    given = dict(state.params if state else {})
    return {**PARAMS, **given, "fields": {**FIELDS, **dict(given.get("fields") or {})}}


def _who(activity: Activity) -> str:
    """The enrolment unit: the contact, else the deal, else the activity itself."""
    if activity.contact_ids:
        return f"c:{activity.contact_ids[0]}"
    return f"d:{activity.deal_ids[0]}" if activity.deal_ids else f"a:{activity.remote_id}"


def tally(snapshot: Snapshot, now: datetime, params: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(sequence, variant) -> enrolments, successes, and the holdout's share of them."""
    f = params["fields"]
    first: dict[tuple[str, str, str], Activity] = {}
    wins: set[tuple[str, str, str]] = set()
    for a in sorted(snapshot.activities, key=lambda a: a.occurred_at):
        seq, var = a.custom.get(f["sequence"]), a.custom.get(f["variant"])
        if seq is None or var is None or a.occurred_at > now:
            continue
        key = (str(seq), str(var), _who(a))
        if a.type is ActivityType.EMAIL and a.direction is Direction.OUTBOUND:
            first.setdefault(key, a)
        elif a.type is ActivityType.MEETING or (a.type is ActivityType.EMAIL and a.direction is Direction.INBOUND
                                                and str(a.custom.get(f["reply"], "")).lower() == "positive"):
            wins.add(key)
    mature = now - timedelta(days=params["mature_days"])
    out: dict[tuple[str, str], dict[str, Any]] = defaultdict(lambda: {"n": 0, "k": 0, "holdout_n": 0, "holdout_k": 0})
    for key, send in first.items():
        if send.occurred_at > mature and key not in wins:
            continue  # too young to have failed yet
        cell, won = out[key[:2]], key in wins
        cell["n"] += 1
        cell["k"] += won
        if send.custom.get(f["holdout"]) in (True, "true", 1, "1"):
            cell["holdout_n"] += 1
            cell["holdout_k"] += won
    return dict(out)


def readout(seq: str, cells: Mapping[str, Mapping[str, Any]], retired: set[str], params: Mapping[str, Any]) -> dict[str, Any]:
    """Posteriors, P(best), expected loss, next allocation and the stopping verdict for one sequence."""
    posts = {v: bayes.posterior(c["k"], c["n"], PRIOR) for v, c in cells.items()}
    active = {v: p for v, p in posts.items() if v not in retired}
    ts = bayes.thompson(active, bayes.rng_for(NAME, seq, sorted((v, p.k, p.n) for v, p in active.items()))) if active else None
    h = params["holdout"] if len(active) > 1 else 0.0
    variants: dict[str, Any] = {}
    for v, p in sorted(posts.items()):
        p_best = ts["p_best"][v] if ts and v in active else 0.0
        alloc = (1 - h) * p_best + h / len(active) if v in active else 0.0
        variants[v] = {**p.as_dict(), "p_best": round(p_best, 4), "allocation": round(alloc, 4),
                       "expected_loss": round(ts["expected_loss"][v], 5) if ts and v in active else None,
                       "retired": v in retired}
    leader = max(active, key=lambda v: (variants[v]["p_best"], v)) if active else None
    enough = bool(active) and min(active[v].n for v in active) >= params["min_n"]
    evidence = _evidence(leader, cells, active, params)
    bar = bayes.e_threshold(max(len(active) - 1, 1), 1, params["alpha"])
    stop = (len(active) > 1 and leader is not None and enough and evidence >= bar
            and variants[leader]["expected_loss"] < params["loss_threshold"] and variants[leader]["p_best"] >= params["p_best"])
    return {"variants": variants, "leader": leader, "min_sample_reached": enough, "stop": stop,
            "e_value": round(evidence, 4), "e_needed": round(bar, 2)}


def _evidence(leader: str | None, cells: Mapping[str, Mapping[str, Any]], active: Mapping[str, Any],
              params: Mapping[str, Any]) -> float:
    """The weakest always-valid evidence that the leader beats another active variant (e-value)."""
    if leader is None or len(active) < 2:
        return 0.0
    lead = cells[leader]
    gaps = [bayes.e_gap(lead["k"], lead["n"], cells[v]["k"], cells[v]["n"], tau=params["evidence_tau"])
            for v in active if v != leader]
    return max(min(gaps), 0.0)


def learn(snapshot: Snapshot, state: SequencesState | None, now: datetime) -> Learned[SequencesState]:
    """Update every variant's posterior and the allocation of the next sends."""
    params = _params(state)
    old = dict(state.sequences if state else {})
    by_seq: dict[str, dict[str, Any]] = defaultdict(dict)
    for (seq, var), cell in tally(snapshot, now, params).items():
        by_seq[seq][var] = cell
    sequences: dict[str, Any] = {}
    for seq in sorted(set(by_seq) | set(old)):
        book = dict(old.get(seq) or {})
        retired = set(book.get("retired", []))
        sequences[seq] = {**readout(seq, by_seq.get(seq, {}), retired, params), "retired": sorted(retired),
                          "promoted": book.get("promoted"), "holdout": _holdout(by_seq.get(seq, {}))}
    allocation = {s: {v: r["allocation"] for v, r in d["variants"].items()} for s, d in sequences.items()}
    metrics = {"sequences": {s: {"variants": d["variants"], "leader": d["leader"], "stop": d["stop"],
                                 "holdout": d["holdout"]} for s, d in sequences.items()}}
    return Learned(state=SequencesState(params=params, sequences=sequences, allocation=allocation,
                                        approved=state.approved if state else ()),
                   metrics=metrics)


def _holdout(cells: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Success rate of the uniform holdout sends vs the bandit-allocated ones: the loop's own measure."""
    hn, hk = sum(c["holdout_n"] for c in cells.values()), sum(c["holdout_k"] for c in cells.values())
    bn, bk = sum(c["n"] for c in cells.values()) - hn, sum(c["k"] for c in cells.values()) - hk
    return {"holdout_n": hn, "holdout_rate": round(hk / hn, 4) if hn else None,
            "bandit_n": bn, "bandit_rate": round(bk / bn, 4) if bn else None}


def _decision(seq: str, d: Mapping[str, Any]) -> Decision | None:
    leader, variants = d["leader"], d["variants"]
    losers = sorted(v for v in variants if v != leader and not variants[v]["retired"])
    if not d["stop"] or not losers:
        return None
    diff = [{"op": "set", "field": "promoted", "sequence": seq, "value": leader}]
    diff += [{"op": "add", "field": "retired", "sequence": seq, "value": v} for v in losers]
    best = bayes.Posterior(**{k: variants[leader][k] for k in ("n", "k", "alpha", "beta", "mean", "lo", "hi")})
    reasons = [Reason(code="variant_wins", weight=variants[leader]["p_best"],
                      text=f"Variant {leader} of the {labels.phrase(seq)} sequence: a positive outcome {describe(best, 'sends')}; "
                           f"{labels.pct(float(variants[leader]['p_best']))} chance it is the best variant",
                      evidence=tuple(f"variant {v}: {variants[v]['k']} positive of {variants[v]['n']} ({pct(variants[v]['mean'])})"
                                     for v in sorted(variants)))]
    title = f"{labels.word(seq)} sequence: keep variant {leader}, retire {' and '.join(losers)}"
    return proposal(NAME, title, diff,
                    {"sequence": seq, "variants": variants, "holdout": d["holdout"]}, reasons,
                    n=sum(int(v["n"]) for v in variants.values()))


def decide(snapshot: Snapshot, state: SequencesState, now: datetime) -> list[Decision]:
    """A promote/retire decision for each sequence whose stopping rule is met."""
    decisions = [_decision(seq, d) for seq, d in sorted(state.sequences.items())]
    return [d for d in decisions if d is not None]


def approve(state: SequencesState, payload: Mapping[str, Any]) -> SequencesState:
    """Promotion approved (or allowed by policy): the winner takes the sends, the losers get none."""
    sequences = {s: dict(d) for s, d in state.sequences.items()}
    for change in payload.get("diff", ()):
        book = sequences.setdefault(change["sequence"], {})
        if change["field"] == "promoted":
            book["promoted"] = change["value"]
        elif change["field"] == "retired":
            book["retired"] = sorted({*book.get("retired", []), change["value"]})
    allocation = {s: _allocation_after(d) for s, d in sequences.items()}
    return replace(state, sequences=sequences, allocation=allocation,
                   approved=(*state.approved, payload.get("fingerprint", "")))


def _allocation_after(book: Mapping[str, Any]) -> dict[str, float]:
    variants = book.get("variants") or {}
    active = [v for v in variants if v not in set(book.get("retired", []))] or [book.get("promoted")]
    return {v: (round(1.0 / len(active), 4) if v in active else 0.0) for v in variants} if variants else {}


DEFINITION = LoopDefinition(name=NAME, title="Outbound sequences", learn=learn, decide=decide, approve=approve,
                            description="Thompson sampling over sequence variants; promote the winner, retire the losers",
                            state_type=SequencesState)
