"""Serve a FakeHubSpot over real HTTP on 127.0.0.1 in a background thread (a free port)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from werkzeug.serving import WSGIRequestHandler, make_server

from tests.fakes.hubspot.app import FakeHubSpot


class _Quiet(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


class Handler(WSGIRequestHandler):
    """HTTP/1.1 keep-alive and TCP_NODELAY: without them every request waits ~40 ms on delayed ACKs."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True


def make(fake: FakeHubSpot):  # type: ignore[no-untyped-def]
    """The threaded WSGI server for `fake` on a free port of 127.0.0.1 (not started)."""
    logging.getLogger("werkzeug").addFilter(_Quiet())
    return make_server("127.0.0.1", 0, fake.wsgi(), threaded=True, request_handler=Handler)


@contextmanager
def serve(fake: FakeHubSpot) -> Iterator[str]:
    """Run the fake until the block ends; yields its base URL (http://127.0.0.1:<port>)."""
    server = make(fake)
    thread = threading.Thread(target=server.serve_forever, name="fake-hubspot", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
