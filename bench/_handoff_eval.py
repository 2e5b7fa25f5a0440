"""Scoring the handoff loop against a SimulatedWorld's planted truth (bench only; loops never see truth)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from crm_adapters.snapshot import Snapshot
from jobs.loops.handoff.signals import DealSignals, alignment


def playbook_items(pb: Mapping[str, Any]) -> set[str]:
    """A playbook as a set of comparable items: question:x, meddic:y, disqualify:field op value, verify_pains."""
    items = {f"question:{q}" for q in pb.get("questions", [])} | {f"meddic:{m}" for m in pb.get("meddic", [])}
    items |= {f"disqualify:{r['field']} {r['op']} {r['value']}" for r in pb.get("disqualify", [])}
    if pb.get("verify_pains"):
        items.add("verify_pains")
    return items


def precision_recall(got: set[str], want: set[str]) -> tuple[float, float]:
    tp = len(got & want)
    return (tp / len(got) if got else 1.0), (tp / len(want) if want else 1.0)


def pain_scores(signals: Mapping[str, DealSignals], truth: Any) -> dict[str, Any]:
    """Per pain: precision/recall of claimed (vs the SDR-note labels) and discovered (vs discovery labels);
    alignment error vs the labels' alignment; recall/precision of 'claimed, not confirmed' vs made-up pains."""
    counts: dict[str, dict[str, list[int]]] = {"claimed": defaultdict(lambda: [0, 0, 0]),
                                                "discovered": defaultdict(lambda: [0, 0, 0])}
    errors, made_up = [], [0, 0, 0]
    for deal_id, s in signals.items():
        t = truth.deals.get(deal_id)
        if t is None:
            continue
        _count(counts["claimed"], set(s.claimed_pains), set(t.stated_pains))
        if s.discovered_pains is None:
            continue
        _count(counts["discovered"], set(s.discovered_pains), set(t.discovered_pains))
        got = alignment(s)
        stated, found = set(t.stated_pains), set(t.discovered_pains)
        union = stated | found
        want = 1.0 if not union else len(stated & found) / len(union)
        if got is not None:
            errors.append(abs(got[0] - want))
        a, b = set(s.unconfirmed_pains), set(t.misaligned_pains)
        made_up[0] += len(a & b)
        made_up[1] += len(a - b)
        made_up[2] += len(b - a)
    out: dict[str, Any] = {}
    for kind, table in counts.items():
        out[kind] = {p: _pr(*v) for p, v in sorted(table.items())}
        tp, fp, fn = (sum(v[i] for v in table.values()) for i in range(3))
        out[f"{kind}_micro"] = _pr(tp, fp, fn)
    out["alignment_mae"] = round(sum(errors) / len(errors), 4) if errors else None
    out["unconfirmed_vs_made_up"] = _pr(*made_up)
    return out


def _count(table: dict[str, list[int]], got: set[str], want: set[str]) -> None:
    for p in got & want:
        table[p][0] += 1
    for p in got - want:
        table[p][1] += 1
    for p in want - got:
        table[p][2] += 1


def _pr(tp: int, fp: int, fn: int) -> dict[str, float]:
    return {"precision": round(tp / (tp + fp), 4) if tp + fp else 1.0, "recall": round(tp / (tp + fn), 4) if tp + fn else 1.0}


def change_is_safe(change: Mapping[str, Any], truth: Any, snapshot: Snapshot) -> tuple[bool, str]:
    """Did this approved change raise (or keep) the treatment arm's win odds in the planted truth?"""
    op, target = change["op"], change["target"]
    if op in ("add_question", "drop_question"):
        effect = truth.question_effects[target]
        return (effect >= 0) == (op == "add_question") or effect == 0, f"planted effect {effect:+.2f}"
    if op in ("capture_meddic", "drop_meddic"):
        effect = truth.meddic_effects[target]
        return (effect >= 0) == (op == "capture_meddic") or effect == 0, f"planted effect {effect:+.2f}"
    if op == "verify_pains":
        return truth.misaligned_pain_effect <= 0, f"planted misaligned effect {truth.misaligned_pain_effect:+.2f}"
    if op == "disqualify":
        inside, outside = _p_win_split(change["rule"], truth, snapshot)
        return inside <= outside, f"planted mean P(win) {inside:.3f} in segment vs {outside:.3f} outside"
    return True, "no effect on outcomes"


