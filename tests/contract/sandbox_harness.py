"""CrmHarness over the sandbox CRM: seeds records through its backdoor, behind the adapter's back."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
from crm_adapters.sandbox import SandboxCrm
from crm_adapters.writes import AppField, FieldValue


class SandboxHarness:
    """A SandboxCrm on its own SQLite file; the backdoor plays the CRM's users."""

    def __init__(self, directory: Path, page_size: int = 3) -> None:
        self._dir = directory
        # A tiny page size so every contract test also crosses page boundaries.
        self.adapter = SandboxCrm.open(
            f"sqlite:///{directory / 'sandbox.db'}", tenant_id="contract", page_size=page_size
        )

    def seed(self, *, pipelines: Sequence[Pipeline] = (), users: Sequence[User] = (), accounts: Sequence[Account] = (),
             contacts: Sequence[Contact] = (), deals: Sequence[Deal] = (), roles: Sequence[DealContactRole] = (),
             stage_changes: Sequence[StageChange] = (), activities: Sequence[Activity] = ()) -> None:  # fmt: skip
        if pipelines:
            self.adapter.save_pipelines(pipelines)
        self.adapter.upsert([*users, *accounts, *contacts, *deals, *roles, *stage_changes, *activities])

    def update_deal(self, remote_id: str, **changes: Any) -> None:
        self.adapter.edit_deal(remote_id, **changes)

    def delete(self, entity: Entity, remote_id: str) -> None:
        self.adapter.delete(entity, remote_id)

    def set_task_status(self, remote_id: str, status: TaskStatus, comment: str = "") -> None:
        self.adapter.set_task_status(remote_id, status, comment)

    def field_value(self, entity: Entity, remote_id: str, field: AppField) -> FieldValue:
        return self.adapter.field_value(entity, remote_id, field)

    def app_task_count(self) -> int:
        return self.adapter.app_task_count()

    def define_deal_field(self, label: str, kind: str, options: Sequence[str] = ()) -> str:
        self.adapter.define_deal_field(label, label, kind, options)
        return label

    def close(self) -> None:
        self.adapter.close()
        shutil.rmtree(self._dir, ignore_errors=True)


def make_harness() -> SandboxHarness:
    """A fresh sandbox for one contract test (the conftest calls close() afterwards)."""
    return SandboxHarness(Path(tempfile.mkdtemp(prefix="sandbox-contract-")))
