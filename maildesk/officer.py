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
            StoreMessage("officer", "commands rejected: " + "; ".join(e for _, e in errors), reply.text),
            Audit("command_error", {"errors": [{"line": line, "error": e} for line, e in errors]}),
            Send("command_error", s.officer.key, {"errors": errors, "relayed": False}),
        ), "invalid command")

    actions: list = [StoreMessage("officer", reply_text=reply.text)]
    changes: list[str] = []
    status = t.status
    for c in reply.commands:
        if c.verb in STATUS_OF_VERB:
            status = STATUS_OF_VERB[c.verb]
            actions += [Update({"status": status}), Audit(EVENT_OF_VERB[c.verb], {"comment": c.args})]
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
            actions += [Update({"officer": new.key}), Audit("assigned", {"from": t.officer, "to": new.key}),
                        Send("notice", new.key, {"assigned_by": s.officer.key}, relay_attachments=False)]
            changes.append(c.raw_line)
        elif c.verb == "note":
            actions.append(Audit("note", {"text": c.args}))
            changes.append(c.raw_line)
    relayed = bool(reply.text.strip())
    if relayed:
        actions += [Send("relay", "citizen", {"answer": reply.text, "officer_key": s.officer.key},
                         relay_attachments=True),
                    Audit("relayed", {"officer": s.officer.key, "chars": len(reply.text)})]
    actions.append(Send("confirm", s.officer.key, {"changes": changes, "relayed": relayed, "answer": reply.text}))
    return Decision("officer_reply", tuple(actions))
