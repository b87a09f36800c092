"""Small builders shared by tests: settings for a temp folder, test mail, a fixed clock."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlsplit

from maildesk.settings import default_config_dir, load_settings

ROOT = Path(__file__).resolve().parents[1]
CORPUS_DEV = ROOT / "tests" / "data" / "corpus-dev"


# Set by an autouse fixture in tests/conftest.py: returns the running test's `database_url` fixture (a
# SQLite file, or a fresh PostgreSQL database under MAILDESK_TEST_DATABASE=postgres), created on first use.
current_database_url: Callable[[], str] | None = None


def database_url_for(tmp_path: Path) -> str:
    """The database a test should use: its `database_url` fixture inside pytest, else a SQLite file."""
    if current_database_url is not None:
        return current_database_url()
    return f"sqlite:///{tmp_path / 'maildesk.db'}"


def settings_for(tmp_path: Path, mailbox_url: str | None = None, smtp_url: str | None = None,
                 database_url: str | None = None, **env):
    """Settings for a desk in tmp_path; the database follows MAILDESK_TEST_DATABASE unless one is given.

    Every call within one test shares the test's database (a second desk sees the first one's rows)."""
    environ = {
        "MAILDESK_MAILBOX_URL": mailbox_url or f"maildir://{tmp_path / 'mailbox'}",
        "MAILDESK_SMTP_URL": smtp_url or f"file://{tmp_path / 'sent'}",
        "MAILDESK_DATABASE_URL": database_url or database_url_for(tmp_path),
        "MAILDESK_HMAC_SECRET": "test-secret",
        **env,
    }
    return load_settings(default_config_dir() / "maildesk.toml", env=environ)


def make_mail(subject="Need help", body="Our office printer does not work.", sender="citizen@example.com",
              to="ict.khaliajuri@upazila.example.gov.bd", message_id=None, html=None, **headers) -> bytes:
    m = EmailMessage()
    m["From"] = sender
    m["To"] = to
    m["Subject"] = subject
    m["Date"] = "Sun, 06 Dec 2026 10:00:00 +0600"
    if message_id is not False:
        m["Message-ID"] = message_id or f"<{abs(hash((subject, body, sender)))}@example.com>"
    for k, v in headers.items():
        m[k.replace("_", "-")] = v
    m.set_content(body)
    if html:
        m.add_alternative(html, subtype="html")
    return bytes(m)


def drop_into_maildir(folder: Path, raw: bytes, key: str) -> None:
    for sub in ("new", "cur", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    (folder / "tmp" / key).write_bytes(raw)
    os.replace(folder / "tmp" / key, folder / "new" / key)


class FixedClock:
    def __init__(self, now: datetime):
        self.value = now

    def __call__(self) -> datetime:
        return self.value

    def advance(self, **kw):
        from datetime import timedelta

        self.value += timedelta(**kw)


SUNDAY_MORNING = datetime(2026, 12, 6, 4, 0, tzinfo=timezone.utc)  # 10:00 in Dhaka


def toml_str(value) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_offices(folder: Path, mailboxes: dict[str, str], *, smtp_url: str, database_url: str,
                  secret: str = "test-secret", ca_file: str | None = None, **worker) -> Path:
    """A maildesk.toml for several offices ([[offices]]): office key -> mailbox URL. Each office gets its own
    copy of the shipped charter (folder/KEY.yaml) with its key, a ticket prefix from the key's first
    letters and the mailbox's address as the desk address when it looks like one. Returns the file."""
    import yaml

    config = default_config_dir()
    base = (config / "charter.yaml").read_text(encoding="utf-8")
    lines = [f"holidays_dir = {toml_str(config / 'holidays')}"]
    folder.mkdir(parents=True, exist_ok=True)
    for i, (key, url) in enumerate(mailboxes.items()):
        charter = yaml.safe_load(base)
        prefix = ("".join(c for c in key.upper() if c.isalpha())[:3] or "X") + chr(ord("A") + i % 26)
        charter["office"].update(key=key, ticket_prefix=prefix)
        address = unquote(urlsplit(url).username or "") if url.startswith("imap") else ""
        if "@" in address:
            charter["office"].update(desk_address=address, desk_aliases=[])
        path = folder / f"{key}.yaml"
        path.write_text(yaml.safe_dump(charter, allow_unicode=True), encoding="utf-8")
        lines += ["[[offices]]", f"key = {toml_str(key)}", f"charter = {toml_str(path)}",
                  f"mailbox_url = {toml_str(url)}"]
    lines += ["[smtp]", f"url = {toml_str(smtp_url)}", "[database]", f"url = {toml_str(database_url)}",
              "[security]", f"hmac_secret = {toml_str(secret)}"]
    if ca_file:
        lines.append(f"ca_file = {toml_str(ca_file)}")
    if worker:
        lines.append("[worker]")
        lines += [f"{k} = {str(v).lower() if isinstance(v, bool) else v}" for k, v in worker.items()]
    path = folder / "maildesk.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
