"""Pytest plugin: throwaway databases on both backends (SQLite file and PostgreSQL on loopback).

Register with `pytest_plugins = ["tests.support.databases"]` (or `-p tests.support.databases`).

- `database_url`: parametrised `sqlite` (a file under tmp_path) and `postgresql` (a fresh database
  `gec_test_<worker>_<random>` on 127.0.0.1:5432, dropped afterwards). The PostgreSQL case carries the
  `postgres` mark, so `-m "not postgres"` deselects it; it fails when the server is down.
  One backend only: `@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)`.
- `engine`: the cached engine of `database_url`, migrated to head (no reference data loaded).
- `configured_database`: `database_url` also set as GEC_DATABASE_URL, for code that reads settings.

Safe under pytest-xdist: every test gets its own database, named after its worker.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from config.settings import get_settings
from db.engine import dispose_engine, make_engine
from db.setup import upgrade_database

# The maintenance database to create test databases from; override for another server.
ADMIN_URL = os.environ.get("GEC_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = ("sqlite", pytest.param("postgresql", marks=pytest.mark.postgres))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres: needs the PostgreSQL server on 127.0.0.1:5432")


def _admin_conninfo() -> str:
    url = make_url(ADMIN_URL)
    return psycopg.conninfo.make_conninfo(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password or None,
        dbname=url.database or "postgres",
        connect_timeout=5,
    )


def _admin_connection() -> psycopg.Connection:
    return psycopg.connect(_admin_conninfo(), autocommit=True)


@pytest.fixture(scope="session")
def postgres_available() -> str | None:
    """Return None when the PostgreSQL server answers, else why it does not."""
    try:
        with _admin_connection() as connection:
            connection.execute("SELECT 1")
    except psycopg.OperationalError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return f"PostgreSQL not reachable ({first_line}); start it with `make postgres`"
    return None


def _database_name(worker: str) -> str:
    return f"gec_test_{worker}_{secrets.token_hex(4)}"


def _drop(name: str) -> None:
    with _admin_connection() as connection:
        # Pooled connections of the app or a crashed test would block DROP DATABASE.
        connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def postgres_url(postgres_available: str | None) -> Iterator[str]:
    """Yield the URL of a new empty PostgreSQL database, dropped after the test."""
    if postgres_available is not None:
        # The suite promises both backends: a missing server is a failure, not a skip (make test starts it).
        pytest.fail(postgres_available)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = _database_name(worker)
    with _admin_connection() as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(ADMIN_URL).set(drivername="postgresql+psycopg", database=name)
    rendered = url.render_as_string(hide_password=False)
    try:
        yield rendered
    finally:
        dispose_engine(rendered)
        _drop(name)


@pytest.fixture
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Yield the URL of a new SQLite file (its folder does not exist yet: make_engine creates it)."""
    path = tmp_path_factory.mktemp("sqlite") / "data" / "gec.sqlite3"
    url = f"sqlite:///{path}"
    try:
        yield url
    finally:
        dispose_engine(url)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    """Return the URL of an empty throwaway database, once per backend."""
    backend = request.param
    if backend == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    if backend == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    raise ValueError(f"unknown database backend {backend!r}; use sqlite or postgresql")


@pytest.fixture
def engine(database_url: str) -> Engine:
    """Return the engine of `database_url` with the schema migrated to head."""
    upgrade_database(database_url)
    return make_engine(database_url)


@pytest.fixture
def configured_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point the app's settings (GEC_DATABASE_URL) at `database_url` for one test."""
    monkeypatch.setenv("GEC_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        yield database_url
    finally:
        get_settings.cache_clear()  # monkeypatch restores the variable after this teardown
