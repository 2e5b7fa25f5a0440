"""Hand-built CRM worlds for the learning-loop tests: a planted effect, or pure noise."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

from crm_adapters.model import ActivityType, DealStatus, Direction, UserRole
from crm_adapters.snapshot import Snapshot
from tests.factories import T0, a_deal, a_pipeline, a_stage_change, a_user, an_account, an_activity

NOW = T0 + timedelta(days=120)
QUESTION_LINES = {
    "current_process": "Rep: Can you walk me through your current process?",
    "success_metrics": "Rep: What would success look like for you?",
    "decision_process": "Rep: What does your buying process look like?",
    "budget_owner": "Rep: Who owns the budget for this?",
    "timeline": "Rep: What is your timeline for this?",
    "cost_of_inaction": "Rep: What happens if nothing changes?",
    "stakeholders": "Rep: Who else needs to be involved?",
    "competing_priorities": "Rep: What are your other priorities this year?",
    "technical_requirements": "Rep: Which systems do you need us to integrate with?",
    "past_attempts": "Rep: What have you tried before?",
}
OBJECTION_LINES = {
    "price": "Prospect: Honestly this is too expensive for us.",
    "timing": "Prospect: It is bad timing, maybe next year.",
    "authority": "Prospect: It is not my decision, I need to run it by my boss.",
    "competitor": "Prospect: We already use another vendor for this.",
}
RESPONSE_LINES = {
    "roi_case": "Rep: Fair point. The ROI is clear, it pays for itself in three months.",
    "discount_offer": "Rep: I can offer a discount of 20% off this quarter.",
    "reference_customer": "Rep: A customer like you in your industry saw great results, happy to connect you with them.",
    "phased_rollout": "Rep: We could start small with a pilot for one team first.",
    "acknowledge_and_defer": "Rep: Totally get it, no pressure, we can circle back later.",
}
FILLER = "Prospect: Sounds good, thanks."


def _deal_with_history(rng: random.Random, progressed: bool, at_day: int = 2, **kw: object):  # type: ignore[no-untyped-def]
    """A deal that entered Discovery on day 1; when it progressed it moved to Proposal on day 12 and was won."""
    won = progressed
    status = DealStatus.WON if won else (DealStatus.OPEN if progressed else DealStatus.LOST)
    stage = "105" if won else ("103" if progressed else "106")
    deal = a_deal(stage_id=stage, status=status, **kw)
    history = [a_stage_change(deal.remote_id, "101", T0), a_stage_change(deal.remote_id, "102", T0 + timedelta(days=1))]
    if progressed:
        history.append(a_stage_change(deal.remote_id, "103", T0 + timedelta(days=at_day + 10)))
    return deal, history


def discovery_world(n: int = 300, seed: int = 1, effect: bool = True) -> Snapshot:
    """Planted: asking budget_owner lifts progress, competing_priorities goes with stalls (when effect)."""
    rng, records = random.Random(seed), []
    for _ in range(n):
        asked = [q for q in QUESTION_LINES if rng.random() < 0.5]
        p = 0.4
        if effect:
            p += 0.35 * ("budget_owner" in asked) - 0.25 * ("competing_priorities" in asked)
        deal, history = _deal_with_history(rng, rng.random() < p)
        lines = [x for q in asked for x in (QUESTION_LINES[q], FILLER)]
        call = an_activity(ActivityType.CALL, deal.remote_id, T0 + timedelta(days=2), transcript="\n".join(lines),
                           custom={"kind": "discovery_call"})
        records += [deal, *history, call]
    return Snapshot.of(records, [a_pipeline()])


def objection_world(n: int = 400, seed: int = 2, effect: bool = True) -> Snapshot:
    """Planted: price answered with roi_case moves deals on, with discount_offer it stalls (when effect)."""
    rng, records = random.Random(seed), []
    for _ in range(n):
        objection = rng.choice(list(OBJECTION_LINES))
        response = rng.choice(list(RESPONSE_LINES))
        p = 0.4
        if effect and objection == "price":
            p = {"roi_case": 0.85, "discount_offer": 0.1}.get(response, 0.4)
        deal, history = _deal_with_history(rng, rng.random() < p)
        text = "\n".join(["Rep: Thanks for joining.", OBJECTION_LINES[objection], RESPONSE_LINES[response]])
        call = an_activity(ActivityType.CALL, deal.remote_id, T0 + timedelta(days=2), transcript=text,
                           custom={"kind": "discovery_call"})
        records += [deal, *history, call]
    return Snapshot.of(records, [a_pipeline()])


def sequence_world(rates: dict[str, float], n: int, seed: int = 3, holdout_every: int = 20) -> Snapshot:
    """n enrolments per variant of sequence 'seq1'; a positive reply (or a meeting) with the variant's rate."""
    rng, records = random.Random(seed), []
    for variant, rate in rates.items():
        for i in range(n):
            contact = f"{variant}-{i}"
            custom = {"sequence": "seq1", "variant": variant, "step": 1, "holdout": i % holdout_every == 0}
            records.append(an_activity(ActivityType.EMAIL, None, T0, contact_ids=(contact,), custom=custom))
            if rng.random() < rate:
                kind = rng.choice(["reply", "meeting"])
                at = T0 + timedelta(days=3)
                if kind == "reply":
                    records.append(an_activity(ActivityType.EMAIL, None, at, direction=Direction.INBOUND, contact_ids=(contact,),
                                               custom={"sequence": "seq1", "variant": variant, "reply": "positive"}))
                else:
                    records.append(an_activity(ActivityType.MEETING, None, at, contact_ids=(contact,),
                                               custom={"sequence": "seq1", "variant": variant}))
            elif rng.random() < 0.1:  # a negative reply is not a success
                records.append(an_activity(ActivityType.EMAIL, None, T0 + timedelta(days=2), direction=Direction.INBOUND,
                                           contact_ids=(contact,), custom={"sequence": "seq1", "variant": variant, "reply": "negative"}))
    return Snapshot.of(records, [a_pipeline()])


