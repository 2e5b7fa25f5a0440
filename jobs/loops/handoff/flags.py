"""SDRs whose opportunities convert below their peers by more than the manager's practical margin,
with the estimate, its interval, the likely causes and the flag's own power.

Two parts, each doing one job:
- the estimate a manager reads comes from a hierarchical (empirical-Bayes beta-binomial) model: the
  team's own spread sets how strongly each SDR is pulled towards the pool (no fixed cap), so a team
  of look-alikes shrinks everyone and a team with real outliers lets them show;
- the flag itself needs always-valid evidence (an e-value) that the SDR's close rate is more than
  `margin` points below peers; it may be looked at every week, and an SDR who is within the margin is
  flagged with probability at most alpha however long the loop runs.
Both compare like with like: "peers" means what peers close on the same kinds of leads (company size,
industry, country, lead source; `jobs.loops.handoff.lead_mix`), so an SDR handed harder leads is not
blamed for them. Flags are about qualification practice only, never about pay or employment.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from jobs.loops.handoff.lead_mix import Expected, LeadTable, expected_from, kind_counts, lead_table, mix_text
from jobs.loops.handoff.signals import DealSignals, alignment
from jobs.loops.stats import ALPHA, TAU_POINTS, e_normal, needed_n, pooled_prior, posterior, z_needed

MIN_DEALS = 30
MARGIN = 0.03  # practical threshold: "3 points below peers" (the manager may set another)
POWER_BEYOND = 0.05  # the power statement is about a gap this far beyond the margin (8 points at 3)
CAUSE_Z = 3.0  # standard errors a habit must differ from peers by to be named a cause


def sdr_flags(deals: Sequence[DealSignals], sdr_arms: Mapping[str, str], *, margin: float = MARGIN,
              alpha: float = ALPHA, lead_mix: bool = True) -> list[dict[str, Any]]:
    """One flag per SDR whose evidence of being more than `margin` below peers clears 1/alpha. With
    `lead_mix` (the default) peers' results are taken on leads like the SDR's own; without, the raw rates."""
    closed = [d for d in deals if d.closed and d.sdr_id]
    by_sdr: dict[str, list[DealSignals]] = {}
    rows: dict[str, list[int]] = {}
    for i, d in enumerate(closed):
        by_sdr.setdefault(str(d.sdr_id), []).append(d)
        rows.setdefault(str(d.sdr_id), []).append(i)
    small = {arm: _small_arm(sdr_arms, arm) for arm in {sdr_arms.get(s) for s in by_sdr}}  # once per arm, not per pair
    peers_of = {s: [p for p in by_sdr if p != s and (sdr_arms.get(p) == sdr_arms.get(s) or small[sdr_arms.get(s)])]
                for s in by_sdr}
    table = lead_table(closed)
    expected = _expected(table, rows, peers_of, lead_mix)
    counts = {s: (sum(d.won for d in ds), len(ds)) for s, ds in by_sdr.items()}
    prior = pooled_prior(_on_an_average_mix(counts, expected), default_strength=2.0, max_strength=1e5)
    flags = []
    for sdr, (wins, n) in sorted(counts.items()):
        if n < MIN_DEALS or len(peers_of[sdr]) < 2:
            continue
        judged = judge_against(wins, n, expected[sdr], margin=margin)
        if judged["e_value"] >= 1.0 / alpha:
            judged.update(flag_power(judged, _pace(by_sdr[sdr])))
            judged["gap_sd"] = round(judged["gap_sd"], 5)
            adjusted = _on_an_average_mix({sdr: (wins, n)}, expected)[0]
            mine = posterior(*adjusted, prior)
            flags.append({"sdr_id": sdr, "wins": wins, "close_rate": round(wins / n, 4),
                          "shrunk_rate": round(mine.mean, 4), "interval": [round(mine.lo, 4), round(mine.hi, 4)],
                          "prior_strength": round(prior.strength, 1), **judged, "e_needed": round(1.0 / alpha, 2),
                          **_causes(by_sdr[sdr], [d for p in peers_of[sdr] for d in by_sdr[p]])})
    return flags


def _expected(table: LeadTable, rows: Mapping[str, list[int]], peers_of: Mapping[str, list[str]],
              lead_mix: bool) -> dict[str, Expected]:
    """What each SDR's peers would close on the SDR's leads: peers' counts per kind of lead are sums of each
    SDR's counts (whole numbers, so exact), one matrix product for the team rather than every peer's deals per SDR."""
    sdrs = list(rows)
    counts = [kind_counts(table, rows[s]) for s in sdrs]
    deals, wins = np.array([c[0] for c in counts]), np.array([c[1] for c in counts])
    at = {s: k for k, s in enumerate(sdrs)}
    member = np.zeros((len(sdrs), len(sdrs)))
    for s in sdrs:
        member[at[s], [at[p] for p in peers_of[s]]] = 1.0
    peer_deals, peer_wins = member @ deals, member @ wins
    return {s: expected_from(table, deals[k], wins[k], peer_deals[k], peer_wins[k], lead_mix=lead_mix)
            for k, s in enumerate(sdrs) if peers_of[s]}


def _on_an_average_mix(counts: Mapping[str, tuple[int, int]], expected: Mapping[str, Expected]) -> list[tuple[int, int]]:
    """(wins, deals) per SDR as if each had peers' mix of leads: wins moved by what the mix is worth, so the
    hierarchical prior learns the spread of skill, not of the leads handed out."""
    out = []
    for sdr, (wins, n) in counts.items():
        e = expected.get(sdr)
        shift = n * (e.peer_rate - e.rate) if e is not None else 0.0
        out.append((int(min(max(round(wins + shift), 0), n)), n))
    return out


def judge_sdr(wins: int, n: int, peer_wins: int, peer_n: int, *, margin: float) -> dict[str, Any]:
    """The gap below peers' raw close rate (points), its 90% interval, and the e-value that it exceeds `margin`."""
    peer = peer_wins / peer_n
    return judge_against(wins, n, Expected(peer, peer * (1 - peer) / peer_n, peer, ()), margin=margin)


