"""What a card shows when there is no card to show: salesloop not installed, or its grant lost.

A validly signed request from an org or portal with no active installation is not an error
of the caller: the CRM frames whatever we answer inside the record page, so it gets a clear
page (Salesforce) or a card state (HubSpot) with the one link that fixes it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.orm import Session

from connector.store import installations as inst
from connector.store.installations import InstallationStatus
from connector.store.tables import Installation

CRM_NAMES = {"salesforce": ("Salesforce", "org"), "hubspot": ("HubSpot", "account")}


@dataclass(frozen=True)
class CardState:
    """A card's state in words, with the link that moves it on."""

    state: str  # not_installed | needs_reconnect
    title: str
    message: str
    action_label: str
    action_href: str

    def to_view(self) -> dict[str, Any]:
        """The shape the HubSpot card renders: an empty card with a title, a sentence and a link."""
        return {"state": self.state, "empty": True, "title": self.title, "message": self.message,
                "action": {"label": self.action_label, "href": self.action_href}, "risk": None, "objections": [],
                "discovery": None, "handoff": None, "can_approve": False, "approvals": []}

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def installation_or_state(session: Session, crm: str, tenant_id: str, *, base_url: str) -> Installation | CardState:
    """The active installation, or the state a person sees instead (never an exception)."""
    row = inst.find(session, crm, tenant_id)
    if row is not None and row.status == InstallationStatus.ACTIVE:
        return row
    name, unit = CRM_NAMES.get(crm, (crm, "account"))
    href = f"{base_url.rstrip('/')}/install/{crm}"
    if row is not None and row.status == InstallationStatus.NEEDS_REAUTH:
        return CardState("needs_reconnect", f"salesloop needs to be reconnected to this {name} {unit}",
                         f"Its access to {name} stopped working, so this card is not updated. An admin reconnects it once; "
                         "everything salesloop learned is kept.", f"Reconnect salesloop to {name}", href)
    return CardState("not_installed", f"salesloop is not installed in this {name} {unit}",
                     f"Once an admin installs it, this card shows each deal's risk, its reasons and a next move. "
                     f"Installing takes a minute and asks {name} for read access and a few fields of its own.",
                     f"Install salesloop in {name}", href)
