"""Mail sources: an IMAP mailbox (imapclient) or a local Maildir, behind one small interface.

A source lists what is new after a cursor, fetches raw bytes in batches, and marks messages done
only when the caller says so (after the database commit). Nothing here ever deletes mail.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timezone
import ssl
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Protocol

from maildesk.settings import Endpoint

log = logging.getLogger(__name__)

DONE_FLAG = b"$MaildeskDone"


class SourceError(Exception):
    """The mailbox could not be reached or read; the cycle backs off and tries again."""


class MailSource(Protocol):
    identity: str

    def uidvalidity(self) -> int: ...

    def pending(self, last_uid: int) -> list: ...

    def fetch(self, uids: list) -> list[tuple[object, bytes, datetime | None]]: ...

    def mark_done(self, uids: list) -> None: ...

    def wait_for_new(self, timeout: float) -> bool: ...

    def close(self) -> None: ...


def ssl_context(ca_file: str | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()


class ImapSource:
    """One IMAP folder. UIDs are integers; the cursor is (UIDVALIDITY, last UID)."""

    def __init__(self, endpoint: Endpoint, ca_file: str | None = None, processed_folder: str | None = None,
                 timeout: float = 30):
        from imapclient import IMAPClient

        self.endpoint = endpoint
        self.identity = endpoint.identity
        self.folder = endpoint.path or "INBOX"
        self.processed_folder = processed_folder
        ctx = ssl_context(ca_file)
        port = endpoint.port or (993 if endpoint.scheme == "imaps" else 143)
        try:
            self.client = IMAPClient(endpoint.host, port=port, ssl=endpoint.scheme == "imaps", ssl_context=ctx,
                                     timeout=timeout)
            if endpoint.scheme == "imap+starttls":
                self.client.starttls(ctx)
            self.client.normalise_times = False  # keep INTERNALDATE's own offset
            self.client.login(endpoint.username or "", endpoint.password or "")
            info = self.client.select_folder(self.folder)
        except Exception as exc:
            raise SourceError(f"{endpoint.safe}: {_describe(exc)}") from exc
        self._uidvalidity = int(info[b"UIDVALIDITY"])
        self.capabilities = set(self.client.capabilities())

    def uidvalidity(self) -> int:
        return self._uidvalidity

    def pending(self, last_uid: int) -> list[int]:
        try:
            self.client.noop()  # let the server announce mail that arrived since SELECT
            uids = self.client.search(["UID", f"{last_uid + 1}:*"])
        except Exception as exc:
            raise SourceError(f"{self.endpoint.safe}: search failed: {_describe(exc)}") from exc
        # "N:*" always matches the highest UID, even when it is below N.
        return sorted(u for u in uids if u > last_uid)

    def fetch(self, uids: list[int]) -> list[tuple[int, bytes, datetime | None]]:
        """(uid, raw bytes, arrival time) for each UID still present; the arrival time (INTERNALDATE)
        starts the deadline clock, so a worker that was down does not shift due dates."""
        if not uids:
            return []
        try:
            data = self.client.fetch(uids, [b"BODY.PEEK[]", b"INTERNALDATE"])
        except Exception as exc:
            raise SourceError(f"{self.endpoint.safe}: fetch failed: {_describe(exc)}") from exc
        out = []
        for uid in uids:
            item = data.get(uid)
            if item is None:  # expunged by someone else between SEARCH and FETCH
                continue
            out.append((uid, item.get(b"BODY[]") or b"", _aware(item.get(b"INTERNALDATE"))))
        return out

    def mark_done(self, uids: list[int]) -> None:
        if not uids:
            return
        try:
            if self.processed_folder:
                if b"MOVE" in self.capabilities:
                    self.client.move(uids, self.processed_folder)
                else:
                    self.client.copy(uids, self.processed_folder)
                    self.client.add_flags(uids, [b"\\Seen", DONE_FLAG])
            else:
                self.client.add_flags(uids, [b"\\Seen", DONE_FLAG])
        except Exception as exc:
            # The messages are safely stored; a missed flag only means a harmless no-op re-read later.
            log.warning("could not flag %d message(s) in %s: %s", len(uids), self.endpoint.safe, _describe(exc))

    def wait_for_new(self, timeout: float) -> bool:
        """Block in IDLE until the server reports new mail or the timeout passes."""
        if b"IDLE" not in self.capabilities:
            return False
        try:
            self.client.idle()
            # Mail that arrived while we were not idling is announced right after "+ idling", often in the
            # same packet: imaplib's reader then already holds it, and idle_check()'s poll() on the socket
            # would not see it until the timeout.
            early = self._already_read()
            try:
                responses = [] if early else self.client.idle_check(timeout=timeout)
            finally:
                _text, late = self.client.idle_done()  # mail announced while leaving IDLE counts too
        except Exception as exc:
            raise SourceError(f"{self.endpoint.safe}: IDLE failed: {_describe(exc)}") from exc
        return early or any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in (*responses, *late))

    def _already_read(self) -> bool:
        """Whether server data waits in imaplib's buffered reader or the TLS layer (never blocks)."""
        sock = self.client.socket()
        try:
            if getattr(sock, "pending", None) and sock.pending():
                return True
            timeout = sock.gettimeout()
            sock.setblocking(False)
            try:
                return bool(self.client._imap.file.peek(1))
            finally:
                sock.settimeout(timeout)
        except (OSError, ValueError, AttributeError):  # BlockingIOError, SSLWantReadError: nothing there
            return False

    def close(self) -> None:
        try:
            self.client.logout()
        except Exception:
            pass