INDUSTRIES = ["software", "fintech", "retail", "healthcare", "manufacturing"]
COUNTRIES = ["US", "DE", "GB", "FR"]


def icp_world(n: int = 400, seed: int = 4, effect: bool = True, open_accounts: int = 30) -> Snapshot:
    """Planted: fintech accounts win 70%, retail 10%, the rest 30% (when effect); plus accounts with no deal."""
    rng = random.Random(seed)
    lead, sdr = a_user(UserRole.MANAGER), None
    sdr = a_user(UserRole.SDR, manager_id=lead.remote_id)
    records: list[object] = [lead, sdr, a_user(UserRole.MANAGER)]
    for i in range(n + open_accounts):
        industry = rng.choice(INDUSTRIES)
        account = an_account(name=f"Account {i}", industry=industry, employees=rng.choice([20, 120, 600, 3000, 9000]),
                             annual_revenue=Decimal(rng.choice([5e5, 5e6, 5e7, 5e8])), country=rng.choice(COUNTRIES))
        records.append(account)
        if i >= n:
            continue
        rate = {"fintech": 0.7, "retail": 0.1}.get(industry, 0.3) if effect else 0.3
        won = rng.random() < rate
        records.append(a_deal(stage_id="105" if won else "106", status=DealStatus.WON if won else DealStatus.LOST,
                              account_id=account.remote_id, lead_source=rng.choice(["inbound", "outbound", "event"])))
    return Snapshot.of(records, [a_pipeline()])


def maven_like_noise(seed: int = 5, n: int = 600) -> Snapshot:
    """Maven-like: fictitious sectors/offices, agents, won/lost at ~63% independent of everything."""
    rng = random.Random(seed)
    sectors = ["technolgy", "medical", "retail", "software", "finance", "marketing", "entertainment", "telecommunications"]
    agents = [a_user(UserRole.AE, name=f"agent {i}") for i in range(10)]
    records: list[object] = [*agents]
    accounts = [an_account(name=f"Maven {i}", industry=rng.choice(sectors), employees=rng.randint(10, 20000),
                           annual_revenue=Decimal(rng.randint(10, 12000)) * 1000000, country=rng.choice(["United States", "Kenya", "Norway"]))
                for i in range(85)]
    records += accounts
    for i in range(n):
        won = rng.random() < 0.63
        deal = a_deal(stage_id="105" if won else "106", status=DealStatus.WON if won else DealStatus.LOST,
                      account_id=rng.choice(accounts).remote_id, owner_id=rng.choice(agents).remote_id,
                      lead_source=rng.choice(["GTX", "MG", "GTK"]))
        records.append(deal)
        asked = [q for q in QUESTION_LINES if rng.random() < 0.4]
        objection, response = rng.choice(list(OBJECTION_LINES)), rng.choice(list(RESPONSE_LINES))
        text = "\n".join([x for q in asked for x in (QUESTION_LINES[q], FILLER)] + [OBJECTION_LINES[objection], RESPONSE_LINES[response]])
        records.append(an_activity(ActivityType.CALL, deal.remote_id, T0 + timedelta(days=2), transcript=text,
                                   custom={"kind": "discovery_call"}))
        records += [a_stage_change(deal.remote_id, "102", T0)]
        for v in ("A", "B"):
            contact = f"{i}-{v}"
            records.append(an_activity(ActivityType.EMAIL, None, T0, contact_ids=(contact,), custom={"sequence": "s", "variant": v}))
            if rng.random() < 0.08:
                records.append(an_activity(ActivityType.EMAIL, None, T0 + timedelta(days=1), direction=Direction.INBOUND,
                                           contact_ids=(contact,), custom={"sequence": "s", "variant": v, "reply": "positive"}))
    return Snapshot.of(records, [a_pipeline()])
