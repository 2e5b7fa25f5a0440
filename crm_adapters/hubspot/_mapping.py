"""HubSpot objects (as plain dicts) -> the common model, with a per-portal mapping.

Every mapper raises MalformedRecord with a reason a person can act on; the sync quarantines
that record and lets the rest of its batch land. Dates arrive as ISO strings or ms epochs
(both occur in the wild), property values always as strings.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from crm_adapters.errors import MAPPING_FAILURES, MalformedRecord, quarantines
from crm_adapters.model import (
    Account,
    Activity,
    ActivityType,
    Contact,
    ContactRole,
    Crm,
    Deal,
    DealContactRole,
    DealStatus,
    Direction,
    Pipeline,
    Stage,
    StageChange,
    User,
    UserRole,
)
from crm_adapters.port import FieldDescription, Quarantined
from crm_adapters.qualification import QualificationMapping

ENGAGEMENT_TYPES: dict[str, ActivityType] = {
    "calls": ActivityType.CALL, "emails": ActivityType.EMAIL, "meetings": ActivityType.MEETING,
    "notes": ActivityType.NOTE, "tasks": ActivityType.TASK,
}
DEFAULT_LABEL_ROLES: dict[str, ContactRole] = {
    "champion": ContactRole.CHAMPION, "economic buyer": ContactRole.ECONOMIC_BUYER,
    "budget holder": ContactRole.ECONOMIC_BUYER, "decision maker": ContactRole.DECISION_MAKER,
    "technical evaluator": ContactRole.TECHNICAL_EVALUATOR, "technical buyer": ContactRole.TECHNICAL_EVALUATOR,
    "evaluator": ContactRole.TECHNICAL_EVALUATOR, "influencer": ContactRole.INFLUENCER, "blocker": ContactRole.BLOCKER,
}
DEFAULT_ACTIVITY_CUSTOM = {k: f"salesloop_{k}" for k in ("kind", "sequence", "variant", "step", "reply", "opened")}


@dataclass(frozen=True)
class HubSpotMapping:
    """One portal's conventions: roles by team/owner, contact roles by association label, custom fields."""

    role_by_team: Mapping[str, UserRole] = field(default_factory=dict)
    role_by_owner: Mapping[str, UserRole] = field(default_factory=dict)  # owner id or email -> role
    default_role: UserRole = UserRole.OTHER
    contact_role_by_label: Mapping[str, ContactRole] = field(default_factory=lambda: dict(DEFAULT_LABEL_ROLES))
    primary_labels: frozenset[str] = frozenset({"primary", "primary contact"})
    sdr_property: str = "sdr_owner"
    transcript_property: str = "salesloop_transcript"
    activity_custom: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ACTIVITY_CUSTOM))
    deal_custom: tuple[str, ...] = ()
    qualification: QualificationMapping = field(default_factory=QualificationMapping)  # settings["qualification"]

    @classmethod
    def from_settings(cls, data: Mapping[str, Any] | None) -> HubSpotMapping:
        """The mapping an admin saved (installation.settings["hubspot_mapping"]); bad values raise ValueError."""
        data = dict(data or {})
        kwargs: dict[str, Any] = {}
        if "role_by_team" in data:
            kwargs["role_by_team"] = {k: UserRole(v) for k, v in data["role_by_team"].items()}
        if "role_by_owner" in data:
            kwargs["role_by_owner"] = {str(k): UserRole(v) for k, v in data["role_by_owner"].items()}
        if "default_role" in data:
            kwargs["default_role"] = UserRole(data["default_role"])
        if "contact_role_by_label" in data:
            kwargs["contact_role_by_label"] = {**DEFAULT_LABEL_ROLES, **{
                k.lower(): ContactRole(v) for k, v in data["contact_role_by_label"].items()}}
        for name in ("sdr_property", "transcript_property"):
            if name in data:
                kwargs[name] = str(data[name])
        if "activity_custom" in data:
            kwargs["activity_custom"] = {str(k): str(v) for k, v in data["activity_custom"].items()}
        if "deal_custom" in data:
            kwargs["deal_custom"] = tuple(str(x) for x in data["deal_custom"])
        unknown = set(data) - {"role_by_team", "role_by_owner", "default_role", "contact_role_by_label",
                               "sdr_property", "transcript_property", "activity_custom", "deal_custom"}
        if unknown:
            raise ValueError(f"unknown hubspot mapping keys: {sorted(unknown)}")
        return cls(**kwargs)

    def deal_properties(self) -> list[str]:
        return ["dealname", "amount", "deal_currency_code", "dealstage", "pipeline", "closedate", "createdate",
                "hs_lastmodifieddate", "hubspot_owner_id", "hs_analytics_source", "dealtype", "closed_lost_reason",
                "closed_won_reason", "hs_next_step", "hs_is_closed", "hs_is_closed_won", self.sdr_property,
                *self.deal_custom, *self.qualification.names()]


