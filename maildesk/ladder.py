"""When each rung of the grievance ladder fires for a ticket, and what one sweep does about it.

Pure arithmetic on the work calendar: the sweep (maildesk.jobs.escalate) asks `plan()` and carries out
the answer in one transaction, so the rules here can be run over a simulated month in milliseconds.

Several levels reached at once (the worker was down, or a due date was moved into the past): the desk
sends the highest level reached, once, and marks the lower ones skipped. Everyone the skipped levels
would have told is told by that one email, and the citizen hears once if any of them says so. A reminder
that would fire before the ticket was even opened is skipped quietly: the officer's notice is fresher.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from maildesk.charter import Charter, Level
from maildesk.workdays import WorkCalendar

RESPONSIBLE = "responsible"

# Titles for the level names of the shipped charter; an office may give its own with `title_bn` /
# `title_en` on a level in charter.yaml.
LEVEL_TITLES = {
    "reminder": ("সময়সীমার আগে স্মরণ", "reminder before the due date"),
    "overdue": ("সময়সীমা অতিক্রান্ত", "overdue"),
    "grs": ("অভিযোগ নিষ্পত্তি কর্মকর্তা (অনিক)", "grievance redress officer (GRO)"),
    "appeal": ("আপিল কর্মকর্তা", "appeal officer"),
    "supervisor": ("উর্ধ্বতন কর্তৃপক্ষ", "supervising authority"),
}


def level_due(level: Level, due_at: datetime, calendar: WorkCalendar) -> datetime:
    """A reminder (negative days) fires at the opening of that earlier working day; a level N working days
    past the due date fires at the same time of day N working days after the due day."""
    local = calendar.local(due_at)
    day = calendar.add_working_days(local.date(), level.after_working_days)
    if level.after_working_days < 0:
        return calendar.office_open(day)
    return datetime.combine(day, local.timetz())


def next_escalation_at(due_at: datetime | None, done_index: int, ladder: tuple[Level, ...],
                       calendar: WorkCalendar) -> datetime | None:
    """When the first level after `done_index` fires, or None if the ladder is spent or there is no due date."""
    if due_at is None:
        return None
    for level in ladder:
        if level.index > done_index:
            return level_due(level, due_at, calendar)
    return None


def level_title(charter: Charter, level: Level | None) -> tuple[str, str]:
    """(Bengali, English) name of a level for people: the charter's own words, else the shipped ones."""
    if level is None:
        return ("—", "—")
    raw = charter.raw.get("escalation") or []
    entry = raw[level.index] if level.index < len(raw) and isinstance(raw[level.index], dict) else {}
    bn, en = LEVEL_TITLES.get(level.name, (level.name, level.name))
    return (str(entry.get("title_bn") or bn), str(entry.get("title_en") or en))


def level_by_index(ladder: tuple[Level, ...], index: int) -> Level | None:
    return next((lv for lv in ladder if lv.index == index), None)


def notify_keys(levels, responsible: str) -> tuple[str, ...]:
    """Officer keys named by these levels, "responsible" replaced by the ticket's officer, each once."""
    keys: dict[str, None] = {}
    for level in levels:
        for who in level.notify:
            keys[responsible if who == RESPONSIBLE else who] = None
    return tuple(keys)


def ladder_people(charter: Charter) -> tuple[str, ...]:
    """Everyone the ladder can name: its explicit officers plus every officer responsible for a service
    (who "responsible" means for some ticket). These people receive the weekly digest."""
    keys: dict[str, None] = {}
    if any(RESPONSIBLE in lv.notify for lv in charter.ladder):
        keys[charter.office.default_officer] = None
        for service in charter.services.values():
            keys[service.officer] = None
    for lv in charter.ladder:
        for who in lv.notify:
            if who != RESPONSIBLE:
                keys[who] = None
    return tuple(keys)


@dataclass(frozen=True)
class Step:
    """What one sweep does for one ticket."""

    send: Level | None  # the level to send now; None when the only levels reached are stale reminders
    skipped: tuple[Level, ...]  # lower levels reached at the same time, never to be sent
    notify: tuple[str, ...]  # officer keys to write to
    tell_citizen: bool
    done_index: int  # the ticket's escalation_level afterwards


def plan(due_at: datetime | None, done_index: int, ladder: tuple[Level, ...], calendar: WorkCalendar,
         now: datetime, responsible: str, opened_at: datetime | None = None) -> Step | None:
    """The levels after `done_index` that have fired by `now`, folded into one Step; None if none has."""
    if due_at is None:
        return None
    reached = [lv for lv in ladder if lv.index > done_index and level_due(lv, due_at, calendar) <= now]
    if not reached:
        return None

    def stale(lv: Level) -> bool:
        return lv.after_working_days < 0 and opened_at is not None and level_due(lv, due_at, calendar) <= opened_at

    live = [lv for lv in reached if not stale(lv)]
    top = reached[-1]
    if not live:
        return Step(send=None, skipped=tuple(reached), notify=(), tell_citizen=False, done_index=top.index)
    return Step(
        send=top,
        skipped=tuple(reached[:-1]),
        notify=notify_keys(live, responsible),
        tell_citizen=any(lv.tell_citizen for lv in live),
        done_index=top.index,
    )