def judge_against(wins: int, n: int, expected: Expected, *, margin: float) -> dict[str, Any]:
    """The gap below what peers close on leads like these (points), its 90% interval, and the e-value that it
    exceeds `margin`. The spread counts the SDR's own binomial noise and the peers' estimate's uncertainty."""
    rate, peer = wins / n, expected.rate
    var = expected.var + max(rate * (1 - rate), peer * (1 - peer) / 2) / n
    gap, sd = peer - rate, var**0.5
    evidence = e_normal(gap - margin, sd, tau=TAU_POINTS)
    return {"n": n, "peer_rate": round(peer, 4), "gap_points": round(100 * gap, 2), "gap_sd": sd,
            "gap_interval_points": [round(100 * (gap - 1.645 * sd), 2), round(100 * (gap + 1.645 * sd), 2)],
            "margin": margin, "e_value": round(min(evidence, 1e12), 2),
            "raw_peer_rate": round(expected.peer_rate, 4), "mix_points": round(100 * (expected.peer_rate - peer), 2),
            "mix": [dict(m) for m in expected.mix]}


def flag_power(judged: Mapping[str, Any], per_week: float | None) -> dict[str, Any]:
    """The flag's own power: the smallest gap these deals can show, and how many closed deals (and, at the
    SDR's pace of `per_week` closed deals, how many more weeks) a gap POWER_BEYOND past the margin needs."""
    n, margin, sd = judged["n"], judged["margin"], judged["gap_sd"]
    needed = needed_n(POWER_BEYOND, judged["peer_rate"], threshold=1.0 / ALPHA, cap=20_000)
    floor = margin + z_needed(1.0 / ALPHA, sd, tau=TAU_POINTS) * sd
    weeks = max(needed - n, 0) / per_week if needed is not None and per_week else None
    return {"detectable_gap_points": round(100 * floor, 1), "power_gap_points": round(100 * (margin + POWER_BEYOND)),
            "deals_to_detect": needed, "closed_per_week": round(per_week, 2) if per_week else None,
            "weeks_to_detect": round(weeks, 1) if weeks is not None else None}


