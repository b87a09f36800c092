"""Pieces the fault tests share: a settings file for a real worker, the worker as a subprocess, test mail.

Why a subprocess: a SIGKILL must hit the same code path as production (`maildesk run`: APScheduler
threads, IDLE, SQLite file in WAL mode), not an in-process imitation of it.
"""

from __future__ import annotations

import email
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from email import policy
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
CORPUS_DEV = ROOT / "tests" / "data" / "corpus-dev"


def toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_settings(folder: Path, *, mailbox_url: str, smtp_url: str, database_url: str, ca_file: str | None = None,
                   charter: Path | None = None, secret: str = "fault-test-secret", **worker) -> Path:
    """A maildesk.toml for a worker that polls fast; the shipped charter and holidays unless told otherwise."""
    w = {"poll_seconds": 1, "send_seconds": 1, "idle": True, "batch_size": 20, **worker}
    lines = [
        f"holidays_dir = {toml_str(str(CONFIG / 'holidays'))}",
        "[office]",
        f"charter = {toml_str(str(charter or CONFIG / 'charter.yaml'))}",
        f"mailbox_url = {toml_str(mailbox_url)}",
        "[smtp]", f"url = {toml_str(smtp_url)}",
        "[database]", f"url = {toml_str(database_url)}",
        "[security]", f"hmac_secret = {toml_str(secret)}",
    ]
    if ca_file:
        lines.append(f"ca_file = {toml_str(ca_file)}")
    lines.append("[worker]")
    for key, value in w.items():
        lines.append(f"{key} = {str(value).lower() if isinstance(value, bool) else value}")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "maildesk.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class WorkerProcess:
    """`python -m maildesk --config FILE run` with its log appended to one file across restarts."""

    def __init__(self, config: Path, log: Path):
        self.config, self.log = config, log
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.started_at = 0.0

    def start(self) -> "WorkerProcess":
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILDESK_")}
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        with open(self.log, "ab") as fh:
            fh.write(f"---- start {self.starts}\n".encode())
            self.proc = subprocess.Popen([sys.executable, "-m", "maildesk", "--config", str(self.config), "run"],
                                         stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                         cwd=str(self.config.parent))
        self.starts += 1
        self.started_at = time.monotonic()
        return self

    def kill(self) -> None:
        """SIGKILL: no handler runs, no transaction finishes, no socket is closed politely."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.wait()

    def stop(self, timeout: float = 30) -> int | None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float = 30) -> int | None:
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(10)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""


def run_cli(config: Path, *args: str, check: int | None = 0, env: dict | None = None) -> str:
    """`maildesk --config FILE ARGS…` in a subprocess, as an officer would type it; returns stdout."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MAILDESK_")}
    environ["PYTHONPATH"] = str(ROOT) + os.pathsep + environ.get("PYTHONPATH", "")
    environ.update(env or {})
    done = subprocess.run([sys.executable, "-m", "maildesk", "--config", str(config), *args], capture_output=True,
                          env=environ, stdin=subprocess.DEVNULL, timeout=120)
    out = done.stdout.decode("utf-8", "replace")
    if check is not None and done.returncode != check:
        raise AssertionError(f"maildesk {' '.join(args)} exited {done.returncode}:\n{out}\n"
                             f"{done.stderr.decode('utf-8', 'replace')}")
    return out


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def _reheader(raw: bytes, **headers) -> bytes:
    msg = email.message_from_bytes(raw, policy=policy.compat32)
    for name, value in headers.items():
        name = name.replace("_", "-")
        del msg[name]
        if value is not None:
            msg[name] = value
    return msg.as_bytes()


def citizen_mail(n: int, rng: random.Random, corpus: list[bytes]) -> tuple[str, bytes]:
    """A corpus message re-sent by its own citizen (citizen-N@example.com) with a fresh Message-ID."""
    mid = f"<kill-{n}-{uuid.uuid4().hex[:8]}@example.com>"
    raw = _reheader(rng.choice(corpus), From=f"Citizen {n} <citizen-{n}@example.com>", Message_ID=mid,
                    Reply_To=None, In_Reply_To=None, References=None, Return_Path=None)
    return mid, raw


def followup_mail(n: int, parent_mid: str, parent_sender: str) -> tuple[str, bytes]:
    m = EmailMessage()
    m["From"] = parent_sender
    m["To"] = "ict.khaliajuri@upazila.example.gov.bd"
    m["Subject"] = "Re: আমার আবেদন"
    m["Message-ID"] = mid = f"<kill-f{n}-{uuid.uuid4().hex[:8]}@example.com>"
    m["In-Reply-To"] = parent_mid
    m["References"] = parent_mid
    m.set_content("আরও একটি তথ্য: অফিসের কম্পিউটার এখনও চালু হচ্ছে না। One more detail, it still fails.")
    return mid, bytes(m)


def corpus_messages() -> list[bytes]:
    return [p.read_bytes() for p in sorted(CORPUS_DEV.glob("*.eml"))]
