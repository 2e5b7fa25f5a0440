"""Qualification fields in the simulated org: picklists the SDR fills at hand-over, with SDR habits.

Each field has a true level per lead (with its planted effect on the outcome); the SDR records it
with noise: some SDRs tick the positive answer without evidence, everyone leaves some fields empty.
A field may have a discovery twin the BDM fills after the discovery call with the true level, so an
SDR's claim that discovery contradicts shows in the CRM (claimed vs discovered covers fields too).

Scenario section (all optional; without it no field is drawn and nothing else changes):

    [qualification]
    overclaim_share = 0.3   # share of SDRs who tick the positive answer without evidence
    overclaim_rate = 0.6    # how often such an SDR does it when the truth is another level
    empty_rate = 0.1        # fields any SDR leaves empty
    [qualification.fields."Budget allocated"]
    item = "budget"
    claim = "Yes"                                   # the positive answer
    discovery = "Budget confirmed in discovery"     # optional: the BDM's field for the same item
    levels = { Yes = [0.35, 0.8], No = [0.65, 0.0] }  # level = [share, effect on the log-odds of winning]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from crm_adapters.model import QualificationAnswer

UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class QualField:
    """One simulated qualification field: its levels with (share, effect), the claim, the discovery twin."""

    label: str
    item: str
    claim: str
    levels: tuple[tuple[str, float, float], ...]
    discovery: str | None = None


@dataclass(frozen=True, slots=True)
class QualNoise:
    overclaim_share: float = 0.0
    overclaim_rate: float = 0.0
    empty_rate: float = 0.0


def parse_qualification(p: Any, raw: Any, scale: float) -> tuple[tuple[QualField, ...], QualNoise]:
    """The [qualification] section, checked like every other section (`p`: the scenario file's parser)."""
    if raw is None:
        return (), QualNoise()
    if not isinstance(raw, dict):
        raise p.fail("qualification", "must be a table")
    p.known(raw, ("overclaim_share", "overclaim_rate", "empty_rate", "fields"), "qualification")
    noise = QualNoise(*(p.num(raw, k, "qualification", 0.0, 1.0) for k in ("overclaim_share", "overclaim_rate",
                                                                            "empty_rate")))
    fields = []
    for label, spec in p.table(raw, "fields", "qualification").items():
        where = f"qualification.fields.{label}"
        if not isinstance(spec, dict):
            raise p.fail(where, "must be a table")
        p.known(spec, ("item", "claim", "discovery", "levels"), where, complete=False)
        levels = spec.get("levels")
        if not isinstance(levels, dict) or len(levels) < 2 or not all(
                isinstance(v, list) and len(v) == 2 and all(isinstance(x, int | float) for x in v) for v in levels.values()):
            raise p.fail(where, "levels must map at least two levels to [share, effect]")
        claim = str(spec.get("claim", ""))
        if claim not in levels:
            raise p.fail(where, f"claim {claim!r} must be one of the levels {sorted(levels)}")
        fields.append(QualField(str(label), str(spec.get("item", "other")), claim,
                                tuple((str(k), float(v[0]), scale * float(v[1])) for k, v in levels.items()),
                                str(spec["discovery"]) if spec.get("discovery") else None))
    return tuple(fields), noise


@dataclass
class QualDraw:
    """Per lead: the true level and what the SDR recorded ('' = left empty) of each field; the summed effect."""

    true: dict[str, np.ndarray]
    recorded: dict[str, np.ndarray]
    effect: np.ndarray


def overclaimers(n_sdrs: int, share: float) -> np.ndarray:
    """Which SDRs tick boxes without evidence: a fixed habit per SDR (a stable spread, no random draw)."""
    return (np.arange(n_sdrs) * 0.6180339887 % 1.0) < share


def draw_qualification(fields: Sequence[QualField], noise: QualNoise, rng: np.random.Generator, sdr: np.ndarray,
                       n_sdrs: int) -> QualDraw:
    """True levels by their shares, the effect they plant, and the SDR's record of them."""
    n = len(sdr)
    over = overclaimers(n_sdrs, noise.overclaim_share)[sdr]
    true, recorded, effect = {}, {}, np.zeros(n)
    for f in fields:
        names = np.array([lv for lv, _, _ in f.levels], dtype=object)
        shares = np.array([s for _, s, _ in f.levels], dtype=float)
        pick = rng.choice(len(names), n, p=shares / shares.sum())
        effect += np.array([e for _, _, e in f.levels])[pick]
        truth = names[pick]
        record = truth.copy()
        record[over & (truth != f.claim) & (rng.random(n) < noise.overclaim_rate)] = f.claim
        record[rng.random(n) < noise.empty_rate] = ""
        true[f.label], recorded[f.label] = truth, record
    return QualDraw(true, recorded, effect)


def field_rules_mask(rules: Sequence[Mapping[str, str]], recorded: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """Leads a playbook's field rules disqualify: a 'require' not met, or a 'disqualify' level recorded
    ('qualify' only tells SDRs not to hold such deals back, which no disqualification models)."""
    out = np.zeros(n, dtype=bool)
    for rule in rules:
        values = recorded.get(rule["field"])
        if values is None or rule["op"] == "qualify":
            continue
        level = np.where(values == "", UNKNOWN, values)
        out |= (level != rule["level"]) if rule["op"] == "require" else (level == rule["level"])
    return out


def answers(fields: Sequence[QualField], draw: QualDraw | None, i: int) -> tuple[tuple[QualificationAnswer, ...],
                                                                               tuple[QualificationAnswer, ...]]:
    """The SDR's answers of lead i at hand-over, and the BDM's discovery answers (filled after discovery)."""
    if draw is None:
        return (), ()
    sdr, bdm = [], []
    for f in fields:
        level = str(draw.recorded[f.label][i]) or UNKNOWN
        sdr.append(QualificationAnswer(label=f.label, level=level, item=f.item, claimed=level == f.claim))
        if f.discovery:
            truth = str(draw.true[f.label][i])
            bdm.append(QualificationAnswer(label=f.discovery, level=truth, item=f.item, stage="discovery",
                                           claimed=truth == f.claim))
    return tuple(sdr), tuple(bdm)
