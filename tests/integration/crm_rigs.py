"""Rigs for the chain tests: a fake CRM seeded with a simulated org, an installation as OAuth leaves it,
and the engine running the tenant's chain through jobs.adapters.adapter_for (the real SDK clients).

Each rig exposes the same small surface (run, writes, tasks, field values, faults) so one test body
runs against the fake HubSpot (hubspot-api-client over HTTP) and the fake Salesforce
(simple-salesforce over HTTPS, trusting the test CA through REQUESTS_CA_BUNDLE, as a deployment
behind a TLS-inspecting proxy would).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import pytest

from connector.settings import Settings
from connector.store import Store
from connector.store import installations as inst
from connector.store.crypto import TokenCipher
from crm_adapters.model import Activity, ActivityType, Crm, Entity, TaskStatus
from crm_adapters.sandbox import load_scenario, simulate
from crm_adapters.sandbox.simulator import SimulatedOrg
from crm_adapters.writes import AppField, FieldValue
from jobs.engine import chain as engine

SEED, DEALS = 11, 200
READ_SUFFIXES = ("/search", "/batch/read", "/jobs/query")


@cache
def simulated_org() -> SimulatedOrg:
    """A few hundred deals with activities, stage history, roles and users (seeded, so runs repeat)."""
    return simulate(load_scenario().scaled(DEALS), seed=SEED)


def is_write(method: str, path: str) -> bool:
    """A call that changes the CRM (searches, batch reads and bulk query jobs are POSTs that only read)."""
    if method in ("GET", "HEAD") or "/oauth" in path or "/token" in path:
        return False
    return not any(s in path.split("?")[0] for s in READ_SUFFIXES)


class Rig:
    """One installation over one fake CRM; subclasses know the fake's side."""

    crm: Crm
    installation_id: str

    def __init__(self, store: Store, redis: Any, settings: Settings) -> None:
        self.store, self.redis, self.settings = store, redis, settings
        self.cipher = TokenCipher.from_key_text(settings.token_encryption_key)

    def run(self, now: datetime, **options: Any) -> engine.ChainReport:
        opts = engine.Options(**{"workers": 1, **options})
        return engine.run_chain(self.store, self.installation_id, settings=self.settings, now=now,
                                options=opts, redis=self.redis)

    def install(self, tenant_id: str, tokens: dict[str, Any], settings: dict[str, Any], **fields: Any) -> None:
        """What the OAuth callback leaves behind: an active installation with encrypted tokens."""
        with self.store.session() as s:
            row = inst.upsert(s, self.cipher, crm=self.crm.value, tenant_id=tenant_id, tokens=tokens,
                              expires_at=datetime.now(UTC) + timedelta(minutes=30), **fields)
            row.settings = {**(row.settings or {}), **settings}
            self.installation_id = row.id

    def expire_access_token(self) -> None:
        """Make the stored access token due, so the next call refreshes first."""
        with self.store.session() as s:
            inst.get(s, self.installation_id).access_expires_at = datetime.now(UTC) - timedelta(minutes=1)

    # the fake's side, per CRM
    def write_calls(self) -> int: raise NotImplementedError
    def token_calls(self) -> int: raise NotImplementedError
    def app_tasks(self) -> list[dict[str, Any]]: raise NotImplementedError
    def set_task_status(self, remote_id: str, status: TaskStatus) -> None: raise NotImplementedError
    def field_value(self, deal_id: str, field: AppField) -> FieldValue: raise NotImplementedError
    def crm_count(self, entity: Entity) -> int: raise NotImplementedError
    limited = Entity.ACTIVITY  # the entity whose read hits the daily limit in daily_limit_mid_sync
    dead_grant_status = "needs_reauth"  # what a refused refresh token makes of the installation

    def daily_limit_mid_sync(self) -> None: raise NotImplementedError
    def daily_limit_on_field_writes(self) -> None: raise NotImplementedError
    def revoke_refresh_token(self) -> None: raise NotImplementedError


# --- HubSpot -------------------------------------------------------------------------------------


