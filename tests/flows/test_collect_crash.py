"""Collect survives being killed and losing its database: nothing lost, nothing recorded twice.

Each test runs collect as its own process (`python -m flows.collect`, the same flow the CLI runs)
over a 200-file inbox, breaks it mid-run, and checks the database and folders before and after a
re-run. The PostgreSQL test stops a private server it starts itself (initdb in a temporary folder),
so the shared server on 5432 that other test workers use in parallel is never touched.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from config.settings import PROJECT_ROOT, get_settings
from db import models
from db.engine import dispose_engine, make_engine
from demo.data import school_values
from schemas.reference import load_reference
from tasks.template.build import build_template

pytestmark = pytest.mark.slow

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
FILE_COUNT = 200
BATCH_SIZE = 10
RUN_TIMEOUT = 240


@pytest.fixture(scope="module")
def source_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Write 200 distinct workbooks (every school once, some twice) with received times as mtimes."""
    folder = tmp_path_factory.mktemp("source")
    reference = load_reference(get_settings().reference_dir)
    cycle = reference.calendar.get("2023-H1")
    assert cycle is not None
    schools = [school for school in reference.expected_schools(cycle.id)]
    start = dt.datetime(2023, 4, 24, 7, 0, tzinfo=HCM)
    for number in range(FILE_COUNT):
        school = schools[number % len(schools)]
        values = school_values(school, cycle, 11)
        values.general["reporter"] = f"Người báo cáo {number}"  # resubmissions differ in their bytes
        if number % 10 == 3:
            values.rows["reach"][1].update(total=5, female=9)  # a tenth are rejected
        path = folder / f"{number:03d} {school.code} báo cáo.xlsx"
        path.write_bytes(build_template(school, cycle, values))
        moment = (start + dt.timedelta(minutes=37 * number)).timestamp()
        os.utime(path, (moment, moment))
    return folder


