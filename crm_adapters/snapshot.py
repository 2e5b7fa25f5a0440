"""A tenant's whole CRM at one moment, indexed the way the loops read it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

from crm_adapters.model import (
    Account,
    Activity,
    Contact,
    ContactRole,
    Deal,
    DealContactRole,
    DealStatus,
    Pipeline,
    Stage,
    StageChange,
    User,
    UserRole,
)


@dataclass(frozen=True)
class Snapshot:
    """Live (not deleted) records of one tenant; loops take this and nothing else from the CRM."""

    users: tuple[User, ...] = ()
    accounts: tuple[Account, ...] = ()
    contacts: tuple[Contact, ...] = ()
    deals: tuple[Deal, ...] = ()
    roles: tuple[DealContactRole, ...] = ()
    stage_changes: tuple[StageChange, ...] = ()
    activities: tuple[Activity, ...] = ()
    pipelines: tuple[Pipeline, ...] = ()
    _cache: dict[str, object] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, records: Iterable[object], pipelines: Iterable[Pipeline] = ()) -> Snapshot:
        """Sort a mixed bag of records into a snapshot, dropping deleted ones."""
        buckets: dict[type, list[object]] = defaultdict(list)
        for record in records:
            if not getattr(record, "deleted", False):
                buckets[type(record)].append(record)
        return cls(
            users=tuple(buckets[User]),  # type: ignore[arg-type]
            accounts=tuple(buckets[Account]),  # type: ignore[arg-type]
            contacts=tuple(buckets[Contact]),  # type: ignore[arg-type]
            deals=tuple(buckets[Deal]),  # type: ignore[arg-type]
            roles=tuple(buckets[DealContactRole]),  # type: ignore[arg-type]
            stage_changes=tuple(buckets[StageChange]),  # type: ignore[arg-type]
            activities=tuple(buckets[Activity]),  # type: ignore[arg-type]
            pipelines=tuple(pipelines),
        )

    def open_deals(self) -> list[Deal]:
        return [d for d in self.deals if d.status is DealStatus.OPEN]

    def closed_deals(self) -> list[Deal]:
        return [d for d in self.deals if d.status is not DealStatus.OPEN]

    @cached_property
    def deal_by_id(self) -> dict[str, Deal]:
        return {d.remote_id: d for d in self.deals}

    @cached_property
    def account_by_id(self) -> dict[str, Account]:
        return {a.remote_id: a for a in self.accounts}

    @cached_property
    def contact_by_id(self) -> dict[str, Contact]:
        return {c.remote_id: c for c in self.contacts}

    @cached_property
    def user_by_id(self) -> dict[str, User]:
        return {u.remote_id: u for u in self.users}

    @cached_property
    def activities_by_deal(self) -> dict[str, list[Activity]]:
        """Activities per deal id, oldest first."""
        index: dict[str, list[Activity]] = defaultdict(list)
        for activity in sorted(self.activities, key=lambda a: a.occurred_at):
            for deal_id in activity.deal_ids:
                index[deal_id].append(activity)
        return dict(index)

    @cached_property
    def stage_changes_by_deal(self) -> dict[str, list[StageChange]]:
        """Stage history per deal id, in the order stages were entered."""
        index: dict[str, list[StageChange]] = defaultdict(list)
        for change in sorted(self.stage_changes, key=lambda c: c.entered_at):
            index[change.deal_id].append(change)
        return dict(index)

    @cached_property
    def roles_by_deal(self) -> dict[str, list[DealContactRole]]:
        index: dict[str, list[DealContactRole]] = defaultdict(list)
        for role in self.roles:
            index[role.deal_id].append(role)
        return dict(index)

    @cached_property
    def stage_by_id(self) -> dict[str, Stage]:
        return {s.id: s for p in self.pipelines for s in p.stages}

    def activities_for(self, deal_id: str) -> list[Activity]:
        return self.activities_by_deal.get(deal_id, [])

    def history_for(self, deal_id: str) -> list[StageChange]:
        return self.stage_changes_by_deal.get(deal_id, [])

    def contacts_in_role(self, deal_id: str, role: ContactRole) -> list[str]:
        return [r.contact_id for r in self.roles_by_deal.get(deal_id, []) if r.role is role]

    def users_with_role(self, *roles: UserRole) -> list[User]:
        return [u for u in self.users if u.role in roles]
