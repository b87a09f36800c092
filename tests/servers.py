"""Real servers for tests: the Dovecot/PostgreSQL instances of scripts/test-servers, and in-process SMTP.

Why a module and not only fixtures: module- or session-scoped fixtures elsewhere can build on the same
pieces (`load_env`, `new_imap_account`, `SmtpCapture`, `temporary_database`). The fixtures themselves are in
tests/conftest.py. No mocks: every helper here talks to a real server over 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import email
import fcntl
import os
import re
import shlex
import shutil
import smtplib
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Iterable, Iterator
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STATE = ROOT / "var" / "test-servers"
ENV_KEYS = (
    "MAILDESK_TEST_STATE", "MAILDESK_TEST_IMAP_HOST", "MAILDESK_TEST_IMAP_PORT", "MAILDESK_TEST_IMAP_TLS_PORT",
    "MAILDESK_TEST_CA", "MAILDESK_TEST_LMTP_HOST", "MAILDESK_TEST_LMTP_PORT", "MAILDESK_TEST_DOVECOT_USERS",
    "MAILDESK_TEST_MAIL_ROOT", "MAILDESK_TEST_PG_URL", "MAILDESK_TEST_DOVECOT_USERS_DIR",
)
REQUIRED_KEYS = ("MAILDESK_TEST_IMAP_PORT", "MAILDESK_TEST_IMAP_TLS_PORT", "MAILDESK_TEST_CA",
                 "MAILDESK_TEST_LMTP_PORT", "MAILDESK_TEST_DOVECOT_USERS")
HINT = "run scripts/test-servers up"


def in_ci() -> bool:
    """Under CI a missing server is a failure, never a skip."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def database_kind() -> str:
    """Which database the `database_url` fixture hands out: MAILDESK_TEST_DATABASE=sqlite (default) or postgres."""
    kind = (os.environ.get("MAILDESK_TEST_DATABASE") or "sqlite").strip().lower()
    if kind not in ("sqlite", "postgres"):
        raise ValueError(f"MAILDESK_TEST_DATABASE must be sqlite or postgres, not {kind!r}")
    return kind


# ---------------------------------------------------------------------------------------------- environment

def parse_env_file(path: Path) -> dict[str, str]:
    """Read the `export KEY=value` lines that scripts/test-servers writes (shell-quoted values)."""
    values = {}
    for line in path.read_text().splitlines():
        words = shlex.split(line, comments=True)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            key, _, value = words[1].partition("=")
            values[key] = value
    return values


def load_env() -> dict[str, str] | None:
    """The servers' settings: var/test-servers/env (or $MAILDESK_TEST_STATE/env), then MAILDESK_TEST_* overrides.

    Returns None when nothing says where the servers are.
    """
    state = Path(os.environ.get("MAILDESK_TEST_STATE") or DEFAULT_STATE)
    env: dict[str, str] = {}
    if (state / "env").is_file():
        env.update(parse_env_file(state / "env"))
    env.update({k: os.environ[k] for k in ENV_KEYS if os.environ.get(k)})
    if not all(env.get(k) for k in REQUIRED_KEYS):
        return None
    env.setdefault("MAILDESK_TEST_IMAP_HOST", "127.0.0.1")
    env.setdefault("MAILDESK_TEST_LMTP_HOST", env["MAILDESK_TEST_IMAP_HOST"])
    return env


def port_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        return s.connect_ex((host, int(port))) == 0


def dovecot_problem(env: dict[str, str] | None) -> str | None:
    """Why the Dovecot test server cannot be used, or None when it answers."""
    if env is None:
        return f"test servers not running: {HINT}"
    host = env["MAILDESK_TEST_IMAP_HOST"]
    closed = [p for p in (env["MAILDESK_TEST_IMAP_PORT"], env["MAILDESK_TEST_IMAP_TLS_PORT"],
                          env["MAILDESK_TEST_LMTP_PORT"]) if not port_answers(host, p)]
    if closed:
        return f"test servers not running (ports {', '.join(closed)} closed on {host}): {HINT}"
    return None


# ---------------------------------------------------------------------------------------------- IMAP accounts

