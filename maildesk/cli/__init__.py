"""The `maildesk` command: thin wrappers over the layers below, each usable once from cron.

Each module in COMMAND_MODULES adds its own subcommands with register(subparsers); errors a person can act
on (config, connections) print one clear line and exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from sqlalchemy.exc import DBAPIError

from maildesk.errors import MaildeskError

COMMAND_MODULES = ["maildesk.cli.core", "maildesk.cli.officers", "maildesk.cli.rules", "maildesk.cli.deadlines",
                   "maildesk.cli.ops", "maildesk.cli.status"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="maildesk", description="Email-driven service desk for a Citizen Charter office.")
    parser.add_argument("--config", help="settings file (default: $MAILDESK_CONFIG, ./config/maildesk.toml, or the shipped one)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(sub)
    return parser


class _SecretFilter(logging.Filter):
    """Last line of defence: no log line may carry a configured password or key."""

    secrets: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            msg = record.getMessage()
            changed = False
            for secret in self.secrets:
                if secret and secret in msg:
                    msg = msg.replace(secret, "***")
                    changed = True
            if changed:
                record.msg, record.args = msg, ()
        return True


def setup_logging(verbose: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_SecretFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("apscheduler", "imapclient", "alembic", "mail-parser", "mailparser"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def register_secrets(*values: str | None) -> None:
    _SecretFilter.secrets.extend(v for v in values if v)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except MaildeskError as exc:
        print(f"maildesk: {exc}", file=sys.stderr)
        return 2
    except DBAPIError as exc:
        # One clear line, never a traceback (and never the URL's password: only the driver's message).
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(getattr(exc, "orig", exc)).strip() else type(exc).__name__
        print(f"maildesk: the database is unavailable: {reason}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
