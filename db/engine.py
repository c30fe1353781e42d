"""Engines and sessions: one engine per database URL, with the per-backend settings this app needs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from config.private_files import FOLDER_MODE, private_file
from config.settings import get_settings

# Seconds: a stopped server must fail a run quickly, not hang it (Prefect retries the task).
PG_CONNECT_TIMEOUT = 5
SQLITE_BUSY_TIMEOUT_MS = 15_000
# The PostgreSQL role public outputs run as (db/migrations/versions/0003_reporting_role.py).
REPORTING_ROLE = "gec_reporting"

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached: an infrastructure fault (CLI exit code 1), not bad data."""


def normalize_url(url: str | URL) -> URL:
    """Return the URL with this app's drivers: psycopg 3 for PostgreSQL, pysqlite for SQLite."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def describe_database(url: str | URL) -> str:
    """Name a database for messages and logs: host:port/dbname or the SQLite file, never a password."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite database {parsed.database or ':memory:'}"
    host = parsed.host or "localhost"
    port = parsed.port or (5432 if parsed.get_backend_name() == "postgresql" else "")
    return f"{parsed.get_backend_name()} database {host}:{port}/{parsed.database or ''}"


def make_engine(url: str | None = None) -> Engine:
    """Return the engine for `url` (default: the configured database), created once per URL."""
    parsed = normalize_url(url or get_settings().effective_database_url)
    key = parsed.render_as_string(hide_password=False)
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _create(parsed)
            _engines[key] = engine
        return engine


def reporting_engine(url: str | None = None) -> Engine:
    """Return the engine for public outputs: on PostgreSQL its sessions run as the reporting role.

    The role (migration 0003) cannot read incident rows, raw file content or outbox bodies, so a
    public report built through this engine cannot leak them; reading those fails with "permission
    denied". SQLite has no roles: there this is the plain engine.
    """
    parsed = normalize_url(url or get_settings().effective_database_url)
    if parsed.get_backend_name() != "postgresql":
        return make_engine(parsed.render_as_string(hide_password=False))
    key = _reporting_key(parsed)
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _create(parsed)
            event.listen(engine, "connect", _set_role(REPORTING_ROLE))
            _engines[key] = engine
        return engine


@contextmanager
def reporting_session(url: str | None = None) -> Iterator[Session]:
    """Yield a session of `reporting_engine` in one transaction."""
    with Session(reporting_engine(url), expire_on_commit=False) as session, session.begin():
        yield session


def dispose_engines() -> None:
    """Close every cached engine's connections and forget them (tests, before dropping a database)."""
    with _lock:
        engines = list(_engines.values())
        _engines.clear()
    for engine in engines:
        engine.dispose()


def dispose_engine(url: str) -> None:
    """Close and forget the cached engine for one URL, if any."""
    parsed = normalize_url(url)
    with _lock:
        engines = [_engines.pop(key, None)
                   for key in (parsed.render_as_string(hide_password=False), _reporting_key(parsed))]
    for engine in engines:
        if engine is not None:
            engine.dispose()


def _reporting_key(url: URL) -> str:
    return "reporting " + url.render_as_string(hide_password=False)


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """Yield a session in one transaction: committed on success, rolled back on error."""
    # expire_on_commit=False: callers read the rows they wrote after the block closes.
    with Session(engine or make_engine(), expire_on_commit=False) as session, session.begin():
        yield session


def check_connection(engine: Engine) -> None:
    """Connect once, raising DatabaseUnavailable with a clear message when the database is down."""
    with engine.connect() as connection:
        connection.exec_driver_sql("SELECT 1")


def new_engine(url: str | URL, *, foreign_keys: bool = True) -> Engine:
    """Return a new uncached engine without pooling (migrations and one-off admin work)."""
    return _create(normalize_url(url), pooled=False, foreign_keys=foreign_keys)


def _create(url: URL, *, pooled: bool = True, foreign_keys: bool = True) -> Engine:
    backend = url.get_backend_name()
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if not pooled:
        kwargs["poolclass"] = NullPool
    if backend == "sqlite":
        _make_parent_dir(url)
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    elif backend == "postgresql":
        kwargs["connect_args"] = {"connect_timeout": PG_CONNECT_TIMEOUT, "application_name": "gec-reports"}
    engine = create_engine(url, **kwargs)
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect(foreign_keys))
        event.listen(engine, "begin", _sqlite_begin)
    event.listen(engine, "handle_error", _unavailable(describe_database(url)))
    return engine


def _make_parent_dir(url: URL) -> None:
    """Create a SQLite file's folder (0700) and the file itself (0600): it holds incident counts."""
    database = url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        path = Path(database).expanduser()
        try:
            path.parent.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
            if not path.exists():
                # SQLite would create it with the process umask (often 0644); its -wal and -shm
                # files copy the database file's mode.
                private_file(path)
        except OSError as error:
            raise DatabaseUnavailable(
                f"Cannot create the {describe_database(url)}: {error.strerror}"
            ) from error


def _sqlite_on_connect(foreign_keys: bool) -> Any:
    """Return a connect hook setting this app's SQLite pragmas and transaction control."""

    def hook(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from the sqlite3 driver (see _sqlite_begin): its legacy mode skips BEGIN
        # before SELECT, DDL and SAVEPOINT, which breaks savepoints and transactional migrations.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # Off by default in SQLite; the schema's foreign keys must hold as on PostgreSQL.
            # Migrations turn it off: batch mode rebuilds tables, which would trip or cascade them.
            cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
            # WAL: readers (gec status, reports) do not block the collect run's writes.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    return hook


def _set_role(role: str) -> Any:
    """Return a connect hook switching a new PostgreSQL session to `role` for its whole life."""

    def hook(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f'SET SESSION ROLE "{role}"')
        # Committed: a SET inside a transaction that is rolled back would be undone.
        dbapi_connection.commit()

    return hook


def _sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN")


def _unavailable(description: str) -> Any:
    """Return a handle_error hook turning connection failures into DatabaseUnavailable."""

    def hook(context: ExceptionContext) -> BaseException | None:
        # A failed pre-ping is retried by the pool with a fresh connection: let it.
        if context.is_pre_ping:
            return None
        if context.connection is not None and not context.is_disconnect:
            return None  # a statement failed on a live connection: not an availability problem
        reason = str(context.original_exception).strip().splitlines()
        detail = reason[0] if reason else type(context.original_exception).__name__
        return DatabaseUnavailable(f"Cannot reach the {description}: {detail}")

    return hook
