"""Transports that hand a finished email to the world: SMTP (plain, STARTTLS, TLS) or a folder of .eml."""

from __future__ import annotations

import os
import smtplib
import socket
from pathlib import Path

from maildesk.ingest.sources import ssl_context
from maildesk.settings import Endpoint


class TemporaryFailure(Exception):
    """Try again later: connection refused, timeout, 4xx."""


class PermanentFailure(Exception):
    """Never try again: a 5xx answer for this message."""


class SmtpTransport:
    def __init__(self, endpoint: Endpoint, ca_file: str | None = None, timeout: float = 30):
        self.endpoint = endpoint
        self.ca_file = ca_file
        self.timeout = timeout
        self.conn: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        e = self.endpoint
        ctx = ssl_context(self.ca_file)
        if e.scheme == "smtps":
            conn = smtplib.SMTP_SSL(e.host, e.port or 465, timeout=self.timeout, context=ctx)
        else:
            conn = smtplib.SMTP(e.host, e.port or 25, timeout=self.timeout)
            if e.scheme == "smtp+starttls":
                conn.starttls(context=ctx)
        if e.username:
            conn.login(e.username, e.password or "")
        return conn

    def send(self, sender: str, recipients: list[str], raw: bytes) -> None:
        bad = [r for r in recipients if not r.isascii()]
        if bad:  # mis-decoded 8-bit addresses: no server will ever take them (we do not speak SMTPUTF8)
            raise PermanentFailure(f"address is not plain ASCII: {', '.join(bad)}")
        try:
            if self.conn is None:
                self.conn = self._connect()
            refused = self.conn.sendmail(sender, recipients, raw)
        except smtplib.SMTPRecipientsRefused as exc:
            self.close()
            codes = [code for code, _ in exc.recipients.values()]
            if all(c >= 500 for c in codes):
                raise PermanentFailure(f"all recipients refused: {_codes(exc.recipients)}") from exc
            raise TemporaryFailure(f"recipients refused: {_codes(exc.recipients)}") from exc
        except smtplib.SMTPResponseException as exc:
            self.close()
            text = f"{exc.smtp_code} {exc.smtp_error.decode('utf-8', 'replace') if isinstance(exc.smtp_error, bytes) else exc.smtp_error}"
            if 500 <= exc.smtp_code < 600:
                raise PermanentFailure(text) from exc
            raise TemporaryFailure(text) from exc
        except (smtplib.SMTPException, OSError, socket.timeout) as exc:
            self.close()
            raise TemporaryFailure(f"{type(exc).__name__}: {exc}") from exc
        if refused:
            raise TemporaryFailure(f"some recipients refused: {_codes(refused)}")

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.quit()
            except Exception:
                pass
            self.conn = None


def _codes(d: dict) -> str:
    return ", ".join(f"{addr}: {code}" for addr, (code, _) in d.items())


class FileTransport:
    """Writes each email to DIR/<message-id>.eml: the demo's outbox, readable with any mail program."""

    def __init__(self, endpoint: Endpoint):
        self.folder = Path(endpoint.path)

    def send(self, sender: str, recipients: list[str], raw: bytes) -> None:
        from email import message_from_bytes

        self.folder.mkdir(parents=True, exist_ok=True)
        mid = message_from_bytes(raw).get("Message-ID", "").strip("<>")
        name = "".join(c if c.isalnum() or c in "-._@" else "_" for c in mid) or "message"
        tmp = self.folder / f".{name}.tmp"
        tmp.write_bytes(raw)
        os.replace(tmp, self.folder / f"{name}.eml")

    def close(self) -> None:
        pass


def make_transport(endpoint: Endpoint, ca_file: str | None = None):
    return FileTransport(endpoint) if endpoint.scheme == "file" else SmtpTransport(endpoint, ca_file)
