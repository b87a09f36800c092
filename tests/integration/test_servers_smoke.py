"""The test servers themselves: if these fail, every real-server test after them means nothing.

Dovecot (IMAP plain, STARTTLS, IMAPS with the test CA; LMTP with plus-addressing), the in-process SMTP
capture and relay, and PostgreSQL databases per test.
"""

from __future__ import annotations

import smtplib
import ssl
import uuid
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import pytest
from imapclient.exceptions import LoginError
from sqlalchemy import create_engine, text

from tests.servers import in_ci, lmtp_deliver, postgres_problem, temporary_database


def mail(subject: str, sender: str = "citizen@example.com", to: str = "desk@office.test",
         body: str = "জন্ম নিবন্ধন সনদ দরকার। I need a birth certificate.") -> EmailMessage:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = sender, to, subject
    m["Message-ID"] = f"<{uuid.uuid4().hex}@example.com>"
    m.set_content(body)
    return m


def inbox_subjects(account) -> list[str]:
    return [m["Subject"] for m in account.messages()]


# ---------------------------------------------------------------------------------------------- IMAP

@pytest.mark.parametrize("kind", ["imap", "imap+starttls", "imaps"])
def test_login_on_each_transport(imap_account, kind):
    client = imap_account.connect(kind)
    try:
        if kind == "imap":
            assert not isinstance(client._imap.sock, ssl.SSLSocket)
        else:
            assert isinstance(client._imap.sock, ssl.SSLSocket)
            assert client._imap.sock.getpeercert()["subjectAltName"] == (("IP Address", "127.0.0.1"),
                                                                        ("DNS", "localhost"))
        caps = client.capabilities()
        for cap in (b"IDLE", b"MOVE", b"UIDPLUS", b"SPECIAL-USE"):
            assert cap in caps
        assert client.select_folder("INBOX")[b"EXISTS"] == 0
    finally:
        client.logout()


def test_imaps_certificate_is_checked_against_the_test_ca(imap_account):
    from imapclient import IMAPClient

    with pytest.raises(ssl.SSLCertVerificationError):
        IMAPClient(imap_account.host, imap_account.tls_port, ssl=True,
                   ssl_context=ssl.create_default_context(), timeout=5)


def test_wrong_password_is_refused(imap_account):
    from imapclient import IMAPClient

    client = IMAPClient(imap_account.host, imap_account.port, ssl=False, timeout=10)
    try:
        with pytest.raises(LoginError):
            client.login(imap_account.user, imap_account.password + "x")
    finally:
        client.shutdown()
    imap_account.connect().logout()  # the right password still works afterwards


def test_append_then_fetch_returns_the_same_bytes(imap_account):
    raw = (b"From: citizen@example.com\r\nTo: desk@office.test\r\nSubject: smoke\r\n"
           b"Message-ID: <smoke-1@example.com>\r\n\r\nline one\r\nline two\r\n")
    uid = imap_account.append(raw, flags=["\\Flagged"])
    second = imap_account.append(mail("second"), folder="Archive")
    [(got_uid, flags, body)] = imap_account.fetch_all()
    assert (got_uid, body) == (uid, raw)
    assert "\\Flagged" in flags and "\\Seen" not in flags  # fetch_all peeks
    assert "\\Flagged" in imap_account.flags(uid)
    assert [u for u, _f, _b in imap_account.fetch_all("Archive")] == [second]


def test_append_many_returns_uids_in_order(imap_account):
    uids = imap_account.append_many([mail(f"bulk {i}") for i in range(5)], batch=2)
    assert len(uids) == 5 and uids == sorted(uids)
    assert inbox_subjects(imap_account) == [f"bulk {i}" for i in range(5)]


def test_each_account_is_a_separate_fresh_mailbox(imap_account, make_imap_account):
    citizen = make_imap_account("citizen@example.com")
    assert citizen.user.startswith("citizen-") and citizen.user.endswith("@example.com")
    assert imap_account.user.startswith("desk-") and imap_account.user.endswith("@office.test")
    imap_account.append(mail("only for the desk"))
    assert citizen.fetch_all() == []
    assert inbox_subjects(imap_account) == ["only for the desk"]


@pytest.mark.parametrize("kind,port_attr", [("imap", "port"), ("imap+starttls", "port"), ("imaps", "tls_port")])
def test_url_carries_percent_encoded_credentials(imap_account, kind, port_attr):
    parts = urlsplit(imap_account.url(kind))
    assert parts.scheme == kind
    assert (parts.hostname, parts.port) == ("127.0.0.1", getattr(imap_account, port_attr))
    assert (unquote(parts.username), unquote(parts.password)) == (imap_account.user, imap_account.password)
    assert unquote(parts.path) == "/INBOX"
    # The default password holds '#', '@', '/' and '%', which break an unencoded URL; Dovecot accepts it.
    assert set("#@/%") <= set(imap_account.password)
    imap_account.connect(kind).logout()


# ---------------------------------------------------------------------------------------------- SMTP + LMTP

def test_relay_delivers_each_recipient_including_plus_address(smtp_relay, make_imap_account):
    officer = make_imap_account("officer")
    desk = make_imap_account("desk")
    local, domain = desk.user.split("@")
    plus = f"{local}+t-4242@{domain}"
    with smtplib.SMTP(smtp_relay.host, smtp_relay.port, timeout=10) as smtp:
        smtp.send_message(mail("relayed"), from_addr="citizen@example.com", to_addrs=[officer.user, plus])
    [captured] = smtp_relay.wait_for(1)
    assert captured.mail_from == "citizen@example.com"
    assert captured.rcpt_tos == (officer.user, plus)
    assert captured.message()["Subject"] == "relayed"
    assert smtp_relay.relay_errors == []
    assert inbox_subjects(officer) == ["relayed"]
    assert inbox_subjects(desk) == ["relayed"]  # desk+token lands in the desk's INBOX, not a "t-4242" folder
    assert "t-4242" not in desk.folders()


