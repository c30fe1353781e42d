"""The restore drill of docs/operations.md §9 (issue 11 #12): back up, wipe, restore, lose nothing.

Real submissions go through folder intake (raw store, checks, storage, archive); scripts/backup.sh
and scripts/restore.sh run as the operator runs them; the restored database and archive folder are
compared with what was there: every submission, raw file sha256, finding, decision and incident row,
and every archived file's bytes. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url

from config.settings import PROJECT_ROOT
from db import models
from db.engine import dispose_engine, make_engine
from db.setup import init_database
from demo.data import school_values
from schemas.reference import Cycle, CycleCalendar, Reference, School
from tasks.intake import folder as intake
from tasks.template.build import build_template
from tests.support.databases import ADMIN_URL, _admin_connection, _drop
from tests.support.stages import ingest

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
H1 = "2023-H1"
BACKUP, RESTORE = str(PROJECT_ROOT / "scripts" / "backup.sh"), str(PROJECT_ROOT / "scripts" / "restore.sh")


def _school(code: str, level: str) -> School:
    return School(code, f"Trường {code}", level, "cong_lap", "Phường 4", (f"{code.lower()}@truong.q8.test",),
                  True, None, None, frozenset())


@pytest.fixture(scope="module")
def reference() -> Reference:
    schools = (_school("MN001", "mam_non"), _school("TH001", "tieu_hoc"), _school("TH002", "tieu_hoc"))
    calendar = CycleCalendar([Cycle(H1, dt.date(2023, 1, 1), dt.date(2023, 4, 30), dt.date(2023, 5, 5))])
    return Reference({school.code: school for school in schools}, calendar, ())


@pytest.fixture
def second_database(database_url: str, tmp_path: Path) -> Iterator[str]:
    """Yield the URL of a new empty database of the same backend to restore into."""
    if make_url(database_url).get_backend_name() == "sqlite":
        yield f"sqlite:///{tmp_path / 'restored' / 'gec.sqlite3'}"
        return
    name = f"{make_url(database_url).database}_restored"
    with _admin_connection() as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(ADMIN_URL).set(drivername="postgresql+psycopg", database=name)
    rendered = url.render_as_string(hide_password=False)
    try:
        yield rendered
    finally:
        dispose_engine(rendered)
        _drop(name)


def _collect(engine: Engine, reference: Reference, inbox: Path, archive: Path) -> None:
    """Drop four workbooks in the inbox (accepted, rejected, corrected, unreadable) and collect them."""
    cycle = reference.calendar.get(H1)
    assert cycle is not None
    inbox.mkdir(parents=True)
    def values(code: str) -> Any:
        return copy.deepcopy(school_values(reference.schools[code], cycle, 9))

    wrong = values("TH001")
    wrong.rows["reach"][0]["female"] = int(wrong.rows["reach"][0]["total"]) + 3
    drops = {
        "mn001.xlsx": build_template(reference.schools["MN001"], cycle, values("MN001")),
        "th001-sai.xlsx": build_template(reference.schools["TH001"], cycle, wrong),
        "th001.xlsx": build_template(reference.schools["TH001"], cycle, values("TH001")),
        "th002.xlsx": b"not a workbook at all",
    }
    for minute, (name, content) in enumerate(drops.items()):
        path = inbox / name
        path.write_bytes(content)
        moment = dt.datetime(2023, 5, 2, 9, minute, tzinfo=HCM).timestamp()
        os.utime(path, (moment, moment))
    files = intake.read_inbox_files(intake.list_inbox(inbox))
    outcomes = ingest(engine, reference, files, max_bytes=20 * 1024 * 1024)
    assert sorted(outcome.state or "" for outcome in outcomes) == ["accepted", "accepted", "rejected",
                                                                    "rejected"]
    assert all(intake.archive_stored(outcomes, archive).values())


def _snapshot(engine: Engine, archive: Path) -> dict[str, Any]:
    """Return everything the office would miss: rows of the tables that matter and the archive's bytes."""
    tables = {
        "submissions": models.Submission.__table__, "decisions": models.Decision.__table__,
        "findings": models.Finding.__table__, "incidents": models.IncidentCount.__table__,
        "reach": models.ReachRow.__table__, "receipts": models.FileReceipt.__table__,
    }
    files = models.ReceivedFile.__table__
    with engine.connect() as conn:
        found: dict[str, Any] = {
            name: [tuple(row) for row in conn.execute(select(table).order_by(*table.primary_key))]
            for name, table in tables.items()
        }
        found["raw"] = [(row.id, row.sha256, hashlib.sha256(row.content).hexdigest(), row.original_name)
                        for row in conn.execute(select(files).order_by(files.c.id))]
    found["archive"] = {str(path.relative_to(archive)): hashlib.sha256(path.read_bytes()).hexdigest()
                        for path in sorted(archive.rglob("*")) if path.is_file()}
    return found


