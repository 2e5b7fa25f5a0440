"""The error table (narrow HTTP edge cases through `responses`) and the per-tenant API budget."""

from __future__ import annotations

import logging

import pytest
import requests
import responses

from crm_adapters.auth import StaticTokens, Tokens
from crm_adapters.errors import (
    CrmBadRequest,
    CrmBudgetExhausted,
    CrmNotFound,
    CrmPermissionError,
    CrmRateLimited,
    CrmUnavailable,
)
from crm_adapters.model import Entity
from crm_adapters.salesforce.adapter import SalesforceAdapter
from crm_adapters.salesforce.budget import ApiBudget, Usage, parse_limit_info

INSTANCE = "https://acme.my.salesforce.com"
QUERY = f"{INSTANCE}/services/data/v66.0/query/"


def _adapter(budget: ApiBudget | None = None) -> SalesforceAdapter:
    return SalesforceAdapter(StaticTokens(Tokens(access_token="00D!secret-token", instance_url=INSTANCE)),
                             "00Dx", budget=budget, integration_user_id="005x")


@pytest.mark.parametrize(("status", "body", "error"), [
    (403, [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}], CrmRateLimited),
    (400, [{"message": "unexpected token: FORM", "errorCode": "MALFORMED_QUERY"}], CrmBadRequest),
    (400, [{"message": "No such column 'foo'", "errorCode": "INVALID_FIELD"}], CrmBadRequest),
    (404, [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}], CrmNotFound),
    (403, [{"message": "insufficient access", "errorCode": "INSUFFICIENT_ACCESS"}], CrmPermissionError),
    (503, [{"message": "Server unavailable", "errorCode": "SERVER_UNAVAILABLE"}], CrmUnavailable),
    (500, "<html>oops</html>", CrmUnavailable),
])
@responses.activate
def test_error_table(status, body, error, caplog):
    responses.add(responses.GET, QUERY, json=body if not isinstance(body, str) else None,
                  body=body if isinstance(body, str) else None, status=status)
    with caplog.at_level(logging.DEBUG), pytest.raises(error) as info:
        _adapter().read_pipelines()
    assert "secret-token" not in caplog.text and "message" not in caplog.text  # never the body, never the token
    if error is CrmRateLimited:
        assert isinstance(info.value, CrmBudgetExhausted) and info.value.daily and not info.value.retryable


@responses.activate
def test_timeout_is_unavailable():
    responses.add(responses.GET, QUERY, body=requests.ConnectTimeout("slow"))
    with pytest.raises(CrmUnavailable):
        _adapter().read_pipelines()


def test_limit_info_header_parsing():
    assert parse_limit_info("api-usage=18/5000; per-app-api-usage=17/250(appName=x)") == Usage(18, 5000)
    assert parse_limit_info(None) is None and parse_limit_info("garbage") is None


@responses.activate
def test_run_stops_at_its_share_of_the_daily_allocation():
    for used in range(1, 40):
        responses.add(responses.GET, QUERY, json={"totalSize": 0, "done": True, "records": []},
                      headers={"Sforce-Limit-Info": f"api-usage={used}/100"})
    budget = ApiBudget("00Dx", run_share=0.25)
    adapter = _adapter(budget)
    with pytest.raises(CrmRateLimited, match="run budget"):
        for _ in range(40):
            adapter.client.query_all("SELECT Id FROM Opportunity")
    assert budget.calls == 25


@responses.activate
def test_everyone_stops_at_the_total_share():
    responses.add(responses.GET, QUERY, json={"totalSize": 0, "done": True, "records": []},
                  headers={"Sforce-Limit-Info": "api-usage=80000/100000"})
    adapter = _adapter(ApiBudget("00Dx"))
    adapter.client.query_all("SELECT Id FROM Opportunity")
    with pytest.raises(CrmRateLimited, match="org API usage"):
        list(adapter.read_changes(Entity.USER, since=None))


def test_budget_is_shared_by_workers_through_redis(redis_conn):
    a = ApiBudget("00Dshared", redis=redis_conn, run_id="run-1", run_share=0.25)
    b = ApiBudget("00Dshared", redis=redis_conn, run_id="run-1", run_share=0.25)
    for _ in range(10):
        a.record("api-usage=500/40")  # the org reports its usage; limit 40 -> a run may spend 10
    with pytest.raises(CrmRateLimited):
        b.check()  # another worker of the same run sees the spent budget
    other_run = ApiBudget("00Dshared", redis=redis_conn, run_id="run-2", total_share=0.99)
    assert other_run.usage() == Usage(500, 40)
    with pytest.raises(CrmRateLimited, match="org API usage"):
        other_run.check()


def test_budget_rejects_nonsense_shares():
    with pytest.raises(ValueError):
        ApiBudget("x", run_share=0.9, total_share=0.5)
