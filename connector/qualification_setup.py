"""The qualification mapping suggested from the CRM's own field describes, for the admin to confirm.

Why: at install nobody has told us which deal (or Salesforce Lead) fields hold the SDR's MEDDIC / BANT /
SPICED answers; the CRM's describe (names, labels, picklist values) usually says. The suggestion is kept
apart from the confirmed mapping (settings.qualification_suggested) and nothing is read from those fields
until the admin saves it on the Loops page.
"""

from __future__ import annotations

import logging

from connector.settings import Settings
from connector.store import Store, installation_settings
from connector.store import installations as inst
from connector.store.tables import Installation
from crm_adapters import qualification
from crm_adapters.errors import ConfigError, CrmError
from jobs.adapters import adapter_for

logger = logging.getLogger(__name__)


def suggest_for(installation: Installation, *, store: Store, settings: Settings) -> int | None:
    """Describe the CRM's deal fields and keep the suggested mapping; the number of fields suggested, or None
    when the CRM could not be asked (recorded; the admin can ask again from the Loops page)."""

    try:
        described = adapter_for(installation, store=store, settings=settings).describe_deal_fields()
    except (ConfigError, CrmError) as exc:
        logger.warning("qualification suggestion for %s deferred: %s", installation.id, type(exc).__name__)
        with store.session() as s:
            inst.audit(s, installation.id, "system", "qualification_suggest_failed",
                       {"error": type(exc).__name__, "message": str(exc)[:300]})
        return None
    suggested = qualification.suggest(described).to_settings()
    with store.session() as s:
        installation_settings.write(inst.get(s, installation.id), qualification_suggested=suggested,
                                    qualification_described=qualification.describes_to_settings(described))
        inst.audit(s, installation.id, "system", "qualification_suggested",
                   {"described": len(described), "fields": [f["field"] for f in suggested]})
    return len(suggested)
