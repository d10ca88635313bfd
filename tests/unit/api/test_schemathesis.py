"""Schemathesis against the service's own OpenAPI schema: generated requests (valid and invalid
bodies, parameters, headers) never cause a server error. Calls carry a valid service token from the
local test identity provider so the protected routes are exercised past authentication."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from exporter.api import create_app
from tests.unit.api.conftest import FakeIdp, settings_for, verifier_for


@pytest.fixture(scope="module")
def service(exporter):
    idp = FakeIdp()
    s = settings_for()
    app = create_app(s, exporter=exporter, verifier=verifier_for(idp, s))
    with TestClient(app, raise_server_exceptions=False):  # runs the lifespan: exporter and keys ready
        yield app, idp


def _status_codes(operation, headers: dict[str, str]) -> set[int]:
    """The status codes of generated requests to one operation; fails on a server error."""
    codes: set[int] = set()

    @given(case=operation.as_strategy())
    @settings(max_examples=15, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    def run(case):
        codes.add(case.call_and_validate(headers=headers, checks=[not_a_server_error]).status_code)
    run()
    return codes


def test_no_server_errors(service):
    """Each operation of the schema gets generated requests (schemathesis strategies driven by
    hypothesis directly: its pytest plugin does not support this pytest version)."""
    app, idp = service
    api = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [r.ok() for r in api.get_all_operations()]
    assert len(operations) >= 8
    headers = {"Authorization": f"Bearer {idp.token()}"}
    seen: dict[str, set[int]] = {}
    for operation in operations:
        seen[operation.label] = _status_codes(operation, headers)
    assert len(seen) == len(operations)
    assert any(code == 200 for codes in seen.values() for code in codes)  # not only refusals
    assert any(400 <= code < 500 for codes in seen.values() for code in codes)