def add_dovecot_user(env: dict[str, str], user: str, password: str) -> Path | None:
    """Give Dovecot a new user at once, without a reload; returns the file to delete to remove it again.

    Preferred: one passwd-file per user in MAILDESK_TEST_DOVECOT_USERS_DIR, read on its first lookup.
    Fallback: append to MAILDESK_TEST_DOVECOT_USERS, which Dovecot re-stats at most once a second, so
    wait until the new user can log in.
    """
    if any(c in user + password for c in ":\n\r") or "/" in user:
        raise ValueError("user and password must not contain ':' or newlines; user no '/'")
    line = f"{user.lower()}:{{PLAIN}}{password}\n"
    users_dir = env.get("MAILDESK_TEST_DOVECOT_USERS_DIR")
    if users_dir:
        path = Path(users_dir) / user.lower()
        tmp = path.with_name(f".tmp-{uuid.uuid4().hex}")
        tmp.write_text(line)
        tmp.chmod(0o644)  # Dovecot's auth process runs as the unprivileged `dovecot` user
        os.replace(tmp, path)
        return path
    users_file = Path(env["MAILDESK_TEST_DOVECOT_USERS"])
    with open(users_file.with_name(users_file.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with open(users_file, "a") as fh:
            fh.write(line)
    _wait_until_known(env, user, password)
    return None


def _wait_until_known(env: dict[str, str], user: str, password: str, timeout: float = 3.0) -> None:
    from imapclient import IMAPClient
    from imapclient.exceptions import LoginError

    deadline = time.monotonic() + timeout
    while True:
        client = IMAPClient(env["MAILDESK_TEST_IMAP_HOST"], int(env["MAILDESK_TEST_IMAP_PORT"]), ssl=False, timeout=5)
        try:
            client.login(user, password)
            client.logout()
            return
        except LoginError:
            if time.monotonic() > deadline:
                raise
            client.shutdown()
            time.sleep(0.1)


@dataclass
class ImapAccount:
    """One mailbox on the Dovecot test server, with the address, credentials and URLs the app would be given.

    Flags come back as str ("\\Seen"); each helper opens its own short connection so it never shares
    state with the code under test.
    """

    host: str
    port: int
    tls_port: int
    ca_file: str
    user: str
    password: str
    home: Path | None = None
    passwd_file: Path | None = None

    @property
    def address(self) -> str:
        return self.user

    def url(self, kind: str = "imap", folder: str = "INBOX") -> str:
        """imap://user:pass@host:port/FOLDER (percent-encoded) for kind imap, imap+starttls or imaps."""
        ports = {"imap": self.port, "imap+starttls": self.port, "imaps": self.tls_port}
        if kind not in ports:
            raise ValueError(f"kind must be one of {sorted(ports)}")
        cred = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}"
        return f"{kind}://{cred}@{self.host}:{ports[kind]}/{quote(folder, safe='')}"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def connect(self, kind: str = "imap", login: bool = True):
        """A connected (and logged-in) IMAPClient. IMAPClient defaults to ssl=True, so pass it explicitly."""
        from imapclient import IMAPClient

        if kind == "imaps":
            client = IMAPClient(self.host, self.tls_port, ssl=True, ssl_context=self.ssl_context(), timeout=10)
        elif kind in ("imap", "imap+starttls"):
            client = IMAPClient(self.host, self.port, ssl=False, timeout=10)
            if kind == "imap+starttls":
                client.starttls(self.ssl_context())
        else:
            raise ValueError(f"unknown kind {kind!r}")
        if login:
            client.login(self.user, self.password)
        return client

    @contextlib.contextmanager
    def session(self, kind: str = "imap") -> Iterator:
        client = self.connect(kind)
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def create_folder(self, folder: str) -> None:
        with self.session() as c:
            if not c.folder_exists(folder):
                c.create_folder(folder)

    def folders(self) -> list[str]:
        with self.session() as c:
            return [name for _flags, _delim, name in c.list_folders()]

    def append(self, raw: bytes | str | EmailMessage, folder: str = "INBOX", flags: Iterable = (),
               msg_time=None) -> int:
        """APPEND one message; returns its UID (from UIDPLUS's APPENDUID)."""
        data = _as_bytes(raw)
        with self.session() as c:
            if not c.folder_exists(folder):
                c.create_folder(folder)
            resp = c.append(folder, data, flags=tuple(_as_flag(f) for f in flags), msg_time=msg_time)
        return _appenduids(resp)[-1]

    def append_many(self, raws: Iterable[bytes | str | EmailMessage], folder: str = "INBOX",
                    batch: int = 100) -> list[int]:
        """MULTIAPPEND in batches (about 30x faster than one APPEND each); returns the UIDs in order."""
        items = [_as_bytes(r) for r in raws]
        uids: list[int] = []
        with self.session() as c:
            if not c.folder_exists(folder):
                c.create_folder(folder)
            for i in range(0, len(items), batch):
                uids += _appenduids(c.multiappend(folder, items[i:i + batch]))
        return uids

    def fetch_all(self, folder: str = "INBOX") -> list[tuple[int, tuple[str, ...], bytes]]:
        """Every message in the folder as (uid, flags, raw bytes), in UID order, without setting \\Seen."""
        with self.session() as c:
            c.select_folder(folder, readonly=True)
            uids = c.search("ALL")
            if not uids:
                return []
            data = c.fetch(uids, ["FLAGS", "BODY.PEEK[]"])
        return [(uid, _flag_strs(data[uid][b"FLAGS"]), data[uid][b"BODY[]"]) for uid in sorted(data)]

    def messages(self, folder: str = "INBOX") -> list[EmailMessage]:
        """fetch_all parsed with the modern email policy, for header/body assertions."""
        return [email.message_from_bytes(raw, policy=policy.default) for _u, _f, raw in self.fetch_all(folder)]

    def flags(self, uid: int, folder: str = "INBOX") -> tuple[str, ...]:
        with self.session() as c:
            c.select_folder(folder, readonly=True)
            data = c.get_flags([uid])
        if uid not in data:
            raise KeyError(f"no UID {uid} in {folder} of {self.user}")
        return _flag_strs(data[uid])

    def wait_for(self, count: int, folder: str = "INBOX", timeout: float = 10.0):
        """Poll until the folder holds at least `count` messages; returns fetch_all(). For mail that arrives
        from another process (the app's sender); mail relayed by SmtpCapture is already there."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.fetch_all(folder)
            if len(found) >= count or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if len(found) < count:
            raise AssertionError(f"{self.user}/{folder}: {len(found)} messages after {timeout}s, wanted {count}")
        return found


def _as_bytes(raw) -> bytes:
    if isinstance(raw, EmailMessage):
        return raw.as_bytes(policy=policy.SMTP)
    if isinstance(raw, str):
        return raw.encode("utf-8")
    return bytes(raw)


def _as_flag(f) -> bytes:
    return f if isinstance(f, bytes) else str(f).encode("ascii")


def _flag_strs(flags) -> tuple[str, ...]:
    return tuple(f.decode("ascii") if isinstance(f, bytes) else str(f) for f in flags)


def _appenduids(resp) -> list[int]:
    """UIDs from "[APPENDUID <validity> <uid-set>]", where uid-set is like 7 or 7:9 or 7,9:10."""
    text = resp.decode() if isinstance(resp, bytes) else str(resp)
    m = re.search(r"APPENDUID \d+ ([\d:,]+)", text)
    if not m:
        raise AssertionError(f"no APPENDUID in server response {text!r}")
    uids: list[int] = []
    for part in m.group(1).split(","):
        lo, _, hi = part.partition(":")
        uids += range(int(lo), int(hi or lo) + 1)
    return uids


def new_imap_account(env: dict[str, str], name: str = "desk", password: str | None = None) -> ImapAccount:
    """Create a fresh, unique Dovecot user: "desk" -> desk-1a2b3c4d@office.test, "citizen@example.com" ->
    citizen-1a2b3c4d@example.com. The default password holds URL-special characters on purpose."""
    local, _, domain = name.partition("@")
    user = f"{local}-{uuid.uuid4().hex[:8]}@{domain or 'office.test'}".lower()
    password = password if password is not None else f"pw#{uuid.uuid4().hex[:6]}@/%"
    passwd_file = add_dovecot_user(env, user, password)
    root = env.get("MAILDESK_TEST_MAIL_ROOT")
    local_part, _, dom = user.partition("@")
    return ImapAccount(
        host=env["MAILDESK_TEST_IMAP_HOST"], port=int(env["MAILDESK_TEST_IMAP_PORT"]),
        tls_port=int(env["MAILDESK_TEST_IMAP_TLS_PORT"]), ca_file=env["MAILDESK_TEST_CA"],
        user=user, password=password, home=Path(root) / dom / local_part if root else None,
        passwd_file=passwd_file,
    )


def remove_account(account: ImapAccount) -> None:
    """Delete the account's mail and its passwd-file (a line appended to the shared file stays)."""
    if account.passwd_file is not None:
        with contextlib.suppress(FileNotFoundError):
            account.passwd_file.unlink()
    if account.home is not None:
        shutil.rmtree(account.home, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- SMTP

def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class CapturedMail:
    """One accepted SMTP transaction: the envelope and the bytes exactly as received."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    mail_options: tuple[str, ...] = ()
    at: float = field(default_factory=time.monotonic, compare=False)  # when DATA was accepted (monotonic)

    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=policy.default)


@dataclass
class SmtpCapture:
    """A real SMTP server (aiosmtpd Controller in a thread) on 127.0.0.1 that keeps every message.

    lmtp=(host, port): also deliver each message to Dovecot LMTP, one recipient per transaction, so the
    test can read it back over IMAP the way the citizen or officer would. Recipients LMTP refuses (no such
    user) are recorded in `relay_errors`; the SMTP client still gets 250.
    tls: None (plain), "starttls" (offers STARTTLS) or "smtps" (TLS from the first byte), with cert/key.
    auth: (user, password) makes AUTH PLAIN/LOGIN mandatory (allowed without TLS, for tests).
    """

    host: str = "127.0.0.1"
    lmtp: tuple[str, int] | None = None
    tls: str | None = None
    cert: tuple[str, str] | None = None
    auth: tuple[str, str] | None = None
    port: int = 0
    messages: list[CapturedMail] = field(default_factory=list)
    rejected: list[CapturedMail] = field(default_factory=list)
    relay_errors: list[tuple[str, str]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    def __post_init__(self):
        self._cond = threading.Condition()
        self._fail: list[str] = []
        self._controller = None

    # -- lifecycle
    def start(self) -> "SmtpCapture":
        from aiosmtpd.controller import Controller

        params = dict(enable_SMTPUTF8=True)
        server_ctx = None
        if self.tls:
            if not self.cert:
                raise ValueError("tls needs cert=(cert_file, key_file)")
            server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            server_ctx.load_cert_chain(*self.cert)
            if self.tls == "starttls":
                params["tls_context"] = server_ctx
            elif self.tls != "smtps":
                raise ValueError("tls must be None, 'starttls' or 'smtps'")
        if self.auth:
            params.update(auth_required=True, auth_require_tls=False, authenticator=self._authenticate)
        last = None
        for _ in range(5):  # a free port can be taken between probing and binding
            port = self.port or free_port(self.host)
            controller = Controller(
                _Handler(self), hostname=self.host, port=port,
                ssl_context=server_ctx if self.tls == "smtps" else None,
                server_hostname="localhost" if self.tls == "smtps" else None, **params)
            try:
                controller.start()
            except (OSError, RuntimeError) as exc:  # address in use
                last = exc
                if self.port:
                    break
                continue
            self.port, self._controller = port, controller
            return self
        raise RuntimeError(f"could not start SMTP capture on {self.host}: {last}")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- what tests use
    @property
    def scheme(self) -> str:
        return {None: "smtp", "starttls": "smtp+starttls", "smtps": "smtps"}[self.tls]

    @property
    def url(self) -> str:
        """smtp://127.0.0.1:PORT (smtp+starttls:// or smtps:// for TLS, with credentials when auth is set)."""
        cred = f"{quote(self.auth[0], safe='')}:{quote(self.auth[1], safe='')}@" if self.auth else ""
        return f"{self.scheme}://{cred}{self.host}:{self.port}"

    def fail_next(self, status: str = "451 4.3.0 Try again later (test)", count: int = 1) -> None:
        """Answer the next `count` DATA commands with `status` (4xx/5xx) instead of accepting them."""
        with self._cond:
            self._fail += [status] * count

    def wait_for(self, count: int, timeout: float = 5.0) -> list[CapturedMail]:
        """Block until at least `count` messages were accepted; returns a copy of all of them."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.messages) >= count, timeout=timeout):
                raise AssertionError(f"SMTP capture got {len(self.messages)} messages in {timeout}s, wanted {count}")
            return list(self.messages)

    def wait_until(self, predicate, timeout: float = 5.0) -> CapturedMail:
        """Block until an accepted message satisfies `predicate(CapturedMail)`; returns the first that does."""
        found: list[CapturedMail] = []

        def check() -> bool:
            found[:] = [m for m in self.messages if predicate(m)][:1]
            return bool(found)

        with self._cond:
            if not self._cond.wait_for(check, timeout=timeout):
                raise AssertionError(f"no matching message among {len(self.messages)} in {timeout}s")
            return found[0]

    def clear(self) -> None:
        with self._cond:
            self.messages.clear()
            self.rejected.clear()
            self.relay_errors.clear()

    # -- server side (runs in the controller's thread)
    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = (isinstance(auth_data, LoginPassword)
              and (auth_data.login.decode(), auth_data.password.decode()) == tuple(self.auth))
        if ok:
            with self._cond:
                self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)  # handled=True would leave the client waiting for a reply

    def _receive(self, envelope) -> str:
        data = envelope.original_content if envelope.original_content is not None else envelope.content
        mail = CapturedMail(mail_from=envelope.mail_from, rcpt_tos=tuple(envelope.rcpt_tos),
                            data=bytes(data), mail_options=tuple(envelope.mail_options))
        with self._cond:
            status = self._fail.pop(0) if self._fail else None
            if status:
                self.rejected.append(mail)
                return status
        if self.lmtp:
            self._relay(mail)
        with self._cond:
            self.messages.append(mail)
            self._cond.notify_all()
        return "250 2.0.0 OK captured"

    def _relay(self, mail: CapturedMail) -> None:
        # smtplib.LMTP mishandles several recipients in one transaction (per-recipient replies after DATA).
        for rcpt in mail.rcpt_tos:
            try:
                with smtplib.LMTP(self.lmtp[0], self.lmtp[1], timeout=10) as lmtp:
                    lmtp.sendmail(mail.mail_from or "<>", [rcpt], mail.data)
            except (smtplib.SMTPException, OSError) as exc:
                with self._cond:
                    self.relay_errors.append((rcpt, repr(exc)))


class _Handler:
    def __init__(self, sink: SmtpCapture):
        self.sink = sink

    async def handle_DATA(self, server, session, envelope):
        return self.sink._receive(envelope)


def lmtp_deliver(env: dict[str, str], rcpt: str, raw: bytes | str | EmailMessage,
                 mail_from: str = "sender@example.com") -> None:
    """Deliver one message straight into a Dovecot mailbox over LMTP (as an MTA would)."""
    with smtplib.LMTP(env["MAILDESK_TEST_LMTP_HOST"], int(env["MAILDESK_TEST_LMTP_PORT"]), timeout=10) as lmtp:
        lmtp.sendmail(mail_from, [rcpt], _as_bytes(raw))


# ---------------------------------------------------------------------------------------------- databases

def _conninfo(sqlalchemy_url: str) -> str:
    return re.sub(r"^postgresql\+\w+://", "postgresql://", sqlalchemy_url)


def postgres_problem(env: dict[str, str] | None) -> str | None:
    """Why the PostgreSQL test server cannot be used, or None when it accepts a connection."""
    if env is None or not env.get("MAILDESK_TEST_PG_URL"):
        return f"PostgreSQL test server not configured: {HINT}"
    import psycopg

    try:
        psycopg.connect(_conninfo(env["MAILDESK_TEST_PG_URL"]), connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        return f"PostgreSQL test server not answering ({exc}): {HINT}"
    return None


@contextlib.contextmanager
def temporary_database(admin_url: str, prefix: str = "maildesk_t") -> Iterator[str]:
    """CREATE DATABASE from template0 with a unique name; yields its SQLAlchemy URL; drops it (FORCE) after."""
    import psycopg
    from psycopg import sql

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    base = _conninfo(admin_url)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(sql.Identifier(name)))
    try:
        yield _with_database(admin_url, name)
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _with_database(url: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=name).render_as_string(hide_password=False)
