"""`maildesk parse`: what the desk understands of a message (sender, ref, stripped reply, commands)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from maildesk.ingest.parse import ParseError, parse_message
from maildesk.ingest.replies import strip_reply
from maildesk.rules.commands import parse_commands
from maildesk.rules.refs import find_ticket_ref


def understand(raw: bytes) -> dict:
    m = parse_message(raw)
    stripped = strip_reply(m.text, m.html, flowed=m.flowed)
    commands, reply = parse_commands(stripped)
    return {
        "sender": m.sender,
        "subject": m.subject,
        "ref": find_ticket_ref(m.subject, ""),
        "reply": reply,
        "commands": [c.raw_line for c in commands],
        "errors": [c.error for c in commands if c.error],
    }


def cmd_parse(args) -> int:
    status = 0
    for name in args.files:
        try:
            data = {"file": name, **understand(Path(name).read_bytes())}
        except (OSError, ParseError) as exc:
            data = {"file": name, "error": str(exc)}
            status = 1
        if args.json:
            print(json.dumps(data, ensure_ascii=False))
        else:
            print(f"== {name}")
            for key in ("sender", "subject", "ref", "commands", "errors", "error"):
                if key in data:
                    print(f"{key:9} {data[key]}")
            if "reply" in data:
                print("reply:\n" + "\n".join("  " + line for line in data["reply"].splitlines()))
    sys.stdout.flush()
    return status


def register(sub) -> None:
    p = sub.add_parser("parse", help="show the sender, ticket ref, stripped reply and commands of .eml files")
    p.add_argument("files", nargs="+", metavar="FILE.eml")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_parse)
