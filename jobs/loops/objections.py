"""Objection handling loop: objections in calls and emails, the rep's answer, ranked by what followed.

learn: for each prospect turn with an objection (the NLP extractor, plus the tenant's approved phrases),
the rep's next turn is classified into a response strategy (jobs/nlp/data/responses.toml); the event
counts once per deal and (objection, strategy); success = the deal was won (lost, or stalled N days =
failure; outcome "progress" counts a stage up within N days instead).
Per objection, a beta-binomial per strategy with a prior pooled over that objection's strategies,
ranked by posterior mean with n and a 90% interval ("too few to tell" under the minimum sample).
decide: a playbook proposal when one strategy is decisively better than the rest for an objection,
or when the tenant's own objection phrases recur; an "objections" card on open deals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import Any, Self

from crm_adapters.snapshot import Snapshot
from jobs.loops import labels
from jobs.loops import stats as bayes
from jobs.loops._outcomes import outcome
from jobs.loops._phrases import candidate_phrases, strategy_mix
from jobs.loops._proposals import applied, card, describe, proposal
from jobs.loops._talk import TRANSCRIPTS, Turn, deal_turns, with_objection_phrases
from jobs.loops.base import Learned, LoopDefinition
from jobs.loops.decision import Decision, Reason
from jobs.nlp.responses import classify_response

NAME = "objections"
PARAMS: dict[str, Any] = {"horizon_days": 30, "outcome": "won", "min_n": 8, "min_lift": 0.03, "card_top": 3, "phrase_min_deals": 5}


@dataclass(frozen=True)
class ObjectionsState:
    """The living library (per objection: the answers ranked by how deals went on), phrases that may be
    the tenant's own wording of an objection, and the approved playbook (answer per objection, phrases)."""

    params: Mapping[str, Any] = field(default_factory=lambda: dict(PARAMS))
    library: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    phrase_candidates: tuple[Mapping[str, Any], ...] = ()
    n_events: int = 0
    playbook: Mapping[str, Any] = field(default_factory=dict)
    approved: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        return cls(params=dict(data.get("params") or PARAMS), library=dict(data.get("library") or {}),
                   phrase_candidates=tuple(data.get("phrase_candidates") or ()), n_events=int(data.get("n_events", 0)),
                   playbook=dict(data.get("playbook") or {}), approved=tuple(data.get("approved") or ()))

    def to_json(self) -> dict[str, Any]:
        return {"params": dict(self.params), "library": dict(self.library),
                "phrase_candidates": [dict(c) for c in self.phrase_candidates], "n_events": self.n_events,
                "playbook": dict(self.playbook), "approved": list(self.approved)}


def _params(state: ObjectionsState | None) -> dict[str, Any]:
    return {**PARAMS, **dict(state.params if state else {})}


def tenant_phrases(state: ObjectionsState | None) -> dict[str, list[str]]:
    """Approved phrase additions per objection type (playbook fields 'phrases.<type>')."""
    book = state.playbook if state else {}
    return {k.split(".", 1)[1]: list(v) for k, v in book.items() if k.startswith("phrases.")}


def answers(turns: list[Turn]) -> list[tuple[Turn, str | None]]:
    """Each prospect turn with the strategy of the rep's next turn (None: the rep never answered)."""
    out: list[tuple[Turn, str | None]] = []
    reply: str | None = None  # the strategy of the next rep turn, walking back from the end
    for turn in reversed(turns):
        if turn.speaker == "rep":
            reply = _strategy(turn.text)
        elif turn.speaker == "prospect":
            out.append((turn, reply))
    return out[::-1]


@lru_cache(maxsize=1 << 16)
def _strategy(text: str) -> str:
    """A rep's answer classified once per distinct text: reps repeat themselves (76,000 turns, 6,000 texts at 5,000 deals)."""
    return classify_response(text)


def exchanges(turns: list[Turn]) -> list[tuple[Turn, str | None]]:
    """Prospect turns with an objection, and the strategy of the rep's answer."""
    return [(turn, strategy) for turn, strategy in answers(turns) if turn.objections]


