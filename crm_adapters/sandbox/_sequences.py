"""Outbound sequences: enrollments, step emails, replies at each variant's true rate, booked meetings."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from crm_adapters.model import Activity, ActivityType, Direction
from crm_adapters.sandbox import _text as T
from crm_adapters.sandbox._build import Directory, Ids
from crm_adapters.sandbox._plans import SANDBOX
from crm_adapters.sandbox.scenario import Scenario


@dataclass
class Booked:
    """Meetings booked from positive replies: each becomes an outbound lead."""

    account: np.ndarray
    contact: np.ndarray
    sdr: np.ndarray
    sequence: list[str]
    variant: list[str]


def run_sequences(
    sc: Scenario, rng: np.random.Generator, rnd: random.Random, week_start: datetime, d: Directory, ids: Ids
) -> tuple[list[Activity], Booked]:
    """One week of enrollments; replies land at the variant's true reply rate."""
    n = int(rng.poisson(sc.enrollments_per_week)) if sc.sequences else 0
    seq_idx = rng.integers(0, max(len(sc.sequences), 1), n)
    var_pick = rng.random(n)
    account = rng.integers(0, sc.accounts, n)
    contact = d.contact_start[account] + np.floor(rng.random(n) * d.contact_count[account]).astype(np.int64)
    sdr = rng.integers(0, sc.sdrs, n)
    start = rng.integers(0, 5, n) * 86400 + rng.integers(7 * 3600, 11 * 3600, n)
    u_reply, u_pos, u_meet, u_step = rng.random(n), rng.random(n), rng.random(n), rng.random(n)
    acts: list[Activity] = []
    booked: list[int] = []
    names: list[tuple[str, str]] = []
    for i in range(n):
        spec = sc.sequences[int(seq_idx[i])]
        variants = list(spec.variants)
        variant = variants[min(int(var_pick[i] * len(variants)), len(variants) - 1)]
        replied = u_reply[i] < spec.variants[variant]
        last = 1 + min(int(u_step[i] * spec.steps), spec.steps - 1) if replied else spec.steps
        positive = replied and u_pos[i] < sc.positive_share
        meeting = positive and u_meet[i] < sc.meeting_rate
        tag = {"sequence": spec.id, "variant": variant}
        at = week_start + timedelta(seconds=int(start[i]))
        cid, first = d.contact_ids[int(contact[i])], d.contact_first[int(contact[i])]
        company, owner, acc_id = (
            d.account_names[int(account[i])],
            d.sdr_ids[int(sdr[i])],
            d.account_ids[int(account[i])],
        )
        for step in range(1, last + 1):
            subject, body = T.sequence_email(rnd, variant, step, first, company)
            acts.append(
                _email(ids, at, subject, body, Direction.OUTBOUND, owner, cid, acc_id, {**tag, "step": step})
            )
            if step < last:
                at = at + timedelta(days=rnd.uniform(2, 4))
        if replied:
            at = at + timedelta(hours=rnd.uniform(2, 48))
            acts.append(_email(ids, at, f"Re: {subject}", T.sequence_reply(rnd, positive), Direction.INBOUND, owner,
                               cid, acc_id, {**tag, "reply": "positive" if positive else "negative"}))  # fmt: skip
        if meeting:
            booked.append(i)
            names.append((spec.id, variant))
            meet_at = at + timedelta(hours=rnd.uniform(1, 20))
            acts.append(Activity(crm=SANDBOX, remote_id=ids.take("activity"), remote_updated_at=meet_at,
                                 type=ActivityType.MEETING, occurred_at=meet_at, subject=f"Intro call - {company}",
                                 outcome="scheduled", owner_id=owner, start_at=meet_at + timedelta(days=2),
                                 contact_ids=(cid,), account_id=acc_id, custom=dict(tag)))  # fmt: skip
    sel = np.array(booked, dtype=np.int64)
    return acts, Booked(account[sel], contact[sel], sdr[sel], [s for s, _ in names], [v for _, v in names])


def _email(ids: Ids, at: datetime, subject: str, body: str, direction: Direction, owner: str, contact: str,
           account: str, custom: dict[str, object]) -> Activity:  # fmt: skip
    return Activity(crm=SANDBOX, remote_id=ids.take("activity"), remote_updated_at=at, type=ActivityType.EMAIL,
                    occurred_at=at, subject=subject, body=body, direction=direction, owner_id=owner,
                    contact_ids=(contact,), account_id=account, custom=custom)  # fmt: skip
