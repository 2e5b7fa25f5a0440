"""The fake HubSpot as a WSGI app: HubSpot's paths, bodies, limits, rate-limit headers and errors.

`FakeHubSpot` holds the portals, the OAuth server, the rate windows, the request log and the
faults a test injects; `FakeHubSpot.wsgi()` is the Flask app served by server.py.
"""

from __future__ import annotations

import collections
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from tests.fakes.hubspot import routes_crm, routes_oauth
from tests.fakes.hubspot.portal import FakeError, Portal
from tests.fakes.hubspot.rules import missing_scopes_body
from tests.fakes.hubspot.tokens import TokenServer


@dataclass
class Fault:
    """A canned answer for the next `times` requests whose path contains `path`."""

    path: str
    status: int
    times: int
    method: str | None = None
    headers: dict[str, str] | None = None
    body: dict[str, Any] | None = None
    after: bool = False  # True: do the work, then lose the response (a timeout after the write)


class FakeHubSpot:
    """Everything the fake knows; thread-safe enough for a threaded WSGI server (one lock)."""

    def __init__(self, *, client_id: str = "fake-client-id", client_secret: str = "fake-client-secret",
                 clock: Callable[[], float] = time.time, rate_limit: int = 110, window_s: float = 10.0,
                 search_per_s: int = 5, hub_id: int = 62515, index_delay_s: float = 3.0) -> None:
        self.clock = clock
        self.index_delay_s = index_delay_s  # search sees a write this long after it (research §4.2); 0 = at once
        self.oauth = TokenServer(client_id, client_secret, clock)
        self.portals: dict[int, Portal] = {}
        self.portal = self.add_portal(hub_id)
        self.rate_limit, self.window_s, self.search_per_s = rate_limit, window_s, search_per_s
        self.lock = threading.RLock()
        self.log: list[tuple[str, str, int]] = []
        self.faults: list[Fault] = []
        self.hooks: list[Callable[[str, str], None]] = []
        self._windows: dict[tuple[int, str], collections.deque[float]] = collections.defaultdict(collections.deque)

    def add_portal(self, hub_id: int) -> Portal:
        self.portals[hub_id] = Portal(hub_id, self.clock, index_delay_ms=int(self.index_delay_s * 1000))
        return self.portals[hub_id]

    def index_now(self) -> None:
        """The search index catches up with every write so far (as if its delay had passed)."""
        with self.lock:
            for portal in self.portals.values():
                portal.index_now()

    def inject(self, path: str, status: int, *, times: int = 1, method: str | None = None,
               headers: dict[str, str] | None = None, body: dict[str, Any] | None = None,
               after: bool = False) -> None:
        self.faults.append(Fault(path, status, times, method, headers, body, after))

    def count(self, *, path: str = "", method: str | None = None, status: int | None = None) -> int:
        return sum(1 for m, p, s in self.log if path in p and (method in (None, m)) and (status in (None, s)))

    # ---- the request pipeline ---------------------------------------------------------------------
    def wsgi(self) -> Flask:
        app = Flask("fake_hubspot")
        app.config["MAX_CONTENT_LENGTH"] = 10 * 1024 * 1024
        routes_oauth.register(app, self)
        routes_crm.register(app, self)

        @app.errorhandler(FakeError)
        def _fake_error(err: FakeError) -> Response:
            return self.error(err.status, err.category, err.message, **err.extra)

        @app.errorhandler(HTTPException)
        def _http_error(err: HTTPException) -> Response:
            # HubSpot answers unknown paths and methods with its JSON error body, never an HTML page
            # (research §6.9 "legacy endpoints return {status,message,correlationId,category}")
            category = {404: "OBJECT_NOT_FOUND", 405: "VALIDATION_ERROR"}.get(err.code or 500, "VALIDATION_ERROR")
            message = "Resource not found" if err.code == 404 else f"{err.name}: {request.method} {request.path}"
            return self.error(err.code or 500, category, message)

        @app.errorhandler(Exception)
        def _crash(err: Exception) -> Response:  # a fake bug still answers in HubSpot's shape
            return self.error(500, "INTERNAL_ERROR", f"internal error: {type(err).__name__}")

        @app.after_request
        def _log(resp: Response) -> Response:
            with self.lock:
                self.log.append((request.method, request.path, resp.status_code))
            return resp

        return app

    def error(self, status: int, category: str, message: str, headers: dict[str, str] | None = None,
              **extra: Any) -> Response:
        body = {"status": "error", "message": message, "correlationId": secrets.token_hex(8), "category": category}
        body.update(extra)
        return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers or {})

    def preflight(self) -> Response | Portal:
        """Faults, hooks, bearer auth and the rate limits, in HubSpot's order; the portal when all pass."""
        for hook in list(self.hooks):
            hook(request.method, request.path)
        fault = self._take_fault()
        if fault is not None and fault.after:
            request.environ["fake.after_fault"] = fault
        elif fault is not None:
            return self.fault_response(fault)
        auth = request.headers.get("Authorization", "")
        grant = self.oauth.check(auth.removeprefix("Bearer ").strip()) if auth.startswith("Bearer ") else \
            "INVALID_AUTHENTICATION"
        if isinstance(grant, str):
            message = ("The OAuth token used to make this call expired" if grant == "EXPIRED_AUTHENTICATION"
                       else "Authentication credentials not found.")
            return self.error(401, grant, message)
        request.environ["fake.scopes"] = frozenset(grant.scopes)
        portal = self.portals.get(grant.hub_id)
        if portal is None:
            return self.error(403, "MISSING_SCOPES", "This app is not installed in that portal")
        limited = self._rate(grant.hub_id, search=request.path.endswith("/search"))
        return limited if limited is not None else portal

    def scope_check(self, needed: tuple[str, ...]) -> Response | None:
        """403 MISSING_SCOPES unless the token holds one of `needed` (research §1.2, §7.2)."""
        have = request.environ.get("fake.scopes", frozenset())
        if not needed or have & set(needed):
            return None
        return self.error(403, "MISSING_SCOPES", **missing_scopes_body(needed))

    def fault_response(self, fault: Fault) -> Response:
        body = fault.body or {"status": "error", "message": f"injected {fault.status}",
                              "correlationId": secrets.token_hex(8), "category": "INJECTED"}
        return Response(json.dumps(body), status=fault.status, mimetype="application/json", headers=fault.headers or {})

    def _take_fault(self) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.path in request.path and fault.method in (None, request.method) and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def _rate(self, hub_id: int, *, search: bool) -> Response | None:
        limit, window, policy = ((self.search_per_s, 1.0, "SECONDLY") if search
                                 else (self.rate_limit, self.window_s, "TEN_SECONDLY_ROLLING"))
        now = time.monotonic()
        with self.lock:
            stamps = self._windows[(hub_id, "search" if search else "api")]
            while stamps and stamps[0] <= now - window:
                stamps.popleft()
            if len(stamps) >= limit:
                headers = {} if search else self.rate_headers(limit, 0, window)
                return self.error(429, "RATE_LIMITS", f"You have reached your {policy.lower()} limit.",
                                  headers=headers, errorType="RATE_LIMIT", policyName=policy,
                                  groupName=f"publicapi:oauth:{self.oauth.app_id}:{hub_id}")
            stamps.append(now)
            request.environ["fake.remaining"] = None if search else limit - len(stamps)
        return None

    def rate_headers(self, limit: int, remaining: int, window: float) -> dict[str, str]:
        return {"X-HubSpot-RateLimit-Max": str(limit), "X-HubSpot-RateLimit-Remaining": str(remaining),
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(window * 1000))}

    def ok(self, body: Any, status: int = 200) -> Response:
        remaining = request.environ.get("fake.remaining")
        headers = {} if remaining is None else self.rate_headers(self.rate_limit, remaining, self.window_s)
        text = "" if body is None else json.dumps(body)
        return Response(text, status=status, mimetype="application/json", headers=headers)