class MaildirSource:
    """A local Maildir (the demo, or a server that delivers to disk). UIDs are Maildir keys.

    Done means moved to cur/ with the Seen flag (a rename, so large messages are never rewritten).
    """

    def __init__(self, endpoint: Endpoint):
        self.path = Path(endpoint.path)
        self.identity = endpoint.identity
        try:
            for sub in ("new", "cur", "tmp"):
                (self.path / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SourceError(f"maildir {self.path}: {exc.strerror}") from exc

    def uidvalidity(self) -> int:
        return 0

    def _files(self) -> dict[str, str | None]:
        """Maildir key -> file name in cur/ of every message not yet done; None for a file in new/ (named by
        its key alone). A 50,000-message backlog is listed once per cycle: no more than that is kept."""
        found: dict[str, str | None] = {}
        for sub in ("new", "cur"):
            for entry in os.scandir(self.path / sub):
                if entry.name.startswith(".") or not entry.is_file():
                    continue
                key, _, info = entry.name.partition(":")
                flags = info.partition(",")[2] if info.startswith("2,") else ""
                if "S" not in flags:
                    found[key] = None if sub == "new" and entry.name == key else os.path.join(sub, entry.name)
        return found

    def _file(self, files: dict[str, str | None], key: str) -> str | None:
        if key not in files:
            return None
        where = files[key]
        return os.path.join(self.path, where if where is not None else os.path.join("new", key))

    def pending(self, last_uid: int) -> list[str]:
        self._listing = self._files()  # fetch and mark_done look keys up here: one scan per cycle, not per batch
        return sorted(self._listing, key=self._order)

    def _paths(self, keys: list[str]) -> dict[str, str | None]:
        listing = getattr(self, "_listing", None)
        if listing is None or any(k not in listing for k in keys):
            listing = self._listing = self._files()
        return listing

    @staticmethod
    def _order(key: str):
        # Maildir keys start with the delivery time; fall back to the key itself.
        head = key.split(".", 1)[0]
        return (int(head) if head.isdigit() else 0, key)

    def fetch(self, uids: list[str]) -> list[tuple[str, bytes, datetime]]:
        files = self._paths(uids)
        out = []
        for key in uids:
            path = self._file(files, key)
            if path is None:
                continue
            try:
                received = datetime.fromtimestamp(os.stat(path).st_mtime, timezone.utc)
                with open(path, "rb") as fh:
                    out.append((key, fh.read(), received))
            except FileNotFoundError:
                continue
        return out

    def mark_done(self, uids: list[str]) -> None:
        files = self._paths(uids)
        for key in uids:
            path = self._file(files, key)
            files.pop(key, None)
            if path is None:
                continue
            _, _, info = os.path.basename(path).partition(":")
            flags = set(info.partition(",")[2]) if info.startswith("2,") else set()
            flags.add("S")
            try:
                os.rename(path, self.path / "cur" / f"{key}:2,{''.join(sorted(flags))}")
            except FileNotFoundError:
                continue

    def wait_for_new(self, timeout: float) -> bool:
        return False

    def close(self) -> None:
        pass


def _aware(value) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _describe(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text


def open_source(endpoint: Endpoint, ca_file: str | None = None, processed_folder: str | None = None) -> MailSource:
    if endpoint.scheme == "maildir":
        return MaildirSource(endpoint)
    return ImapSource(endpoint, ca_file=ca_file, processed_folder=processed_folder)


@contextmanager
def connected(endpoint: Endpoint, ca_file: str | None = None, processed_folder: str | None = None) -> Iterator[MailSource]:
    source = open_source(endpoint, ca_file, processed_folder)
    try:
        yield source
    finally:
        source.close()
