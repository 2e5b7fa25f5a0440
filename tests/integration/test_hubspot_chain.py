"""The whole chain on a HubSpot installation: jobs pick the HubSpot adapter, sync, decide, write back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from connector.settings import Settings
from connector.store import Store
from connector.store import installations as inst
from connector.store.crypto import TokenCipher
from connector.store.records import count_records
from connector.store.tables import Installation
from crm_adapters.hubspot.adapter import HubSpotAdapter
from crm_adapters.model import ActivityType, DealStatus, Entity, UserRole
from jobs.adapters import adapter_for
from jobs.sync import sync_installation
from tests.factories import a_contact, a_deal, a_pipeline, a_user, an_account, an_activity
from tests.fakes.hubspot.harness import hubspot_harness


def test_jobs_sync_a_hubspot_installation_into_the_store(store: Store) -> None:
    with hubspot_harness() as hs:
        ae, sdr = a_user(role=UserRole.AE, team="AE"), a_user(role=UserRole.SDR, team="SDR")
        acct = an_account()
        deals = [a_deal(stage_id="102", account_id=acct.remote_id, owner_id=ae.remote_id) for _ in range(30)]
        deals.append(a_deal(stage_id="106", status=DealStatus.LOST))
        hs.seed(pipelines=[a_pipeline()], users=[ae, sdr], accounts=[acct], contacts=[a_contact(account_id=acct.remote_id)],
                deals=deals, activities=[an_activity(ActivityType.NOTE, deal_id=deals[0].remote_id, body="Pain: reporting")])
        settings = Settings(testing=True, hubspot_client_id=hs.fake.oauth.client_id,
                            hubspot_client_secret=hs.fake.oauth.client_secret, hubspot_base_url=hs.url)
        current = hs.tokens.current()
        with store.session() as s:
            row = inst.upsert(s, TokenCipher.from_key_text(settings.token_encryption_key), crm="hubspot",
                              tenant_id=str(hs.portal.hub_id), tokens={"access_token": current.access_token,
                                                                       "refresh_token": current.refresh_token},
                              expires_at=datetime.now(UTC) + timedelta(minutes=30))
            row.settings = {"hubspot_mapping": {"role_by_team": {"AE": "ae", "SDR": "sdr"}}}
            installation_id = row.id
        with store.session() as s:
            installation = s.execute(select(Installation)).scalar_one()
            crm = adapter_for(installation, store=store, settings=settings)
        assert isinstance(crm, HubSpotAdapter)
        report = sync_installation(store, installation_id, crm)
        assert report.synced["deal"] == 31 and report.synced["user"] == 2, report.synced
        with store.session() as s:
            assert count_records(s, installation_id, Entity.DEAL) == 31
            assert count_records(s, installation_id, Entity.ACTIVITY) == 1
        hs.update_deal(deals[1].remote_id, name="renamed")
        again = sync_installation(store, installation_id, crm)
        assert again.changed.get("deal", 0) >= 1
