"""HubSpotAdapter: the CRM port over hubspot-api-client, for one portal.

Reads: users from owners; accounts, contacts, deals and activities (calls, emails, meetings,
notes, tasks) from the CRM objects; contact roles from deal->contact association labels (v4);
stage history from dealstage property history. Writes: our property group and properties,
field values in batches of 100 (only what changed), tasks and notes idempotently.

Known gaps: a removed deal->contact association is not reported as a deleted role (HubSpot lists
no removed associations; a full re-read of a deal's roles replaces them in the store).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from crm_adapters.auth import TokenSource
from crm_adapters.hubspot._client import CallStats, HubSpotClient
from crm_adapters.hubspot._mapping import (
    HubSpotMapping,
    field_from_property,
    stages_from_hubspot,
    users_from_owners,
)
from crm_adapters.hubspot._reads import Reads
from crm_adapters.hubspot._sync import Sync
from crm_adapters.hubspot._writes import Writes
from crm_adapters.hubspot.limiter import Limiter
from crm_adapters.model import Crm, Entity, Pipeline, Stage, User, UserRole
from crm_adapters.port import Batch, Cursor, FieldDescription, Quarantined
from crm_adapters.writes import (
    CreatedRefs,
    FieldsReport,
    FieldUpdate,
    NoteDraft,
    TaskClosure,
    TaskDraft,
    TaskState,
    WriteResult,
)

logger = logging.getLogger(__name__)


class HubSpotAdapter:
    """The CrmPort for one HubSpot portal (account)."""

    crm = Crm.HUBSPOT

    def __init__(self, tokens: TokenSource, portal_id: str, *, host: str = "https://api.hubapi.com",
                 limiter: Limiter | None = None, mapping: HubSpotMapping | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), sleep: Callable[[float], None] = time.sleep,
                 lookback: timedelta = timedelta(minutes=2), deletion_scan: timedelta = timedelta(hours=1),
                 max_retries: int = 6) -> None:
        self.tenant_id = str(portal_id)
        self.mapping = mapping or HubSpotMapping()
        self.client = HubSpotClient(tokens, host=host, limiter=limiter, clock=clock, sleep=sleep,
                                    max_retries=max_retries)
        self._reads = Reads(self.client)
        self._sync = Sync(self._reads, self.mapping, self._stage_index, clock, lookback, deletion_scan)
        self._writes = Writes(self.client, self._reads, clock)
        self._stages: dict[tuple[str, str], Stage] | None = None
        self.quarantined_users: list[Quarantined] = []  # owners the last read_users could not map

    @property
    def stats(self) -> CallStats:
        """Requests sent, 429s, retries, refreshes, seconds waited (for benchmarks and logs)."""
        return self.client.stats

    # ---- reads -----------------------------------------------------------------------------------
    def read_changes(self, entity: Entity, *, since: Cursor | None) -> Iterator[Batch]:
        if entity is Entity.USER:
            users = self.read_users()
            yield Batch(entity=entity, records=tuple(users), cursor=Cursor('{"phase": "incremental", "since": {}}'),
                        quarantined=tuple(self.quarantined_users))
            return
        yield from self._sync.read(entity, since)

    def read_pipelines(self) -> list[Pipeline]:
        resp = self.client.call("pipelines", lambda api: api("crm.pipelines.pipelines_api").get_all("deals"))
        pipelines = stages_from_hubspot([p.to_dict() | {"stages": [s.to_dict() | {"displayOrder": s.display_order}
                                                                  for s in p.stages or []],
                                                        "displayOrder": p.display_order}
                                         for p in resp.results or []])
        self._stages = {(p.remote_id, s.id): s for p in pipelines for s in p.stages}
        return pipelines

    def _stage_index(self) -> dict[tuple[str, str], Stage]:
        if self._stages is None:
            self.read_pipelines()
        assert self._stages is not None
        return self._stages

    def read_users(self) -> list[User]:
        owners = []
        for archived in (False, True):
            after: str | None = None
            while True:
                kwargs = {"limit": 500, "archived": archived, **({"after": after} if after else {})}
                page = self.client.call("owners", lambda api, kw=kwargs: api("crm.owners.owners_api").get_page(**kw))
                owners.extend(o.to_dict() | {"firstName": o.first_name, "lastName": o.last_name,
                                             "updatedAt": o.updated_at.isoformat() if o.updated_at else None}
                              for o in page.results or [])
                after = page.paging.next.after if page.paging and page.paging.next else None
                if after is None:
                    break
        users, self.quarantined_users = users_from_owners(owners, self.mapping)  # the sync keeps the quarantined
        return _with_managers(users)

    def describe_deal_fields(self) -> list[FieldDescription]:
        """GET /crm/v3/properties/deals: every deal property with its label, type and options."""
        resp = self.client.call("properties:deals",
                                lambda api: api("crm.properties.core_api").get_all("deals", archived=False))
        return [field_from_property(p.to_dict() | {"fieldType": p.field_type,
                                                   "options": [o.to_dict() for o in p.options or []]})
                for p in resp.results or []]

    # ---- writes ----------------------------------------------------------------------------------
    def ensure_app_fields(self) -> FieldsReport:
        return self._writes.ensure_app_fields()

    def write_fields(self, updates: Sequence[FieldUpdate]) -> WriteResult:
        return self._writes.write_fields(updates)

    def create_tasks(self, tasks: Sequence[TaskDraft]) -> CreatedRefs:
        return self._writes.create_tasks(tasks)

    def create_notes(self, notes: Sequence[NoteDraft]) -> CreatedRefs:
        return self._writes.create_notes(notes)

    def read_tasks(self, remote_ids: Sequence[str]) -> list[TaskState]:
        return self._writes.read_tasks(remote_ids)

    def close_tasks(self, closures: Sequence[TaskClosure]) -> WriteResult:
        return self._writes.close_tasks(closures)


def _with_managers(users: list[User]) -> list[User]:
    """HubSpot has no manager field: a user's manager is the MANAGER of their primary team."""
    managers = {u.team: u.remote_id for u in users if u.role is UserRole.MANAGER and u.team and u.active}
    return [replace(u, manager_id=managers.get(u.team)) if managers.get(u.team) not in (None, u.remote_id) else u
            for u in users]
