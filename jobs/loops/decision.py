"""What a loop decides: an action with its reasons, before policy and gate have their say."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from crm_adapters.model import Entity


class ActionKind(StrEnum):
    UPDATE_FIELD = "update_field"
    UPDATE_CARD = "update_card"  # store-only: what the deal card shows
    CREATE_TASK = "create_task"
    CREATE_NOTE = "create_note"
    DRAFT_EMAIL = "draft_email"
    SEND_EMAIL = "send_email"
    PROPOSE_PLAYBOOK_CHANGE = "propose_playbook_change"
    FLAG_SDR = "flag_sdr"
    OFFER_DISCOUNT = "offer_discount"
    CHANGE_COMPENSATION = "change_compensation"
    CHANGE_EMPLOYMENT = "change_employment"


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason for a decision, shown to people: a code, a sentence, its weight, its evidence."""

    code: str
    text: str
    weight: float = 0.0
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """A proposed action on one CRM record.

    `payload` depends on `kind`: for UPDATE_FIELD a mapping of AppField value -> value;
    for CREATE_TASK / CREATE_NOTE / DRAFT_EMAIL keys subject, body, owner_id (and due_at
    ISO string); for PROPOSE_PLAYBOOK_CHANGE / FLAG_SDR whatever the loop needs to show.
    For UPDATE_CARD: {"section": name, ...section data}; the card shows each section.
    `key` is deterministic (same inputs, same key) so a re-run is recognised.
    """

    loop: str
    kind: ActionKind
    target: Entity
    target_id: str
    key: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    reasons: tuple[Reason, ...] = ()
    model_version: str = ""
    amount: Decimal | None = None
    stage_id: str | None = None
