"""The task runner is a setting (SPEC §6, §8): GEC_TASK_RUNNER=threads or a Dask scheduler address.

The same flows run once with threads and once on a local Dask cluster of two worker processes, each
over the same inbox into a fresh PostgreSQL schema; the database they leave and the report they
write must be identical. The cluster's task stream shows what Dask actually executed: collect's
checks on both workers, several batches at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import LargeBinary, select, text

from config.settings import Settings, get_settings

H1 = "2023-H1"
AS_OF = dt.datetime.fromisoformat("2023-05-06T08:00:00+07:00")
DEMO_SEED = 11
BATCH_SIZE = 25  # several batches, so a fan-out has something to spread
# Columns stamped with the wall clock when a row is written: they differ between any two runs.
CLOCK_COLUMNS = {"updated_at", "stored_at", "recorded_at", "decided_at", "started_at", "finished_at",
                 "created_at", "sent_at"}
# A report run's row records where and when it wrote; the files themselves are compared instead.
SKIPPED_TABLES = {"report_runs"}


def test_task_runner_is_a_setting() -> None:
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    from flows.runner import task_runner_from_settings

    assert isinstance(task_runner_from_settings(Settings(task_runner="threads")), ThreadPoolTaskRunner)
    dask = task_runner_from_settings(Settings(task_runner="tcp://127.0.0.1:8786"))
    assert isinstance(dask, DaskTaskRunner) and dask.address == "tcp://127.0.0.1:8786"
    with pytest.raises(ValueError, match="GEC_TASK_RUNNER"):
        task_runner_from_settings(Settings(task_runner="processes"))


@dataclass
class Outcome:
    """What one run of the flows left behind."""

    summary: dict[str, Any]
    tables: dict[str, list[tuple[Any, ...]]]
    report: dict[str, str]
    dask_tasks: list[str]
    checks: list[tuple[str, float, float]]  # check_files on Dask: (worker, start, stop)


def _snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Return every application table's rows, ordered, without clock columns; binaries as sha256."""
    from db import models
    from db.engine import make_engine

    snapshot = {}
    with make_engine(url).connect() as conn:
        for table in models.Base.metadata.sorted_tables:
            if table.name in SKIPPED_TABLES:
                continue
            columns = [column for column in table.columns if column.name not in CLOCK_COLUMNS]
            rows = conn.execute(select(*columns).order_by(*table.primary_key.columns)).all()
            snapshot[table.name] = [
                tuple(hashlib.sha256(value).hexdigest() if isinstance(column.type, LargeBinary) and value
                      else value for column, value in zip(columns, row, strict=True))
                for row in rows
            ]
    return snapshot


def _wipe(url: str) -> None:
    """Drop everything in the database's public schema, as if it were new."""
    from db.engine import dispose_engine, new_engine

    dispose_engine(url)
    engine = new_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def _configure(monkeypatch: pytest.MonkeyPatch, root: Path, url: str, runner: str, demo: Path) -> None:
    """Point the settings at a fresh copy of the demo inbox, new archive and output folders."""
    # The same paths for every run: a receipt records the file's path, so they must not differ.
    shutil.rmtree(root, ignore_errors=True)
    inbox = root / "inbox"
    inbox.mkdir(parents=True)
    for path in demo.iterdir():
        if path.suffix != ".json":
            shutil.copy2(path, inbox / path.name)  # copy2: the modification time is the received time
    for key, value in {"GEC_DATABASE_URL": url, "GEC_INBOX_DIR": str(inbox),
                       "GEC_ARCHIVE_DIR": str(root / "archive"), "GEC_OUTPUT_DIR": str(root / "outputs"),
                       "GEC_TASK_RUNNER": runner}.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()


def _run_flows(url: str, root: Path, client: Any | None) -> Outcome:
    """Collect the inbox and build the H1 report with the configured task runner."""
    from flows.collect import collect_submissions
    from flows.report import build_cycle_report
    from flows.runner import task_runner_from_settings

    _wipe(url)
    recording: Any = contextlib.nullcontext(None)
    if client is not None:
        from distributed import get_task_stream

        recording = get_task_stream(client)
    with recording as recorded:
        collect = collect_submissions.with_options(task_runner=task_runner_from_settings())
        summary = collect(batch_size=BATCH_SIZE)
        paths = build_cycle_report.with_options(task_runner=task_runner_from_settings())(H1, AS_OF)
    stream = list(recorded.data) if recorded is not None else []
    folder = root / "outputs" / H1 / "2023-05-06"
    # The PDF (made where LibreOffice is installed) dates itself: outside the byte-identical promise.
    report = {str(Path(path).relative_to(folder)): hashlib.sha256(Path(path).read_bytes()).hexdigest()
              for path in paths if not path.endswith(".pdf")}
    checks = [(str(item["worker"]), part["start"], part["stop"]) for item in stream
              if str(item["key"]).startswith("check_files") for part in item["startstops"]
              if part["action"] == "compute"]
    return Outcome(json.loads(summary.model_dump_json()), _snapshot(url), report,
                   sorted({str(item["key"]).split("-")[0] for item in stream}), checks)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(600)  # ~2 min alone; twice that on a loaded 2-core machine
def test_flows_on_dask_store_exactly_what_threads_store(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_harness: str
) -> None:
    from distributed import Client, LocalCluster

    from demo.data import generate_demo_data
    from schemas.reference import load_reference
    from tests.support.prefect_server import clean_env

    demo = tmp_path / "demo"
    generate_demo_data(load_reference(get_settings().reference_dir), H1, demo, seed=DEMO_SEED)

    root = tmp_path / "run"
    _configure(monkeypatch, root, postgres_url, "threads", demo)
    threads = _run_flows(postgres_url, root, None)
    assert threads.summary["files_seen"] > 2 * BATCH_SIZE

    # Dask worker processes inherit the environment as it is when they start: configure first.
    _configure(monkeypatch, root, postgres_url, "threads", demo)
    for key, value in clean_env().items():
        if key.startswith("PYTHONPYCACHE"):
            monkeypatch.setenv(key, value)  # the workers reuse compiled bytecode (see clean_env)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        monkeypatch.setenv("GEC_TASK_RUNNER", cluster.scheduler_address)
        get_settings.cache_clear()
        dask = _run_flows(postgres_url, root, client)

    assert dask.summary == threads.summary
    assert dask.tables.keys() == threads.tables.keys()
    for table, rows in threads.tables.items():
        assert dask.tables[table] == rows, f"{table} differs between the Dask and the threads run"
    assert dask.tables["submissions"], "the runs stored submissions"
    assert dask.report == threads.report, "the same report, byte for byte"
    # Dask really did the parsing and validation (the threads run sent it nothing).
    assert "check_files" in dask.dask_tasks, dask.dask_tasks
    assert threads.dask_tasks == []
    # Real fan-out: batches are checked on both workers. Whether two checks overlap in time depends on
    # the machine's load, so that is measured (bench/dask_fanout.py), not asserted here.
    assert len({worker for worker, _start, _stop in dask.checks}) == 2, dask.checks
