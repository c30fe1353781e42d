"""One collect at a time (issue 11 #10): the lock across processes, and two collects started together.

Two collects started together used to store each file once but the second reported "20 left in the
inbox" with the inbox empty; with the lock the second waits for the first and reports what it saw.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from config.settings import PROJECT_ROOT, get_settings
from db import models
from db.engine import dispose_engine, make_engine
from demo.data import school_values
from schemas.reference import load_reference
from tasks.storage.lock import CollectBusy, collect_lock, lock_file
from tasks.template.build import build_template

FILE_COUNT = 20

_HOLDER = r"""
import sys, time
from sqlalchemy import create_engine
from tasks.storage.lock import collect_lock
engine = create_engine(sys.argv[1])
with collect_lock(engine, wait_seconds=0):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
print("released", flush=True)
"""


def _holder(url: str, seconds: float) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, "-c", _HOLDER, url, str(seconds)], cwd=PROJECT_ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.strip() == "held", process.stderr.read() if process.stderr else line
    return process


def test_a_second_holder_waits_or_gives_up_with_a_clear_line(engine: Engine, database_url: str) -> None:
    if engine.dialect.name == "sqlite":
        engine.connect().close()  # the database file exists; the lock file sits beside it
        assert lock_file(engine) is not None
    holder = _holder(engine.url.render_as_string(hide_password=False), 3.0)
    try:
        with pytest.raises(CollectBusy, match="another collect run is still in progress"), \
                collect_lock(engine, wait_seconds=0.6):
            pass
        started = time.monotonic()
        with collect_lock(engine, wait_seconds=60) as waited:
            # Acquired only once the other process let go.
            assert holder.poll() is not None or holder.wait(timeout=10) == 0
            assert waited >= 1.0 and time.monotonic() - started >= 1.0
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_leaves_the_lock_free(engine: Engine, database_url: str) -> None:
    engine.connect().close()
    holder = _holder(engine.url.render_as_string(hide_password=False), 60.0)
    holder.kill()
    holder.wait()
    with collect_lock(engine, wait_seconds=10) as waited:
        assert waited < 10


# --------------------------------------------------------------------------------------------------
# Two real collect processes


@pytest.fixture(scope="module")
def prefect_api_url() -> Iterator[str]:
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield str(PREFECT_API_URL.value())


@pytest.fixture(scope="module")
def source_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("source")
    reference = load_reference(get_settings().reference_dir)
    cycle = reference.calendar.get("2023-H1")
    assert cycle is not None
    schools = list(reference.expected_schools(cycle.id))[:FILE_COUNT]
    for school in schools:
        content = build_template(school, cycle, school_values(school, cycle, 11))
        (folder / f"{school.code} báo cáo.xlsx").write_bytes(content)
    return folder


@pytest.mark.slow
def test_two_collects_started_together_tell_the_truth(
    database_url: str, source_files: Path, prefect_api_url: str, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    shutil.copytree(source_files, inbox)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GEC_", "PYTEST_"))}
    env.update(GEC_DATABASE_URL=database_url, GEC_ARCHIVE_DIR=str(tmp_path / "archive"),
               PREFECT_API_URL=prefect_api_url)
    command = [sys.executable, "-m", "flows.collect", "--inbox", str(inbox), "--batch-size", "5"]
    runs = [subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    finished = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err[-2000:] for _, err in finished]
    summaries = [json.loads(out.strip().splitlines()[-1]) for out, _ in finished]

    assert not any(inbox.iterdir())
    # One run did the work; the other, waiting for it, found the inbox empty and says so.
    assert sorted(summary["files_seen"] for summary in summaries) == [0, FILE_COUNT]
    assert all(summary["left_in_inbox"] == [] for summary in summaries)
    assert sum(summary["archived"] for summary in summaries) == FILE_COUNT
    assert sum(summary["submissions"] for summary in summaries) == FILE_COUNT
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(select(func.count()).select_from(models.Submission)).scalar_one()
        assert stored == FILE_COUNT
    finally:
        dispose_engine(database_url)
