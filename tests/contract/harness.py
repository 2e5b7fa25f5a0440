"""What the port contract test needs from each CRM backend, besides the adapter itself.

Each backend (sandbox, fake HubSpot, fake Salesforce) provides a harness in
tests/fakes/<crm>/harness.py (sandbox: tests/contract/sandbox_harness.py) that seeds
common-model records into the backend *behind the adapter's back*, as users would
create them in the CRM, and lets the test poke at it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from crm_adapters.model import (
    Account,
    Activity,
    Contact,
    Deal,
    DealContactRole,
    Entity,
    Pipeline,
    StageChange,
    TaskStatus,
    User,
)
from crm_adapters.port import CrmPort
from crm_adapters.writes import AppField, FieldValue


class CrmHarness(Protocol):
    adapter: CrmPort

    def seed(
        self,
        *,
        pipelines: Sequence[Pipeline] = (),
        users: Sequence[User] = (),
        accounts: Sequence[Account] = (),
        contacts: Sequence[Contact] = (),
        deals: Sequence[Deal] = (),
        roles: Sequence[DealContactRole] = (),
        stage_changes: Sequence[StageChange] = (),
        activities: Sequence[Activity] = (),
    ) -> None:
        """Put records into the CRM as its users would (remote ids are numeric strings)."""
        ...

    def update_deal(self, remote_id: str, **changes: Any) -> None:
        """Edit a deal in the CRM (common-model field names), bumping its modified time."""
        ...

    def delete(self, entity: Entity, remote_id: str) -> None:
        """Delete a record in the CRM."""
        ...

    def set_task_status(self, remote_id: str, status: TaskStatus, comment: str = "") -> None:
        """A person completes (or rejects, with a comment) a task the app created."""
        ...

    def field_value(self, entity: Entity, remote_id: str, field: AppField) -> FieldValue:
        """The value of one of our app fields as the CRM holds it now."""
        ...

    def app_task_count(self) -> int:
        """How many tasks the app has created in the CRM."""
        ...

    def define_deal_field(self, label: str, kind: str, options: Sequence[str] = ()) -> str:
        """An admin creates a deal field in the CRM (kind: picklist | multiselect | checkbox | number, as
        FieldDescription.type); returns its API name."""
        ...
