"""Serve a FakeHubSpot over real HTTP on 127.0.0.1 in a background thread (a free port)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from werkzeug.serving import make_server

from tests.fakes.hubspot.app import FakeHubSpot


class _Quiet(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


@contextmanager
def serve(fake: FakeHubSpot) -> Iterator[str]:
    """Run the fake until the block ends; yields its base URL (http://127.0.0.1:<port>)."""
    logging.getLogger("werkzeug").addFilter(_Quiet())
    server = make_server("127.0.0.1", 0, fake.wsgi(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="fake-hubspot", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
