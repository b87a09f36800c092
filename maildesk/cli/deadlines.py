"""Deadline commands: due, escalate, digest, report.

`due` needs no database: it shows the working-day arithmetic for one date so anyone can check it by
hand. The others are the scheduled jobs run once (cron-friendly and idempotent), with --now to look at
another moment (a test, or "what would happen on Sunday").
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

from maildesk.cli.core import load
from maildesk.errors import MaildeskError
from maildesk.outbound.bengali import to_ascii_digits


class UsageError(MaildeskError):
    """A command-line value a person can fix."""


def parse_when(text: str | None, tz, what: str = "--now") -> datetime | None:
    """ISO 8601; without a UTC offset the time is read in the office's time zone."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(to_ascii_digits(text.strip()))
    except ValueError:
        raise UsageError(f"{what}: write a date and time like 2026-12-10T16:30+06:00, not {text!r}") from None
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


def pick_office(desk_or_offices, key: str | None):
    offices = desk_or_offices if isinstance(desk_or_offices, dict) else desk_or_offices.offices
    if key is None:
        return next(iter(offices.values()))
    if key not in offices:
        raise UsageError(f"--office: no office {key!r} (known: {', '.join(offices)})")
    return offices[key]


# ---- due ---------------------------------------------------------------------------------------------


def _start_reason(cal, received: datetime, start) -> tuple[str, str]:
    local = cal.local(received)
    end = cal.office_end.strftime("%H:%M")
    if start == local.date():
        return (f"received on a working day before the end of office hours ({end})",
                f"কার্যদিবসে অফিস সময় ({end}) শেষ হওয়ার আগে গৃহীত")
    reason = cal.non_working_reason(local.date())
    if reason:
        return (f"received on a day off ({reason[0]}): the clock starts on the next working day",
                f"ছুটির দিনে গৃহীত ({reason[1]}): পরের কার্যদিবস থেকে গণনা")
    return (f"received after the end of office hours ({end}): the clock starts on the next working day",
            f"অফিস সময় ({end}) শেষ হওয়ার পরে গৃহীত: পরের কার্যদিবস থেকে গণনা")


def cmd_due(args) -> int:
    from maildesk.app import load_office
    from maildesk.charter import load_charter

    settings = load(args)
    office_settings = settings.offices[0]
    if args.office:
        matches = [o for o in settings.offices if o.key == args.office]
        if not matches:
            raise UsageError(f"--office: no office {args.office!r}")
        office_settings = matches[0]
    charter = load_charter(office_settings.charter_path)
    from zoneinfo import ZoneInfo

    received = parse_when(args.received, ZoneInfo(charter.office.timezone), "--received")
    year = received.year
    od = load_office(office_settings, settings, range(year - 1, year + 3))
    cal = od.calendar
    if args.service:
        service = od.charter.services.get(args.service)
        if service is None:
            raise UsageError(f"--service: {args.service!r} is not in {od.charter.path} "
                             f"(services: {', '.join(od.charter.services)})")
        days, immediate, text = service.deadline.working_days, service.deadline.immediate, service.deadline_text
    else:
        days, immediate, text, service = args.days, False, f"{args.days} working days", None
    due = cal.due_at(received, days)
    counted = []
    d = due.start_day
    while len(counted) < days:
        d = cal.next_working_day(d)
        counted.append(d)
    why_en, why_bn = _start_reason(cal, received, due.start_day)
    data = {
        "office": od.key,
        "service": service.code if service else None,
        "service_en": service.name_en if service else None,
        "deadline": text,
        "immediate": immediate,
        "working_days": days,
        "received": cal.local(received).isoformat(timespec="seconds"),
        "start_day": due.start_day.isoformat(),
        "start_reason": why_en,
        "due_at": cal.local(due.due_at).isoformat(timespec="seconds"),
        "counted_days": [c.isoformat() for c in counted],
        "skipped": [{"date": s.date.isoformat(), "weekday": s.date.strftime("%A"), "reason": s.reason_en,
                     "reason_bn": s.reason_bn} for s in due.skipped],
        "office_hours": f"{cal.office_start.strftime('%H:%M')}-{cal.office_end.strftime('%H:%M')} {cal.tz.key}",
    }
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return 0
    local = cal.local(received)
    if service:
        print(f"service      {service.code} — {service.name_en}")
        print(f"charter      {text}")
    print(f"deadline     {'act at once where possible; at most ' if immediate else ''}{days} working day"
          f"{'' if days == 1 else 's'}")
    print(f"received     {data['received']} ({local:%A})")
    print(f"clock starts {data['start_day']} ({due.start_day:%A}): {why_en}")
    for i, c in enumerate(counted, 1):
        print(f"  day {i:<3}    {c.isoformat()} ({c:%A})")
    print(f"due_at       {data['due_at']} ({cal.local(due.due_at):%A}), the end of office hours "
          f"({data['office_hours']})")
    if due.skipped:
        print("skipped")
        for s in due.skipped:
            print(f"  {s.date.isoformat()} {s.date:%a}  {s.reason_en}  /  {s.reason_bn}")
    else:
        print("skipped      nothing")
    return 0


