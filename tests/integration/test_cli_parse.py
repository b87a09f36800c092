"""`maildesk parse --json` run as a program on the shared HTML reply fixtures, checked against expected.jsonl."""

from __future__ import annotations

import email
import json
import os
import re
import subprocess
import sys
from email import policy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HTML_DIR = ROOT / "tests" / "data" / "replies" / "replies-html-dev"
EXPECTED = [json.loads(line) for line in (HTML_DIR / "expected.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]


def maildesk(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "maildesk", *args], cwd=ROOT, env=env, capture_output=True,
                          timeout=120)


def collapse(text: str) -> str:
    return " ".join(text.split())


def test_parse_json_matches_the_expected_replies_and_commands():
    files = [str(HTML_DIR / f"{case['id']}.eml") for case in EXPECTED]
    assert len(files) == 8
    run = maildesk("parse", "--json", *files)
    assert run.returncode == 0, run.stderr.decode()
    lines = run.stdout.decode("utf-8").splitlines()
    assert len(lines) == len(files)
    for line, name, case in zip(lines, files, EXPECTED):
        got = json.loads(line)
        headers = email.message_from_bytes(Path(name).read_bytes(), policy=policy.default)
        notice_ref = re.match(r"<([A-Z]+-\d{4}-\d{5,})\.notice\.", headers["In-Reply-To"]).group(1)
        assert got["file"] == name
        assert got["sender"] == headers["From"].addresses[0].addr_spec.lower()
        assert got["subject"] == str(headers["Subject"])
        assert got["ref"] == notice_ref  # the ticket the answered notice was about
        # The HTML part is read first; Outlook's text part holds the same words hard-wrapped (r2-04).
        assert collapse(got["reply"]) == collapse(case["expected_reply"]), case["id"]
        assert got["commands"] == case["expected_commands"], case["id"]
        assert not any(c in got["reply"] for c in case["expected_commands"])


def test_parse_reports_a_missing_file_and_goes_on(tmp_path):
    good = HTML_DIR / f"{EXPECTED[0]['id']}.eml"
    run = maildesk("parse", "--json", str(tmp_path / "missing.eml"), str(good))
    assert run.returncode == 1
    first, second = (json.loads(line) for line in run.stdout.decode("utf-8").splitlines())
    assert first["file"].endswith("missing.eml") and "error" in first and "reply" not in first
    assert second["commands"] == EXPECTED[0]["expected_commands"]


def test_parse_without_json_prints_a_readable_summary():
    case = EXPECTED[1]
    run = maildesk("parse", str(HTML_DIR / f"{case['id']}.eml"))
    assert run.returncode == 0
    out = run.stdout.decode("utf-8")
    assert out.startswith("== ") and "reply:" in out and case["expected_commands"][0] in out
    assert collapse(case["expected_reply"])[:40] in collapse(out)
