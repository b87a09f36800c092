"""Settings and charter: URLs, environment overrides, secrets kept out of text, errors naming file and key."""

from pathlib import Path

import pytest

from maildesk.charter import load_charter
from maildesk.errors import ConfigError
from maildesk.settings import default_config_dir, load_settings, redacted

CHARTER = default_config_dir() / "charter.yaml"


def write(tmp_path, text, name="maildesk.toml"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_shipped_config_loads_all_14_services_with_parsed_deadlines():
    c = load_charter(CHARTER)
    assert sorted(c.services) == sorted(["2.1.1", "2.1.2", "2.1.3"] + [f"2.2.{i}" for i in range(1, 12)])
    assert c.services["2.2.4"].deadline.working_days == 15 and not c.services["2.2.4"].deadline.immediate
    assert c.services["2.2.10"].deadline.immediate and c.services["2.2.10"].deadline.working_days == 3
    assert c.ladder and c.ladder[0].after_working_days < 0  # a reminder before the due date


def test_environment_overrides_urls_and_percent_encoded_credentials(tmp_path):
    p = write(tmp_path, '[office]\ncharter = "%s"\nmailbox_url = "maildir://box"\n[smtp]\nurl = "file://out"\n'
                        '[database]\nurl = "sqlite:///x.db"\n' % CHARTER)
    s = load_settings(p, env={"MAILDESK_MAILBOX_URL": "imaps://desk%40office.test:p%40ss%3Aword@127.0.0.1:10993/INBOX",
                              "MAILDESK_SMTP_URL": "smtp+starttls://127.0.0.1:2525"})
    mb = s.office.mailbox
    assert (mb.scheme, mb.host, mb.port, mb.username, mb.password, mb.path) == (
        "imaps", "127.0.0.1", 10993, "desk@office.test", "p@ss:word", "INBOX")
    assert "p%40ss" not in mb.safe and "***" in mb.safe
    assert s.smtp.scheme == "smtp+starttls" and s.database_url == "sqlite:///x.db"
    assert "word" not in repr(s)


@pytest.mark.parametrize("body,key", [
    ('[office]\nmailbox_url = "pop3://x"\n[smtp]\nurl="file://o"\n[database]\nurl="sqlite://"\n', "office.mailbox_url"),
    ('[office]\nmailbox_url = "maildir://x"\n[smtp]\nurl="file://o"\n', "database.url"),
    ('[office]\nmailbox_url = "maildir://x"\n[smtp]\nurl="file://o"\n[database]\nurl="sqlite://"\n'
     '[worker]\npoll_seconds = -5\n', "worker.poll_seconds"),
    ('[office]\nmailbox_url = "maildir://x"\n[smtp]\nurl="ftp://o"\n[database]\nurl="sqlite://"\n', "smtp.url"),
])
def test_settings_errors_name_file_and_key(tmp_path, body, key):
    p = write(tmp_path, body)
    with pytest.raises(ConfigError) as e:
        load_settings(p, env={})
    assert e.value.key == key and e.value.file == str(p)


def test_redacted_hides_only_the_password():
    assert redacted("imap://u:secret@h:143/INBOX") == "imap://u:***@h:143/INBOX"
    assert redacted("sqlite:///x.db") == "sqlite:///x.db"


@pytest.mark.parametrize("old,new,key", [
    ('    officer: ap\n    keywords', '    officer: nobody\n    keywords', "services.2.1.1.officer"),
    ('deadline: "তাৎক্ষণিক/ ৩ কার্যদিবস"', 'deadline: "শীঘ্রই"', "services.2.1.1.deadline"),
    ("ticket_prefix: ICT", "ticket_prefix: ict-1", "office.ticket_prefix"),
    ("notify: [responsible, grs]", "notify: [responsible, boss]", "escalation[2].notify"),
    ('email: "ap.khaliajuri@upazila.example.gov.bd"', 'email: "not-an-address"', "officers.ap.email"),
    ("  admin: ap ", "  admin: nobody ", "office.admin"),
    ("    per_hour: 5", "    per_hour: 0", "office.auto_reply_limits.per_hour"),
    ("  reopen_days: 30 ", "  reopen_days: soon ", "office.reopen_days"),
    ('  office_hours: "09:00-17:00"', '  office_hours: "5pm"', "office.office_hours"),
])
def test_charter_errors_name_the_key(tmp_path, old, new, key):
    text = CHARTER.read_text(encoding="utf-8")
    assert old in text
    p = write(tmp_path, text.replace(old, new, 1), "charter.yaml")
    with pytest.raises(ConfigError) as e:
        load_charter(p)
    assert e.value.key == key and str(p) in str(e.value)