class HubSpotRig(Rig):
    crm = Crm.HUBSPOT
    dead_grant_status = "uninstalled"  # the adapter reads BAD_REFRESH_TOKEN as an uninstall (see the report)
    OBJECTS = {Entity.ACCOUNT: ("companies",), Entity.CONTACT: ("contacts",), Entity.DEAL: ("deals",),
               Entity.ACTIVITY: ("calls", "emails", "meetings", "notes", "tasks")}

    def __init__(self, store: Store, redis: Any, harness: Any) -> None:
        fake = harness.fake
        super().__init__(store, redis, Settings(
            testing=True, hubspot_client_id=fake.oauth.client_id, hubspot_client_secret=fake.oauth.client_secret,
            hubspot_base_url=harness.url, hubspot_rate_per_10s=fake.rate_limit))
        self.harness, self.fake, self.portal = harness, fake, harness.portal
        org = simulated_org()
        harness.seed(pipelines=org.pipelines, users=org.users, accounts=org.accounts, contacts=org.contacts,
                     deals=org.deals, roles=org.roles, stage_changes=org.stage_changes, activities=org.activities)
        current = harness.tokens.current()
        roles = {u.remote_id: u.role.value for u in org.users}
        self.install(str(self.portal.hub_id), {"access_token": current.access_token,
                                               "refresh_token": current.refresh_token},
                     {"hubspot_mapping": {"role_by_owner": roles}})

    def write_calls(self) -> int:
        with self.fake.lock:
            return sum(1 for m, p, s in self.fake.log if is_write(m, p) and s < 400)

    def token_calls(self) -> int:
        with self.fake.lock:
            return sum(1 for m, p, _ in self.fake.log if m == "POST" and p.startswith("/oauth/") and p.endswith("/token"))

    def app_tasks(self) -> list[dict[str, Any]]:
        with self.fake.lock:
            return [{"id": str(i), "key": o.properties["salesloop_key"], "subject": o.properties.get("hs_task_subject"),
                     "status": o.properties.get("hs_task_status")}
                    for i, o in self.portal.objects["tasks"].items()
                    if o.properties.get("salesloop_key") and not getattr(o, "archived", False)]

    def set_task_status(self, remote_id: str, status: TaskStatus) -> None:
        self.harness.set_task_status(remote_id, status)

    def field_value(self, deal_id: str, field: AppField) -> FieldValue:
        return self.harness.field_value(Entity.DEAL, deal_id, field)  # type: ignore[no-any-return]

    def crm_count(self, entity: Entity) -> int:
        with self.fake.lock:
            return sum(1 for t in self.OBJECTS[entity] for o in self.portal.objects[t].values()
                       if not getattr(o, "archived", False))

    DAILY = {"status": "error", "message": "You have reached your daily limit.", "errorType": "RATE_LIMIT",
             "correlationId": "c0ffee", "policyName": "DAILY", "groupName": "publicapi:oauth:1:1"}

    def daily_limit_mid_sync(self) -> None:
        self.fake.inject(f"/crm/v3/objects/{self.OBJECTS[self.limited][0]}", 429, body=self.DAILY)

    def daily_limit_on_field_writes(self) -> None:
        self.fake.inject("/batch/update", 429, method="POST", body=self.DAILY)

    def revoke_refresh_token(self) -> None:
        with self.fake.lock:
            self.fake.oauth.refresh.clear()
            self.fake.oauth.expire_all()


@contextlib.contextmanager
def hubspot_rig(store: Store, redis: Any) -> Iterator[HubSpotRig]:
    from tests.fakes.hubspot.harness import hubspot_harness

    with hubspot_harness(rate_limit=2_000) as harness:
        yield HubSpotRig(store, redis, harness)


# --- Salesforce ----------------------------------------------------------------------------------

SF_PREFIX = {"User": "005", "Account": "001", "Contact": "003", "Opportunity": "006", "OpportunityContactRole": "00K",
             "OpportunityHistory": "008", "Task": "00T", "Event": "00U"}


def sf_id(sobject: str, value: str) -> str:
    """An 18-character Salesforce id for a simulator id (the simulator numbers each entity from 1)."""
    return f"{SF_PREFIX[sobject]}9{int(value):011d}AAA"


def _opt(sobject: str, value: str | None) -> str | None:
    return None if value is None else sf_id(sobject, value)


def salesforce_org(org: SimulatedOrg) -> dict[str, list[Any]]:
    """The simulated org with Salesforce ids (ids are unique across sobjects there)."""
    def u(x: str | None) -> str | None: return _opt("User", x)
    def a(x: str | None) -> str | None: return _opt("Account", x)
    def d(x: str) -> str: return sf_id("Opportunity", x)
    def c(x: str) -> str: return sf_id("Contact", x)

    def activity(x: Activity) -> Activity:
        kind = "Event" if x.type is ActivityType.MEETING else "Task"
        return replace(x, remote_id=sf_id(kind, x.remote_id), owner_id=u(x.owner_id), account_id=a(x.account_id),
                       deal_ids=tuple(map(d, x.deal_ids)), contact_ids=tuple(map(c, x.contact_ids)))

    return {
        "pipelines": list(org.pipelines),
        "users": [replace(x, remote_id=sf_id("User", x.remote_id), manager_id=u(x.manager_id)) for x in org.users],
        "accounts": [replace(x, remote_id=sf_id("Account", x.remote_id), owner_id=u(x.owner_id)) for x in org.accounts],
        "contacts": [replace(x, remote_id=c(x.remote_id), account_id=a(x.account_id)) for x in org.contacts],
        "deals": [replace(x, remote_id=d(x.remote_id), account_id=a(x.account_id), owner_id=u(x.owner_id),
                          sdr_id=u(x.sdr_id)) for x in org.deals],
        "roles": [replace(x, remote_id=sf_id("OpportunityContactRole", x.remote_id), deal_id=d(x.deal_id),
                          contact_id=c(x.contact_id)) for x in org.roles],
        "stage_changes": [replace(x, remote_id=sf_id("OpportunityHistory", x.remote_id), deal_id=d(x.deal_id))
                          for x in org.stage_changes],
        "activities": [activity(x) for x in org.activities],
    }