# ---- escalate ----------------------------------------------------------------------------------------


def _desk_at(args):
    """A desk whose clock is --now when given (so queued mail is due at that moment too)."""
    from zoneinfo import ZoneInfo

    from maildesk.charter import load_charter

    settings = load(args)
    tz = ZoneInfo(load_charter(settings.offices[0].charter_path).office.timezone)
    now = parse_when(args.now, tz)
    from maildesk.app import build_desk

    return build_desk(settings, clock=(lambda: now) if now else None)


def cmd_escalate(args) -> int:
    from maildesk.jobs.escalate import escalate_office
    from maildesk.jobs.send import send_pending

    desk = _desk_at(args)
    try:
        offices = [pick_office(desk, args.office)] if args.office else list(desk.offices.values())
        for od in offices:
            r = escalate_office(desk, od, desk.now())
            levels = ", ".join(f"{k} {v}" for k, v in sorted(r.sent.items())) or "none due"
            print(f"{od.key}: {r.checked} tickets due, escalated {r.escalated} ({levels}), "
                  f"{r.skipped} lower levels skipped, {r.citizens_told} citizens told")
        if not args.no_send:
            s = send_pending(desk)
            print(f"outbox: {s.sent} sent, {s.retried} to retry, {s.dead} dead")
        return 0
    finally:
        desk.close()


# ---- digest ------------------------------------------------------------------------------------------


def _write_preview(od, digest, person, now, out: str | None) -> None:
    from maildesk.jobs.digest import compose_digest, render_digest

    rendered = render_digest(od, digest, person)
    if not out or out == "-":
        print(f"Subject: {rendered.subject}\n")
        print(rendered.text)
        return
    prefix = Path(out)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    _, raw = compose_digest(od, digest, person, now)
    for suffix, content in ((".html", rendered.html), (".txt", f"Subject: {rendered.subject}\n\n{rendered.text}")):
        prefix.with_name(prefix.name + suffix).write_text(content, encoding="utf-8")
    prefix.with_name(prefix.name + ".eml").write_bytes(raw)
    print(f"wrote {prefix}.html, {prefix}.txt and {prefix}.eml (to {person.name_en} <{person.email}>)")


def cmd_digest(args) -> int:
    from maildesk.jobs import digest as job
    from maildesk.jobs.send import send_pending

    desk = _desk_at(args)
    try:
        now = desk.now()
        offices = [pick_office(desk, args.office)] if args.office else list(desk.offices.values())
        if args.preview:
            for od in offices:
                people = job.recipients(od)
                person = od.charter.officers.get(args.to) if args.to else (people[0] if people else None)
                if person is None:
                    raise UsageError(f"--to: {args.to!r} is not an officer in {od.charter.path}")
                period = job.current_period(desk, od, now)
                start, end = job.window(desk, od, now)
                with desk.sessions() as s:
                    d = job.build(s, desk, od, period, start, end, now)
                    s.rollback()
                _write_preview(od, d, person, now, args.out)
            return 0
        if args.send:
            for od in offices:
                period = job.current_period(desk, od, now)
                if args.force:
                    period = f"{period}+{od.calendar.local(now):%Y%m%dT%H%M}"
                queued = job.send_digest(desk, od, period, *job.window(desk, od, now), now)
                if queued is None:
                    print(f"{od.key}: the digest for {period} was already sent; --force sends another now")
                else:
                    print(f"{od.key}: digest {period} queued for {queued} people")
        else:
            result = job.send_due_digests(desk, now)
            for od in offices:
                if od.key not in result:
                    print(f"{od.key}: no digest is due now (next: {_next_digest(desk, od, now)})")
                elif result[od.key] is None:
                    print(f"{od.key}: this week's digest was already sent")
                else:
                    print(f"{od.key}: digest queued for {result[od.key]} people")
        if not args.no_send:
            s = send_pending(desk)
            print(f"outbox: {s.sent} sent, {s.retried} to retry, {s.dead} dead")
        return 0
    finally:
        desk.close()


