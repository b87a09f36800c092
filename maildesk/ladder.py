"""When each rung of the grievance ladder fires for a ticket: pure arithmetic on the work calendar."""

from __future__ import annotations

from datetime import datetime

from maildesk.charter import Level
from maildesk.workdays import WorkCalendar


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
