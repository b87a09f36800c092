"""The composition root: settings -> charter, classifier, calendar, database, clock for each office.

Nothing is created at import time; the CLI, the worker, the demo and the tests all call build_desk().
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from maildesk.charter import Charter, load_charter
from maildesk.errors import ConfigError
from maildesk.rules.classifier import Classifier
from maildesk.settings import OfficeSettings, Settings
from maildesk.store import db
from maildesk.workdays import WorkCalendar, load_holiday_calendar


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class OfficeDesk:
    """Everything one office needs: its charter, rules, calendar and mailbox."""

    key: str
    settings: OfficeSettings
    charter: Charter
    classifier: Classifier
    calendar: WorkCalendar


@dataclass
class Desk:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    offices: dict[str, OfficeDesk]
    secret: str = field(repr=False)
    clock: Callable[[], datetime] = utc_now

    def now(self) -> datetime:
        return self.clock()

    def close(self) -> None:
        self.engine.dispose()


def load_office(office: OfficeSettings, settings: Settings, years: range) -> OfficeDesk:
    charter = load_charter(office.charter_path)
    if office.key and office.key != charter.office.key:
        raise ConfigError(office.charter_path, "office.key",
                          f"is {charter.office.key!r} but {settings.path} names this office {office.key!r}")
    holidays = load_holiday_calendar(settings.holidays_dir, years)
    try:
        calendar = WorkCalendar(holidays, tz=charter.office.timezone, office_start=charter.office.office_start,
                                office_end=charter.office.office_end)
    except (ValueError, KeyError) as exc:
        raise ConfigError(office.charter_path, "office.timezone", str(exc)) from exc
    classifier = Classifier.from_charter(charter.raw, charter.path)
    return OfficeDesk(charter.office.key, office, charter, classifier, calendar)


def build_desk(settings: Settings, clock: Callable[[], datetime] | None = None, upgrade: bool = True) -> Desk:
    clock = clock or utc_now
    year = clock().year
    years = range(year - 1, year + 3)
    offices = {}
    for office in settings.offices:
        od = load_office(office, settings, years)
        if od.key in offices:
            raise ConfigError(office.charter_path, "office.key", f"two offices share the key {od.key!r}")
        offices[od.key] = od
    engine = db.make_engine(settings.database_url)
    if upgrade:
        db.upgrade(engine)
    sessions = db.session_factory(engine)
    secret = db.desk_secret(sessions, settings.hmac_secret)
    return Desk(settings=settings, engine=engine, sessions=sessions, offices=offices, secret=secret, clock=clock)