class _CountingDict(dict[str, str]):
    """The fake org's refresh tokens, counting lookups (one per refresh-grant request)."""

    lookups = 0

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.lookups += 1
        return super().get(key, default)


class SalesforceRig(Rig):
    crm = Crm.SALESFORCE
    limited = Entity.DEAL_CONTACT_ROLE  # read over REST (activities go through a Bulk 2.0 job)
    SOBJECTS = {Entity.ACCOUNT: ("Account",), Entity.CONTACT: ("Contact",), Entity.DEAL: ("Opportunity",),
                Entity.DEAL_CONTACT_ROLE: ("OpportunityContactRole",), Entity.STAGE_CHANGE: ("OpportunityHistory",),
                Entity.ACTIVITY: ("Task", "Event")}

    def __init__(self, store: Store, redis: Any, harness: Any) -> None:
        fake = harness.fake
        super().__init__(store, redis, Settings(
            testing=True, salesforce_client_id=fake.oauth_app.client_id,
            salesforce_client_secret=fake.oauth_app.client_secret, salesforce_login_url=fake.url))
        self.harness, self.fake, self.org = harness, fake, harness.org
        harness.seed(**salesforce_org(simulated_org()))
        self.org.refresh_tokens = _CountingDict(self.org.refresh_tokens)
        self.seeded_tasks = set(self.org.records["Task"])
        mapping = harness.adapter.mapping
        self.install(self.org.org_id, {"access_token": fake.issue_token(), "refresh_token": fake.issue_refresh_token()},
                     {"salesforce_mapping": {
                         "pipeline_id": mapping.pipeline_id, "pipeline_label": mapping.pipeline_label,
                         "transcript_field": mapping.transcript_field, "outcome_field": mapping.outcome_field,
                         "extra_fields": {k: list(v) for k, v in mapping.extra_fields.items()}}},
                     instance_url=fake.url, login_host=fake.url)

    def write_calls(self) -> int:
        return sum(1 for m, p in self.org.calls if is_write(m, p))

    def token_calls(self) -> int:
        return self.org.refresh_tokens.lookups  # type: ignore[no-any-return,attr-defined]

    def app_tasks(self) -> list[dict[str, Any]]:
        from crm_adapters.salesforce._mapping import TASK_KEY

        return [{"id": rid, "key": t[TASK_KEY], "subject": t.get("Subject"), "status": t.get("Status")}
                for rid, t in self.org.records["Task"].items()
                if t.get(TASK_KEY) and t.get("Type") != "Note" and not t.get("IsDeleted")]

    def set_task_status(self, remote_id: str, status: TaskStatus) -> None:
        self.harness.set_task_status(remote_id, status)

    def field_value(self, deal_id: str, field: AppField) -> FieldValue:
        return self.harness.field_value(Entity.DEAL, deal_id, field)  # type: ignore[no-any-return]

    def crm_count(self, entity: Entity) -> int:
        return sum(1 for s in self.SOBJECTS[entity] for r in self.org.records[s].values()
                   if not r.get("IsDeleted") and not (s == "Task" and r["Id"] not in self.seeded_tasks))

    def daily_limit_mid_sync(self) -> None:
        from tests.fakes.salesforce.org import Injected
        from tests.fakes.salesforce.server import LIMIT

        self.org.injected.append(Injected(path_contains=f"FROM+{self.SOBJECTS[self.limited][0]}+", status=403, body=LIMIT))
        self.org.limits_exhausted += 1  # the org's /limits shows the daily allocation spent when the adapter asks

    def daily_limit_on_field_writes(self) -> None:
        from tests.fakes.salesforce.org import Injected
        from tests.fakes.salesforce.server import LIMIT

        self.org.injected.append(Injected(path_contains="/composite/sobjects", status=403, body=LIMIT, method="PATCH"))
        self.org.limits_exhausted += 1

    def revoke_refresh_token(self) -> None:
        self.org.refresh_tokens.clear()


@contextlib.contextmanager
def salesforce_rig(store: Store, redis: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[SalesforceRig]:
    from tests.fakes.salesforce.harness import SalesforceHarness

    harness = SalesforceHarness()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(harness.fake.ca_bundle))  # every requests.Session trusts the test CA
    yield SalesforceRig(store, redis, harness)
