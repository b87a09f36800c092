"""Rendering and composing outgoing mail: Bengali dates, escaping, no header injection."""

import email
from datetime import datetime, timezone
from email import policy
from zoneinfo import ZoneInfo

from maildesk.charter import load_charter
from maildesk.outbound.compose import compose
from maildesk.outbound.render import render
from maildesk.settings import default_config_dir

CHARTER = load_charter(default_config_dir() / "charter.yaml")
DHAKA = ZoneInfo("Asia/Dhaka")


def ack(name="Rahim", subject="ল্যাব সমস্যা", service="2.2.7"):
    due = datetime(2026, 12, 9, 17, 0, tzinfo=DHAKA)
    return render("ack", office=CHARTER.office, service=CHARTER.services.get(service), officer=CHARTER.officers["ap"],
                  ticket={"ref": "ICT-2026-00042", "subject": subject, "citizen_name": name, "due_at": due},
                  matched="", message=None)


def test_acknowledgement_has_bengali_due_date_then_english():
    r = ack()
    assert r.subject.startswith("[ICT-2026-00042]")
    assert "বুধবার, ৯ ডিসেম্বর ২০২৬" in r.text and "Wednesday, 9 December 2026" in r.text
    assert r.text.index("বুধবার") < r.text.index("Wednesday")
    assert "২.২.৭" in r.text and CHARTER.services["2.2.7"].fee in r.text
    assert "যথাসম্ভব তাৎক্ষণিক" in r.text  # "act at once where possible, due in 3 working days"
    assert "৩ কার্যদিবস" in r.text


def test_citizen_text_is_escaped_in_html():
    r = ack(name='<script>alert("x")</script>', subject="<img src=x onerror=y>")
    assert "<script>" not in r.html and "&lt;script&gt;" in r.html
    assert "<img src=x" not in r.html


def test_crlf_in_subject_or_name_never_adds_a_header():
    r = ack(subject="hi\r\nBcc: victim@example.com\r\nX-Evil: 1")
    raw = compose(r, sender_name="Desk\r\nX-Injected: yes", sender="ict.khaliajuri@upazila.example.gov.bd",
                  to=[("Name\nBcc: a@example.com", "citizen@example.com")], message_id="<x.1@upazila.example.gov.bd>",
                  date=datetime(2026, 12, 6, tzinfo=timezone.utc))
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert msg["Bcc"] is None and msg["X-Evil"] is None and msg["X-Injected"] is None
    assert msg["Auto-Submitted"] == "auto-replied"
    assert len(msg.get_all("To")) == 1 and "citizen@example.com" in msg["To"]
