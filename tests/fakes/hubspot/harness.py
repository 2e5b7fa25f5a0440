"""CrmHarness over the fake HubSpot: seeds common-model records as HubSpot objects, behind the adapter.

The adapter under test is the real HubSpotAdapter (hubspot-api-client over HTTP) pointed at the
fake; the per-portal mapping (user roles by owner) is what an admin would configure.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from crm_adapters.auth import StaticTokens, Tokens
from crm_adapters.hubspot.adapter import HubSpotAdapter, HubSpotMapping
from crm_adapters.hubspot.limiter import LocalLimiter
from crm_adapters.hubspot.oauth import OAuthApp, make_refresher
from crm_adapters.model import (
    Account,
    Activity,
    ActivityType,
    Contact,
    Deal,
    DealContactRole,
    Direction,
    Entity,
    Pipeline,
    StageChange,
    TaskStatus,
    User,
)
from crm_adapters.writes import AppField, FieldValue
from tests.fakes.hubspot.app import FakeHubSpot
from tests.fakes.hubspot.server import serve

ENGAGEMENT = {ActivityType.CALL: "calls", ActivityType.EMAIL: "emails", ActivityType.MEETING: "meetings",
              ActivityType.NOTE: "notes", ActivityType.TASK: "tasks"}
ENTITY_TYPE = {Entity.ACCOUNT: "companies", Entity.CONTACT: "contacts", Entity.DEAL: "deals"}
DEAL_FIELDS = {"name": "dealname", "stage_id": "dealstage", "pipeline_id": "pipeline", "amount": "amount",
               "close_date": "closedate", "owner_id": "hubspot_owner_id", "sdr_id": "sdr_owner",
               "loss_reason": "closed_lost_reason", "win_reason": "closed_won_reason", "next_step": "hs_next_step",
               "lead_source": "hs_analytics_source", "deal_type": "dealtype", "currency": "deal_currency_code"}


def _ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def deal_properties(deal: Deal) -> dict[str, Any]:
    props = {DEAL_FIELDS[k]: getattr(deal, k) for k in DEAL_FIELDS}
    props["amount"] = None if deal.amount is None else str(deal.amount)
    close = deal.closed_at if deal.closed_at is not None else deal.close_date  # HubSpot sets closedate on close
    props["closedate"] = None if close is None else close.isoformat()
    return props


def activity_properties(a: Activity, transcript_property: str = "salesloop_transcript") -> dict[str, Any]:
    otype = ENGAGEMENT[a.type]
    props: dict[str, Any] = {"hs_timestamp": _iso(a.occurred_at), "hubspot_owner_id": a.owner_id}
    direction = {Direction.INBOUND: "INBOUND", Direction.OUTBOUND: "OUTBOUND"}.get(a.direction) if a.direction else None
    if otype == "calls":
        props.update(hs_call_title=a.subject, hs_call_body=a.body, hs_call_direction=direction,
                     hs_call_duration=None if a.duration_s is None else a.duration_s * 1000,
                     hs_call_disposition=a.outcome)
    elif otype == "emails":
        props.update(hs_email_subject=a.subject, hs_email_text=a.body, hs_email_status=a.outcome,
                     hs_email_direction={"INBOUND": "INCOMING_EMAIL", "OUTBOUND": "EMAIL"}.get(direction or ""))
    elif otype == "meetings":
        props.update(hs_meeting_title=a.subject, hs_meeting_body=a.body, hs_meeting_outcome=a.outcome and a.outcome.upper(),
                     hs_meeting_start_time=_iso(a.start_at), hs_meeting_end_time=_iso(a.end_at))
    elif otype == "notes":
        props.update(hs_note_body=a.body)
    else:
        props.update(hs_task_subject=a.subject, hs_task_body=a.body, hs_task_status=a.outcome and a.outcome.upper())
    if a.transcript and otype in ("calls", "meetings"):
        props[transcript_property] = a.transcript
    for key, value in a.custom.items():
        props[f"salesloop_{key}"] = str(value).lower() if isinstance(value, bool) else value
    return props


class HubSpotHarness:
    """The fake HubSpot plus a HubSpotAdapter wired to it over HTTP."""

    def __init__(self, fake: FakeHubSpot, url: str, roles: dict[str, Any] | None = None) -> None:
        self.fake, self.url, self.portal = fake, url, fake.portal
        self._roles: dict[str, Any] = dict(roles or {})
        grant = fake.oauth.grant_for(self.portal.hub_id)
        body = fake.oauth.issue(grant)
        app = OAuthApp(fake.oauth.client_id, fake.oauth.client_secret, api_host=url, app_host=url)
        self.tokens = StaticTokens(Tokens(body["access_token"], body["refresh_token"],
                                          datetime.now(UTC) + timedelta(seconds=body["expires_in"])),
                                   make_refresher(app))
        self.adapter = self.make_adapter()

    def make_adapter(self, **kwargs: Any) -> HubSpotAdapter:
        kwargs.setdefault("limiter", LocalLimiter(per_window=self.fake.rate_limit, window_s=self.fake.window_s))
        kwargs.setdefault("mapping", HubSpotMapping(role_by_owner=self._roles))
        kwargs.setdefault("lookback", timedelta(seconds=0))
        kwargs.setdefault("deletion_scan", timedelta(0))  # every sync lists archived records
        return HubSpotAdapter(self.tokens, str(self.portal.hub_id), host=self.url, **kwargs)

    def seed(self, *, pipelines: Sequence[Pipeline] = (), users: Sequence[User] = (), accounts: Sequence[Account] = (),
             contacts: Sequence[Contact] = (), deals: Sequence[Deal] = (), roles: Sequence[DealContactRole] = (),
             stage_changes: Sequence[StageChange] = (), activities: Sequence[Activity] = ()) -> None:
        p = self.portal
        with self.fake.lock:
            for pl in pipelines:
                p.add_pipeline(pl.remote_id, pl.label, pl.order, [
                    {"id": s.id, "label": s.label, "order": s.order, "probability": s.probability, "closed": s.is_closed}
                    for s in pl.stages])
            for u in users:
                first, _, last = u.name.partition(" ")
                p.add_owner(int(u.remote_id), email=u.email or f"user{u.remote_id}@example.com", first=first,
                            last=last, teams=[(f"t-{u.team}", u.team)] if u.team else [], archived=not u.active)
                self._roles[u.remote_id] = u.role
            self.adapter.mapping = HubSpotMapping(role_by_owner=self._roles)
            self.adapter._sync.mapping = self.adapter.mapping  # noqa: SLF001 - harness wiring
            for a in accounts:
                p.put("companies", {"name": a.name, "industry": a.industry, "numberofemployees": a.employees,
                                    "annualrevenue": None if a.annual_revenue is None else str(a.annual_revenue),
                                    "country": a.country, "hubspot_owner_id": a.owner_id},
                      id=int(a.remote_id), modified_ms=_ms(a.remote_updated_at))
            for c in contacts:
                p.put("contacts", {"firstname": c.first_name, "lastname": c.last_name, "email": c.email,
                                   "jobtitle": c.title, "associatedcompanyid": c.account_id},
                      id=int(c.remote_id), modified_ms=_ms(c.remote_updated_at))
                if c.account_id:
                    p.associate("contacts", int(c.remote_id), "companies", int(c.account_id), [("HUBSPOT_DEFINED", 1)])
            for d in deals:
                p.put("deals", deal_properties(d), id=int(d.remote_id), created_ms=_ms(d.created_at),
                      modified_ms=_ms(d.remote_updated_at))
                if d.account_id:
                    p.associate("deals", int(d.remote_id), "companies", int(d.account_id), [("HUBSPOT_DEFINED", 5)])
            self._seed_history(stage_changes)
            for r in roles:
                label = r.role.value.replace("_", " ").title()
                type_id = p.define_label("deals", "contacts", label)
                p.associate("deals", int(r.deal_id), "contacts", int(r.contact_id), [("USER_DEFINED", type_id)])
            for act in activities:
                self._seed_activity(act)
            self.settle()

    def settle(self) -> None:
        """Time passes after a person's edit in HubSpot: the search index catches up (the adapter's own writes
        are not settled here, so its read-after-write must not lean on search)."""
        self.fake.index_now()

    def _seed_history(self, changes: Sequence[StageChange]) -> None:
        by_deal: dict[str, list[StageChange]] = {}
        for ch in changes:
            by_deal.setdefault(ch.deal_id, []).append(ch)
        for deal_id, rows in by_deal.items():
            obj = self.portal.objects["deals"][int(deal_id)]
            obj.history["dealstage"] = [(ch.stage_id, _ms(ch.entered_at) or 0)
                                        for ch in sorted(rows, key=lambda c: c.entered_at)]

    def _seed_activity(self, act: Activity) -> None:
        otype = ENGAGEMENT[act.type]
        self.portal.put(otype, activity_properties(act), id=int(act.remote_id), modified_ms=_ms(act.remote_updated_at))
        for deal_id in act.deal_ids:
            self.portal.associate(otype, int(act.remote_id), "deals", int(deal_id))
        for contact_id in act.contact_ids:
            self.portal.associate(otype, int(act.remote_id), "contacts", int(contact_id))
        if act.account_id:
            self.portal.associate(otype, int(act.remote_id), "companies", int(act.account_id))

    def update_deal(self, remote_id: str, **changes: Any) -> None:
        props = {}
        for name, value in changes.items():
            if name == "amount":
                value = None if value is None else str(value)
            if name == "close_date":
                value = None if value is None else value.isoformat()
            props[DEAL_FIELDS[name]] = value
        with self.fake.lock:
            self.portal.update("deals", int(remote_id), props)
        self.settle()

    def delete(self, entity: Entity, remote_id: str) -> None:
        with self.fake.lock:
            if entity is Entity.ACTIVITY:
                otype = next(t for t in ENGAGEMENT.values() if int(remote_id) in self.portal.objects[t])
            else:
                otype = ENTITY_TYPE[entity]
            self.portal.archive(otype, int(remote_id))
        self.settle()

    def set_task_status(self, remote_id: str, status: TaskStatus, comment: str = "") -> None:
        with self.fake.lock:
            obj = self.portal.live("tasks", int(remote_id))
            props: dict[str, Any] = {"hs_task_status": "NOT_STARTED" if status is TaskStatus.OPEN else "COMPLETED"}
            if status is not TaskStatus.OPEN:
                props["hs_task_completion_date"] = str(self.portal.now_ms())
            if status is TaskStatus.REJECTED:
                props["hs_task_body"] = f"{obj.properties.get('hs_task_body', '')}\nREJECT: {comment}".strip()
            self.portal.update("tasks", int(remote_id), props)
        self.settle()

    def field_value(self, entity: Entity, remote_id: str, field: AppField) -> FieldValue:
        otype = ENTITY_TYPE[entity]
        name = f"salesloop_{field.value}"
        with self.fake.lock:
            raw = self.portal.objects[otype][int(remote_id)].properties.get(name)
            kind = self.portal.properties[otype].get(name, {}).get("type")
        if raw in (None, ""):
            return None
        return float(raw) if kind == "number" else raw

    def app_task_count(self) -> int:
        with self.fake.lock:
            return sum(1 for o in self.portal.objects["tasks"].values() if o.properties.get("salesloop_key"))

    def define_deal_field(self, label: str, kind: str, options: Sequence[str] = ()) -> str:
        """A deal property made in HubSpot's settings: a picklist is an enumeration shown as `select`, a
        multi-select one shown as `checkbox`, a yes/no box a `bool` shown as `booleancheckbox`."""
        name = "_".join(label.lower().split())
        kind_type = {"picklist": ("enumeration", "select"), "multiselect": ("enumeration", "checkbox"),
                     "checkbox": ("bool", "booleancheckbox"), "number": ("number", "number")}[kind]
        if kind == "checkbox":
            options = ("true", "false")
        with self.fake.lock:
            if "dealinformation" not in self.portal.groups["deals"]:
                self.portal.create_group("deals", {"name": "dealinformation", "label": "Deal information"})
            self.portal.create_property("deals", {
                "name": name, "label": label, "type": kind_type[0], "fieldType": kind_type[1],
                "groupName": "dealinformation",
                "options": [{"label": {"true": "Yes", "false": "No"}.get(o, o), "value": o} for o in options]})
        return name


@contextlib.contextmanager
def hubspot_harness(**fake_kwargs: Any) -> Iterator[HubSpotHarness]:
    """A harness whose fake serves until the block ends."""
    fake = FakeHubSpot(**fake_kwargs)
    with serve(fake) as url:
        yield HubSpotHarness(fake, url)


_open: list[contextlib.ExitStack] = []


def make_harness(**fake_kwargs: Any) -> HubSpotHarness:
    """A harness for the shared contract test; its server stops at interpreter exit or `close_all()`."""
    stack = contextlib.ExitStack()
    harness = stack.enter_context(hubspot_harness(**fake_kwargs))
    _open.append(stack)
    return harness


def close_all() -> None:
    while _open:
        _open.pop().close()