def events(snapshot: Snapshot, state: ObjectionsState | None, now: datetime) -> tuple[list[dict[str, Any]], list[tuple[str, str, str | None]]]:
    """(objection, strategy, success, deal) once per deal and pair; and the unrecognised prospect turns."""
    params, tax = _params(state), with_objection_phrases(tenant_phrases(state))
    seen: dict[tuple[str, str, str], dict[str, Any]] = {}
    others: list[tuple[str, str, str | None]] = []
    for deal in sorted(snapshot.deals, key=lambda d: d.remote_id):
        turns = [t for t in deal_turns(snapshot, snapshot.activities_for(deal.remote_id), tax) if t.at <= now]
        for turn, strategy in answers(turns):
            if not turn.objections:
                if not turn.pains:  # a pain told is not pushback
                    others.append((deal.remote_id, turn.text, strategy))
                continue
            if strategy is None:
                continue
            result = outcome(snapshot, deal, turn.at, now, params["horizon_days"], params["outcome"])
            for objection in sorted(turn.objections):
                key = (deal.remote_id, objection, strategy)
                if result is not None and key not in seen:
                    seen[key] = {"deal": deal.remote_id, "objection": objection, "strategy": strategy, "success": result}
    return list(seen.values()), others


def library(evts: list[dict[str, Any]], params: Mapping[str, Any]) -> dict[str, Any]:
    """Per objection: strategies ranked by shrunk success rate, each with n, interval and a verdict."""
    cells: dict[str, dict[str, list[int]]] = {}
    for e in evts:
        cell = cells.setdefault(e["objection"], {}).setdefault(e["strategy"], [0, 0])
        cell[0] += int(e["success"])
        cell[1] += 1
    out: dict[str, Any] = {}
    for objection, strategies in sorted(cells.items()):
        prior = bayes.pooled_prior([(k, n) for k, n in strategies.values()])
        total_k, total_n = sum(k for k, _ in strategies.values()), sum(n for _, n in strategies.values())
        rows = []
        for strategy, (k, n) in sorted(strategies.items()):
            post, rest = bayes.posterior(k, n, prior), bayes.posterior(total_k - k, total_n - n, prior)
            p = bayes.prob_greater(post, rest)
            rows.append({"strategy": strategy, **post.as_dict(), "rest": rest.as_dict(), "p_better": round(p, 4),
                         "lift": round(post.mean - rest.mean, 4), "e_value": bayes.e_gap(k, n, total_k - k, total_n - n),
                         "n_compared": min(n, total_n - n)})
        out[objection] = {"n": total_n, "success_rate": round(total_k / total_n, 4) if total_n else None, "ranked": rows}
    _judge(out, params)
    return out


def _judge(out: dict[str, Any], params: Mapping[str, Any]) -> None:
    """Verdicts by e-BH over every (objection, response) pair at once, then each objection's ranking."""
    cells = {(o, r["strategy"]): (r["e_value"], r["lift"], r["n_compared"]) for o, v in out.items() for r in v["ranked"]}
    verdicts = bayes.judge({f"{o}|{s}": c for (o, s), c in cells.items()}, min_n=params["min_n"],
                           min_lift=params["min_lift"])
    for o, v in out.items():
        for r in v["ranked"]:
            r["verdict"] = verdicts[f"{o}|{r['strategy']}"]
            r["e_value"] = round(r["e_value"], 4)
        v["ranked"].sort(key=lambda r: (r["verdict"] == bayes.TOO_FEW, -r["mean"], r["strategy"]))


def learn(snapshot: Snapshot, state: ObjectionsState | None, now: datetime) -> Learned[ObjectionsState]:
    """Rebuild the living library from every exchange so far; keep the approved playbook."""
    params = _params(state)
    evts, others = events(snapshot, state, now)
    lib = library(evts, params)
    phrases = candidate_phrases(others, strategy_mix(evts), tenant_phrases(state), params["phrase_min_deals"])
    new_state = ObjectionsState(params=params, library=lib, phrase_candidates=tuple(phrases), n_events=len(evts),
                                playbook=dict(state.playbook if state else {}), approved=state.approved if state else ())
    metrics = {"n_events": len(evts), "objections": {o: {r["strategy"]: {k: r[k] for k in ("n", "k", "mean", "lo", "hi", "verdict")}
                                                         for r in v["ranked"]} for o, v in lib.items()},
               "phrase_candidates": [p["phrase"] for p in phrases]}
    return Learned(state=new_state, metrics=metrics)


