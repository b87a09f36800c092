"""Fixtures for the fault tests. `--kills N` / `--kill-messages N` are declared in tests/conftest.py."""

from __future__ import annotations

import os

import pytest

DEFAULT_KILLS = 30


@pytest.fixture(scope="session")
def kills(request) -> int:
    value = request.config.getoption("--kills")
    return value if value is not None else int(os.environ.get("MAILDESK_KILLS") or DEFAULT_KILLS)


@pytest.fixture(scope="session")
def kill_messages(request) -> int:
    value = request.config.getoption("--kill-messages")
    return value if value is not None else int(os.environ.get("MAILDESK_KILL_MESSAGES") or 300)


@pytest.fixture
def postgres_url(servers_env):
    """A fresh PostgreSQL database on the test server, whatever MAILDESK_TEST_DATABASE says: the faults
    injected here (triggers, refused connections) need a server, not a file."""
    from tests import servers

    problem = servers.postgres_problem(servers_env)
    if problem:
        if servers.in_ci():
            pytest.fail(f"{problem} (CI=true: a missing server is a failure)", pytrace=False)
        pytest.skip(problem)
    with servers.temporary_database(servers_env["MAILDESK_TEST_PG_URL"], prefix="maildesk_fault") as url:
        yield url
