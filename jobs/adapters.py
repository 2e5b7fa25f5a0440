"""Which adapter serves an installation: a small dispatch on installation.crm.

Jobs get an adapter here and nowhere else, so an adapter's construction (token source,
rate limiter, base URLs) lives in one place per CRM.
"""

from __future__ import annotations

import logging
from typing import Any

from connector.settings import Settings
from connector.store import Store
from connector.store.tables import Installation
from crm_adapters.errors import ConfigError
from crm_adapters.model import Crm
from crm_adapters.port import CrmPort

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
    # --- HubSpot branch: the HubSpot helper adds `if crm is Crm.HUBSPOT: return _hubspot(...)` here.
    # --- Salesforce branch: the Salesforce helper adds `if crm is Crm.SALESFORCE: return _salesforce(...)` here.
    raise ConfigError(
        f"no adapter for crm {crm.value!r} in this build (installation {installation.id}); "
        "install the salesloop version that ships it"
    )


def _sandbox(installation: Installation) -> CrmPort:
    """The embedded sandbox CRM: its tables live at the URL stored on the installation."""
    url = (installation.settings or {}).get(SANDBOX_URL_KEY)
    if not url:
        raise ConfigError(
            f"sandbox installation {installation.id} has no settings[{SANDBOX_URL_KEY!r}]; "
            "run `salesloop demo` to create one"
        )
    from crm_adapters.sandbox import SandboxCrm

    return SandboxCrm.open(url, installation.tenant_id)  # type: ignore[no-any-return]
