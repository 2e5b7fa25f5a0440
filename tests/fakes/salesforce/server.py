"""The fake Salesforce over HTTPS on 127.0.0.1 with a test CA (trustme): simple-salesforce forces https,
so tests hand it a requests.Session whose `verify` is the CA bundle."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
import trustme
from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter
from cheroot.workers.threadpool import ThreadPool, WorkerThread
from flask import Flask, jsonify, request
from werkzeug.http import http_date

from tests.fakes.salesforce import bulk, oauth, rest
from tests.fakes.salesforce.oauth import OAuthApp
from tests.fakes.salesforce.org import FakeOrg, Injected, SfError

EXPIRED = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
LIMIT = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
# The same errorCode for the concurrent long-running request limit (25 requests running >= 20 s per org; research
# §2.5 "Concurrency ... Exceeding it returns REQUEST_LIMIT_EXCEEDED"): the daily allocation is not spent.
CONCURRENT = [{"message": "ConcurrentPerOrgLongTxn Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
LOCKED = [{"message": "unable to obtain exclusive access to this record or 1 records", "errorCode": "UNABLE_TO_LOCK_ROW",
           "fields": []}]  # request level, not only per record (research §2.3 "Handle ... UNABLE_TO_LOCK_ROW")
NOT_FOUND = [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]
_UNMETERED = re.compile(r"^/services/data/?$")


def create_app(initial: FakeOrg, oauth_app: OAuthApp, base_url: str) -> Flask:
    app = Flask("fake_salesforce")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.config.update(ORG=initial, OAUTH_APP=oauth_app, BASE_URL=base_url)
    rest.register(app)
    bulk.register(app)
    oauth.register(app)

    @app.before_request
    def _gate() -> Any:
        org: FakeOrg = app.config["ORG"]
        if not request.path.startswith("/services/data/") or _UNMETERED.match(request.path):
            return None  # OAuth, identity and the version list need no session and cost nothing
        internal = request.headers.get("X-Sf-Internal") == "1"
        if not internal:
            org.calls.append((request.method, request.full_path))
        injected = _take_injected(org)
        if injected is not None and injected.after:
            request.environ["sf.lost"] = injected
        elif injected is not None:
            return jsonify(injected.body), injected.status
        auth = request.headers.get("Authorization", "")
        user = org.tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
        if user is None:
            return jsonify(EXPIRED), 401
        request.environ["sf.user"] = user
        if internal:
            return None
        if org.api_used >= org.api_max:
            return jsonify(LIMIT), 403
        refused = _busy(org)
        if refused is not None:
            return refused
        org.api_used += 1
        return None

    @app.after_request
    def _usage(resp: Any) -> Any:
        org: FakeOrg = app.config["ORG"]
        lost = request.environ.get("sf.lost")
        if lost is not None:  # the work is done; the caller sees only the injected answer
            resp = app.response_class(json.dumps(lost.body), status=lost.status, mimetype="application/json")
        resp.headers["Date"] = http_date(org.clock())  # the org's clock, so tests control "now" end to end
        if request.path.startswith("/services/data/v"):
            resp.headers["Sforce-Limit-Info"] = f"api-usage={org.api_used}/{org.api_max}"
        return resp

    @app.errorhandler(SfError)
    def _sf_error(exc: SfError) -> Any:
        return jsonify(exc.body()), exc.status

    @app.errorhandler(404)
    def _not_found(exc: Any) -> Any:  # Salesforce answers unknown resources in JSON, never an HTML page
        return jsonify(NOT_FOUND), 404

    @app.errorhandler(405)
    def _bad_method(exc: Any) -> Any:
        return jsonify([{"errorCode": "METHOD_NOT_ALLOWED", "message": f"HTTP Method '{request.method}' not allowed. "
                         "Allowed are GET,PATCH,POST,DELETE"}]), 405

    @app.errorhandler(Exception)
    def _crash(exc: Exception) -> Any:
        return jsonify([{"errorCode": "UNKNOWN_EXCEPTION", "message": f"An unexpected error occurred: "
                         f"{type(exc).__name__}"}]), 500

    @app.get("/services/data/")
    def versions() -> Any:
        org: FakeOrg = app.config["ORG"]
        return jsonify([{"version": org.version, "url": f"/services/data/v{org.version}", "label": "Spring '26"}])

    return app


def _busy(org: FakeOrg) -> Any:
    """The org's concurrent long-running requests are taken, or the record a write needs is locked."""
    with org.lock:
        if org.busy_long_running > 0 and "/limits" not in request.path:
            org.busy_long_running -= 1
            return jsonify(CONCURRENT), 403
        if org.locked_requests > 0 and request.method in ("PATCH", "POST", "DELETE"):
            org.locked_requests -= 1
            return jsonify(LOCKED), 400
    return None


