"""`maildesk run`: APScheduler runs ingest, the outbox, escalation and the digest; IDLE wakes ingest.

Every job is also a run-once command, runs with max_instances=1 and coalesce=True, and catches its own
errors so one failing job (a mailbox that is down) never stops the others.

Several workers may run against one PostgreSQL database: each office's mailbox is read, and its escalation
sweep and digest run, only by the worker holding that office's lease (jobs/lease.py); the outbox is shared
(FOR UPDATE SKIP LOCKED). On SQLite run one worker.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler

from maildesk.ingest.sources import ImapSource, SourceError
from maildesk.jobs.ingest import ingest_office, record_failure
from maildesk.jobs import prepare
from maildesk.jobs.lease import LeaseKeeper
from maildesk.jobs.send import send_pending

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, desk):
        self.desk = desk
        self.stop_event = threading.Event()
        self.scheduler = BackgroundScheduler(timezone="UTC", job_defaults={
            "max_instances": 1, "coalesce": True, "misfire_grace_time": 3600})
        self.ingest_locks = {key: threading.Lock() for key in desk.offices}
        self.leases = LeaseKeeper(desk, on_acquire=self._wake)
        self.backoff_until: dict[str, datetime] = {}
        self.failures: dict[str, int] = {}

    # -- jobs ---------------------------------------------------------------------------------------

    def ingest(self, key: str) -> None:
        """One ingest cycle that never raises: IDLE calls it directly, and an error escaping there (the
        database down while taking the lease) would end the IDLE thread for good."""
        try:
            self._ingest(key)
        except Exception:
            log.exception("%s: ingest cycle failed; it will run again", key)

    def _ingest(self, key: str) -> None:
        now = self.desk.now()
        if self.backoff_until.get(key) and now < self.backoff_until[key]:
            return
        od = self.desk.offices[key]
        with self.ingest_locks[key], self.leases.reading(key) as mine:
            if not mine:
                return  # another worker reads this mailbox
            try:
                report = ingest_office(self.desk, od, still_mine=lambda: self.leases.holds(key))
                self.failures[key] = 0
                self.backoff_until.pop(key, None)
                if report.stored:
                    self.send()
            except SourceError as exc:
                n = self.failures[key] = self.failures.get(key, 0) + 1
                delay = min(30 * 2 ** (n - 1), 900)
                self.backoff_until[key] = now + timedelta(seconds=delay)
                log.error("%s: mailbox unavailable (attempt %d), next try in %d s: %s", key, n, delay, exc)
                record_failure(self.desk, od, str(exc))
            except Exception:
                log.exception("%s: ingest cycle failed; it will run again", key)

    def send(self) -> None:
        try:
            send_pending(self.desk)
        except Exception:
            log.exception("outbox run failed; it will run again")

    def escalate(self) -> None:
        try:
            from maildesk.jobs.escalate import escalate_all
        except ImportError:
            return
        try:
            escalate_all(self.desk, offices=self.leases.mine())
            self.send()
        except Exception:
            log.exception("escalation sweep failed; it will run again")

    def digest(self) -> None:
        try:
            from maildesk.jobs.digest import send_due_digests
        except ImportError:
            return
        try:
            send_due_digests(self.desk, offices=self.leases.mine())
            self.send()
        except Exception:
            log.exception("digest job failed; it will run again")

    def keep_leases(self) -> None:
        try:
            self.leases.tick()
        except Exception:
            log.exception("lease renewal failed; mailboxes whose lease runs out are left to other workers")

    def _wake(self, key: str) -> None:
        """A mailbox just became ours: read it now rather than at the next poll. A thread of its own, not
        the scheduler: shutdown() holds the scheduler's lock while it waits for this very job to end."""
        if not self.stop_event.is_set() and self.scheduler.running:
            threading.Thread(target=self.ingest, args=[key], name=f"take-over:{key}", daemon=True).start()

    # -- IDLE ---------------------------------------------------------------------------------------

    def idle_loop(self, key: str) -> None:
        """Hold an IMAP IDLE connection and run ingest as soon as the server says mail arrived."""
        od = self.desk.offices[key]
        settings = self.desk.settings
        failures = 0
        while not self.stop_event.is_set():
            if not self.leases.holds(key):  # only the lease holder keeps a connection open
                self.stop_event.wait(self.leases.interval)
                continue
            # While ingest backs off (server down, login refused) IDLE waits too: no hammering a refusing
            # server, whose provider may lock the account after repeated failed logins.
            until = self.backoff_until.get(key)
            left = (until - self.desk.now()).total_seconds() if until else 0
            if left > 0:
                self.stop_event.wait(min(left, 60))
                continue
            try:
                source = ImapSource(od.settings.mailbox, settings.ca_file)
            except SourceError as exc:
                failures += 1
                delay = min(settings.poll_seconds * 2 ** (failures - 1), 900)
                log.warning("%s: IDLE connection failed (attempt %d), next try in %d s: %s", key, failures, delay, exc)
                self.stop_event.wait(delay)
                continue
            failures = 0
            try:
                if b"IDLE" not in source.capabilities:
                    log.info("%s: server has no IDLE; polling every %d s", key, settings.poll_seconds)
                    return
                # Mail that arrived while this connection was being opened raised no IDLE notification.
                self.ingest(key)
                while not self.stop_event.is_set() and self.leases.holds(key):
                    if source.wait_for_new(timeout=min(settings.poll_seconds, 25, self.leases.interval)):
                        self.ingest(key)
            except SourceError as exc:
                log.warning("%s: IDLE interrupted: %s", key, exc)
            finally:
                source.close()

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        s = self.desk.settings
        self.desk.engine.dispose()  # no database connection for the pool's workers to inherit
        prepare.start()  # the parse/render pool, forked before any thread exists
        self.keep_leases()  # take this worker's share of the mailboxes before the first poll
        now = datetime.now().astimezone()
        self.scheduler.add_job(self.keep_leases, "interval", seconds=self.leases.interval, id="leases")
        for key, od in self.desk.offices.items():
            self.scheduler.add_job(self.ingest, "interval", args=[key], seconds=s.poll_seconds, id=f"ingest:{key}",
                                   next_run_time=now)
            if s.use_idle and od.settings.mailbox.scheme != "maildir":
                threading.Thread(target=self.idle_loop, args=[key], name=f"idle:{key}", daemon=True).start()
        self.scheduler.add_job(self.send, "interval", seconds=s.send_seconds, id="send", next_run_time=now)
        self.scheduler.add_job(self.escalate, "interval", minutes=s.escalate_minutes, id="escalate",
                               next_run_time=now + timedelta(seconds=5))
        self.scheduler.add_job(self.digest, "interval", minutes=15, id="digest",
                               next_run_time=now + timedelta(seconds=10))
        self.scheduler.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.leases.closing = True  # running reads stop at their next batch; no lease is taken meanwhile
        self.scheduler.shutdown(wait=True)
        self.leases.stop()


def run_worker(desk) -> int:
    worker = Worker(desk)

    def _stop(signum, _frame):
        log.info("received %s: finishing the running jobs and stopping", signal.Signals(signum).name)
        worker.stop_event.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("maildesk worker started for %s", ", ".join(desk.offices))
    worker.start()
    try:
        while not worker.stop_event.wait(1):
            pass
    finally:
        worker.stop()
        log.info("maildesk worker stopped")
    return 0