@pytest.fixture
def inbox(source_files: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    shutil.copytree(source_files, folder)  # copy2: modification times (received times) kept
    return folder


def _environment(database_url: str, archive: Path, api_url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GEC_", "PYTEST_"))}
    env.update(GEC_DATABASE_URL=database_url, GEC_ARCHIVE_DIR=str(archive), PREFECT_API_URL=api_url)
    return env


def _start(env: dict[str, str], inbox: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start a collect process in its own session, so the test can kill it with all its children."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "flows.collect", "--inbox", str(inbox), "--batch-size", str(BATCH_SIZE)],
            cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )


def _archived(archive: Path) -> list[Path]:
    return [path for path in archive.rglob("*") if path.is_file()] if archive.exists() else []


def _wait_for_archive(process: subprocess.Popen[bytes], archive: Path, at_least: int, log: Path) -> None:
    deadline = time.monotonic() + RUN_TIMEOUT
    while len(_archived(archive)) < at_least:
        if process.poll() is not None:
            pytest.fail(f"collect exited ({process.returncode}) before archiving {at_least} files:\n"
                        + log.read_text(errors="replace")[-3000:])
        if time.monotonic() > deadline:
            pytest.fail("collect archived nothing in time:\n" + log.read_text(errors="replace")[-3000:])
        time.sleep(0.02)


def _finish(process: subprocess.Popen[bytes], log: Path) -> int:
    try:
        return process.wait(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        pytest.fail("collect did not finish:\n" + log.read_text(errors="replace")[-3000:])


def _counts(database_url: str) -> dict[str, Any]:
    engine = make_engine(database_url)
    sub, dec = models.Submission.__table__, models.Decision.__table__
    general, reach = models.GeneralInfo.__table__, models.ReachRow.__table__

    def count(what: Any) -> int:
        return conn.execute(select(func.count()).select_from(what)).scalar_one()

    def distinct(column: Any) -> int:
        return conn.execute(select(func.count(func.distinct(column)))).scalar_one()

    def lacking(child: Any) -> int:
        return count(sub.select().where(~sub.c.id.in_(select(child.c.submission_id))).subquery())

    with engine.connect() as conn:
        return {
            "received_files": count(models.ReceivedFile.__table__),
            "distinct_sha": distinct(models.ReceivedFile.sha256),
            "receipts": count(models.FileReceipt.__table__),
            "submissions": count(sub),
            "submitted_files": distinct(sub.c.received_file_id),
            # A submission's writes are one transaction: none may lack its decision or its sheet rows.
            "without_decision": lacking(dec),
            "without_general": lacking(general),
            "reach_rows": count(reach),
            "decisions": count(dec),
        }


def _assert_consistent(counts: dict[str, Any]) -> None:
    assert counts["received_files"] == counts["distinct_sha"] == counts["receipts"]
    assert counts["submissions"] == counts["submitted_files"] == counts["decisions"]
    assert counts["without_decision"] == 0 and counts["without_general"] == 0
    assert counts["reach_rows"] == 6 * counts["submissions"]


def _assert_nothing_lost(names: set[str], inbox: Path, archive: Path) -> list[str]:
    """Check every file is in the inbox or archived once as `<cycle>/<state>/<id>-<name>`; return those."""
    left = [path.name for path in inbox.iterdir()]
    archived = [path.name.split("-", 1)[1] for path in _archived(archive)]
    assert sorted(left + archived) == sorted(names)
    for path in _archived(archive):
        cycle, state, _ = path.relative_to(archive).parts
        assert cycle == "2023-H1" and state in ("accepted", "rejected", "superseded")
    return archived


def test_collect_killed_mid_run_then_rerun_records_every_file_once(
    prefect_harness: str, inbox: Path, tmp_path: Path
) -> None:
    names = {path.name for path in inbox.iterdir()}
    database_url = f"sqlite:///{tmp_path / 'gec.sqlite3'}"
    archive, log = tmp_path / "archive", tmp_path / "collect.log"
    env = _environment(database_url, archive, prefect_harness)
    try:
        process = _start(env, inbox, log)
        _wait_for_archive(process, archive, BATCH_SIZE, log)
        os.killpg(process.pid, signal.SIGKILL)  # the process and anything it started
        process.wait()
        archived = _assert_nothing_lost(names, inbox, archive)
        assert BATCH_SIZE <= len(archived) < FILE_COUNT, "the kill must land mid-run"
        _assert_consistent(_counts(database_url))

        assert _finish(_start(env, inbox, log), log) == 0, log.read_text(errors="replace")[-3000:]
        assert _assert_nothing_lost(names, inbox, archive) and not list(inbox.iterdir())
        counts = _counts(database_url)
        _assert_consistent(counts)
        assert counts["received_files"] == counts["submissions"] == FILE_COUNT
    finally:
        dispose_engine(database_url)


# --------------------------------------------------------------------------------------------------
# A private PostgreSQL server to stop


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _postgres_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    path = str(found[-1]) if found else shutil.which(name)
    if not path:
        pytest.fail(f"PostgreSQL's {name} is not installed (scripts/install-system-deps.sh installs it)")
    return path


class PrivateServer:
    """A PostgreSQL cluster in a temporary folder on its own port, run as the postgres user when root."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="gec-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self.as_owner: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            import pwd

            owner = pwd.getpwnam("postgres")
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
            self.as_owner = ["runuser", "-u", "postgres", "--"]

    def _run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.as_owner, *command], check=check, capture_output=True, text=True,
                              timeout=120)

    def init(self) -> None:
        self._run(_postgres_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8", "--locale=C")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(_postgres_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "server.log"),
                  "-o", options, "-w", "-t", "60", "start")
        for _ in range(60):
            ready = self._run(_postgres_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port),
                              check=False)
            if ready.returncode == 0:
                return
            time.sleep(0.5)
        pytest.fail("the private PostgreSQL server did not become ready")

    def stop(self) -> None:
        self._run(_postgres_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop",
                  check=False)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivateServer]:
    server = PrivateServer()
    try:
        server.init()
        server.start()
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute("CREATE DATABASE gec")
        yield server
    finally:
        server.remove()


def test_postgres_stopped_mid_run_fails_cleanly_then_rerun_completes(
    prefect_harness: str, private_postgres: PrivateServer, inbox: Path, tmp_path: Path
) -> None:
    names = {path.name for path in inbox.iterdir()}
    database_url = private_postgres.url("gec")
    archive, log = tmp_path / "archive", tmp_path / "collect.log"
    env = _environment(database_url, archive, prefect_harness)
    try:
        process = _start(env, inbox, log)
        _wait_for_archive(process, archive, BATCH_SIZE, log)
        try:
            private_postgres.stop()
            code = _finish(process, log)
        finally:
            private_postgres.start()  # always back up, whatever happened above
        output = log.read_text(errors="replace")
        assert code == 1, output[-3000:]
        assert f"error: Cannot reach the postgresql database 127.0.0.1:{private_postgres.port}/gec" in output
        dispose_engine(database_url)  # its pooled connections died with the server
        archived = _assert_nothing_lost(names, inbox, archive)
        assert len(archived) < FILE_COUNT
        _assert_consistent(_counts(database_url))  # nothing half-written

        assert _finish(_start(env, inbox, log), log) == 0, log.read_text(errors="replace")[-3000:]
        assert not list(inbox.iterdir())
        _assert_nothing_lost(names, inbox, archive)
        counts = _counts(database_url)
        _assert_consistent(counts)
        assert counts["received_files"] == counts["submissions"] == FILE_COUNT
    finally:
        dispose_engine(database_url)