def _p_win_split(rule: Mapping[str, Any], truth: Any, snapshot: Snapshot) -> tuple[float, float]:
    from crm_adapters.sandbox.scenario import Rule

    r = Rule(rule["field"], rule["op"], rule["value"])
    inside, outside = [], []
    for deal in snapshot.deals:
        t = truth.deals.get(deal.remote_id)
        account = snapshot.account_by_id.get(deal.account_id or "")
        if t is None or account is None:
            continue
        row = {"employees": account.employees, "industry": account.industry, "country": account.country,
               "annual_revenue": float(account.annual_revenue or 0), "lead_source": deal.lead_source}
        (inside if r.matches(row) else outside).append(t.p_win)
    mean = lambda xs: sum(xs) / len(xs) if xs else 0.0  # noqa: E731
    return mean(inside), mean(outside)


def truth_lift(truth: Any, created: Mapping[str, datetime], since: datetime,
               until: datetime | None = None) -> tuple[float, int]:
    """Planted mean P(win), treatment minus control, over deals created in [since, until)."""
    by_arm: dict[str, list[float]] = {"control": [], "treatment": []}
    for deal_id, t in truth.deals.items():
        at = created.get(deal_id)
        if at is None or at < since or (until is not None and at >= until):
            continue
        by_arm[t.arm].append(t.p_win)
    if not by_arm["control"] or not by_arm["treatment"]:
        return 0.0, 0
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    return mean(by_arm["treatment"]) - mean(by_arm["control"]), len(by_arm["control"]) + len(by_arm["treatment"])


def version_p_win(truth: Any, arm: str = "treatment") -> dict[int, float]:
    """Planted mean P(win) of the arm's deals per playbook version they were created under."""
    groups: dict[int, list[float]] = defaultdict(list)
    for t in truth.deals.values():
        if t.arm == arm:
            groups[t.playbook_version].append(t.p_win)
    return {v: round(sum(xs) / len(xs), 4) for v, xs in sorted(groups.items())}


def flag_scores(flagged: Iterable[str], planted: Mapping[str, str], weaker: Iterable[str] = ()) -> dict[str, Any]:
    """Flags on planted weak SDRs (true), on unplanted SDRs whose planted odds really are more than the margin
    below their peers' (`weaker`: right by the flag's own definition, counted apart), and the rest (false)."""
    got, deserved = set(flagged), set(weaker) - set(planted)
    return {"flagged": sorted(got), "true_flags": sorted(got & set(planted)), "weaker_flags": sorted(got & deserved),
            "false_flags": sorted(got - set(planted) - deserved), "missed": sorted(set(planted) - got)}


def truly_weaker(truth: Any, margin: float) -> dict[str, float]:
    """SDRs whose deals' planted mean P(win) sits more than `margin` below the other SDRs' in their arm
    (points below, as a fraction): who a flag with that margin is right to name, planted or not."""
    by_sdr: dict[str, list[float]] = defaultdict(list)
    arm: dict[str, str] = {}
    for t in truth.deals.values():
        by_sdr[t.sdr_id].append(t.p_win)
        arm[t.sdr_id] = t.arm
    out = {}
    for sdr, mine in by_sdr.items():
        peers = [p for other, ps in by_sdr.items() if other != sdr and arm[other] == arm[sdr] for p in ps]
        gap = sum(peers) / len(peers) - sum(mine) / len(mine) if peers else 0.0
        if gap > margin:
            out[sdr] = round(gap, 4)
    return out


def truly_weaker_on_same_leads(truth: Any, margin: float) -> dict[str, float]:
    """SDRs whose skill costs their own deals more than `margin` against the average skill of the other SDRs in
    their arm, on the SDR's own leads (each deal's planted odds with the skill swapped): who a flag that adjusts
    for the mix of leads is right to name, planted or not. A weak habit (a planted cause) is not skill and is
    left to the planted list."""
    by_sdr: dict[str, list[float]] = defaultdict(list)
    arm: dict[str, str] = {}
    for t in truth.deals.values():
        by_sdr[t.sdr_id].append(math.log(t.p_win / (1.0 - t.p_win)))
        arm[t.sdr_id] = t.arm
    out = {}
    for sdr, logits in by_sdr.items():
        peers = [truth.sdr_skill[p] for p in by_sdr if p != sdr and arm[p] == arm[sdr]]
        if not peers:
            continue
        shift = sum(peers) / len(peers) - truth.sdr_skill[sdr]
        gap = sum(_p(x + shift) - _p(x) for x in logits) / len(logits)
        if gap > margin:
            out[sdr] = round(gap, 4)
    return out


def _p(logit: float) -> float:
    return 1.0 / (1.0 + math.exp(-logit))


