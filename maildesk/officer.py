"""An officer's reply from their own mail client: strip it, read its commands, decide what changes.

Pure like desk.decide(): the shell has already proven the sender (configured address + HMAC token + no
DKIM/SPF failure). A reply with any invalid command changes nothing and relays nothing, and the officer
is told why; so resending a corrected reply never relays the answer twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from maildesk.charter import Charter
from maildesk.desk import Audit, Decision, Send, Situation, StoreMessage, Update
from maildesk.ingest.parse import ParsedMessage
from maildesk.ingest.replies import strip_reply
from maildesk.rules.commands import Command, parse_commands

STATUS_OF_VERB = {"resolve": "resolved", "close": "closed", "reopen": "open"}
# Reopening forgets when the ticket was finished, so the reopen window and the reports start afresh.
CHANGES_OF_VERB = {"resolve": {"status": "resolved"}, "close": {"status": "closed"},
                   "reopen": {"status": "open", "resolved_at": None, "closed_at": None}}
EVENT_OF_VERB = {"resolve": "resolved", "close": "closed", "reopen": "reopened"}


@dataclass(frozen=True)
class OfficerReply:
    text: str  # what would be relayed to the citizen
    commands: tuple[Command, ...]


def parse_officer_reply(m: ParsedMessage, charter: Charter) -> OfficerReply:
    stripped = strip_reply(m.text, m.html, flowed=m.flowed)
    commands, text = parse_commands(stripped, services=tuple(charter.services))
    return OfficerReply(text=text, commands=tuple(commands))


def _check(c: Command, s: Situation) -> str | None:
    """Errors only the charter or the clock can see."""
    if c.error:
        return c.error
    if c.verb == "assign" and s.charter.officer_by_email(c.args) is None:
        return (f"{c.args} কোনো নিবন্ধিত কর্মকর্তা নন / {c.args} is not a configured officer "
                f"({', '.join(o.email for o in s.charter.officers.values())})")
    if c.verb == "due" and c.args[0] == "date" and c.args[1] < s.now.date():
        return f"তারিখটি অতীতে / the date {c.args[1].isoformat()} is in the past"
    if c.verb == "service" and c.args not in s.charter.services:
        return f"সেবা কোড {c.args} সনদে নেই / service {c.args} is not in the charter"
    return None


def decide_officer_reply(s: Situation, reply: OfficerReply) -> Decision:
    t = s.ticket
    errors = [(c.raw_line, err) for c in reply.commands if (err := _check(c, s))]
    if errors:
        return Decision("officer_error", (
            # Its own kind: a corrected reply, or the same one resent after a config fix, is not a repeat.
            StoreMessage("officer_rejected", "commands rejected: " + "; ".join(e for _, e in errors), reply.text),
            Audit("command_error", {"errors": [{"line": line, "error": e} for line, e in errors]}),
            Send("command_error", s.officer.key, {"errors": errors, "relayed": False}),
        ), "invalid command")

    actions: list = [StoreMessage("officer", reply_text=reply.text)]
    changes: list[str] = []
    status = t.status
    for c in reply.commands:
        if c.verb in STATUS_OF_VERB:
            status = STATUS_OF_VERB[c.verb]
            actions += [Update(dict(CHANGES_OF_VERB[c.verb])), Audit(EVENT_OF_VERB[c.verb], {"comment": c.args})]
            changes.append(c.raw_line)
        elif c.verb == "status":
            status = c.args
            actions += [Update({"status": c.args}), Audit("status", {"from": t.status, "to": c.args})]
            changes.append(c.raw_line)
        elif c.verb == "service":
            update = {"service": c.args}
            if status == "triage":
                status = "open"
                update["status"] = "open"
            actions += [Update(update), Audit("service", {"from": t.service, "to": c.args})]
            changes.append(c.raw_line)
        elif c.verb == "due":
            kind, value = c.args
            actions += [Update({"due_days": value} if kind == "days" else {"due_date": value}),
                        Audit("due", {"kind": kind, "value": value.isoformat() if isinstance(value, date) else value})]
            changes.append(c.raw_line)
        elif c.verb == "assign":
            new = s.charter.officer_by_email(c.args)
            # The new officer's notice carries a token of their own and shows the citizen's request.
            actions += [Update({"officer": new.key}), Audit("assigned", {"from": t.officer, "to": new.key}),
                        Send("notice", new.key, {"assigned_by": s.officer.name_en}, relay_attachments=True)]
            changes.append(c.raw_line)
        elif c.verb == "note":
            actions.append(Audit("note", {"text": c.args}))
            changes.append(c.raw_line)
    # An officer who wrote to the citizen directly (citizen in To/Cc) is not relayed a second time.
    direct = answered_directly(s.message, t.citizen_email)
    relayed = bool(reply.text.strip()) and not direct
    if relayed:
        actions += [Send("relay", "citizen", {"answer": reply.text, "officer": s.officer},
                         relay_attachments=True),
                    Audit("relayed", {"officer": s.officer.key, "chars": len(reply.text)})]
    elif direct:
        actions[0] = StoreMessage("officer_cc", "officer answered the citizen directly", reply.text)
        actions.append(Audit("officer_cc", {"officer": s.officer.key}))
    actions.append(Send("confirm", s.officer.key, {"changes": changes, "relayed": relayed, "direct": direct,
                                                   "answer": reply.text}))
    return Decision("officer_reply", tuple(actions))


def answered_directly(m: ParsedMessage, citizen_email: str) -> bool:
    """The citizen is among the recipients: they already have the officer's words."""
    return bool(citizen_email) and citizen_email.lower() in (*m.to, *m.cc)


def authentication_failed(m: ParsedMessage, authserv_id: str | None) -> bool:
    """True when our own receiving server (`authserv_id`) reports that neither DKIM nor SPF passed for the
    From domain. A pass for some other domain does not count: anyone can sign their own mail.

    Only the topmost Authentication-Results is read: our server adds it last and (RFC 8601) removes
    look-alikes claiming its authserv-id. No header of ours: nothing to judge, not a failure."""
    if not authserv_id:
        return False
    value = m.header("authentication-results")
    parts = [p.strip() for p in value.split(";")]
    if not parts[0] or parts[0].split()[0].lower() != authserv_id.lower():
        return False
    domain = m.sender.rpartition("@")[2]
    return not any(_passes_for(part, domain) for part in parts[1:])


def _passes_for(resinfo: str, domain: str) -> bool:
    """One resinfo ("dkim=pass header.d=example.gov.bd", "spf=pass smtp.mailfrom=a@b") passes for `domain`."""
    words = resinfo.lower().split()
    if not words or words[0] not in ("dkim=pass", "spf=pass", "dmarc=pass"):
        return False
    method = words[0].split("=")[0]
    props = dict(w.split("=", 1) for w in words[1:] if "=" in w)
    keys = {"dkim": ("header.d", "header.i"), "spf": ("smtp.mailfrom",), "dmarc": ("header.from",)}[method]
    for key in keys:
        if key in props:
            signed = props[key].rpartition("@")[2].strip("<>()\"'")
            return bool(signed) and (domain == signed or domain.endswith("." + signed))
    return False
