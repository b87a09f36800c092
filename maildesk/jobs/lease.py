"""Mailbox leases: each office mailbox is read by one `maildesk run` worker at a time.

Why a lease row and not a lock held on a connection: a lease names its holder (`maildesk status` shows
it) and runs out on its own when the holder dies or loses the database, so another worker takes the mailbox
over within `worker.lease_seconds` (plus one renewal interval). Every step is a single statement the
database makes atomic; nothing here votes or elects:

- a worker takes a lease with one conditional UPDATE of the mailbox's `mailbox_state` row ("if it is free,
  expired or already mine"); PostgreSQL's row lock lets exactly one of several racing workers match;
- a worker renews what it holds every lease_seconds / 3 with the same kind of UPDATE ("if it is still
  mine"), and stops reading a mailbox by itself as soon as a renewal is overdue, before anyone else may
  take it;
- workers announce themselves in `workers` with a heartbeat, so each takes only its share of the
  mailboxes (an even split over the live workers) and hands surplus leases back when another starts.

The office that holds a mailbox's lease also runs that office's escalation sweep and digest, so those run
once per office however many workers there are. Correctness never rests on the lease: two readers of one
mailbox (a takeover racing a stalled worker) still store each message once (unique keys on messages), and
the sweep and the digest have their own per-ticket locks and per-period rows.

Time is the database server's clock on PostgreSQL, so workers on several machines agree about expiry.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from maildesk.store.models import MailboxState, Worker

log = logging.getLogger(__name__)


def worker_name() -> str:
    """host:pid:random — unique even when a PID is reused after a restart."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def db_now(session: Session) -> datetime:
    """The database server's clock on PostgreSQL (one clock for every machine), else this machine's."""
    if session.bind.dialect.name == "postgresql":
        value = session.scalar(select(func.clock_timestamp()))
        return value.astimezone(timezone.utc)
    return datetime.now(timezone.utc)


def _free_or_mine(name: str, now: datetime):
    return or_(MailboxState.lease_holder.is_(None), MailboxState.lease_holder == name,
               MailboxState.lease_until.is_(None), MailboxState.lease_until < now)


