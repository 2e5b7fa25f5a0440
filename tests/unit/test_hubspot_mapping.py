"""HubSpot -> common model mapping edge cases, the error table, and OAuth error bodies (via `responses`)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import responses

from crm_adapters.auth import Tokens
from crm_adapters.errors import (
    CrmAuthError,
    CrmBadRequest,
    CrmBudgetExhausted,
    CrmNotFound,
    CrmPermissionError,
    CrmRateLimited,
    CrmUnavailable,
    MalformedRecord,
)
from crm_adapters.hubspot import _errors, oauth
from crm_adapters.hubspot import _mapping as m
from crm_adapters.hubspot._writes import format_value, same, task_state
from crm_adapters.model import ContactRole, DealStatus, Direction, Stage, TaskStatus, UserRole

WON = Stage(id="closedwon", label="Won", order=5, probability=1.0, is_closed=True, is_won=True)
LOST = Stage(id="closedlost", label="Lost", order=6, probability=0.0, is_closed=True, is_won=False)
STAGES = {("default", "closedwon"): WON, ("default", "closedlost"): LOST}


def deal(**props: str) -> dict:
    return {"id": "9", "properties": {"dealstage": "closedwon", "hs_lastmodifieddate": "2026-05-01T10:00:00.000Z", **props}}


def test_won_comes_from_stage_metadata_and_closed_at_from_closedate() -> None:
    d = m.deal_from_hubspot(deal(closedate="2026-04-30T00:00:00Z", amount="1200.50"), stages=STAGES, mapping=m.HubSpotMapping())
    assert d.status is DealStatus.WON and d.closed_at == date(2026, 4, 30) and d.amount == Decimal("1200.50")


def test_unknown_stage_falls_back_to_hubspot_flags() -> None:
    d = m.deal_from_hubspot(deal(dealstage="gone", hs_is_closed="true", hs_is_closed_won="false"), stages=STAGES,
                            mapping=m.HubSpotMapping())
    assert d.status is DealStatus.LOST


@pytest.mark.parametrize("props, reason", [
    ({"dealstage": ""}, "no dealstage"), ({"amount": "12k"}, "not a number"), ({"amount": "NaN"}, "finite"),
    ({"createdate": "yesterday"}, "not a date"), ({"deal_currency_code": "EURO"}, "ISO 4217"),
])
def test_malformed_deals_say_why(props: dict, reason: str) -> None:
    with pytest.raises(MalformedRecord, match=reason):
        m.deal_from_hubspot(deal(**props), stages=STAGES, mapping=m.HubSpotMapping())


def test_dates_accept_ms_epoch_and_iso() -> None:
    assert m.parse_dt("1767225600000") == datetime(2026, 1, 1, tzinfo=UTC)
    assert m.parse_dt("2026-01-01") == datetime(2026, 1, 1, tzinfo=UTC)
    assert m.parse_dt("2026-01-01T00:00:00.000Z") == datetime(2026, 1, 1, tzinfo=UTC)


def test_owner_role_by_owner_then_team_then_default() -> None:
    mapping = m.HubSpotMapping(role_by_team={"SDR pod": UserRole.SDR}, role_by_owner={"b@x.io": UserRole.MANAGER})
    teams = [{"id": "1", "name": "AE pod", "primary": False}, {"id": "2", "name": "SDR pod", "primary": True}]
    assert m.user_from_hubspot({"id": "1", "teams": teams}, mapping).role is UserRole.SDR
    assert m.user_from_hubspot({"id": "2", "email": "b@x.io", "teams": teams}, mapping).role is UserRole.MANAGER
    assert m.user_from_hubspot({"id": "3"}, mapping).role is UserRole.OTHER


def test_contact_role_from_labels_with_portal_mapping() -> None:
    mapping = m.HubSpotMapping(contact_role_by_label={"sponsor": ContactRole.CHAMPION})
    role = m.role_from_hubspot("1", "2", [{"category": "USER_DEFINED", "typeId": 9, "label": "Sponsor"},
                                          {"category": "HUBSPOT_DEFINED", "typeId": 3, "label": None}], mapping, None)
    assert role.role is ContactRole.CHAMPION and role.role_raw == "Sponsor"
    assert m.role_from_hubspot("1", "3", [{"typeId": 3, "label": None}], mapping, None).role is ContactRole.OTHER


def test_stage_history_merges_repeats_and_falls_back_to_v2_dates() -> None:
    hist = {"id": "5", "properties": {"hs_lastmodifieddate": "2026-01-09T00:00:00Z"}, "history": {"dealstage": [
        {"value": "b", "timestamp": "2026-01-05T00:00:00Z"}, {"value": "a", "timestamp": "2026-01-02T00:00:00Z"},
        {"value": "a", "timestamp": "2026-01-01T00:00:00Z"}]}}
    stays = m.stage_changes_from_hubspot(hist)
    assert [(s.stage_id, s.entered_at.day, s.exited_at and s.exited_at.day) for s in stays] == [("a", 1, 5), ("b", 5, None)]
    v2 = {"id": "6", "properties": {"hs_v2_date_entered_x": "2026-01-01T00:00:00Z",
                                    "hs_v2_date_exited_x": "2026-01-03T00:00:00Z",
                                    "hs_v2_date_entered_y": "2026-01-03T00:00:00Z"}}
    assert [(s.stage_id, s.exited_at is None) for s in m.stage_changes_from_hubspot(v2)] == [("x", False), ("y", True)]


def test_engagements_map_direction_outcome_body_and_custom() -> None:
    email = {"id": "1", "properties": {"hs_timestamp": "2026-01-01T00:00:00Z", "hs_email_direction": "INCOMING_EMAIL",
                                       "hs_email_text": "Thanks", "salesloop_reply": "positive", "salesloop_step": "2"},
             "associations": {"deals": ["4", "4"], "companies": ["8"]}}
    a = m.activity_from_hubspot("emails", email, m.HubSpotMapping())
    assert a.direction is Direction.INBOUND and a.deal_ids == ("4",) and a.account_id == "8"
    assert a.custom == {"reply": "positive", "step": 2}
    note = {"id": "2", "properties": {"hs_timestamp": "1767225600000", "hs_note_body": "<p>Pain: <b>manual</b></p>"}}
    assert m.activity_from_hubspot("notes", note, m.HubSpotMapping()).body == "Pain: manual"
    meeting = {"id": "3", "properties": {"hs_timestamp": "1767225600000", "hs_meeting_outcome": "CANCELED"}}
    assert m.activity_from_hubspot("meetings", meeting, m.HubSpotMapping()).outcome == "cancelled"


def test_task_state_convention() -> None:
    row = {"id": "1", "properties": {"hs_task_status": "COMPLETED", "hs_task_body": "<p>Approve?</p><p>reject - too risky</p>",
                                     "hs_task_completion_date": "1767225600000"}}
    state = task_state(row)
    assert state.status is TaskStatus.REJECTED and state.comment == "too risky"
    assert task_state({"id": "2", "properties": {"hs_task_status": "COMPLETED"}}).status is TaskStatus.COMPLETED
    assert task_state({"id": "3", "properties": {"hs_task_body": "To reject, add a line"}}).status is TaskStatus.OPEN


def test_values_compare_as_numbers() -> None:
    assert format_value(72.0) == "72" and format_value(0.25) == "0.25" and format_value(None) == ""
    assert same("72.0", "72") and not same("72.5", "72") and same(None, "")


class _Exc(Exception):
    def __init__(self, status: int, body: str = "", headers: dict | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or {}


@pytest.mark.parametrize("status, kind", [(401, CrmAuthError), (403, CrmPermissionError), (404, CrmNotFound),
                                          (429, CrmRateLimited), (502, CrmUnavailable), (0, CrmUnavailable),
                                          (400, CrmBadRequest), (409, CrmBadRequest), (423, CrmUnavailable)])
def test_error_table(status: int, kind: type) -> None:
    assert isinstance(_errors.translate(_Exc(status, '{"message": "m", "category": "C"}')), kind)


def test_429_carries_retry_after_and_daily() -> None:
    limited = _errors.translate(_Exc(429, '{"policyName": "SECONDLY"}'))
    assert isinstance(limited, CrmRateLimited) and limited.retry_after == 1.0 and limited.retryable
    assert not isinstance(limited, CrmBudgetExhausted)
    assert _errors.translate(_Exc(429, "{}", {"Retry-After": "7"})).retry_after == 7.0
    daily = _errors.translate(_Exc(429, '{"policyName": "DAILY"}'))
    assert isinstance(daily, CrmBudgetExhausted) and daily.daily and not daily.retryable  # the run stops; no retry today


APP = oauth.OAuthApp("cid", "secret", api_host="https://hs.test")


@responses.activate
def test_refresh_errors_by_body() -> None:
    url = "https://hs.test/oauth/2026-03/token"
    responses.post(url, status=400, json={"status": "BAD_REFRESH_TOKEN", "message": "missing or invalid refresh token"})
    with pytest.raises(CrmAuthError) as err:
        oauth.refresh(APP, Tokens("a", "r"))
    assert err.value.uninstalled
    responses.post(url, status=503, body="upstream")
    with pytest.raises(CrmUnavailable):
        oauth.refresh(APP, Tokens("a", "r"))
    responses.post(url, status=200, json={"access_token": "new", "expires_in": 1800, "token_type": "bearer"})
    fresh = oauth.refresh(APP, Tokens("a", "r", version=3), now=datetime(2026, 1, 1, tzinfo=UTC))
    assert fresh.refresh_token == "r" and fresh.version == 3 and fresh.expires_at == datetime(2026, 1, 1, 0, 30, tzinfo=UTC)
    sent = responses.calls[-1].request.body
    assert "grant_type=refresh_token" in sent and "client_secret=secret" in sent


def test_local_limiter_waits_for_the_window_to_roll() -> None:
    from crm_adapters.hubspot.limiter import LocalLimiter

    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = LocalLimiter(per_window=3, window_s=10, search_per_s=1, sleep=sleep, monotonic=lambda: now[0],
                           margin_s=0)
    for _ in range(3):
        assert limiter.acquire("api") == 0
    assert limiter.acquire("api") == pytest.approx(10.001)
    assert limiter.acquire("search") == 0 and limiter.acquire("search") == pytest.approx(1.001)
    limiter.pause(5)
    assert limiter.acquire("search") == pytest.approx(5.0)
