"""The SDR -> BDM handoff loop (the flagship): alignment, post-mortems, a learned qualification
playbook tested as treatment against control, and SDR flags with their evidence.

learn(): signals from notes/calls -> shrunk logistic model, experiment readout, SDR flags.
decide(): alignment fields, post-mortem cards/notes, decisive playbook proposals, promote/revert, flags.
approve(): a manager's approval -> the next playbook version (a rejection is remembered by jobs.approvals.proposals).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from crm_adapters.model import Entity, UserRole
from crm_adapters.snapshot import Snapshot
from jobs.loops import labels
from jobs.loops._talk import TRANSCRIPTS
from jobs.loops.base import Learned, LoopDefinition
from jobs.loops.decision import ActionKind, Decision, Reason
from jobs.loops.handoff.flags import flag_text, sdr_flags
from jobs.loops.handoff.model import fit
from jobs.loops.handoff.playbook import (
    BASELINE,
    MAX_PER_RUN,
    UNDO,
    apply,
    candidate_changes,
    diff_line,
    evidence,
    fingerprint,
)
from jobs.loops.handoff.postmortem import deal_decisions
from jobs.loops.handoff.readout import ARMS, DEFAULT_BAR, arm_of, readout
from jobs.loops.handoff.signals import alignment, deal_signals
from jobs.loops.handoff.state import DEFAULTS, HandoffState

NAME = "handoff"
HISTORY = 104


def config(state: HandoffState | None) -> dict[str, Any]:
    """Tenant id (arm hashing), unit of assignment (sdr | lead), post-mortem look-back."""
    cfg = {**DEFAULTS, **dict(state.config if state else {})}
    if cfg["unit"] not in ("sdr", "lead"):
        raise ValueError(f"handoff config unit must be 'sdr' or 'lead', got {cfg['unit']!r}")
    bad = {k: v for k, v in dict(cfg["arms"]).items() if v not in ARMS}
    if bad:
        raise ValueError(f"handoff config arms must map SDR ids to {ARMS}, got {bad}")
    return cfg


def initial_state(*, tenant: str = "default", unit: str = "sdr", arms: Mapping[str, str] | None = None) -> HandoffState:
    """Both arms on the baseline playbook; nothing learned yet. `arms`: an explicit SDR -> arm split."""
    return HandoffState(config={**DEFAULTS, "tenant": tenant, "unit": unit, "arms": dict(arms or {})})


def sdr_arms(snapshot: Snapshot, cfg: Mapping[str, Any]) -> dict[str, str]:
    ids = {u.remote_id for u in snapshot.users_with_role(UserRole.SDR, UserRole.BDR)}
    ids |= {d.sdr_id for d in snapshot.deals if d.sdr_id}
    return {sdr: arm_of(sdr, sdr, tenant=cfg["tenant"], unit="sdr", assigned=cfg["arms"]) for sdr in sorted(ids)}


def learn(snapshot: Snapshot, state: HandoffState | None, now: datetime) -> Learned[HandoffState]:
    """Refit the signal model, read the experiment out, find SDRs below peers. One BLAS thread: the loops run in
    one process per core, and the model's products are too small to share (threads waiting for each other made
    them 5-20x slower in CPU time on 2 busy cores)."""
    with threadpool_limits(1):
        return _learn(snapshot, state, now)


def _learn(snapshot: Snapshot, state: HandoffState | None, now: datetime) -> Learned[HandoffState]:
    base = state or initial_state()
    cfg = config(base)
    deals = list(deal_signals(snapshot).values())
    summary = fit(deals, now, int(cfg["maturity_days"]))
    arms = sdr_arms(snapshot, cfg)
    differ = _differ(base)
    experiment = dict(base.experiment)
    if differ and not experiment.get("started_at"):
        experiment["started_at"] = now.isoformat()
    if not differ:
        experiment["started_at"] = None
    read = readout(deals, arm_for=lambda d: arm_of(d.deal_id, d.sdr_id, tenant=cfg["tenant"], unit=cfg["unit"],
                                                    assigned=cfg["arms"]),
                   unit=cfg["unit"], sdr_arms=arms, since=experiment["started_at"], playbooks_differ=differ,
                   seed=cfg["tenant"], bar=float(experiment.get("bar") or DEFAULT_BAR))
    flags = sdr_flags(deals, arms if cfg["unit"] == "sdr" else {}, margin=float(cfg["flag_margin"]))
    aligned = [a[0] for d in deals if (a := alignment(d)) is not None]
    point = _readout_point(read, now)
    learned = replace(base, config=cfg, model=summary, experiment=experiment, evidence=evidence(summary, base.evidence),
                      sdr_arms=arms, flags=tuple(flags), readout=read, readouts=(*base.readouts, point)[-HISTORY:],
                      learned_at=now.isoformat())
    metrics = {"closed_deals": summary["n"], "signals": len(summary.get("signals", {})), "flags": len(flags),
               "pain_alignment_mean": round(sum(aligned) / len(aligned), 4) if aligned else None,
               "treatment_version": learned.playbooks["treatment"]["version"],
               "control_version": learned.playbooks["control"]["version"],
               "readout": read, "readout_series": list(learned.readouts)}
    return Learned(state=learned, metrics=metrics)


def _differ(state: HandoffState) -> bool:
    books = state.playbooks
    return _substance(books["control"]) != _substance(books["treatment"])


def _substance(book: Mapping[str, Any]) -> dict[str, Any]:
    """What SDRs do differently under a playbook (its version number and weights do not count)."""
    return {k: v for k, v in book.items() if k not in ("version", "weights")}


def _readout_point(read: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """One plottable point per learn: per-arm rates and P(treatment better)."""
    arms, comp = read["arms"], read["comparison"]
    return {"at": now.isoformat(), "recommendation": read["recommendation"],
            **{f"{arm}_{m}": arms[arm][m]["rate"] for arm in arms for m in ("close_rate", "stage2_conversion", "acceptance")},
            **{f"p_{m}": comp[m]["p_treatment_better"] for m in comp},
            "lift_close_points": comp["close_rate"]["lift_points"]}


def decide(snapshot: Snapshot, state: HandoffState, now: datetime) -> list[Decision]:
    """Everything the loop wants written, each with its evidence; proposals only when decisive."""
    cfg = config(state)
    version = f"{NAME}:v{state.playbooks.get('treatment', BASELINE)['version']}"
    summary = state.model or {}
    since = (now - timedelta(days=int(cfg["postmortem_days"]))).date().isoformat()
    out: list[Decision] = []
    for deal in deal_signals(snapshot).values():
        recent = deal.closed_on is not None and deal.closed_on >= since
        if deal.closed and not recent:
            continue
        out.extend(deal_decisions(deal, summary, version, closed_recently=recent))
    out.extend(_proposals(state, version))
    out.extend(_flag_decisions(state, now, version))
    return out


def _proposals(state: HandoffState, version: str) -> list[Decision]:
    if state.model is None:  # nothing learned yet
        return []
    treatment = state.playbooks["treatment"]
    out = []
    for change in candidate_changes(state.model, treatment, bars=state.bars):
        fp = fingerprint([change])
        out.append(_proposal_decision("change", [change], fp, change["n"], version, treatment["version"]))
        if len(out) >= MAX_PER_RUN:
            break
    read = state.readout or {}
    rec = read.get("recommendation")
    if rec in ("promote", "revert"):
        books = state.playbooks
        fp = fingerprint([{"op": rec, "target": f"v{books['treatment']['version']}",
                           "rule": books["control"]["version"]}])
        n = sum(read["arms"][arm]["close_rate"]["n"] for arm in read["arms"])
        out.append(_promote_decision(rec, read, fp, n, version, books))
    return out


def _proposal_decision(kind: str, changes: list[dict[str, Any]], fp: str, n: int, version: str,
                       playbook_version: int) -> Decision:
    lines = [diff_line(c) for c in changes]
    title = f"Qualification playbook v{playbook_version + 1}: {lines[0].split(':')[0]}"
    payload = {"kind": kind, "title": title, "diff": lines, "changes": changes, "fingerprint": fp,
               "arm": "treatment", "playbook_version": playbook_version,
               "evidence": {"n": n, **{k: changes[0][k] for k in ("effect", "interval", "points", "e_value", "e_needed",
                                                                 "win_rate_with", "win_rate_without")}}}
    reasons = tuple(Reason(c["op"], diff_line(c), float(c["effect"]), (c["signal"],)) for c in changes)
    return Decision(loop=NAME, kind=ActionKind.PROPOSE_PLAYBOOK_CHANGE, target=Entity.USER,
                    target_id=f"playbook:{NAME}", key=f"{NAME}:proposal:{fp}", payload=payload, reasons=reasons,
                    model_version=version)


def _promote_decision(rec: str, read: Mapping[str, Any], fp: str, n: int, version: str,
                      books: Mapping[str, Any]) -> Decision:
    close = read["comparison"]["close_rate"]
    lo, hi = close["interval_points"]
    line = (f"{rec.capitalize()} treatment playbook version {books['treatment']['version']} (control is version "
            f"{books['control']['version']}): close rate {close['lift_points']:+.1f} points, 90% interval {lo:+.1f} to {hi:+.1f}, "
            f"{labels.pct(float(close['p_treatment_better']))} chance the treatment is better, evidence "
            f"{min(float(close.get('e_better' if rec == 'promote' else 'e_worse', 1.0)), 1e6):,.0f} to 1, on {n:,} closed deals")
    title = ("Promote the treatment playbook to every SDR" if rec == "promote"
             else "Revert the treatment arm to the control playbook")
    payload = {"kind": rec, "title": title, "diff": [line], "changes": [], "fingerprint": fp,
               "evidence": {"n": n, "readout": read}}
    return Decision(loop=NAME, kind=ActionKind.PROPOSE_PLAYBOOK_CHANGE, target=Entity.USER,
                    target_id=f"playbook:{NAME}", key=f"{NAME}:proposal:{fp}", payload=payload,
                    reasons=(Reason(rec, line, float(close["lift_points"])),), model_version=version)


def _flag_decisions(state: HandoffState, now: datetime, version: str) -> list[Decision]:
    week = now.strftime("%G-W%V")
    out = []
    for flag in state.flags:
        text = flag_text(flag)
        out.append(Decision(loop=NAME, kind=ActionKind.FLAG_SDR, target=Entity.USER, target_id=flag["sdr_id"],
                            key=f"{NAME}:flag:{flag['sdr_id']}:{week}",
                            payload={"title": "Qualification coaching opportunity", "body": text, "evidence": flag,
                                     "likely_cause": flag["likely_cause"]},
                            reasons=(Reason(flag["likely_cause"], text, -flag["gap_points"] / 100),), model_version=version))
    return out


def approve(state: HandoffState, payload: Mapping[str, Any]) -> HandoffState:
    """A manager approved: changes -> the next treatment version; promote/revert -> arms aligned."""
    kind = payload.get("kind")
    if kind not in ("change", "promote", "revert") or not payload.get("fingerprint"):
        raise ValueError(f"not a handoff proposal payload (kind={kind!r}, fingerprint={payload.get('fingerprint')!r})")
    books = copy.deepcopy(dict(state.playbooks))
    bars, experiment = state.bars, state.experiment
    top = max(books["control"]["version"], books["treatment"]["version"]) + 1
    if kind == "change":
        books["treatment"] = apply(books["treatment"], list(payload.get("changes", [])), top)
        bars, experiment = _raised_bars(state, list(payload.get("changes", [])))
    elif kind == "promote":
        books["control"] = copy.deepcopy(books["treatment"])
        experiment = {"started_at": None}
    else:
        books["treatment"] = {**copy.deepcopy(books["control"]), "version": top}
        experiment = {"started_at": None}
    history = (*state.history, {"approved": payload["fingerprint"], "kind": kind, "diff": list(payload.get("diff", [])),
                                "treatment_version": books["treatment"]["version"],
                                "control_version": books["control"]["version"]})
    return replace(state, playbooks=books, bars=bars, experiment=experiment, history=history)


def _raised_bars(state: HandoffState, changes: list[Mapping[str, Any]]) -> tuple[dict[str, float], dict[str, Any]]:
    """Each adopted item remembers the e-value bar it cleared, and so does the experiment: undoing it
    (dropping the item, or reverting the treatment arm) needs evidence at least as strong."""
    bars = dict(state.bars)
    experiment = dict(state.experiment)
    for c in changes:
        bar = float(c.get("e_needed") or DEFAULT_BAR)
        if c.get("op") not in UNDO:
            bars[str(c.get("signal", c.get("target")))] = max(bar, bars.get(str(c.get("signal")), 0.0))
        experiment["bar"] = max(bar, float(experiment.get("bar") or DEFAULT_BAR))
    return bars, experiment


def arm_for_deal(state: HandoffState, deal_id: str, sdr_id: str | None) -> str:
    """Which playbook a deal (or its SDR) follows: what the cards show."""
    cfg = config(state)
    return arm_of(deal_id, sdr_id, tenant=cfg["tenant"], unit=cfg["unit"], assigned=cfg["arms"])


DEFINITION = LoopDefinition(name=NAME, title="SDR to BDM handoff", learn=learn, decide=decide, approve=approve,
                            description="SDR -> BDM handoff: alignment, post-mortems, qualification playbook experiment, SDR flags",
                            process_group=TRANSCRIPTS, state_type=HandoffState)

__all__ = ["approve", "arm_for_deal", "decide", "initial_state", "learn"]
