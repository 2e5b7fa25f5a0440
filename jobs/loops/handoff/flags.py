"""SDRs whose opportunities convert below their peers beyond noise, with the evidence and a likely cause.

Empirical-Bayes beta-binomial: the team's spread sets the prior, each SDR's close rate is shrunk
toward the pool; a flag needs P(rate < peers - margin) > 0.95 and enough closed deals. Flags are
about qualification practice only, never about pay or employment.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from jobs.loops.handoff.signals import DealSignals, alignment
from jobs.loops.handoff_stats import Beta, eb_prior, prob_greater

MIN_DEALS = 30
MARGIN = 0.03
THRESHOLD = 0.95


def sdr_flags(deals: Sequence[DealSignals], sdr_arms: Mapping[str, str]) -> list[dict[str, Any]]:
    """One flag per SDR who is decisively below peers (peers: the other SDRs of the same arm)."""
    closed = [d for d in deals if d.closed and d.sdr_id]
    by_sdr: dict[str, list[DealSignals]] = {}
    for d in closed:
        by_sdr.setdefault(str(d.sdr_id), []).append(d)
    counts = {s: (sum(d.won for d in ds), len(ds)) for s, ds in by_sdr.items()}
    prior = eb_prior(list(counts.values()))
    flags = []
    for sdr, (wins, n) in sorted(counts.items()):
        arm = sdr_arms.get(sdr)
        peers = [p for p in counts if p != sdr and (sdr_arms.get(p) == arm or _small_arm(sdr_arms, arm))]
        if n < MIN_DEALS or len(peers) < 2:
            continue
        peer_wins, peer_n = sum(counts[p][0] for p in peers), sum(counts[p][1] for p in peers)
        mine = Beta.posterior(wins, n, prior)
        theirs = Beta.posterior(peer_wins, peer_n)
        p_below = prob_greater(theirs, mine, MARGIN)
        if p_below > THRESHOLD:
            flags.append(_flag(sdr, mine, theirs, p_below, wins, n, by_sdr, peers))
    return flags


def _small_arm(sdr_arms: Mapping[str, str], arm: str | None) -> bool:
    return sum(1 for a in sdr_arms.values() if a == arm) < 4


def _flag(sdr: str, mine: Beta, theirs: Beta, p_below: float, wins: int, n: int,
          by_sdr: Mapping[str, list[DealSignals]], peers: list[str]) -> dict[str, Any]:
    cause, detail = likely_cause(by_sdr[sdr], [d for p in peers for d in by_sdr[p]])
    lo, hi = mine.interval()
    return {
        "sdr_id": sdr, "n": n, "wins": wins, "close_rate": round(wins / n, 4),
        "shrunk_rate": round(mine.mean, 4), "interval": [round(lo, 4), round(hi, 4)],
        "peer_rate": round(theirs.mean, 4), "p_below_peers": round(p_below, 4), "margin": MARGIN,
        "likely_cause": cause, "cause_detail": detail,
    }


def likely_cause(own: Sequence[DealSignals], peers: Sequence[DealSignals]) -> tuple[str, dict[str, Any]]:
    """pain_misalignment | skips_meddic | unclear: which handoff habit differs most from peers."""
    own_align = [a[0] for d in own if (a := alignment(d)) is not None and d.claimed_pains]
    peer_align = [a[0] for d in peers if (a := alignment(d)) is not None and d.claimed_pains]
    own_meddic = [len(d.meddic) for d in own if d.has_sdr_text]
    peer_meddic = [len(d.meddic) for d in peers if d.has_sdr_text]
    detail = {
        "pain_alignment": _mean(own_align), "peer_pain_alignment": _mean(peer_align),
        "meddic_captured": _mean(own_meddic), "peer_meddic_captured": _mean(peer_meddic),
    }
    gaps = {
        "pain_misalignment": _standardised_gap(own_align, peer_align),
        "skips_meddic": _standardised_gap(own_meddic, peer_meddic),
    }
    cause, gap = max(gaps.items(), key=lambda kv: kv[1])
    return (cause if gap >= 3.0 else "unclear"), {**detail, "gap_z": {k: round(v, 2) for k, v in gaps.items()}}


def _mean(values: Sequence[float]) -> float | None:
    return round(statistics.fmean(values), 3) if values else None


def _standardised_gap(own: Sequence[float], peers: Sequence[float]) -> float:
    """How many standard errors the SDR sits below peers (positive = below)."""
    if len(own) < 5 or len(peers) < 5:
        return 0.0
    spread = statistics.pstdev(peers) or 1e-9
    return float((statistics.fmean(peers) - statistics.fmean(own)) / (spread / len(own) ** 0.5))
