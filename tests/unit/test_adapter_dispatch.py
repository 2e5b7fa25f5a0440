"""jobs.adapters picks the adapter per installation and refuses what it cannot serve, clearly."""

from __future__ import annotations

import pytest

from connector.settings import Settings
from connector.store import Store, records
from connector.store import installations as inst
from connector.store.crypto import TokenCipher
from crm_adapters.errors import ConfigError
from crm_adapters.hubspot.adapter import HubSpotAdapter
from crm_adapters.model import Entity
from crm_adapters.salesforce.adapter import SalesforceAdapter
from jobs.adapters import adapter_for
from tests.factories import a_deal


@pytest.fixture
def settings() -> Settings:
    return Settings(testing=True)


def _install(store: Store, app_settings: Settings, crm: str, tenant: str, **extra: object):  # type: ignore[no-untyped-def]
    cipher = TokenCipher.from_key_text(app_settings.token_encryption_key)
    with store.session() as s:
        return inst.upsert(s, cipher, crm=crm, tenant_id=tenant, tokens={"access_token": "a", "refresh_token": "r"}, **extra)


def test_salesforce_installation_gets_the_salesforce_adapter_with_the_stores_ids(store: Store, settings: Settings) -> None:
    row = _install(store, settings, "salesforce", "00D000000000001AAA", instance_url="https://x.my.salesforce.com",
                   settings={"salesforce_mapping": {"sdr_field": "SDR__c"}})
    with store.session() as s:
        records.upsert_records(s, row.id, Entity.DEAL, [a_deal(remote_id="006A"), a_deal(remote_id="006B", deleted=True)])
    adapter = adapter_for(row, store=store, settings=settings)
    assert isinstance(adapter, SalesforceAdapter)
    assert adapter.mapping.sdr_field == "SDR__c"
    assert adapter._known_ids is not None and adapter._known_ids(Entity.DEAL) == ["006A"]


def test_unknown_salesforce_mapping_key_is_a_config_error(store: Store, settings: Settings) -> None:
    row = _install(store, settings, "salesforce", "00D2", settings={"salesforce_mapping": {"sdr_feild": "x"}})
    with pytest.raises(ConfigError, match="sdr_feild"):
        adapter_for(row, store=store, settings=settings)


def test_hubspot_installation_gets_the_hubspot_adapter(store: Store, settings: Settings) -> None:
    row = _install(store, settings, "hubspot", "123")
    assert isinstance(adapter_for(row, store=store, settings=settings), HubSpotAdapter)


def test_unknown_crm_is_a_config_error(store: Store, settings: Settings) -> None:
    row = _install(store, settings, "pipedrive", "1")
    with pytest.raises(ConfigError, match="pipedrive"):
        adapter_for(row, store=store, settings=settings)
