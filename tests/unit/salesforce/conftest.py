"""The fake Salesforce for these tests: one HTTPS server per process, a fresh org per test."""

from __future__ import annotations

import pytest

from tests.fakes.salesforce.fixtures import add_default_stages
from tests.fakes.salesforce.org import FakeOrg
from tests.fakes.salesforce.server import FakeSalesforce, shared_fake


@pytest.fixture
def sf_fake() -> FakeSalesforce:
    fake = shared_fake()
    org = fake.reset(FakeOrg())
    add_default_stages(org)
    return fake
