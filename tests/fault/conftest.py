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
