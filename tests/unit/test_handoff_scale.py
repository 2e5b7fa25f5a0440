"""The handoff loop's shortcuts for big tenants give what the plain computations give: the Hessian's SDR block
from per-SDR sums, and each SDR's yardstick from the team's lead counts less the SDR's own."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np

from crm_adapters.model import DealStatus
from jobs.loops.handoff.flags import _expected
from jobs.loops.handoff.lead_mix import expected_for, lead_table
from jobs.loops.handoff.model import codings_of, design, sdr_gram, with_pairs, with_sdrs
from jobs.loops.handoff.signals import DealSignals

FIELDS = {"employees": ("<50", "50-199", "2000+"), "industry": ("retail", "software", ""),
          "lead_source": ("event", "web", "referral"), "country": ("DE", "US")}


def _deals(n: int, sdrs: int, seed: int) -> list[DealSignals]:
    rnd = np.random.default_rng(seed)
    base = DealSignals(deal_id="", sdr_id=None, owner_id="b", status=DealStatus.LOST,
                       created_at=datetime(2026, 1, 5, tzinfo=UTC), closed_on="2026-03-01", amount=1000.0,
                       claimed_pains=frozenset(), meddic=frozenset(), questions=frozenset(), budget="unknown",
                       timeline="unknown", firmographics={}, discovered_pains=None)
    out = []
    for i in range(n):
        sdr = None if rnd.random() < 0.05 else f"s{rnd.integers(sdrs)}"
        firm = {f: str(rnd.choice(levels)) for f, levels in FIELDS.items()}
        out.append(replace(base, deal_id=f"d{i}", sdr_id=sdr, firmographics=firm,
                           status=DealStatus.WON if rnd.random() < 0.3 else DealStatus.LOST))
    return out


def test_sdr_gram_is_the_dense_product() -> None:
    deals = _deals(3000, 40, seed=1)
    rnd = np.random.default_rng(2)
    signals = (rnd.random((len(deals), 12)) < 0.3).astype(float)
    signals[:, 0] = 1.0
    x, names = with_sdrs(signals, [f"c{j}" for j in range(12)], deals)
    assert len(names) > 12  # the SDR block is there
    w = rnd.random(len(deals)) * 0.25
    np.testing.assert_allclose(sdr_gram(x, names, deals)(w), (x * w[:, None]).T @ x, rtol=1e-12, atol=1e-12)


def test_each_sdrs_yardstick_from_team_counts_is_the_one_from_peers_deals() -> None:
    closed = [d for d in _deals(4000, 12, seed=3) if d.sdr_id]
    rows: dict[str, list[int]] = {}
    for i, d in enumerate(closed):
        rows.setdefault(str(d.sdr_id), []).append(i)
    peers_of = {s: [p for p in rows if p != s and int(p[1:]) % 2 == int(s[1:]) % 2] for s in rows}
    table = lead_table(closed)
    fast = _expected(table, rows, peers_of, lead_mix=True)
    for s, peers in peers_of.items():
        assert fast[s] == expected_for(table, rows[s], [i for p in peers for i in rows[p]])


def test_pair_columns_added_to_a_design_are_the_design_with_pairs() -> None:
    deals = _deals(600, 4, seed=4)
    codings = codings_of(deals)
    names = [c for f in codings for c in f.columns]
    pairs = [(a, b) for a in names for b in names if a.split("=")[0] < b.split("=")[0]][:3]
    assert pairs
    x, with_names = with_pairs(*design(deals, codings=codings), pairs)
    y, y_names = design(deals, codings=codings, pairs=pairs)
    assert with_names == y_names
    assert np.array_equal(x, y)