def test_relay_records_unknown_recipient(smtp_relay, imap_account):
    with smtplib.SMTP(smtp_relay.host, smtp_relay.port, timeout=10) as smtp:
        smtp.send_message(mail("half"), from_addr="desk@office.test",
                          to_addrs=["nobody-here@office.test", imap_account.user])
    smtp_relay.wait_for(1)
    assert [rcpt for rcpt, _err in smtp_relay.relay_errors] == ["nobody-here@office.test"]
    assert inbox_subjects(imap_account) == ["half"]


def test_lmtp_direct_delivery(servers_env, imap_account):
    lmtp_deliver(servers_env, imap_account.user, mail("direct", to=imap_account.user))
    [msg] = imap_account.messages()
    assert msg["Subject"] == "direct" and "জন্ম নিবন্ধন" in msg.get_content()


def test_smtp_capture_keeps_envelope_and_bytes(smtp_server):
    assert smtp_server.url == f"smtp://127.0.0.1:{smtp_server.port}"
    m = mail("captured", body="ধন্যবাদ")
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as smtp:
        smtp.send_message(m, from_addr="desk@office.test", to_addrs=["a@example.com", "b@example.com"])
    [got] = smtp_server.wait_for(1)
    assert got.rcpt_tos == ("a@example.com", "b@example.com")
    assert got.message()["Message-ID"] == m["Message-ID"]
    assert got.message().get_content().strip() == "ধন্যবাদ"


def test_smtp_capture_can_refuse_then_accept(smtp_server):
    smtp_server.fail_next("451 4.3.0 Try again later (test)")
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as smtp:
        with pytest.raises(smtplib.SMTPDataError) as err:
            smtp.send_message(mail("first try"), from_addr="desk@office.test", to_addrs=["a@example.com"])
        assert err.value.smtp_code == 451
        smtp.send_message(mail("second try"), from_addr="desk@office.test", to_addrs=["a@example.com"])
    assert [m.message()["Subject"] for m in smtp_server.wait_for(1)] == ["second try"]
    assert [m.message()["Subject"] for m in smtp_server.rejected] == ["first try"]


def test_smtp_capture_with_auth_and_starttls(make_smtp_server, servers_env):
    server = make_smtp_server(tls="starttls", auth=("desk@office.test", "s3cret"))
    assert urlsplit(server.url).scheme == "smtp+starttls"
    ctx = ssl.create_default_context(cafile=servers_env["MAILDESK_TEST_CA"])
    with smtplib.SMTP(server.host, server.port, timeout=10) as smtp:
        smtp.starttls(context=ctx)
        with pytest.raises(smtplib.SMTPSenderRefused):  # no AUTH yet: 530
            smtp.send_message(mail("no auth"), from_addr="desk@office.test", to_addrs=["a@example.com"])
        with pytest.raises(smtplib.SMTPAuthenticationError):
            smtp.login("desk@office.test", "wrong")
        smtp.login("desk@office.test", "s3cret")
        smtp.send_message(mail("with auth"), from_addr="desk@office.test", to_addrs=["a@example.com"])
    assert [m.message()["Subject"] for m in server.wait_for(1)] == ["with auth"]
    assert server.logins == ["desk@office.test"]


def test_smtps_capture(make_smtp_server, servers_env):
    server = make_smtp_server(tls="smtps")
    ctx = ssl.create_default_context(cafile=servers_env["MAILDESK_TEST_CA"])
    with smtplib.SMTP_SSL(server.host, server.port, context=ctx, timeout=10) as smtp:
        smtp.send_message(mail("over tls"), from_addr="desk@office.test", to_addrs=["a@example.com"])
    assert [m.message()["Subject"] for m in server.wait_for(1)] == ["over tls"]


# ---------------------------------------------------------------------------------------------- databases

def test_database_url_connects_and_keeps_data(database_url, database_kind):
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE probe (id integer primary key, note text)"))
            conn.execute(text("INSERT INTO probe (id, note) VALUES (1, 'ঠিক আছে')"))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT note FROM probe")).scalar_one() == "ঠিক আছে"
            if database_kind == "postgres":
                assert engine.dialect.name == "postgresql"
                name = conn.execute(text("SELECT current_database()")).scalar_one()
                assert name.startswith("maildesk_t_") and name == engine.url.database
            else:
                assert engine.dialect.name == "sqlite"
    finally:
        engine.dispose()


def test_postgres_server_creates_and_drops_databases(servers_env):
    problem = postgres_problem(servers_env)
    if problem:
        (pytest.fail if in_ci() else pytest.skip)(problem)
    admin = create_engine(servers_env["MAILDESK_TEST_PG_URL"])
    try:
        with temporary_database(servers_env["MAILDESK_TEST_PG_URL"]) as url:
            name = url.rsplit("/", 1)[1]
            engine = create_engine(url)
            with engine.connect() as conn:  # the pool keeps this connection open: the drop must not hang
                assert conn.execute(text("SHOW server_encoding")).scalar_one() == "UTF8"
                with admin.connect() as a:
                    assert a.execute(text("SELECT count(*) FROM pg_database WHERE datname = :n"),
                                     {"n": name}).scalar_one() == 1
        engine.dispose()
        with admin.connect() as a:
            assert a.execute(text("SELECT count(*) FROM pg_database WHERE datname = :n"),
                             {"n": name}).scalar_one() == 0
    finally:
        admin.dispose()
