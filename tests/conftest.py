"""Shared fixtures for real-server tests (helpers live in tests/servers.py).

Start the servers first: `scripts/test-servers up` (scripts/test does it for you). Without them, server
tests skip with a reason locally and FAIL under CI=true. Fixtures:

    servers_env            session  dict of MAILDESK_TEST_* settings (Dovecot must answer)
    imap_account           function a fresh Dovecot user desk-<hex>@office.test (ImapAccount)
    make_imap_account      function factory: make_imap_account("citizen@example.com") -> ImapAccount
    smtp_server            function in-process SMTP capture on 127.0.0.1 (no Dovecot needed)
    smtp_relay             function the same, also delivering every recipient into Dovecot over LMTP
    make_smtp_server       function factory: make_smtp_server(relay=False, tls=None|"starttls"|"smtps",
                                    auth=None|(user, password))
    database_url           function SQLite file in tmp_path; a fresh PostgreSQL database per test when
                                    MAILDESK_TEST_DATABASE=postgres
    database_kind          session  "sqlite" or "postgres"

tests/helpers.settings_for(tmp_path) (and helpers.database_url_for) hand out the running test's
`database_url` on first use, so every test that builds a desk follows MAILDESK_TEST_DATABASE without asking
for the fixture; under postgres such tests are marked `servers` too.

Tests using Dovecot/PostgreSQL fixtures get the `servers` marker automatically (`-m "not servers"` runs
only the fast ones).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `from tests.helpers import …` works under plain `pytest` too, not only `python -m`
    sys.path.insert(0, str(ROOT))

from tests import helpers, servers  # noqa: E402

SERVER_FIXTURES = {"servers_env", "imap_account", "make_imap_account", "smtp_relay"}


def _unavailable(reason: str):
    if servers.in_ci():
        pytest.fail(f"{reason} (CI=true: a missing server is a failure)", pytrace=False)
    pytest.skip(reason)


def pytest_addoption(parser):
    # Here and not in tests/fault/conftest.py: pytest reads options only from conftests it loads at start-up.
    group = parser.getgroup("maildesk fault tests")
    group.addoption("--kills", type=int, default=None,
                    help="SIGKILLs the crash harness deals out (default $MAILDESK_KILLS or 30; --kills 1000 soaks)")
    group.addoption("--kill-messages", type=int, default=None,
                    help="messages in the crash harness's mailbox (default $MAILDESK_KILL_MESSAGES or 300)")


def pytest_configure(config):
    # SmtpCapture(auth=...) allows AUTH without TLS on purpose (127.0.0.1 only); aiosmtpd warns per connection.
    config.addinivalue_line("filterwarnings", "ignore:Requiring AUTH while not requiring TLS:UserWarning")


def pytest_report_header(config):
    env = servers.load_env()
    problem = servers.dovecot_problem(env)
    state = "up" if problem is None else problem
    return [f"maildesk test servers: {state}; database: {servers.database_kind()}"
            + ("; CI=true (missing servers fail)" if servers.in_ci() else "")]


def _builds_a_desk(item) -> bool:
    """The test's module uses the helpers that reach the test database without naming the fixture."""
    module = getattr(item, "module", None)
    return module is not None and any(hasattr(module, name) for name in ("settings_for", "database_url_for"))


def pytest_collection_modifyitems(config, items):
    postgres = servers.database_kind() == "postgres"
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & SERVER_FIXTURES or (postgres and ("database_url" in names or _builds_a_desk(item))):
            item.add_marker(pytest.mark.servers)


@pytest.fixture(autouse=True)
def _helpers_follow_the_test_database(request):
    """Let helpers.settings_for() reach this test's `database_url` fixture, created only if it is used."""
    helpers.current_database_url = lambda: request.getfixturevalue("database_url")
    yield
    helpers.current_database_url = None


@pytest.fixture(scope="session")
def servers_env() -> dict[str, str]:
    env = servers.load_env()
    problem = servers.dovecot_problem(env)
    if problem:
        _unavailable(problem)
    return env


@pytest.fixture
def make_imap_account(servers_env):
    made: list[servers.ImapAccount] = []

    def make(name: str = "desk", password: str | None = None) -> servers.ImapAccount:
        account = servers.new_imap_account(servers_env, name, password)
        made.append(account)
        return account

    yield make
    for account in made:
        servers.remove_account(account)


@pytest.fixture
def imap_account(make_imap_account) -> servers.ImapAccount:
    return make_imap_account("desk")


@pytest.fixture
def make_smtp_server(request):
    started: list[servers.SmtpCapture] = []

    def make(relay: bool = False, tls: str | None = None, auth: tuple[str, str] | None = None):
        lmtp = cert = None
        if relay or tls:
            env = request.getfixturevalue("servers_env")
            if relay:
                lmtp = (env["MAILDESK_TEST_LMTP_HOST"], int(env["MAILDESK_TEST_LMTP_PORT"]))
            if tls:
                certs = Path(env["MAILDESK_TEST_CA"]).parent
                cert = (str(certs / "server.pem"), str(certs / "server.key"))
        capture = servers.SmtpCapture(lmtp=lmtp, tls=tls, cert=cert, auth=auth).start()
        started.append(capture)
        return capture

    yield make
    for capture in started:
        capture.stop()


@pytest.fixture
def smtp_server(make_smtp_server) -> servers.SmtpCapture:
    return make_smtp_server()


@pytest.fixture
def smtp_relay(make_smtp_server) -> servers.SmtpCapture:
    return make_smtp_server(relay=True)


@pytest.fixture(scope="session")
def database_kind() -> str:
    return servers.database_kind()


@pytest.fixture
def database_url(tmp_path, database_kind):
    if database_kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'maildesk.db'}"
        return
    env = servers.load_env()
    problem = servers.postgres_problem(env)
    if problem:
        _unavailable(problem)
    with servers.temporary_database(env["MAILDESK_TEST_PG_URL"]) as url:
        yield url
