"""Engine, sessions and schema upgrades: the only place that knows how to reach the database."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from maildesk.store.models import KeyValue

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    """An engine with the settings each backend needs for safe concurrent use."""
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            # WAL lets readers (the CLI) run while the worker writes; busy timeout rides out short locks.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if url.startswith("postgresql"):
        # A lock held too long (a stuck migration, a manual query) fails the cycle, which is retried,
        # instead of stalling the worker forever.
        return create_engine(url, pool_pre_ping=True, connect_args={"options": "-c lock_timeout=30000"})
    return create_engine(url, pool_pre_ping=True)


def alembic_config(engine: Engine):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def head_revisions() -> set[str]:
    """The newest migration(s), read from the migration files themselves."""
    revisions, replaced = set(), set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        if m := re.search(r"^revision\s*=\s*['\"]([^'\"]+)['\"]", text, re.M):
            revisions.add(m.group(1))
        if m := re.search(r"^down_revision\s*=\s*(.+)$", text, re.M):
            replaced.update(re.findall(r"['\"]([^'\"]+)['\"]", m.group(1)))
    return revisions - replaced


def at_head(engine: Engine) -> bool:
    """The schema is already the newest: no need to load Alembic (about 11 MB and 0.3 s for every start)."""
    try:
        with engine.connect() as conn:
            current = set(conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars())
    except Exception:  # no schema yet
        return False
    return bool(current) and current == head_revisions()


def upgrade(engine: Engine) -> None:
    """Create or upgrade the schema to the newest migration (idempotent)."""
    if at_head(engine):
        return
    from alembic import command

    cfg = alembic_config(engine)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Workers starting together: one migrates, the others wait here and then find nothing to do.
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7104202601)")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def desk_secret(sessions: sessionmaker[Session], configured: str) -> str:
    """The HMAC key: the configured one, else one generated once and kept in the database."""
    if configured:
        return configured
    with sessions.begin() as s:
        row = s.get(KeyValue, "hmac_secret")
        if row is None:
            row = KeyValue(key="hmac_secret", value=secrets.token_hex(32))
            s.add(row)
        return row.value
