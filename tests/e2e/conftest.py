"""Shared browser fixtures: headless Debian Chromium via Playwright, a live server in a thread, screenshots.

Screenshots go to $SALESLOOP_SCREENSHOTS, else <repo>/screenshots/e2e/ (gitignored), one PNG per
test, so a person can look at what each test saw.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from tests.conftest import require

CHROMIUM = os.environ.get("SALESLOOP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1366, "height": 768}
SCREENSHOTS = Path(os.environ.get("SALESLOOP_SCREENSHOTS") or Path(__file__).resolve().parents[2] / "screenshots" / "e2e")


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """One headless Chromium for the session (never downloaded: Debian's, or $SALESLOOP_CHROMIUM)."""
    require(shutil.which(CHROMIUM) is not None or os.path.exists(CHROMIUM), f"Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "playwright for Python (a dev dependency)")
        raise
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    """A fresh browser context (own cookies) and page on the most common laptop screen, 1366x768."""
    context = chromium.new_context(viewport=VIEWPORT)
    context.set_default_timeout(30_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Callable[..., Path]:
    """shot(page, suffix="", full_page=True): a PNG named after the test (full_page=False: the first screen only)."""

    def take(page: Any, suffix: str = "", *, full_page: bool = True) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{request.node.name}{('-' + suffix) if suffix else ''}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return take


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """A WSGI app on a free 127.0.0.1 port in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()