def _row_reason(objection: str, row: Mapping[str, Any]) -> Reason:
    post = bayes.Posterior(**{k: row[k] for k in ("n", "k", "alpha", "beta", "mean", "lo", "hi")})
    rest = bayes.Posterior(**row["rest"])
    return Reason(code=f"response_{row['verdict'].replace(' ', '_')}", weight=float(row["lift"]),
                  text=f"{labels.word(objection)} objection answered with {labels.phrase(row['strategy'])}: the deal moved on "
                       f"{describe(post, 'times')} vs {describe(rest, 'times')} with other answers",
                  evidence=(f"{labels.phrase(row['strategy'])}: {post.k} of {post.n}", f"other answers: {rest.k} of {rest.n}",
                            f"chance it is the better answer: {labels.pct(float(row['p_better']))}"))


def _proposal(state: ObjectionsState) -> Decision | None:
    book, diff, reasons, evidence = state.playbook, [], [], {}
    for objection, entry in sorted(state.library.items()):
        best = next((r for r in entry["ranked"] if r["verdict"] == "better"), None)
        if best is not None and book.get(objection) != best["strategy"]:
            diff.append({"op": "set", "field": objection, "value": best["strategy"]})
            reasons.append(_row_reason(objection, best))
            evidence[objection] = entry
    for cand in state.phrase_candidates:
        diff.append({"op": "add", "field": f"phrases.{cand['type']}", "value": cand["phrase"]})
        reasons.append(Reason(code="tenant_phrase", text=f"'{cand['phrase']}' recurs in what prospects said on {cand['deals']} "
                              f"deals without being read as an objection; it sounds like {labels.phrase(cand['type'])}",
                              weight=float(cand["deals"]), evidence=tuple(cand["examples"])))
        evidence[f"phrase:{cand['phrase']}"] = cand
    if not diff:
        return None
    sets = [f"answer {labels.phrase(d['field'])} with {labels.phrase(d['value'])}" for d in diff if d["op"] == "set"]
    title = f"Objection playbook: {'; '.join(sets)}" if sets else "Objection phrases: add the tenant's own wording"
    return proposal(NAME, title, diff, evidence, reasons, n=state.n_events)


def _card_rows(objection: str, entry: Mapping[str, Any], top: int, min_n: int) -> list[dict[str, Any]]:
    rows = [r for r in entry["ranked"] if r["verdict"] != bayes.TOO_FEW][:top]
    if not rows:
        return [{"strategy": None, "verdict": bayes.TOO_FEW, "n": entry["n"], "min_n": min_n}]
    return [{k: r[k] for k in ("strategy", "n", "k", "mean", "lo", "hi", "verdict")} for r in rows]


def decide(snapshot: Snapshot, state: ObjectionsState, now: datetime) -> list[Decision]:
    """The playbook proposal (when decisive) and, for open deals, the best answers to their objections."""
    params, lib = state.params, state.library
    decisions = [d for d in [_proposal(state)] if d is not None]
    tax = with_objection_phrases(tenant_phrases(state))
    for deal in sorted(snapshot.open_deals(), key=lambda d: d.remote_id):
        raised = exchanges([t for t in deal_turns(snapshot, snapshot.activities_for(deal.remote_id), tax) if t.at <= now])
        kinds = sorted({o for turn, _ in raised for o in turn.objections if o in lib})
        if not kinds:
            continue
        used = {o: sorted({s for turn, s in raised if o in turn.objections and s}) for o in kinds}
        sections = {o: {"answered_with": used[o], "best": _card_rows(o, lib[o], params["card_top"], params["min_n"]),
                        "recommended": state.playbook.get(o)} for o in kinds}
        reasons = [_row_reason(o, r) for o in kinds for r in lib[o]["ranked"][:1] if r["verdict"] != bayes.TOO_FEW]
        decisions.append(card(NAME, "objections", deal.remote_id, {"objections": sections}, reasons))
    return decisions


def approve(state: ObjectionsState, payload: Mapping[str, Any]) -> ObjectionsState:
    """A manager approved: the recommended answers and the tenant's phrases go into the playbook."""
    playbook, approved = applied(state.playbook, state.approved, payload)
    return replace(state, playbook=playbook, approved=approved)


DEFINITION = LoopDefinition(name=NAME, title="Objection handling", learn=learn, decide=decide, approve=approve,
                            description="Objections, the responses that followed, ranked by outcome: a living library",
                            process_group=TRANSCRIPTS, state_type=ObjectionsState)
