"""Parse and classify a fetched chunk of mail, in worker processes when that pays.

Why: parsing MIME (mail-parser) and keyword classification are pure and take about half of the CPU
time ingest spends on a message, while everything after them needs the database and runs in order.
A backlog (a new office's mailbox, a worker that was down) is parsed on every core while the main
process stores the previous messages. A handful of new messages (an IDLE wake-up) is parsed inline:
shipping them to another process would cost more than it saves.

The pool is created on first use (`maildesk run` starts it before its threads), shared by every desk in
the process and shut down at exit. Its workers are forked while the process has a single thread (they
then share its memory), else started by a "forkserver" (never fork() a process that runs scheduler and
IDLE threads). A child classifies only with the exact charter the office was loaded with (compared by
fingerprint); otherwise it leaves the classification to the main process.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import gc
import hashlib
import json
import logging
import multiprocessing
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from maildesk.ingest.parse import ParsedMessage, ParseError, parse_message

log = logging.getLogger(__name__)

MIN_PARALLEL = 48  # fewer messages than this are parsed inline
CHUNK = 16  # messages per task sent to a child


@dataclass(frozen=True)
class Prepared:
    """A message parsed (or the reason it could not be) and, when known, its classification."""

    parsed: ParsedMessage | None  # None and no error: parse it again in the main process
    error: str | None = None  # ParseError text: the message is not an email
    classification: dict | None = None


def fingerprint(raw_charter: dict) -> str:
    return hashlib.sha256(json.dumps(raw_charter, sort_keys=True, default=str).encode()).hexdigest()


def workers() -> int:
    """Processes to parse with: one fewer than the CPUs this process may use (the main process stores
    meanwhile), at most 8; MAILDESK_PARSE_WORKERS overrides; 0 parses inline."""
    configured = os.environ.get("MAILDESK_PARSE_WORKERS")
    if configured is not None and configured.strip().isdigit():
        return int(configured)
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return min(cpus - 1, 8)


# ---- the work itself (runs in a child, or inline) ----------------------------------------------------

_classifiers: dict[str, object] = {}


def _classifier(path: str, expected: str):
    """The classifier for this charter file if the file still says what the office was loaded with."""
    if expected in _classifiers:
        return _classifiers[expected]
    import yaml

    from maildesk.rules.classifier import Classifier

    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        found = Classifier.from_charter(raw, path) if fingerprint(raw) == expected else None
    except Exception:  # a broken or edited charter: the main process classifies with its own copy
        found = None
    _classifiers[expected] = found
    return found


def _prepare_one(raw: bytes, classifier) -> Prepared:
    try:
        m = parse_message(raw)
    except ParseError as exc:
        return Prepared(None, error=str(exc))
    except Exception:  # unexpected: the main process parses it again, meets the error and counts the attempt
        return Prepared(None)
    classification = None
    if classifier is not None:
        try:
            classification = classifier.classify(m.subject, m.text, m.html).to_dict()
        except Exception:
            classification = None
    return Prepared(m, classification=classification)


def _prepare_many(raws: list[bytes], charter_path: str, charter_print: str) -> list[Prepared]:
    classifier = _classifier(charter_path, charter_print)
    return [_prepare_one(raw, classifier) for raw in raws]


# ---- the pool ------------------------------------------------------------------------------------------

_pool: concurrent.futures.ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()
_broken = False  # the pool failed once in this process: parse inline from then on
_prints: dict[int, tuple[object, str]] = {}


def _follow_parent(maildesk: int) -> None:
    """In a worker: exit when maildesk (the process that made the pool) dies. A SIGKILLed maildesk cannot
    shut its pool down, and its workers would otherwise wait forever on a queue nobody writes to."""
    parent = os.getppid()

    def alive(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:  # gone (or no /proc: then the parent check alone decides)
            return not Path("/proc/self").exists()

    def watch() -> None:
        while os.getppid() == parent and alive(maildesk):
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, name="follow-parent", daemon=True).start()


def _get_pool(size: int) -> concurrent.futures.ProcessPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
                # No other thread can hold a lock at this moment, so fork() is safe, and the workers share
                # this process's memory (imports, charter) instead of loading their own copy.
                ctx = multiprocessing.get_context("fork")
            else:
                ctx = multiprocessing.get_context("forkserver")
                ctx.set_forkserver_preload(["maildesk.ingest.parse", "maildesk.rules.classifier",
                                            "maildesk.outbound.render", "maildesk.outbound.compose"])
            _pool = concurrent.futures.ProcessPoolExecutor(max_workers=size, mp_context=ctx,
                                                           initializer=_follow_parent, initargs=(os.getpid(),))
            if ctx.get_start_method() == "fork":
                # What exists now (imports, settings, charters) lives as long as the process: freezing it keeps
                # the garbage collector, here and in the workers, from writing to (and so copying) those pages.
                gc.freeze()
                _pool.submit(int).result()  # fork every worker now, while this is still the only thread
            atexit.register(shutdown)
        return _pool


def start() -> None:
    """Start the pool now, if this machine has a CPU to spare for it: `maildesk run` calls this before it
    starts its threads, so the workers can be forked."""
    if workers() >= 1 and not _broken:
        _get_pool(workers())


def shutdown() -> None:
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


def _charter_print(od) -> str:
    cached = _prints.get(id(od))
    if cached is None or cached[0] is not od.charter.raw:
        cached = (od.charter.raw, fingerprint(od.charter.raw))
        _prints[id(od)] = cached
    return cached[1]


class Preparing:
    """Messages being parsed in the pool. `take(start, stop)` waits only for that slice, so the ingest
    cycle stores the first group of a batch while the pool still parses the next one."""

    def __init__(self, futures: list | None):
        self.futures = futures  # one future per CHUNK messages; None: parse inline

    def take(self, start: int, stop: int) -> list[Prepared | None]:
        if self.futures is None:
            return [None] * (stop - start)
        try:
            out: list[Prepared] = []
            for k in range(start // CHUNK, (stop - 1) // CHUNK + 1):
                out.extend(self.futures[k].result())
            first = start - (start // CHUNK) * CHUNK
            return out[first:first + stop - start]
        except (concurrent.futures.process.BrokenProcessPool, OSError, RuntimeError) as exc:
            _give_up(exc)
            self.futures = None
            return [None] * (stop - start)


def prepare(od, raws: list[bytes]) -> Preparing:
    """Start parsing and classifying `raws` in the pool and return at once (inline when it does not pay).

    Never raises for a message; a broken pool (a child killed) makes the caller go on inline.
    """
    size = workers()
    if size < 1 or len(raws) < MIN_PARALLEL or _broken:
        return Preparing(None)
    path, expected = str(od.charter.path), _charter_print(od)
    try:
        pool = _get_pool(size)
        return Preparing([pool.submit(_prepare_many, raws[i:i + CHUNK], path, expected)
                          for i in range(0, len(raws), CHUNK)])
    except (concurrent.futures.process.BrokenProcessPool, OSError, RuntimeError) as exc:
        _give_up(exc)
        return Preparing(None)


def _render_compose(template: str, ctx: dict, composing: dict) -> bytes:
    from maildesk.outbound.compose import compose
    from maildesk.outbound.render import render

    return compose(render(template, **ctx), **composing)


class RenderQueue:
    """Outgoing emails of a transaction, rendered (Jinja2) and composed (MIME) in the pool while the main
    process goes on with the next message; `finish()` waits and puts each email's bytes in its outbox row
    before the commit. Without a pool the work is done in `finish()`, in this process."""

    def __init__(self, parallel: bool = True):
        self.items: list[tuple[object, object, tuple]] = []
        self.pool = None if not parallel or workers() < 1 or _broken else _get_pool(workers())

    def add(self, row, template: str, ctx: dict, composing: dict) -> None:
        job = (template, ctx, composing)
        future = None
        if self.pool is not None:
            try:
                future = self.pool.submit(_render_compose, *job)
            except (concurrent.futures.process.BrokenProcessPool, OSError, RuntimeError) as exc:
                _give_up(exc)
                self.pool = None
        self.items.append((row, future, job))

    def finish(self) -> None:
        """Fill in every row's bytes. A rendering error is raised here, inside the caller's transaction."""
        for row, future, job in self.items:
            raw = None
            if future is not None:
                try:
                    raw = future.result()
                except (concurrent.futures.process.BrokenProcessPool, OSError, RuntimeError) as exc:
                    _give_up(exc)
            row.raw = raw if raw is not None else _render_compose(*job)
        self.items = []


def _give_up(exc: Exception) -> None:
    global _broken
    log.warning("parallel parsing unavailable, parsing in this process from now on: %s",
                " ".join(str(exc).split())[:300])
    _broken = True
    shutdown()