def _pace(deals: Sequence[DealSignals]) -> float | None:
    """Closed deals a week over the span the SDR's closed deals cover (None without dates)."""
    days = sorted(datetime.fromisoformat(d.closed_on) for d in deals if d.closed_on)
    if len(days) < 2:
        return None
    return len(days) / max((days[-1] - days[0]).days / 7.0, 1.0)


def _small_arm(sdr_arms: Mapping[str, str], arm: str | None) -> bool:
    return sum(1 for a in sdr_arms.values() if a == arm) < 4


def _causes(own: Sequence[DealSignals], peers: Sequence[DealSignals]) -> dict[str, Any]:
    cause, detail = likely_cause(own, peers)
    return {"likely_cause": cause, "causes": detail["causes"], "cause_detail": detail}


def likely_cause(own: Sequence[DealSignals], peers: Sequence[DealSignals]) -> tuple[str, dict[str, Any]]:
    """pain_misalignment | skips_meddic | unclear: the handoff habit that differs most from peers, and
    every habit that differs clearly (an SDR can have more than one)."""
    own_align = [a[0] for d in own if (a := alignment(d)) is not None and d.claimed_pains]
    peer_align = [a[0] for d in peers if (a := alignment(d)) is not None and d.claimed_pains]
    own_meddic = [len(d.meddic) for d in own if d.has_sdr_text]
    peer_meddic = [len(d.meddic) for d in peers if d.has_sdr_text]
    detail: dict[str, Any] = {
        "pain_alignment": _mean(own_align), "peer_pain_alignment": _mean(peer_align),
        "meddic_captured": _mean(own_meddic), "peer_meddic_captured": _mean(peer_meddic),
    }
    gaps = {
        "pain_misalignment": _standardised_gap(own_align, peer_align),
        "skips_meddic": _standardised_gap(own_meddic, peer_meddic),
    }
    found = sorted((c for c, g in gaps.items() if g >= CAUSE_Z), key=lambda c: -gaps[c])
    detail.update(gap_z={k: round(v, 2) for k, v in gaps.items()}, causes=found)
    return (found[0] if found else "unclear"), detail


def _mean(values: Sequence[float]) -> float | None:
    return round(statistics.fmean(values), 3) if values else None


def _standardised_gap(own: Sequence[float], peers: Sequence[float]) -> float:
    """How many standard errors the SDR sits below peers (positive = below)."""
    if len(own) < 5 or len(peers) < 5:
        return 0.0
    spread = statistics.pstdev(peers) or 1e-9
    return float((statistics.fmean(peers) - statistics.fmean(own)) / (spread / len(own) ** 0.5))


def flag_text(flag: Mapping[str, Any]) -> str:
    """What the manager reads: how much lower than peers on similar leads, how sure, why, whether the leads
    they were given differ from peers', and what this volume can detect."""
    lo, hi = flag["gap_interval_points"]
    causes = " and ".join(c.replace("_", " ") for c in flag.get("causes") or []) or "unclear"
    power, weeks = flag.get("deals_to_detect"), flag.get("weeks_to_detect")
    pace = (f", about {weeks:.0f} more weeks at this SDR's {flag['closed_per_week']:.1f} closed deals a week"
            if weeks else "")
    power_text = (f"with {flag['n']} closed deals a gap of {flag['detectable_gap_points']:.0f} points or more is "
                  f"detectable; a {flag['power_gap_points']}-point gap is detectable after about {power} closed deals"
                  f"{pace}" if power else f"a {flag['power_gap_points']}-point gap is not detectable at this volume")
    return (f"Opportunities close at {100 * flag['close_rate']:.0f}% (n={flag['n']}) vs {100 * flag['peer_rate']:.0f}% "
            f"for peers on similar leads (same company size, industry, country and lead source): "
            f"{flag['gap_points']:.1f} points lower (90% interval {lo:.1f} to {hi:.1f}); evidence that "
            f"the gap is more than {100 * flag['margin']:.0f} points: {min(flag['e_value'], 1e6):,.0f} to 1. "
            f"{mix_text(flag)}Likely cause: {causes}. Note: {power_text}.")
