"""maildesk.toml + MAILDESK_* environment overrides -> typed settings.

Connections are URLs so that one string says everything (scheme, host, credentials, folder) and one
environment variable can override it. Secrets may live only in the environment; `redacted()` is what
any log line or error message shows of a URL.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from maildesk.errors import ConfigError

PACKAGED_CONFIG = Path(__file__).parent / "_config"
SOURCE_CONFIG = Path(__file__).parent.parent / "config"

MAILBOX_SCHEMES = ("imap", "imaps", "imap+starttls", "maildir")
SMTP_SCHEMES = ("smtp", "smtps", "smtp+starttls", "file")


def default_config_dir() -> Path:
    """The config folder shipped with maildesk: the repository's config/ or its copy in the wheel."""
    for candidate in (PACKAGED_CONFIG, SOURCE_CONFIG):
        if (candidate / "maildesk.toml").is_file():
            return candidate
    raise ConfigError(PACKAGED_CONFIG, "-", "maildesk is installed without its config folder")


def redacted(url: str) -> str:
    """A URL with its password replaced by ***, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class Endpoint:
    """A parsed connection URL (IMAP, SMTP or a local folder)."""

    url: str = field(repr=False)
    scheme: str
    host: str = ""
    port: int | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    path: str = ""

    @classmethod
    def parse(cls, url: str, schemes: tuple[str, ...], file, key: str) -> "Endpoint":
        parts = urlsplit(url)
        if parts.scheme not in schemes:
            raise ConfigError(file, key, f"scheme must be one of {', '.join(schemes)}; got {redacted(url)!r}")
        if parts.scheme in ("maildir", "file"):
            # maildir:///abs/path and maildir://relative/path are both accepted.
            path = unquote((parts.netloc or "") + parts.path)
            if not path:
                raise ConfigError(file, key, f"{parts.scheme}: URL needs a folder path")
            return cls(url=url, scheme=parts.scheme, path=path)
        try:
            port = parts.port
        except ValueError as exc:
            raise ConfigError(file, key, f"bad port in {redacted(url)!r}") from exc
        if not parts.hostname:
            raise ConfigError(file, key, f"URL needs a host: {redacted(url)!r}")
        return cls(
            url=url,
            scheme=parts.scheme,
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            path=unquote(parts.path.lstrip("/")),
        )

    @property
    def safe(self) -> str:
        return redacted(self.url)

    @property
    def identity(self) -> str:
        """Stable name of a mailbox for cursors and unique keys: no password, no query."""
        if self.scheme == "maildir":
            return f"maildir:{Path(self.path).resolve()}"
        user = quote(self.username or "", safe="@")
        return f"imap://{user}@{self.host}:{self.port or ''}/{self.path or 'INBOX'}"


@dataclass(frozen=True)
class OfficeSettings:
    key: str
    charter_path: Path
    mailbox: Endpoint
    processed_folder: str | None = None


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class DigestSettings:
    """When the weekly digest goes out, in the office's time zone; a worker that was down at that time
    still sends it if it comes back within `misfire_hours`."""

    weekday: int = 6  # Monday = 0 … Sunday = 6
    time: str = "09:00"
    misfire_hours: int = 48
    oldest: int = 10  # how many of the oldest open tickets to list


def _digest(table: dict, file) -> DigestSettings:
    day = _get(table, "day", str, file, "digest.day", "sunday").strip().lower()
    if day not in WEEKDAYS:
        raise ConfigError(file, "digest.day", f"write a weekday in English, like sunday; got {day!r}")
    at = _get(table, "time", str, file, "digest.time", "09:00").strip()
    hh, _, mm = at.partition(":")
    if not (hh.isdigit() and mm.isdigit() and len(mm) == 2 and int(hh) < 24 and int(mm) < 60):
        raise ConfigError(file, "digest.time", f"write a time like 09:00; got {at!r}")
    misfire = _get(table, "misfire_hours", int, file, "digest.misfire_hours", 48)
    if not 1 <= misfire <= 24 * 6:
        raise ConfigError(file, "digest.misfire_hours", "must be from 1 to 144 hours (less than a week)")
    oldest = _get(table, "oldest", int, file, "digest.oldest", 10)
    if not 0 <= oldest <= 100:
        raise ConfigError(file, "digest.oldest", "must be from 0 to 100")
    return DigestSettings(WEEKDAYS.index(day), f"{int(hh):02d}:{mm}", misfire, oldest)


@dataclass(frozen=True)
class Settings:
    path: Path
    config_dir: Path
    offices: tuple[OfficeSettings, ...]
    smtp: Endpoint
    database_url: str = field(repr=False)
    holidays_dir: Path
    hmac_secret: str = field(repr=False, default="")
    ca_file: str | None = None
    poll_seconds: int = 60
    use_idle: bool = True
    send_seconds: int = 30
    escalate_minutes: int = 60
    batch_size: int = 200
    lease_seconds: int = 60  # a dead worker's mailboxes pass to another within this time
    max_message_bytes: int = 25 * 1024 * 1024
    max_attempts: int = 3
    outbox_max_age_hours: int = 48
    attachments_dir: Path | None = None
    digest: "DigestSettings" = field(default_factory=lambda: DigestSettings())

    @property
    def office(self) -> OfficeSettings:
        return self.offices[0]

    def with_overrides(self, **changes) -> "Settings":
        return replace(self, **changes)


def _get(table: dict, key: str, kind, file, dotted: str, default=None):
    value = table.get(key, default)
    if value is None:
        return None
    if not isinstance(value, kind):
        raise ConfigError(file, dotted, f"expected {getattr(kind, '__name__', kind)}, got {type(value).__name__}")
    return value


def resolve_config_path(explicit: str | os.PathLike | None = None) -> Path:
    """--config, then MAILDESK_CONFIG, then ./config/maildesk.toml, then the shipped default."""
    if explicit:
        return Path(explicit)
    if os.environ.get("MAILDESK_CONFIG"):
        return Path(os.environ["MAILDESK_CONFIG"])
    local = Path("config/maildesk.toml")
    if local.is_file():
        return local
    return default_config_dir() / "maildesk.toml"


def load_settings(path: str | os.PathLike | None = None, env: dict | None = None) -> Settings:
    """Read the settings file, apply MAILDESK_* overrides, validate; errors name file and key."""
    env = os.environ if env is None else env
    file = resolve_config_path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(file, "-", "settings file not found") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "-", f"not valid TOML: {exc}") from exc
    base = file.parent

    def rel(p: str) -> Path:
        q = Path(p).expanduser()
        return q if q.is_absolute() else (base / q)

    worker = _get(data, "worker", dict, file, "worker", {})
    smtp_t = _get(data, "smtp", dict, file, "smtp", {})
    db_t = _get(data, "database", dict, file, "database", {})
    sec_t = _get(data, "security", dict, file, "security", {})
    limits = _get(data, "limits", dict, file, "limits", {})

    raw_offices = data.get("offices")
    if raw_offices is None:
        raw_offices = [_get(data, "office", dict, file, "office", {})]
        office_keys = ["office"]
    else:
        if not isinstance(raw_offices, list) or not raw_offices:
            raise ConfigError(file, "offices", "expected a non-empty list of [[offices]] tables")
        office_keys = [f"offices[{i}]" for i in range(len(raw_offices))]

    offices = []
    for i, (table, dotted) in enumerate(zip(raw_offices, office_keys)):
        mailbox_url = _get(table, "mailbox_url", str, file, f"{dotted}.mailbox_url")
        if i == 0 and env.get("MAILDESK_MAILBOX_URL"):
            mailbox_url = env["MAILDESK_MAILBOX_URL"]
        if not mailbox_url:
            raise ConfigError(file, f"{dotted}.mailbox_url", "missing (or set MAILDESK_MAILBOX_URL)")
        charter = _get(table, "charter", str, file, f"{dotted}.charter", "charter.yaml")
        key = _get(table, "key", str, file, f"{dotted}.key", "")
        offices.append(
            OfficeSettings(
                key=key,
                charter_path=rel(charter),
                mailbox=Endpoint.parse(mailbox_url, MAILBOX_SCHEMES, file, f"{dotted}.mailbox_url"),
                processed_folder=_get(table, "processed_folder", str, file, f"{dotted}.processed_folder") or None,
            )
        )
    keys = [o.key for o in offices]
    if len(offices) > 1 and (not all(keys) or len(set(keys)) != len(keys)):
        raise ConfigError(file, "offices", "each office needs its own unique key")

    smtp_url = env.get("MAILDESK_SMTP_URL") or _get(smtp_t, "url", str, file, "smtp.url")
    if not smtp_url:
        raise ConfigError(file, "smtp.url", "missing (or set MAILDESK_SMTP_URL)")
    db_url = env.get("MAILDESK_DATABASE_URL") or _get(db_t, "url", str, file, "database.url")
    if not db_url:
        raise ConfigError(file, "database.url", "missing (or set MAILDESK_DATABASE_URL)")
    secret = env.get("MAILDESK_HMAC_SECRET") or _get(sec_t, "hmac_secret", str, file, "security.hmac_secret", "")
    secret_file = _get(sec_t, "hmac_secret_file", str, file, "security.hmac_secret_file")
    if not secret and secret_file:
        try:
            secret = rel(secret_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(file, "security.hmac_secret_file", f"cannot read: {exc.strerror}") from exc

    def positive(table, name, dotted, default):
        value = _get(table, name, int, file, dotted, default)
        if value <= 0:
            raise ConfigError(file, dotted, "must be a positive number")
        return value

    attachments = _get(limits, "attachments_dir", str, file, "limits.attachments_dir")
    return Settings(
        path=file,
        config_dir=base,
        offices=tuple(offices),
        smtp=Endpoint.parse(smtp_url, SMTP_SCHEMES, file, "smtp.url"),
        database_url=db_url,
        holidays_dir=rel(_get(data, "holidays_dir", str, file, "holidays_dir", "holidays")),
        hmac_secret=secret or "",
        ca_file=env.get("MAILDESK_CA_FILE") or _get(sec_t, "ca_file", str, file, "security.ca_file"),
        poll_seconds=positive(worker, "poll_seconds", "worker.poll_seconds", 60),
        use_idle=bool(_get(worker, "idle", bool, file, "worker.idle", True)),
        send_seconds=positive(worker, "send_seconds", "worker.send_seconds", 30),
        escalate_minutes=positive(worker, "escalate_minutes", "worker.escalate_minutes", 60),
        batch_size=positive(worker, "batch_size", "worker.batch_size", 200),
        lease_seconds=positive(worker, "lease_seconds", "worker.lease_seconds", 60),
        max_message_bytes=positive(limits, "max_message_bytes", "limits.max_message_bytes", 25 * 1024 * 1024),
        max_attempts=positive(limits, "max_attempts", "limits.max_attempts", 3),
        outbox_max_age_hours=positive(limits, "outbox_max_age_hours", "limits.outbox_max_age_hours", 48),
        attachments_dir=rel(attachments) if attachments else None,
        digest=_digest(_get(data, "digest", dict, file, "digest", {}), file),
    )