ENGAGEMENT_PROPERTIES = {
    "calls": ["hs_call_title", "hs_call_body", "hs_call_direction", "hs_call_duration", "hs_call_disposition"],
    "emails": ["hs_email_subject", "hs_email_text", "hs_email_direction", "hs_email_status"],
    "meetings": ["hs_meeting_title", "hs_meeting_body", "hs_internal_meeting_notes", "hs_meeting_start_time",
                 "hs_meeting_end_time", "hs_meeting_outcome"],
    "notes": ["hs_note_body"],
    "tasks": ["hs_task_subject", "hs_task_body", "hs_task_status"],
}
COMPANY_PROPERTIES = ["name", "industry", "numberofemployees", "annualrevenue", "country", "hubspot_owner_id",
                      "hs_lastmodifieddate"]
CONTACT_PROPERTIES = ["firstname", "lastname", "email", "jobtitle", "associatedcompanyid", "hs_lastmodifieddate"]


def engagement_properties(otype: str, mapping: HubSpotMapping) -> list[str]:
    extra = [mapping.transcript_property] if otype in ("calls", "meetings") else []
    return ["hs_timestamp", "hubspot_owner_id", "hs_lastmodifieddate", *ENGAGEMENT_PROPERTIES[otype], *extra,
            *mapping.activity_custom.values()]


# ---- values ----------------------------------------------------------------------------------------
def parse_dt(value: Any, name: str = "date") -> datetime | None:
    if value in (None, ""):
        return None
    text = str(value).strip()
    try:
        if text.lstrip("-").isdigit():
            return datetime.fromtimestamp(int(text) / 1000, UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError) as exc:  # OSError: an epoch out of the platform's range
        raise MalformedRecord(f"{name} {text[:40]!r} is not a date") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _date(value: Any, name: str) -> date | None:
    parsed = parse_dt(value, name)
    return parsed.date() if parsed else None


def _decimal(value: Any, name: str) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise MalformedRecord(f"{name} {str(value)[:40]!r} is not a number") from exc
    if not number.is_finite():
        raise MalformedRecord(f"{name} {value!r} is not a finite number")
    return number


def _int(value: Any, name: str) -> int | None:
    number = _decimal(value, name)
    return None if number is None else int(number)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _plain(value: Any) -> str:
    """Note and email bodies are HTML in HubSpot; the loops read text."""
    text = re.sub(r"<br\s*/?>|</p>", "\n", _text(value))
    return html.unescape(re.sub(r"<[^>]+>", "", text)).strip()


def _coerce(value: str) -> Any:
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    return int(value) if value.lstrip("-").isdigit() else value


