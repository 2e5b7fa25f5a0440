"""The `harness` fixture: every port contract test runs once per CRM backend.

To add a backend, add its name to BACKENDS (one line). The name `x` imports
`make_harness` from tests/fakes/x/harness.py (the sandbox's lives in
tests/contract/sandbox_harness.py). `make_harness()` takes no arguments and returns
a fresh object satisfying tests/contract/harness.py's CrmHarness, with `.adapter`
wired to that backend. After each test the fixture calls the harness's `close()`
if it has one, else the module's `close_all()` if it has one.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.contract.harness import CrmHarness

BACKENDS = [
    "sandbox",
    "salesforce",
    "hubspot",
]


def _module(backend: str) -> Any:
    if backend == "sandbox":
        return importlib.import_module("tests.contract.sandbox_harness")
    return importlib.import_module(f"tests.fakes.{backend}.harness")


@pytest.fixture(params=BACKENDS)
def harness(request: pytest.FixtureRequest) -> Iterator[CrmHarness]:
    module = _module(request.param)
    made = module.make_harness()
    try:
        yield made
    finally:
        close = getattr(made, "close", None) or getattr(module, "close_all", None)
        if close is not None:
            close()
