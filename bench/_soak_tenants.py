"""The soak's tenants: sandbox orgs, a HubSpot portal and a Salesforce org (the fakes in tests/fakes,
served over HTTP so the worker processes reach them with the real SDK clients), and what each CRM holds."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from connector.settings import Settings
from connector.store import Store
from connector.store import installations as inst
from connector.store.crypto import TokenCipher
from connector.store.tables import Installation, OutboxItem
from crm_adapters.model import Entity
from crm_adapters.sandbox import SandboxCrm


@dataclass
class Tenant:
    name: str
    crm: str
    installation_id: str
    task_keys: Any  # () -> list of the salesloop keys on the CRM's tasks (a key twice is a duplicate)
    fields: Any = None  # () -> {record: app field values}, for the CRMs compared with a clean reference run
    extra: dict[str, Any] = field(default_factory=dict)


def install_sandbox(store: Store, crm_url: str, name: str, org: Any) -> Tenant:
    crm = SandboxCrm.open(crm_url, name)
    crm.load(org)
    crm.close()
    with store.session() as s:
        row = Installation(crm="sandbox", tenant_id=name, settings={
            "sandbox_url": crm_url, "clock": org.now.isoformat(), "quality": {"sample_rate": 0.2, "seed": "fixed"}})
        s.add(row)
        s.flush()
        iid = row.id
    deal_ids, account_ids = [d.remote_id for d in org.deals], [a.remote_id for a in org.accounts]
    return Tenant(name, "sandbox", iid, lambda: _sandbox_keys(crm_url, name),
                  lambda: _sandbox_fields(crm_url, name, deal_ids, account_ids))


def _sandbox_keys(crm_url: str, name: str) -> list[str]:
    crm = SandboxCrm.open(crm_url, name)
    try:
        return [t["idempotency_key"] for t in crm.list_tasks()]
    finally:
        crm.close()


def _sandbox_fields(crm_url: str, name: str, deal_ids: list[str], account_ids: list[str]) -> dict[str, Any]:
    crm = SandboxCrm.open(crm_url, name)
    try:
        values = {d: crm.app_field_values(Entity.DEAL, d) for d in deal_ids}
        values.update({f"account:{a}": crm.app_field_values(Entity.ACCOUNT, a) for a in account_ids})
        return {k: v for k, v in values.items() if v}
    finally:
        crm.close()


def _install_tokens(store: Store, crm: str, tenant_id: str, tokens: dict[str, Any], settings: dict[str, Any],
                    clock: datetime, **fields: Any) -> str:
    cipher = TokenCipher.from_key_text(Settings(testing=True).token_encryption_key)
    with store.session() as s:
        row = inst.upsert(s, cipher, crm=crm, tenant_id=tenant_id, tokens=tokens,
                          expires_at=datetime.now(UTC) + timedelta(minutes=30), **fields)
        row.settings = {**(row.settings or {}), **settings, "clock": clock.isoformat(),
                        "quality": {"sample_rate": 0.2, "seed": "fixed"}}
        return row.id


def install_hubspot(store: Store, harness: Any, org: Any) -> Tenant:
    harness.seed(pipelines=org.pipelines, users=org.users, accounts=org.accounts, contacts=org.contacts, deals=org.deals,
                 roles=org.roles, stage_changes=org.stage_changes, activities=org.activities)
    current = harness.tokens.current()
    roles = {u.remote_id: u.role.value for u in org.users}
    iid = _install_tokens(store, "hubspot", str(harness.portal.hub_id),
                          {"access_token": current.access_token, "refresh_token": current.refresh_token},
                          {"hubspot_mapping": {"role_by_owner": roles}}, org.now)

    def keys() -> list[str]:
        with harness.fake.lock:
            return [o.properties["salesloop_key"] for o in harness.portal.objects["tasks"].values()
                    if o.properties.get("salesloop_key") and not getattr(o, "archived", False)]

    return Tenant("hubspot", "hubspot", iid, keys)


def install_salesforce(store: Store, harness: Any, org: Any) -> Tenant:
    from tests.integration.crm_rigs import salesforce_org

    harness.seed(**salesforce_org(org))
    mapping, fake = harness.adapter.mapping, harness.fake
    iid = _install_tokens(store, "salesforce", harness.org.org_id,
                          {"access_token": fake.issue_token(), "refresh_token": fake.issue_refresh_token()},
                          {"salesforce_mapping": {
                              "pipeline_id": mapping.pipeline_id, "pipeline_label": mapping.pipeline_label,
                              "transcript_field": mapping.transcript_field, "outcome_field": mapping.outcome_field,
                              "extra_fields": {k: list(v) for k, v in mapping.extra_fields.items()}}},
                          org.now, instance_url=fake.url, login_host=fake.url)

    def keys() -> list[str]:
        from crm_adapters.salesforce._mapping import TASK_KEY

        return [t[TASK_KEY] for t in list(harness.org.records["Task"].values())
                if t.get(TASK_KEY) and t.get("Type") != "Note" and not t.get("IsDeleted")]

    return Tenant("salesforce", "salesforce", iid, keys, extra={"harness": harness})


def revoke_salesforce(tenant: Tenant) -> None:
    """The admin revoked the app in Salesforce: every access and refresh token stops working."""
    org = tenant.extra["harness"].org
    org.tokens.clear()
    org.refresh_tokens.clear()


def reconnect_salesforce(store: Store, tenant: Tenant, org: Any) -> None:
    """What the OAuth callback does when the admin connects again: fresh tokens, the installation active."""
    harness = tenant.extra["harness"]
    _install_tokens(store, "salesforce", harness.org.org_id,
                    {"access_token": harness.fake.issue_token(), "refresh_token": harness.fake.issue_refresh_token()},
                    {}, org.now, instance_url=harness.fake.url, login_host=harness.fake.url)


def audit(store: Store, tenant: Tenant, reference: Tenant | None) -> dict[str, int]:
    """Writes lost and duplicated for one tenant: against the store's outbox, and a clean reference run when given."""
    keys = tenant.task_keys()
    duplicated = sum(n - 1 for n in Counter(keys).values() if n > 1)
    with store.session() as s:
        rows = s.execute(select(OutboxItem.kind, OutboxItem.status, OutboxItem.idempotency_key)
                         .where(OutboxItem.installation_id == tenant.installation_id)).all()
    unsent = sum(1 for _, status, _ in rows if status != "sent")
    missing = {key for kind, status, key in rows if kind == "task" and status == "sent"} - set(keys)
    lost = unsent + len(missing)
    if reference is not None:
        want, got = Counter(reference.task_keys()), Counter(keys)
        lost += sum((want - got).values())
        duplicated = max(duplicated, sum((got - want).values()))
        if tenant.fields is not None and reference.fields is not None:
            ours, theirs = tenant.fields(), reference.fields()
            lost += sum(1 for record in theirs if ours.get(record) != theirs[record])
    return {"writes": len(rows), "lost": lost, "duplicated": duplicated, "unsent": unsent}