def _props(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    props = obj.get("properties")
    if not isinstance(props, Mapping):
        raise MalformedRecord("record has no properties")
    return props


def _base(obj: Mapping[str, Any]) -> dict[str, Any]:
    props = _props(obj)
    remote_id = str(obj.get("id") or "").strip()
    if not remote_id:
        raise MalformedRecord("record has no id")
    updated = parse_dt(props.get("hs_lastmodifieddate") or obj.get("updatedAt"), "hs_lastmodifieddate")
    return {"crm": Crm.HUBSPOT, "remote_id": remote_id, "remote_updated_at": updated,
            "deleted": bool(obj.get("archived"))}


def _wrap(kind: str, build: Any, obj: Mapping[str, Any]) -> Any:
    try:
        return build()
    except MalformedRecord:
        raise
    except MAPPING_FAILURES as exc:
        raise MalformedRecord(f"{kind} {str(obj.get('id'))[:64]}: {exc}") from exc


def associations(obj: Mapping[str, Any]) -> Mapping[str, list[str]]:
    """The record's associations by object type: {"companies": [ids], ...}; anything else is malformed."""
    assoc = obj.get("associations") or {}
    if not isinstance(assoc, Mapping):
        raise MalformedRecord(f"associations is {type(assoc).__name__}, not an object")
    for name, ids in assoc.items():
        if not isinstance(ids, list | tuple) or not all(isinstance(i, str | int) for i in ids):
            raise MalformedRecord(f"associations.{str(name)[:40]} is not a list of ids")
    return {str(name): [str(i) for i in ids] for name, ids in assoc.items()}


# ---- records ---------------------------------------------------------------------------------------
def stages_from_hubspot(pipelines: list[Mapping[str, Any]]) -> list[Pipeline]:
    """Pipelines by internal id; won = closed with probability 1.0 (HubSpot has no is_won flag)."""
    out = []
    for p in pipelines:
        stages = []
        for s in p.get("stages") or []:
            meta = s.get("metadata") or {}
            probability = float(meta.get("probability") or 0.0)
            closed = str(meta.get("isClosed", "false")).lower() == "true"
            stages.append(Stage(id=str(s["id"]), label=str(s.get("label", "")), order=int(s.get("displayOrder", 0)),
                                probability=probability, is_closed=closed, is_won=closed and probability >= 1.0))
        out.append(Pipeline(crm=Crm.HUBSPOT, remote_id=str(p["id"]), label=str(p.get("label", "")),
                            order=int(p.get("displayOrder", 0)), stages=tuple(sorted(stages, key=lambda s: s.order)),
                            deleted=bool(p.get("archived"))))
    return out


def _status(props: Mapping[str, Any], stage: Stage | None) -> DealStatus:
    if stage is not None:
        closed, won = stage.is_closed, stage.is_won
    else:  # a stage we do not know (deleted from the pipeline): HubSpot's own calculated flags
        closed = str(props.get("hs_is_closed", "false")).lower() == "true"
        won = str(props.get("hs_is_closed_won", "false")).lower() == "true"
    return DealStatus.WON if won else DealStatus.LOST if closed else DealStatus.OPEN


@quarantines("deal")
def deal_from_hubspot(obj: Mapping[str, Any], *, stages: Mapping[tuple[str, str], Stage], mapping: HubSpotMapping,
                      account_id: str | None = None) -> Deal:
    base, props = _base(obj), _props(obj)
    stage_id = _text(props.get("dealstage")).strip()
    if not stage_id:
        if not base["deleted"]:
            raise MalformedRecord(f"deal {base['remote_id']} has no dealstage")
        stage_id = "deleted"
    pipeline_id = _text(props.get("pipeline")).strip() or "default"
    status = _status(props, stages.get((pipeline_id, stage_id)))
    close_date = _date(props.get("closedate"), "closedate")
    currency = _text(props.get("deal_currency_code")).strip().upper() or "USD"

    def build() -> Deal:
        return Deal(**base, name=_text(props.get("dealname")), account_id=account_id, pipeline_id=pipeline_id,
                    stage_id=stage_id, status=status, amount=_decimal(props.get("amount"), "amount"),
                    currency=currency, close_date=close_date,
                    closed_at=close_date if status is not DealStatus.OPEN else None,
                    created_at=parse_dt(props.get("createdate"), "createdate"),
                    owner_id=props.get("hubspot_owner_id") or None, sdr_id=props.get(mapping.sdr_property) or None,
                    lead_source=props.get("hs_analytics_source") or None, deal_type=props.get("dealtype") or None,
                    loss_reason=props.get("closed_lost_reason") or None,
                    win_reason=props.get("closed_won_reason") or None, next_step=props.get("hs_next_step") or None,
                    custom={k: props[k] for k in mapping.deal_custom if props.get(k) not in (None, "")},
                    qualification=mapping.qualification.values(props))

    return _wrap("deal", build, obj)  # type: ignore[no-any-return]


@quarantines("company")
def account_from_hubspot(obj: Mapping[str, Any]) -> Account:
    base, props = _base(obj), _props(obj)
    return _wrap("company", lambda: Account(  # type: ignore[no-any-return]
        **base, name=_text(props.get("name")), industry=props.get("industry") or None,
        employees=_int(props.get("numberofemployees"), "numberofemployees"),
        annual_revenue=_decimal(props.get("annualrevenue"), "annualrevenue"),
        country=props.get("country") or None, owner_id=props.get("hubspot_owner_id") or None), obj)


@quarantines("contact")
def contact_from_hubspot(obj: Mapping[str, Any]) -> Contact:
    base, props = _base(obj), _props(obj)
    return _wrap("contact", lambda: Contact(  # type: ignore[no-any-return]
        **base, account_id=props.get("associatedcompanyid") or None, first_name=_text(props.get("firstname")),
        last_name=_text(props.get("lastname")), email=props.get("email") or None,
        title=props.get("jobtitle") or None), obj)


@quarantines("owner")
def user_from_hubspot(owner: Mapping[str, Any], mapping: HubSpotMapping) -> User:
    remote_id = str(owner.get("id") or "")
    if not remote_id:
        raise MalformedRecord("owner has no id")
    raw_teams = owner.get("teams") or []
    if not isinstance(raw_teams, list) or not all(isinstance(t, Mapping) for t in raw_teams):
        raise MalformedRecord(f"owner {remote_id[:64]}: teams is not a list of objects")
    teams = sorted(raw_teams, key=lambda t: not t.get("primary"))
    team = _text(teams[0].get("name")) or None if teams else None
    email = owner.get("email") or None
    role = mapping.role_by_owner.get(remote_id) or (mapping.role_by_owner.get(email) if email else None)
    if role is None:
        role = next((mapping.role_by_team[str(t["name"])] for t in teams if str(t.get("name")) in mapping.role_by_team),
                    mapping.default_role)
    name = f"{owner.get('firstName') or ''} {owner.get('lastName') or ''}".strip() or (email or remote_id)
    return User(crm=Crm.HUBSPOT, remote_id=remote_id, remote_updated_at=parse_dt(owner.get("updatedAt")),
                deleted=False, name=name, email=email, role=role, role_raw=team, team=team,
                active=not owner.get("archived", False))


@quarantines("deal contact role")
def users_from_owners(owners: list[Any], mapping: HubSpotMapping) -> tuple[list[User], list[Quarantined]]:
    """Owners -> users, one at a time: an owner that cannot be mapped is quarantined, the others go on."""
    users: list[User] = []
    bad: list[Quarantined] = []
    for owner in owners:
        try:
            users.append(user_from_hubspot(owner, mapping))
        except MAPPING_FAILURES as exc:
            raw = owner if isinstance(owner, Mapping) else {"_value": owner}
            bad.append(Quarantined(remote_id=str(raw.get("id") or "") or None, reason=f"owners: {exc}", raw=raw))
    return users, bad


def role_from_hubspot(deal_id: str, contact_id: str, types: list[Mapping[str, Any]], mapping: HubSpotMapping,
                      updated: datetime | None) -> DealContactRole:
    labels = [str(t.get("label")) for t in types if t.get("label")]
    role = next((mapping.contact_role_by_label[x.lower()] for x in labels
                 if x.lower() in mapping.contact_role_by_label), ContactRole.OTHER)
    return DealContactRole(crm=Crm.HUBSPOT, remote_id=f"{deal_id}-{contact_id}", remote_updated_at=updated,
                           deal_id=deal_id, contact_id=contact_id, role=role,
                           role_raw=", ".join(labels) or None,
                           is_primary=any(x.lower() in mapping.primary_labels for x in labels))


@quarantines("stage history")
def stage_changes_from_hubspot(obj: Mapping[str, Any]) -> list[StageChange]:
    """Stays in stages from dealstage history, else from hs_v2_date_entered_/exited_<stage>."""
    base = _base(obj)
    deal_id = base.pop("remote_id")
    rows = [(parse_dt(h.get("timestamp"), "history timestamp"), str(h.get("value") or ""))
            for h in (obj.get("history") or {}).get("dealstage") or []]
    stays: list[tuple[str, datetime, datetime | None]] = []
    if rows:
        ordered = sorted((ts, v) for ts, v in rows if ts is not None and v)
        merged = [r for i, r in enumerate(ordered) if i == 0 or r[1] != ordered[i - 1][1]]
        stays = [(v, ts, merged[i + 1][0] if i + 1 < len(merged) else None) for i, (ts, v) in enumerate(merged)]
    else:
        props = _props(obj)
        for name, value in props.items():
            if name.startswith("hs_v2_date_entered_") and value:
                stage = name.removeprefix("hs_v2_date_entered_")
                entered = parse_dt(value, name)
                assert entered is not None
                stays.append((stage, entered, parse_dt(props.get(f"hs_v2_date_exited_{stage}"), name)))
        stays.sort(key=lambda s: s[1])
    return [_wrap("stage history", lambda s=s: StageChange(  # type: ignore[misc]
        **base, remote_id=f"{deal_id}-{int(s[1].timestamp() * 1000)}", deal_id=deal_id, stage_id=s[0],
        entered_at=s[1], exited_at=s[2]), obj) for s in stays]


def _direction(otype: str, props: Mapping[str, Any]) -> Direction | None:
    raw = _text(props.get("hs_call_direction") or props.get("hs_email_direction")).upper()
    if raw in ("INBOUND", "INCOMING_EMAIL"):
        return Direction.INBOUND
    if raw in ("OUTBOUND", "EMAIL", "FORWARDED_EMAIL"):
        return Direction.OUTBOUND
    return Direction.INTERNAL if otype in ("notes", "tasks") else None


def _outcome(otype: str, props: Mapping[str, Any]) -> str | None:
    raw = {"calls": props.get("hs_call_disposition"), "meetings": props.get("hs_meeting_outcome"),
           "tasks": props.get("hs_task_status"), "emails": props.get("hs_email_status")}.get(otype)
    if not raw:
        return None
    text = str(raw).lower()
    return "cancelled" if text == "canceled" else text


@quarantines("activity")
def activity_from_hubspot(otype: str, obj: Mapping[str, Any], mapping: HubSpotMapping) -> Activity:
    base, props = _base(obj), _props(obj)
    occurred = parse_dt(props.get("hs_timestamp"), "hs_timestamp")
    if occurred is None:
        raise MalformedRecord(f"{otype} {base['remote_id']} has no hs_timestamp")
    assoc = associations(obj)
    subject = {"calls": "hs_call_title", "emails": "hs_email_subject", "meetings": "hs_meeting_title",
               "tasks": "hs_task_subject"}.get(otype)
    body = {"calls": "hs_call_body", "emails": "hs_email_text", "meetings": "hs_meeting_body",
            "notes": "hs_note_body", "tasks": "hs_task_body"}[otype]
    duration_ms = _int(props.get("hs_call_duration"), "hs_call_duration")
    custom = {k: _coerce(str(props[p])) for k, p in mapping.activity_custom.items() if props.get(p) not in (None, "")}
    companies = list(assoc.get("companies") or [])
    return _wrap(otype, lambda: Activity(  # type: ignore[no-any-return]
        **base, type=ENGAGEMENT_TYPES[otype], occurred_at=occurred,
        subject=_text(props.get(subject)) if subject else "", body=_plain(props.get(body)),
        transcript=_text(props.get(mapping.transcript_property)), direction=_direction(otype, props),
        start_at=parse_dt(props.get("hs_meeting_start_time"), "hs_meeting_start_time"),
        end_at=parse_dt(props.get("hs_meeting_end_time"), "hs_meeting_end_time"),
        duration_s=None if duration_ms is None else duration_ms // 1000, outcome=_outcome(otype, props),
        owner_id=props.get("hubspot_owner_id") or None, deal_ids=tuple(sorted(set(assoc.get("deals") or []))),
        contact_ids=tuple(sorted(set(assoc.get("contacts") or []))),
        account_id=companies[0] if companies else None, custom=custom), obj)


def field_from_property(prop: Mapping[str, Any]) -> FieldDescription:
    """A property as the properties API describes it (type + fieldType; properties.md): an enumeration shown as
    `checkbox` is a multi-select (values 'a;b'), as `booleancheckbox` a single yes/no box."""
    kind, shown = str(prop.get("type") or ""), str(prop.get("fieldType") or "")
    if kind == "bool" or shown == "booleancheckbox":
        common = "checkbox"
    elif kind == "enumeration":
        common = "multiselect" if shown == "checkbox" else "picklist"
    else:
        common = {"number": "number", "date": "date", "datetime": "date", "string": "text"}.get(kind, "other")
    listed = [o for o in prop.get("options") or () if not o.get("hidden")] if common in ("picklist", "multiselect") else []
    return FieldDescription(name=str(prop["name"]), label=str(prop.get("label") or prop["name"]), type=common,
                            options=tuple(str(o["value"]) for o in listed),
                            option_labels=tuple(str(o.get("label") or o["value"]) for o in listed))