def _next_digest(desk, od, now) -> str:
    from datetime import timedelta

    from maildesk.jobs.digest import scheduled_at

    moment = scheduled_at(now, od.calendar.tz, desk.settings.digest) + timedelta(days=7)
    return moment.isoformat(timespec="minutes")


# ---- report ------------------------------------------------------------------------------------------


def cmd_report(args) -> int:
    from maildesk.reports import Quarter, quarter_report, report_csv, report_html

    try:
        quarter = Quarter.parse(args.quarter)
    except ValueError as exc:
        raise UsageError(f"--quarter: {exc}") from None
    desk = _desk_at(args)
    try:
        od = pick_office(desk, args.office)
        with desk.sessions() as s:
            report = quarter_report(s, od, quarter, desk.now())
    finally:
        desk.close()
    csv_text = report_csv(report)
    if args.out == "-":
        sys.stdout.write(csv_text)
        return 0
    prefix = Path(args.out or f"report-{od.key}-{quarter.label}")
    prefix.parent.mkdir(parents=True, exist_ok=True)
    prefix.with_name(prefix.name + ".csv").write_text(csv_text, encoding="utf-8-sig")
    prefix.with_name(prefix.name + ".html").write_text(report_html(report), encoding="utf-8")
    t = report.total
    print(f"{od.key} {quarter.label}: carried over {t.carried}, received {t.received}, resolved {t.resolved} "
          f"({t.on_time} within deadline), pending {t.pending}")
    print(f"wrote {prefix}.csv and {prefix}.html")
    return 0


def register(sub) -> None:
    p = sub.add_parser("due", help="compute a due date in working days and show every day skipped, and why")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--service", help="charter service code, e.g. 2.2.5")
    g.add_argument("--days", type=int, help="a number of working days instead of a service")
    p.add_argument("--received", required=True, help="when the mail arrived, ISO 8601 (office time zone if no offset)")
    p.add_argument("--office", help="office key (default: the first)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_due)

    p = sub.add_parser("escalate", help="send the escalation levels that are due (the hourly job, once)")
    p.add_argument("--now", help="pretend it is this moment, ISO 8601")
    p.add_argument("--office", help="only this office")
    p.add_argument("--no-send", action="store_true", help="only queue the emails; leave them for `maildesk send`")
    p.set_defaults(func=cmd_escalate)

    p = sub.add_parser("digest", help="the weekly digest: send it if due (default), --preview, or --send now")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--preview", action="store_true", help="write the digest without sending or recording anything")
    mode.add_argument("--send", action="store_true", help="send this week's digest now if it was not sent yet")
    p.add_argument("--force", action="store_true", help="with --send: send another one even if this week's went out")
    p.add_argument("--now", help="pretend it is this moment, ISO 8601")
    p.add_argument("--office", help="only this office")
    p.add_argument("--to", help="with --preview: the officer key to address it to (default: the first on the ladder)")
    p.add_argument("--out", help="with --preview: write PREFIX.html, PREFIX.txt and PREFIX.eml instead of stdout")
    p.add_argument("--no-send", action="store_true", help="only queue the emails; leave them for `maildesk send`")
    p.set_defaults(func=cmd_digest)

    p = sub.add_parser("report", help="quarterly GRS-style progress report per service, as CSV and HTML")
    p.add_argument("--quarter", required=True, help="calendar quarter, e.g. 2026Q4 (October-December 2026)")
    p.add_argument("--office", help="office key (default: the first)")
    p.add_argument("--out", help="file prefix (default report-OFFICE-QUARTER); '-' prints the CSV to stdout")
    p.add_argument("--now", help="the moment the report is made (default: now)")
    p.set_defaults(func=cmd_report)
