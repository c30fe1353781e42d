"""One collect at a time (issue 11 #10): a lock held for a whole collect run, across processes.

Two collects started together used to store each file once (the database's unique keys saw to
that) but the second one's summary was false ("20 left in the inbox" when the first had archived
them) and both re-derived the same states at once. The lock lives where the data does:

- PostgreSQL: a session advisory lock, held by one dedicated connection for the run; the server
  releases it when that connection ends, so a killed run never leaves it taken.
- SQLite: an `fcntl` lock on a file next to the database file (`gec.sqlite3.collect.lock`); the
  kernel releases it when the process dies. An in-memory database needs none.

A second run waits for the first (polling, at most `wait_seconds`: GEC_COLLECT_LOCK_WAIT, default
10 minutes) and then
sees what the first left; past the wait it raises `CollectBusy`, whose message is the one line an
operator reads.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, text

log = logging.getLogger(__name__)

# Advisory lock key: any fixed 64-bit number the application uses for nothing else ("GECCOLL").
COLLECT_LOCK_KEY = 0x4745_4343_4F4C_4C
WAIT_SECONDS = 600.0
POLL_SECONDS = 0.5


class CollectBusy(RuntimeError):
    """Another collect run held the lock for longer than this run would wait."""


def lock_file(engine: Engine) -> Path | None:
    """Return the lock file of a SQLite database (None for an in-memory one)."""
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return Path(database).with_name(Path(database).name + ".collect.lock")


@contextlib.contextmanager
def collect_lock(engine: Engine, wait_seconds: float | None = None, name: str = "collect") -> Iterator[float]:
    """Hold the collect lock for the block; yield the seconds waited; raise CollectBusy past the wait."""
    if wait_seconds is None:
        wait_seconds = float(os.environ.get("GEC_COLLECT_LOCK_WAIT", WAIT_SECONDS))
    started = time.monotonic()
    if engine.dialect.name == "postgresql":
        with _advisory_lock(engine, started, wait_seconds, name) as waited:
            yield waited
    else:
        with _file_lock(lock_file(engine), started, wait_seconds, name) as waited:
            yield waited


def _busy(name: str, waited: float) -> CollectBusy:
    return CollectBusy(f"another {name} run is still in progress (waited {waited:.0f} s); try again later")


def _waited(started: float, name: str) -> float:
    waited = time.monotonic() - started
    if waited >= POLL_SECONDS:
        log.info("%s: waited %.1f s for another run to finish", name, waited)
    return waited


@contextlib.contextmanager
def _advisory_lock(engine: Engine, started: float, wait_seconds: float, name: str) -> Iterator[float]:
    with engine.connect() as conn:
        while not conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": COLLECT_LOCK_KEY}).scalar():
            conn.rollback()  # no transaction left open between polls
            if time.monotonic() - started >= wait_seconds:
                raise _busy(name, time.monotonic() - started)
            time.sleep(POLL_SECONDS)
        conn.commit()
        try:
            yield _waited(started, name)
        finally:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": COLLECT_LOCK_KEY})
                conn.commit()
            except Exception as error:  # closing the connection releases it anyway
                log.warning("%s: advisory unlock failed (%s)", name, type(error).__name__)
                conn.invalidate()


@contextlib.contextmanager
def _file_lock(path: Path | None, started: float, wait_seconds: float, name: str) -> Iterator[float]:
    if path is None:
        yield 0.0
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() - started >= wait_seconds:
                    raise _busy(name, time.monotonic() - started) from None
                time.sleep(POLL_SECONDS)
        try:
            yield _waited(started, name)
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        os.close(handle)
