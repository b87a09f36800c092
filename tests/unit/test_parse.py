"""Parsing details the rest of the desk relies on."""

from email.message import EmailMessage

from maildesk.ingest.parse import parse_message


def officer_reply_with_logo_and_document() -> bytes:
    m = EmailMessage()
    m["From"] = "ap.khaliajuri@upazila.example.gov.bd"
    m["Subject"] = "Re: [ICT-2026-00001]"
    m.set_content("Done.")
    m.add_alternative('<p>Done.</p><p><img src="cid:image001.png@01DA"></p>', subtype="html")
    m.get_payload()[1].add_related(b"\x89PNG\r\n", "image", "png", cid="<image001.png@01DA>", filename="image001.png")
    m.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="প্রতিবেদন.pdf")
    return bytes(m)


def test_signature_logo_is_inline_and_the_document_is_not():
    p = parse_message(officer_reply_with_logo_and_document())
    assert [(a.filename, a.inline) for a in p.attachments] == [("image001.png", True), ("প্রতিবেদন.pdf", False)]


def test_missing_message_id_gets_a_stable_content_hash_id():
    raw = b"From: a@example.com\r\nSubject: x\r\n\r\nbody\r\n"
    first, second = parse_message(raw), parse_message(raw)
    assert not first.has_message_id and first.message_id == second.message_id
    assert parse_message(raw + b"more").message_id != first.message_id


def test_crlf_in_a_decoded_subject_becomes_a_space():
    raw = b"From: a@example.com\r\nSubject: =?utf-8?q?hello=0D=0ABcc=3A_x=40example.com?=\r\n\r\nbody\r\n"
    assert parse_message(raw).subject == "hello Bcc: x@example.com"