def _take_injected(org: FakeOrg) -> Injected | None:
    with org.lock:
        for item in org.injected:
            if item.path_contains in request.full_path and item.method in (None, request.method):
                item.times -= 1
                if item.times <= 0:
                    org.injected.remove(item)
                return item
    return None


class FakeSalesforce:
    """A running fake: `url` (login host and instance), `org` (state), `session()` (trusts the test CA)."""

    def __init__(self, url: str, org: FakeOrg, oauth_app: OAuthApp, ca_bundle: Path, app: Flask) -> None:
        self.url, self.org, self.oauth_app, self.ca_bundle, self.app = url, org, oauth_app, ca_bundle, app

    @property
    def host(self) -> str:
        return self.url.removeprefix("https://")

    def session(self) -> requests.Session:
        s = requests.Session()
        s.verify = str(self.ca_bundle)
        s.trust_env = False  # else REQUESTS_CA_BUNDLE silently overrides `verify` (requests#3829)
        return s

    def issue_token(self, user_id: str | None = None) -> str:
        """An access token as the OAuth flow would hand out (for tests that skip the flow)."""
        import secrets

        token = f"{self.org.org_id[:15]}!AQ{secrets.token_urlsafe(24)}"
        self.org.tokens[token] = user_id or self.org.integration_user_id
        return token

    def issue_refresh_token(self) -> str:
        import secrets

        token = "5Aep" + secrets.token_urlsafe(24)
        self.org.refresh_tokens[token] = self.org.integration_user_id
        return token

    def reset(self, org: FakeOrg | None = None) -> FakeOrg:
        """A fresh org for the next test (the server keeps running)."""
        self.org = org or FakeOrg()
        self.app.config["ORG"] = self.org
        self.app.config["INSTANCE_URL"] = None
        self.oauth_app.codes.clear()
        return self.org


class _DaemonPool(ThreadPool):
    """cheroot's worker pool with daemon threads (its own are not: the shared fake would hang pytest's exit)."""

    def _spawn_worker(self) -> WorkerThread:
        worker = WorkerThread(self.server)
        worker.name = f"fake-salesforce {worker.name}"
        worker.daemon = True
        worker.start()
        return worker


@contextmanager
def running_fake(tmp_dir: Path, org: FakeOrg | None = None) -> Iterator[FakeSalesforce]:
    """Start the fake on a free port in a thread (cheroot: TLS and keep-alive, as a real API); stop it on exit."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    bundle, cert_file, key_file = tmp_dir / "fake-sf-ca.pem", tmp_dir / "fake-sf-cert.pem", tmp_dir / "fake-sf-key.pem"
    ca.cert_pem.write_to_path(str(bundle))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    org = org or FakeOrg()
    oauth_app = OAuthApp()
    app = create_app(org, oauth_app, "")
    server = wsgi.Server(("127.0.0.1", 0), app, numthreads=8, server_name="fake-salesforce")
    server.requests = _DaemonPool(server, min=8, max=8)  # a process that forgets to stop us still exits
    server.ssl_adapter = BuiltinSSLAdapter(str(cert_file), str(key_file))
    server.prepare()
    url = f"https://127.0.0.1:{server.bind_addr[1]}"
    app.config["BASE_URL"] = url
    thread = threading.Thread(target=server.serve, name="fake-salesforce", daemon=True)
    thread.start()
    try:
        yield FakeSalesforce(url, org, oauth_app, bundle, app)
    finally:
        server.stop()
        thread.join(timeout=5)


_SHARED: FakeSalesforce | None = None
_SHARED_CTX: Any = None  # keep the context manager alive: collecting it would shut the server down
_SHARED_LOCK = threading.Lock()


def shared_fake() -> FakeSalesforce:
    """One fake per test process, started on first use (the thread is a daemon); tests call reset()."""
    global _SHARED, _SHARED_CTX
    with _SHARED_LOCK:
        if _SHARED is None:
            import tempfile

            _SHARED_CTX = running_fake(Path(tempfile.mkdtemp(prefix="fake-sf-")))
            _SHARED = _SHARED_CTX.__enter__()
        return _SHARED