class LeaseKeeper:
    """One worker's leases. `tick()` runs every `interval` seconds (heartbeat, renew, rebalance);
    `holds(key)` says whether this worker may read that office's mailbox right now."""

    def __init__(self, desk, name: str | None = None, seconds: int | None = None,
                 clock: Callable[[Session], datetime] | None = None,
                 on_acquire: Callable[[str], None] | None = None, monotonic: Callable[[], float] = time.monotonic):
        self.desk = desk
        self.name = name or worker_name()
        self.seconds = float(seconds or desk.settings.lease_seconds)
        self.clock = clock or db_now
        self.on_acquire = on_acquire
        self.monotonic = monotonic  # tests replace both clocks instead of sleeping
        self.mailboxes = {key: od.settings.mailbox.identity for key, od in desk.offices.items()}
        self._deadline: dict[str, float] = {}  # office -> time.monotonic() until which we may read it
        self._busy: set[str] = set()
        self._surplus: set[str] = set()
        self._lock = threading.RLock()
        self._started = False
        self._ticked = False
        self.closing = False  # set when the worker stops: read nothing more, take nothing new

    @property
    def interval(self) -> float:
        return max(self.seconds / 3.0, 0.1)

    # -- what the worker asks ------------------------------------------------------------------------

    def holds(self, key: str) -> bool:
        with self._lock:
            deadline = self._deadline.get(key)
            return (deadline is not None and self.monotonic() < deadline and key not in self._surplus
                    and not self.closing)

    def mine(self) -> list[str]:
        return [key for key in self.mailboxes if self.holds(key)]

    @contextlib.contextmanager
    def reading(self, key: str) -> Iterator[bool]:
        """Mark a mailbox busy while it is read; yields whether we may read it. A surplus lease is handed
        back when the read ends, not in the middle of it.

        A keeper that never ticked (a worker's ingest job run once, as `maildesk poll` does) takes a
        free lease for the one read and hands it back afterwards."""
        once = False
        with self._lock:
            mine = self.holds(key)
        if not mine and not self._ticked:
            self._ensure_rows()
            mine = once = self._acquire(key, self.monotonic())
        if not mine:
            yield False
            return
        with self._lock:
            self._busy.add(key)
        try:
            yield True
        finally:
            with self._lock:
                self._busy.discard(key)
                give_back = once or key in self._surplus
            if give_back:
                self._release([key], quiet=once)

    # -- the periodic work ---------------------------------------------------------------------------

    def tick(self) -> list[str]:
        """Heartbeat, renew, then take or hand back leases to hold this worker's share.
        Returns the offices newly taken."""
        if self.closing:
            return []
        started = self.monotonic()
        self._ticked = True
        self._ensure_rows()
        with self.desk.sessions.begin() as s:
            now = self.clock(s)
            self._heartbeat(s, now)
            live = sorted(s.scalars(select(Worker.name).where(
                Worker.seen_at >= now - timedelta(seconds=self.seconds)))) or [self.name]
            until = now + timedelta(seconds=self.seconds)
            kept = []
            for key in list(self._deadline):
                n = s.execute(update(MailboxState).where(
                    MailboxState.office == key, MailboxState.mailbox == self.mailboxes[key],
                    MailboxState.lease_holder == self.name).values(lease_until=until)).rowcount
                if n:
                    kept.append(key)
        with self._lock:
            for key in list(self._deadline):
                if key in kept:
                    self._deadline[key] = started + self.seconds * 0.9
                else:
                    log.warning("%s: lease on %s was taken over; no longer reading it", self.name, key)
                    self._deadline.pop(key, None)
                    self._surplus.discard(key)
            held = [k for k in self._deadline if k not in self._surplus]
        share = self.share(len(self.mailboxes), live)
        taken: list[str] = []
        if len(held) > share:
            self._hand_back(len(held) - share)
        elif len(held) < share:
            free = [k for k in self.mailboxes if k not in self._deadline]
            random.shuffle(free)  # workers starting together do not all race for the same mailbox
            for key in free:
                if len(held) + len(taken) >= share:
                    break
                if self._acquire(key, started):
                    taken.append(key)
        for key in taken:
            log.info("%s: took the lease on %s (%d live worker(s), share %d)", self.name, key, len(live), share)
            if self.on_acquire is not None:
                self.on_acquire(key)
        return taken

    def share(self, mailboxes: int, live: list[str]) -> int:
        """How many mailboxes this worker should read: an even split, the first (by name) of the live
        workers taking one more while mailboxes do not divide evenly (4 over 3 workers: 2, 1, 1)."""
        base, extra = divmod(mailboxes, len(live))
        rank = live.index(self.name) if self.name in live else len(live)
        return base + (1 if rank < extra else 0)

    def stop(self) -> None:
        """Hand every lease back and leave the worker list (a clean shutdown: no one waits for expiry).
        Reads still running stop at their next batch (holds() is False now); wait for them first."""
        self.closing = True
        deadline = time.monotonic() + max(self.seconds, 30)
        while self._busy and time.monotonic() < deadline:
            time.sleep(0.05)
        self._release(list(self._deadline))
        try:
            with self.desk.sessions.begin() as s:
                s.execute(delete(Worker).where(Worker.name == self.name))
        except Exception as exc:  # the database may be the reason we stop
            log.warning("%s: could not leave the worker list: %s", self.name, exc)

    # -- steps ---------------------------------------------------------------------------------------

    def _ensure_rows(self) -> None:
        if self._started:
            return
        for key, mailbox in self.mailboxes.items():
            try:
                with self.desk.sessions.begin() as s:
                    exists = s.scalar(select(MailboxState.id).where(MailboxState.office == key,
                                                                    MailboxState.mailbox == mailbox))
                    if exists is None:
                        s.add(MailboxState(office=key, mailbox=mailbox, uidvalidity=0, last_uid=0,
                                           consecutive_failures=0))
            except IntegrityError:
                pass  # another worker created it first
        self._started = True

    def _heartbeat(self, s: Session, now: datetime) -> None:
        n = s.execute(update(Worker).where(Worker.name == self.name).values(seen_at=now)).rowcount
        if not n:
            host, _, rest = self.name.partition(":")
            pid = rest.partition(":")[0]
            s.add(Worker(name=self.name, host=host, pid=int(pid) if pid.isdigit() else 0, started_at=now,
                         seen_at=now))
        # Workers gone for ten lease periods leave the list (a kill -9 never says goodbye).
        s.execute(delete(Worker).where(Worker.seen_at < now - timedelta(seconds=self.seconds * 10)))

    def _acquire(self, key: str, started: float) -> bool:
        with self.desk.sessions.begin() as s:
            now = self.clock(s)
            n = s.execute(update(MailboxState).where(
                MailboxState.office == key, MailboxState.mailbox == self.mailboxes[key],
                _free_or_mine(self.name, now)).values(
                lease_holder=self.name, lease_until=now + timedelta(seconds=self.seconds))).rowcount
        if n:
            with self._lock:
                self._deadline[key] = started + self.seconds * 0.9
        return bool(n)

    def _hand_back(self, count: int) -> None:
        with self._lock:
            candidates = sorted(k for k in self._deadline if k not in self._surplus)
            idle = [k for k in candidates if k not in self._busy]
            busy = [k for k in candidates if k in self._busy]
            chosen = (idle + busy)[:count]
            self._surplus.update(chosen)  # busy ones are released when their read ends
            now_free = [k for k in chosen if k not in self._busy]
        if now_free:
            self._release(now_free)

    def _release(self, keys: list[str], quiet: bool = False) -> None:
        if not keys:
            return
        with self._lock:
            for key in keys:
                self._deadline.pop(key, None)
                self._surplus.discard(key)
        try:
            with self.desk.sessions.begin() as s:
                for key in keys:
                    s.execute(update(MailboxState).where(
                        MailboxState.office == key, MailboxState.mailbox == self.mailboxes[key],
                        MailboxState.lease_holder == self.name).values(lease_holder=None, lease_until=None))
            (log.debug if quiet else log.info)("%s: handed back the lease on %s", self.name, ", ".join(keys))
        except Exception as exc:  # it expires on its own
            log.warning("%s: could not hand back %s (it expires by itself): %s", self.name, ", ".join(keys), exc)
