"""Helpers for tests and benchmarks against the fake: a standard org and an adapter wired to it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from crm_adapters.auth import StaticTokens, Tokens
from crm_adapters.salesforce import oauth
from crm_adapters.salesforce._mapping import SalesforceMapping
from crm_adapters.salesforce.adapter import SalesforceAdapter
from crm_adapters.salesforce.budget import ApiBudget
from tests.fakes.salesforce.org import FakeOrg
from tests.fakes.salesforce.server import FakeSalesforce

# The default StageName picklist of a new org (cumulusci/Opportunity_describe.json) with OpportunityStage facts.
DEFAULT_STAGES = [
    ("Prospecting", 10, False, False), ("Qualification", 10, False, False), ("Needs Analysis", 20, False, False),
    ("Value Proposition", 50, False, False), ("Id. Decision Makers", 60, False, False),
    ("Perception Analysis", 70, False, False), ("Proposal/Price Quote", 75, False, False),
    ("Negotiation/Review", 90, False, False), ("Closed Won", 100, True, True), ("Closed Lost", 0, True, False),
]


def add_default_stages(org: FakeOrg) -> dict[str, str]:
    """OpportunityStage rows; returns stage id by API name."""
    out = {}
    for order, (name, prob, closed, won) in enumerate(DEFAULT_STAGES, 1):
        out[name] = org.insert("OpportunityStage", {"ApiName": name, "MasterLabel": name, "IsActive": True,
                                                    "SortOrder": order, "IsClosed": closed, "IsWon": won,
                                                    "DefaultProbability": prob})
    return out


def tokens_for(fake: FakeSalesforce, *, refresh: bool = True) -> StaticTokens:
    """Tokens as the OAuth flow hands them out, refreshing through the fake's token endpoint."""
    tokens = Tokens(access_token=fake.issue_token(), refresh_token=fake.issue_refresh_token() if refresh else None,
                    instance_url=fake.url)
    refresher = oauth.make_refresher(fake.url, client_id=fake.oauth_app.client_id,
                                     client_secret=fake.oauth_app.client_secret, session=fake.session())
    return StaticTokens(tokens, refresher)


def adapter_for(fake: FakeSalesforce, *, mapping: SalesforceMapping | None = None, budget: ApiBudget | None = None,
                tokens: StaticTokens | None = None, **kw: Any) -> SalesforceAdapter:
    return SalesforceAdapter(tokens or tokens_for(fake), fake.org.org_id, session=fake.session(), budget=budget,
                             mapping=mapping, **kw)


class Clock:
    """The fake org's clock, moved by a test (`clock.now += timedelta(days=31)`)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now