def item_effect(item: str, truth: Any) -> float:
    """The planted log-odds behind one oracle playbook item (its size decides how hard it is to find)."""
    kind, _, rest = item.partition(":")
    if kind == "question":
        return float(truth.question_effects[rest])
    if kind == "meddic":
        return float(truth.meddic_effects[rest])
    if kind == "verify_pains":
        return float(truth.misaligned_pain_effect)
    for seg in truth.icp_segments:
        rule = seg["rules"][0]
        if len(seg["rules"]) == 1 and rest == f"{rule['field']} {rule['op']} {rule['value']}":
            return float(seg["effect"])
    return 0.0


SIZES = ((0.0, 0.25, "under 0.25"), (0.25, 0.5, "0.25 to 0.5"), (0.5, 99.0, "0.5 and over"))


def recall_by_size(found: set[str], oracle: set[str], truth: Any) -> dict[str, str]:
    """Recall of the oracle's items grouped by the size of their planted effect (log-odds, absolute)."""
    return recall_by_effect({i: i in found for i in oracle}, {i: item_effect(i, truth) for i in oracle})


def recall_by_effect(hits: Mapping[str, bool], sizes: Mapping[str, float]) -> dict[str, str]:
    """"found/planted" per band of planted effect size (log-odds, absolute): which sizes a loop can see."""
    out = {}
    for lo, hi, label in SIZES:
        want = [i for i in hits if lo <= abs(sizes[i]) < hi]
        if want:
            out[label] = f"{sum(hits[i] for i in want)}/{len(want)}"
    return out


def revert_is_safe(treatment: Mapping[str, Any], control: Mapping[str, Any], truth: Any,
                   snapshot: Snapshot) -> tuple[bool, str]:
    """A revert undoes the treatment's items that control lacks: harmful when every one of them was a
    planted improvement (undoing them can only lower the close rate)."""
    undone = sorted(playbook_items(treatment) - playbook_items(control))
    goods = [i for i in undone if _item_helps(i, treatment, truth, snapshot)]
    harmful = bool(undone) and len(goods) == len(undone)
    return not harmful, f"undoes {undone}; planted improvements among them: {goods}"


def _item_helps(item: str, playbook: Mapping[str, Any], truth: Any, snapshot: Snapshot) -> bool:
    kind, _, rest = item.partition(":")
    if kind == "disqualify":
        rule = next(r for r in playbook.get("disqualify", []) if f"{r['field']} {r['op']} {r['value']}" == rest)
        inside, outside = _p_win_split(rule, truth, snapshot)
        return inside < outside
    if kind == "verify_pains":
        return float(truth.misaligned_pain_effect) < 0
    return item_effect(item, truth) > 0


def item_evidence(item: str, summary: Mapping[str, Any], playbook: Mapping[str, Any]) -> dict[str, Any] | None:
    """Where one oracle item's evidence stood at the end: its estimate in standard errors, its e-value in
    the direction the item claims, and the bar it alone would have to clear next to the adopted claims
    still standing (as an e-value and as the z it takes), so a miss reads as "z 2.6 where 3.7 was needed"."""
    from jobs.loops.handoff.model import PRIOR_SD, UNCONFIRMED
    from jobs.loops.handoff.playbook import e_values, family_size, held_evidence
    from jobs.loops.stats import ALPHA, e_bh, e_threshold, z_needed

    kind, _, rest = item.partition(":")
    if kind in ("question", "meddic"):
        stat, up = summary.get("signals", {}).get(item), True
    elif item == "verify_pains":
        stat, up = summary.get("signals", {}).get(UNCONFIRMED), False
    else:
        field, _, level = rest.partition(" ")
        value = level.split(" ", 1)[1] if " " in level else level
        wanted = {"employees": {"< 50": "<50", ">= 2000": "2000+"}.get(level, value)}.get(field, value)
        stat = next((e for e in summary.get("levels", []) if e["field"] == field and e["level"] == wanted), None)
        up = False
    if stat is None:
        return None
    e_up, e_down = e_values(stat)
    tests, held = family_size(summary, playbook), held_evidence(summary, playbook)
    bar = e_threshold(tests, len(e_bh(held, tests=tests, alpha=ALPHA)) + 1, ALPHA)  # next to the adopted claims
    sd = max(float(stat["sd"]), 1e-9)
    se = max(1.0 / sd**2 - 1.0 / PRIOR_SD**2, 1e-9) ** -0.5  # the likelihood's own standard error, as e_values
    return {"z": round(float(stat["effect"]) / sd, 2), "e_value": round(e_up if up else e_down, 1),
            "bar": round(bar, 1), "z_needed": round(z_needed(bar, se, tau=PRIOR_SD), 2)}
