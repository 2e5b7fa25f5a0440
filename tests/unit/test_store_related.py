"""The incremental chain's store queries: which deals changed since a moment, and a few deals' own records."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from connector.store import Store, records, related
from connector.store import installations as inst
from connector.store.crypto import TokenCipher
from crm_adapters.model import Entity
from crm_adapters.sandbox import load_scenario, simulate
from crm_adapters.snapshot import Snapshot

ENTITIES = {Entity.USER: "users", Entity.ACCOUNT: "accounts", Entity.CONTACT: "contacts", Entity.DEAL: "deals",
            Entity.DEAL_CONTACT_ROLE: "roles", Entity.STAGE_CHANGE: "stage_changes", Entity.ACTIVITY: "activities"}


@pytest.fixture(scope="module")
def org_snapshot() -> Snapshot:
    return simulate(load_scenario(None).scaled(40), seed=3).snapshot()


def stored(store: Store, snap: Snapshot) -> str:
    with store.session() as s:
        row = inst.upsert(s, TokenCipher.from_key_text(TokenCipher.generate_key_text()), crm="sandbox", tenant_id="t", tokens={})
        for entity, name in ENTITIES.items():
            records.upsert_records(s, row.id, entity, getattr(snap, name))
        records.save_pipelines(s, row.id, snap.pipelines)
        return row.id


def _ids(items: tuple[Any, ...]) -> set[str]:
    return {str(i.remote_id) for i in items}


def test_a_few_deals_load_with_all_that_is_theirs(any_store: Store, org_snapshot: Snapshot) -> None:
    iid = stored(any_store, org_snapshot)
    chosen = sorted(d.remote_id for d in org_snapshot.deals)[::7]
    with any_store.session() as s:
        part = related.load_deals(s, iid, chosen)
    assert _ids(part.deals) == set(chosen)
    for deal_id in chosen:
        assert _ids(tuple(part.activities_for(deal_id))) == _ids(tuple(org_snapshot.activities_for(deal_id)))
        assert part.history_for(deal_id) == org_snapshot.history_for(deal_id)
        assert part.roles_by_deal.get(deal_id) == org_snapshot.roles_by_deal.get(deal_id)
        deal = org_snapshot.deal_by_id[deal_id]
        assert part.account_by_id.get(deal.account_id or "") == org_snapshot.account_by_id.get(deal.account_id or "")
    assert _ids(part.users) == _ids(org_snapshot.users) and part.pipelines == org_snapshot.pipelines
    assert len(part.activities) < len(org_snapshot.activities)  # only the chosen deals' own


def test_changes_after_a_moment_name_the_deals_they_are_about(any_store: Store, org_snapshot: Snapshot) -> None:
    iid = stored(any_store, org_snapshot)
    since = datetime.now(UTC)
    with any_store.session() as s:
        assert related.touched_deals(s, iid, since) == set()
        assert related.changed_count(s, iid, since) == 0
    activity = next(a for a in org_snapshot.activities if a.deal_ids)
    account = next(a for a in org_snapshot.accounts if any(d.account_id == a.remote_id for d in org_snapshot.deals))
    role = org_snapshot.roles[0]
    contact = org_snapshot.contact_by_id[role.contact_id]
    with any_store.session() as s:
        records.upsert_records(s, iid, Entity.ACTIVITY, [dataclasses.replace(activity, subject="edited")])
        records.upsert_records(s, iid, Entity.ACCOUNT, [dataclasses.replace(account, name="renamed")])
        records.upsert_records(s, iid, Entity.CONTACT, [dataclasses.replace(contact, title="renamed")])
    expected = set(activity.deal_ids) | {d.remote_id for d in org_snapshot.deals if d.account_id == account.remote_id}
    expected |= {r.deal_id for r in org_snapshot.roles if r.contact_id == contact.remote_id}
    with any_store.session() as s:
        assert related.touched_deals(s, iid, since) == expected
        assert related.changed_count(s, iid, since) == 1  # the activity: accounts and contacts are not outcomes
        records.upsert_records(s, iid, Entity.USER, [dataclasses.replace(org_snapshot.users[0], name="renamed")])
        assert related.touched_deals(s, iid, since) is None  # a user's change can move any deal
