"""pytest plugin: one real Keycloak (realm `diga` from deploy/keycloak/diga-realm.json) per test session.

Enable it with `pytest_plugins = ["tests.support.keycloak"]` in tests/conftest.py. The fixture fails
(never skips) when the distribution is missing: `make setup` installs it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tools.devstack.keycloak import (
    KeycloakError,
    KeycloakNotInstalledError,
    KeycloakServer,
    find_distribution,
)


@pytest.fixture(scope="session")
def keycloak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeycloakServer]:
    """A started KeycloakServer (loopback, fresh in-memory database), stopped at the end of the session.

    Its log is kept in the session's pytest temp folder (`keycloak0/keycloak.log`).
    """
    problem = None
    try:
        find_distribution()
    except KeycloakNotInstalledError as e:
        problem = str(e)
    if problem:
        pytest.fail(problem, pytrace=False)
    server = KeycloakServer(log_file=tmp_path_factory.mktemp("keycloak") / "keycloak.log")
    try:
        server.start()
    except KeycloakError as e:
        problem = f"Keycloak did not start: {e}"
    if problem:
        pytest.fail(problem, pytrace=False)
    try:
        yield server
    finally:
        server.stop()
