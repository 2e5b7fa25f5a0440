"""Which adapter serves an installation: a small dispatch on installation.crm.

Jobs get an adapter here and nowhere else, so an adapter's construction (token source,
rate limiter, base URLs) lives in one place per CRM.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from connector.settings import Settings
from connector.store import Store, installation_settings
from connector.store.records import live_ids
from connector.store.tables import Installation
from crm_adapters.errors import ConfigError
from crm_adapters.model import Crm
from crm_adapters.port import CrmPort
from crm_adapters.qualification import QualificationMapping
from jobs.lifecycle import token_source_for

logger = logging.getLogger(__name__)

SANDBOX_URL_KEY = "sandbox_url"  # installation.settings key: the sandbox CRM's tables (a database URL)


def adapter_for(installation: Installation, *, store: Store, settings: Settings, redis: Any = None) -> CrmPort:
    """The CrmPort for one installation; ConfigError when this deployment cannot serve its CRM."""
    try:
        crm = Crm(installation.crm)
    except ValueError:
        raise ConfigError(f"installation {installation.id} has unknown crm {installation.crm!r}") from None
    if crm is Crm.SANDBOX:
        return _sandbox(installation)
    if crm is Crm.HUBSPOT:
        return _hubspot(installation, store=store, settings=settings, redis=redis)
    if crm is Crm.SALESFORCE:
        return _salesforce(installation, store=store, settings=settings, redis=redis)
    raise ConfigError(
        f"no adapter for crm {crm.value!r} in this build (installation {installation.id}); "
        "install the salesloop version that ships it"
    )


def _sandbox(installation: Installation) -> CrmPort:
    """The embedded sandbox CRM: its tables live at the URL stored on the installation."""
    url = installation_settings.read(installation).sandbox_url
    if not url:
        raise ConfigError(
            f"sandbox installation {installation.id} has no settings[{SANDBOX_URL_KEY!r}]; "
            "run `salesloop demo` to create one"
        )
    from crm_adapters.sandbox import SandboxCrm  # optional in a build: loaded only for a sandbox installation

    return SandboxCrm.open(url, installation.tenant_id)  # type: ignore[no-any-return]


HUBSPOT_MAPPING_KEY = "hubspot_mapping"  # installation.settings key: roles by team/owner, labels, properties


def _hubspot(installation: Installation, *, store: Store, settings: Settings, redis: Any) -> CrmPort:
    """HubSpot: tokens from the store (one refresh across workers), the portal's budget in Redis when there is one."""
    # a CRM's SDK (thousands of generated modules) loads only in a process that serves that CRM
    from crm_adapters.hubspot.adapter import HubSpotAdapter, HubSpotMapping
    from crm_adapters.hubspot.limiter import LocalLimiter, RedisLimiter

    try:
        mapping = HubSpotMapping.from_settings(installation_settings.read(installation).hubspot_mapping)
        mapping = dataclasses.replace(mapping, qualification=_qualification(installation))
    except ValueError as exc:
        raise ConfigError(f"installation {installation.id}: {exc}") from exc
    limiter = (RedisLimiter(redis, installation.tenant_id, per_window=settings.hubspot_rate_per_10s) if redis is not None
               else LocalLimiter(per_window=settings.hubspot_rate_per_10s))
    tokens = token_source_for(installation, store=store, settings=settings, redis=redis)
    return HubSpotAdapter(tokens, installation.tenant_id, host=settings.hubspot_base_url, limiter=limiter,
                          mapping=mapping)


SALESFORCE_MAPPING_KEY = "salesforce_mapping"  # installation.settings key: the org's SDR/reason/transcript fields
_SALESFORCE_SCALARS = ("pipeline_id", "pipeline_label", "currency", "sdr_field", "loss_reason_field",
                       "win_reason_field", "transcript_field", "outcome_field", "open_task_status",
                       "completed_task_status", "rejected_task_status", "rejection_prefix", "extra_fields")


def _salesforce(installation: Installation, *, store: Store, settings: Settings, redis: Any) -> CrmPort:
    """Salesforce: tokens from the store, the org's daily API budget shared in Redis, the store's ids for reconciles."""
    # a CRM's SDK loads only in a process that serves that CRM
    from crm_adapters.salesforce.adapter import SalesforceAdapter, SalesforceMapping
    from crm_adapters.salesforce.budget import ApiBudget

    raw = installation_settings.read(installation).salesforce_mapping or {}
    unknown = sorted(set(raw) - set(_SALESFORCE_SCALARS))
    if unknown:
        raise ConfigError(f"installation {installation.id}: unknown {SALESFORCE_MAPPING_KEY} keys {unknown}")
    raw = {**raw, "extra_fields": _extra_fields(installation.id, raw.get("extra_fields"))}
    installation_id = installation.id

    def known_ids(entity: Any) -> list[str]:
        with store.session() as session:
            return live_ids(session, installation_id, entity)

    tokens = token_source_for(installation, store=store, settings=settings, redis=redis)
    return SalesforceAdapter(tokens, installation.tenant_id, budget=ApiBudget(installation.tenant_id, redis=redis),
                             mapping=SalesforceMapping(**raw, qualification=_qualification(installation)),
                             known_ids=known_ids)


def _qualification(installation: Installation) -> Any:
    """The tenant's qualification fields (installation.settings["qualification"]); a bad mapping is a ConfigError."""
    try:
        return QualificationMapping.from_settings(installation_settings.read(installation).qualification)
    except ValueError as exc:
        raise ConfigError(f"installation {installation.id}: {exc}") from exc


def _extra_fields(installation_id: str, value: Any) -> dict[str, tuple[str, ...]]:
    """sobject -> the org's custom fields read into Activity/Deal `custom` (JSON lists in settings)."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, list | tuple) for v in value.values()):
        raise ConfigError(f"installation {installation_id}: {SALESFORCE_MAPPING_KEY}.extra_fields must map "
                          "an sobject to a list of field names")
    return {str(k): tuple(str(f) for f in v) for k, v in value.items()}