def _script(script: str, *args: str, database_url: str, archive: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GEC_DATABASE_URL": database_url, "GEC_ARCHIVE_DIR": str(archive)}
    return subprocess.run([script, *args], capture_output=True, text=True, timeout=300, env=env,
                          cwd=PROJECT_ROOT)


def test_restore_drill_loses_nothing(
    engine: Engine, database_url: str, second_database: str, reference: Reference, tmp_path: Path
) -> None:
    init_database(database_url, reference)
    archive = tmp_path / "archive"
    _collect(engine, reference, tmp_path / "inbox", archive)
    before = _snapshot(engine, archive)
    assert len(before["submissions"]) == 4 and len(before["archive"]) == 4
    assert before["findings"] and before["decisions"] and before["incidents"]

    made = _script(BACKUP, str(tmp_path / "backups"), database_url=database_url, archive=archive)
    assert made.returncode == 0, made.stderr
    backup = Path(made.stdout.strip().splitlines()[-1])
    assert backup.parent == tmp_path / "backups"
    assert oct(backup.stat().st_mode & 0o777) == oct(0o700)
    assert {oct(path.stat().st_mode & 0o777) for path in backup.iterdir()} == {oct(0o600)}

    # The disaster: the database and the archive folder are gone.
    dispose_engine(database_url)
    with make_engine(database_url).begin() as conn:
        models.Base.metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE alembic_version")
    dispose_engine(database_url)
    shutil.rmtree(archive)

    restored_archive = tmp_path / "restored-archive"
    done = _script(RESTORE, str(backup), database_url=second_database, archive=restored_archive)
    assert done.returncode == 0, done.stderr
    after = _snapshot(make_engine(second_database), restored_archive)
    assert after == before
    # The restored database is a working one: migrations agree it is at head.
    init_database(second_database, reference)

    # A restore never overwrites: the target now holds data, so a second one is refused.
    again = _script(RESTORE, str(backup), database_url=second_database, archive=tmp_path / "third")
    assert again.returncode == 1 and "restore into a new" in again.stderr


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_restore_refuses_a_damaged_backup(
    engine: Engine, database_url: str, reference: Reference, tmp_path: Path
) -> None:
    init_database(database_url, reference)
    archive = tmp_path / "archive"
    archive.mkdir()
    made = _script(BACKUP, str(tmp_path / "backups"), database_url=database_url, archive=archive)
    assert made.returncode == 0, made.stderr
    backup = Path(made.stdout.strip().splitlines()[-1])
    with (backup / "database.sqlite3").open("r+b") as stream:
        stream.seek(200)
        stream.write(b"\xff")
    target = tmp_path / "new" / "gec.sqlite3"
    done = _script(RESTORE, str(backup), database_url=f"sqlite:///{target}", archive=tmp_path / "new-archive")
    assert done.returncode == 1 and "damaged" in done.stderr
    assert not target.exists()


@pytest.mark.postgres
def test_postgres_tools_are_installed() -> None:
    # The drill on PostgreSQL needs the client tools of the server's major version or newer.
    for tool in ("pg_dump", "pg_restore"):
        assert shutil.which(tool), tool
    admin = make_url(ADMIN_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, connect_timeout=5) as connection:
        server = connection.info.server_version // 10000
    client = subprocess.run(["pg_dump", "--version"], capture_output=True, text=True).stdout
    assert int(client.split()[-1].split(".")[0]) >= server, client
