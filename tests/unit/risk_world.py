"""A small synthetic tenant for the deal-risk tests: closed deals whose outcomes follow planted signs."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from crm_adapters.model import ActivityType, ContactRole, DealStatus, Direction
from crm_adapters.snapshot import Snapshot
from tests.factories import (
    T0,
    a_contact,
    a_deal,
    a_pipeline,
    a_role,
    a_stage_change,
    a_user,
    an_account,
    an_activity,
)

STAGES = ("101", "102", "103", "104")


def closed_deal(rnd: random.Random, start: datetime, *, quiet: bool, single: bool, won: bool, owner: str) -> list[object]:
    """One closed deal with its roles, stage history and activities; `quiet` and `single` plant signs."""
    life = rnd.randint(40, 80)
    closed = start + timedelta(days=life)
    account = an_account(industry=rnd.choice(("Software", "Retail")), employees=rnd.choice((50, 500, 5000)))
    deal = a_deal(stage_id="105" if won else "106", status=DealStatus.WON if won else DealStatus.LOST,
                  created_at=start, closed_at=closed.date(), account_id=account.remote_id, owner_id=owner,
                  amount=str(rnd.randrange(5, 90) * 1000 + rnd.randrange(0, 999)))
    champion, buyer = a_contact(account_id=account.remote_id), a_contact(account_id=account.remote_id)
    out: list[object] = [account, deal, champion, buyer, a_role(deal.remote_id, champion.remote_id)]
    if not single:
        out.append(a_role(deal.remote_id, buyer.remote_id, ContactRole.ECONOMIC_BUYER))
    step = life / 5
    for k, stage in enumerate(STAGES):
        out.append(a_stage_change(deal.remote_id, stage, start + timedelta(days=k * step),
                                  exited_at=start + timedelta(days=(k + 1) * step)))
    last = closed - timedelta(days=40 if quiet else 2)
    t = start
    while t < last:
        out.append(an_activity(ActivityType.EMAIL, deal.remote_id, t, contact_ids=(champion.remote_id,)))
        out.append(an_activity(ActivityType.EMAIL, deal.remote_id, t + timedelta(days=1), direction=Direction.INBOUND,
                               contact_ids=(champion.remote_id,)))
        out.append(an_activity(ActivityType.MEETING, deal.remote_id, t + timedelta(days=2), outcome="completed",
                               contact_ids=(champion.remote_id,)))
        t += timedelta(days=6)
    return out


def open_deal(start: datetime, now: datetime, *, quiet: bool, owner: str) -> list[object]:
    """An open deal in Proposal since `start`; a quiet one has heard nothing for 30 days."""
    deal = a_deal(stage_id="103", created_at=start, owner_id=owner, name=f"Open {'quiet' if quiet else 'busy'}")
    champion = a_contact()
    out: list[object] = [deal, champion, a_role(deal.remote_id, champion.remote_id)]
    out.append(a_stage_change(deal.remote_id, "103", start))
    last = now - timedelta(days=30 if quiet else 1)
    out.append(an_activity(ActivityType.EMAIL, deal.remote_id, last, direction=Direction.INBOUND,
                           contact_ids=(champion.remote_id,)))
    return out


def tenant(n: int, *, seed: int = 7, signal: bool = True, start: datetime = T0, n_open: int = 0,
           now: datetime | None = None) -> Snapshot:
    """n closed deals created one a day; with `signal`, quiet and single-threaded deals mostly lose."""
    rnd = random.Random(seed)
    owners = [a_user() for _ in range(3)]
    records: list[object] = list(owners)
    for i in range(n):
        quiet, single = rnd.random() < 0.4, rnd.random() < 0.4
        p_win = (0.15 if quiet else 0.6) * (0.5 if single else 1.0) if signal else 0.4
        records += closed_deal(rnd, start + timedelta(days=i), quiet=quiet, single=single, won=rnd.random() < p_win,
                               owner=owners[i % 3].remote_id)
    now = now or start + timedelta(days=n + 90)
    for i in range(n_open):
        records += open_deal(now - timedelta(days=45), now, quiet=i % 2 == 0, owner=owners[i % 2].remote_id)
    return Snapshot.of(records, [a_pipeline()])
