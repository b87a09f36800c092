"""Small builders shared by tests: settings for a temp folder, test mail, a fixed clock."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import Callable

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
