"""The floor webhook_ingest.py compares against: a WSGI app that reads the body and answers 200, nothing else.

Served by the same gunicorn command as the real app, it shows what the HTTP server and the load generator
alone can do on this machine at this moment; the gap to the real app is what salesloop's request costs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    body = b'{"received": 0, "duplicates": 0}'
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
