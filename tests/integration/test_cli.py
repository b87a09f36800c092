"""The `maildesk` command as a user runs it: demo twice, tickets, show, classify, check-config."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import CORPUS_DEV, ROOT


def run(*args, env=None, cwd=None):
    import os

    e = {**os.environ, **(env or {})}
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "maildesk", *args], capture_output=True, text=True, env=e,
                          cwd=cwd or ROOT, timeout=120)


def test_demo_runs_twice_without_duplicates_and_tickets_lists_them(tmp_path):
    first = run("demo", "--dir", str(tmp_path / "demo"))
    assert first.returncode == 0, first.stderr
    assert "12 sample messages added" in first.stdout and "new_ticket: 10" in first.stdout
    second = run("demo", "--dir", str(tmp_path / "demo"))
    assert second.returncode == 0 and "0 stored" in second.stdout
    sent = list((tmp_path / "demo" / "sent").glob("*.eml"))
    assert len([p for p in sent if ".ack." in p.name]) == 10

    env = {"MAILDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'demo' / 'maildesk.db'}"}
    listed = run("tickets", "--json", env=env)
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(rows) == 10
    assert {"ref", "service", "status", "citizen", "subject", "opened_at", "due_at"} <= set(rows[0])
    assert rows[0]["due_at"].endswith("+06:00")
    triage = run("tickets", "--json", "--status", "triage", env=env)
    assert all(json.loads(line)["status"] == "triage" for line in triage.stdout.splitlines())

    shown = run("show", rows[0]["ref"], "--json", env=env)
    data = json.loads(shown.stdout)
    assert data["ref"] == rows[0]["ref"] and data["messages"][0]["kind"] == "citizen"
    assert {e["kind"] for e in data["events"]} >= {"opened"}
    # The demo plays the officer once: a reply to the first notice, relayed to the citizen and confirmed.
    assert {o["kind"] for o in data["outbox"]} == {"ack", "notice", "relay", "confirm"}
    assert data["status"] == "scheduled"
    assert [m["kind"] for m in data["messages"]] == ["citizen", "officer"]
    assert "#status" not in data["messages"][1]["text"] and "> " not in data["messages"][1]["text"]


def test_classify_prints_one_json_object_per_file():
    files = sorted(CORPUS_DEV.glob("*.eml"))[:5]
    out = run("classify", "--json", *map(str, files))
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["file"] for r in rows] == [str(f) for f in files]
    for r in rows:
        assert set(r) >= {"file", "service", "score", "matched"}
        assert r["service"] is None or r["matched"]


def test_check_config_reports_errors_with_file_and_key_and_never_the_password(tmp_path):
    ok = run("check-config", env={"MAILDESK_MAILBOX_URL": "imap://desk%40office.test:Sup3rS3cret@127.0.0.1:10143/INBOX"})
    assert ok.returncode == 0, ok.stderr
    assert "Sup3rS3cret" not in ok.stdout + ok.stderr and "config OK" in ok.stdout
    bad = tmp_path / "maildesk.toml"
    bad.write_text('[office]\nmailbox_url = "maildir://x"\n[smtp]\nurl = "file://o"\n[database]\nurl = "sqlite://"\n'
                   '[worker]\npoll_seconds = "often"\n', encoding="utf-8")
    res = run("--config", str(bad), "check-config")
    assert res.returncode == 2
    assert f"{bad}: worker.poll_seconds" in res.stderr and "Traceback" not in res.stderr
