"""Rate limits, retries and tokens against the fake HubSpot: 429 storms, 5xx, 401s, invalid_grant."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from crm_adapters.auth import StaticTokens, Tokens
from crm_adapters.errors import CrmAuthError, CrmUnavailable
from crm_adapters.hubspot import oauth
from crm_adapters.hubspot.limiter import LocalLimiter, RedisLimiter
from crm_adapters.model import Entity
from tests.factories import a_deal, a_pipeline
from tests.fakes.hubspot.harness import hubspot_harness


def test_429_storm_backs_off_and_the_run_completes() -> None:
    with hubspot_harness(rate_limit=4, window_s=0.5) as hs:
        deals = [a_deal(stage_id="101") for _ in range(450)]
        hs.seed(pipelines=[a_pipeline()], deals=deals)
        adapter = hs.make_adapter(limiter=LocalLimiter(per_window=1000), max_retries=12)
        records = [r for b in adapter.read_changes(Entity.DEAL, since=None) for r in b.records]
        assert len(records) == 450
        assert adapter.stats.rate_limited == hs.fake.count(status=429) > 0
        assert adapter.stats.retries >= adapter.stats.rate_limited


def test_limiter_matching_the_budget_sends_no_429() -> None:
    with hubspot_harness(rate_limit=4, window_s=0.5) as hs:
        hs.seed(pipelines=[a_pipeline()], deals=[a_deal(stage_id="101") for _ in range(450)])
        adapter = hs.make_adapter(limiter=LocalLimiter(per_window=3, window_s=0.5))
        assert sum(len(b.records) for b in adapter.read_changes(Entity.DEAL, since=None)) == 450
        assert hs.fake.count(status=429) == 0


def test_redis_limiter_is_shared_by_workers(redis_conn) -> None:  # type: ignore[no-untyped-def]
    stamps: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        limiter = RedisLimiter(redis_conn, "62515", per_window=10, window_s=0.5)
        for _ in range(10):
            limiter.acquire("api")
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stamps.sort()
    assert len(stamps) == 30
    assert max(sum(1 for s in stamps if a <= s < a + 0.45) for a in stamps) <= 10


def test_5xx_on_reads_is_retried() -> None:
    with hubspot_harness() as hs:
        hs.seed(pipelines=[a_pipeline()], deals=[a_deal(stage_id="101")])
        hs.fake.inject("/crm/v3/objects/deals", 503, times=2, method="GET")
        slept: list[float] = []
        adapter = hs.make_adapter(sleep=slept.append)
        assert sum(len(b.records) for b in adapter.read_changes(Entity.DEAL, since=None)) == 1
        assert adapter.stats.retries == 2 and len(slept) == 2 and slept[1] > 0  # backed off, with jitter


def test_persistent_5xx_raises_crm_unavailable() -> None:
    with hubspot_harness() as hs:
        hs.fake.inject("/crm/v3/pipelines", 500, times=50)
        adapter = hs.make_adapter(sleep=lambda _s: None)
        with pytest.raises(CrmUnavailable):
            adapter.read_pipelines()
        assert hs.fake.count(path="/crm/v3/pipelines", status=500) == 5  # the first try and four retries


def test_expired_token_is_refreshed_once_and_the_call_succeeds() -> None:
    with hubspot_harness() as hs:
        hs.seed(pipelines=[a_pipeline()])
        hs.fake.oauth.expire_all()
        assert hs.adapter.read_pipelines()
        assert hs.adapter.stats.refreshes == 1 and hs.fake.count(status=401) == 1


def test_token_is_refreshed_ahead_of_its_stored_expiry() -> None:
    with hubspot_harness() as hs:
        hs.seed(pipelines=[a_pipeline()])
        stale = hs.tokens.current()
        hs.tokens._tokens = Tokens(stale.access_token, stale.refresh_token, datetime.now(UTC) + timedelta(seconds=30))
        adapter = hs.make_adapter()
        adapter.read_pipelines()
        assert adapter.stats.refreshes == 1 and hs.fake.count(status=401) == 0


def test_401_after_refresh_is_an_auth_error() -> None:
    with hubspot_harness() as hs:
        tokens = StaticTokens(Tokens("not-a-token"), refresher=lambda t: Tokens("still-not-a-token"))
        adapter = hs.make_adapter()
        adapter.client._tokens = tokens
        with pytest.raises(CrmAuthError):
            adapter.read_pipelines()


def test_invalid_grant_is_an_auth_error() -> None:
    with hubspot_harness() as hs:
        app = oauth.OAuthApp(hs.fake.oauth.client_id, hs.fake.oauth.client_secret, api_host=hs.url)
        tokens = hs.tokens.current()
        oauth.revoke(app, tokens.refresh_token or "")
        with pytest.raises(CrmAuthError) as err:
            oauth.refresh(app, tokens)
        assert err.value.uninstalled
        hs.fake.oauth.expire_all()
        with pytest.raises(CrmAuthError):
            hs.adapter.read_pipelines()


def test_install_flow_code_exchange_and_introspect() -> None:
    with hubspot_harness() as hs:
        app = oauth.OAuthApp(hs.fake.oauth.client_id, hs.fake.oauth.client_secret, api_host=hs.url, app_host=hs.url)
        url = oauth.authorize_url(app, redirect_uri="https://app.example/cb", scopes=["oauth"], state="s1")
        page = requests.get(url, timeout=5)
        assert page.ok and 'id="connect-app"' in page.text
        form = {"client_id": app.client_id, "redirect_uri": "https://app.example/cb", "state": "s1",
                "hub_id": str(hs.portal.hub_id), "decision": "allow"}
        back = requests.post(f"{hs.url}/oauth/authorize", data=form, allow_redirects=False, timeout=5)
        location = back.headers["Location"]
        assert location.startswith("https://app.example/cb?code=") and "state=s1" in location
        code = location.split("code=")[1].split("&")[0]
        now = datetime(2026, 6, 1, tzinfo=UTC)
        grant = oauth.exchange_code(app, code=code, redirect_uri="https://app.example/cb", now=now)
        assert grant.hub_id == str(hs.portal.hub_id) and grant.tokens.expires_at == now + timedelta(seconds=1800)
        info = oauth.introspect(app, grant.tokens.access_token)
        assert info.active and info.hub_id == str(hs.portal.hub_id) and info.user == "admin@example.com"
        with pytest.raises(CrmAuthError):  # codes are single use
            oauth.exchange_code(app, code=code, redirect_uri="https://app.example/cb")
