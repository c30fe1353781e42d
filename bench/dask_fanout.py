"""Time collect on a local Dask cluster of one worker process, then of two (figures, not asserts).

Run: .venv/bin/python bench/dask_fanout.py [--workbooks 1000] [--batch-size 100]

Writes N workbooks like bench/ingest.py, then for 1 and 2 Dask worker processes (one thread each, on
loopback, started fresh) collects the same drop folder into a fresh PostgreSQL database with
GEC_TASK_RUNNER set to the cluster's scheduler. Parsing and validation run on the workers, several
batches in flight; storing stays in the flow-run process. Prints each run's seconds, workbooks per
second, the speed-up of two workers over one (the target on 2 cores is >= 1.6) and the load average,
since the machine is shared and a busy neighbour takes the second core away.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# Its own Prefect home: bench/ingest.py may run at the same time, and the API's SQLite file would lock.
os.environ.setdefault("PREFECT_HOME", str(BENCH.parent / "data" / "prefect-bench-dask"))
Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

import ingest  # noqa: E402  (bench/ingest.py: the workbook writer and the throwaway databases)


def collect_on_cluster(workers: int, source: Path, work: Path, url: str, batch_size: int
                       ) -> tuple[float, str]:
    """Collect a fresh copy of `source` on a new cluster of `workers` processes; return seconds, summary."""
    from distributed import Client, LocalCluster

    from config.settings import get_settings
    from db.engine import dispose_engines

    inbox, archive = work / "inbox", work / "archive"
    shutil.rmtree(inbox, ignore_errors=True)
    shutil.rmtree(archive, ignore_errors=True)
    shutil.copytree(source, inbox)
    # Workers inherit the environment as it is when they start: configure first.
    os.environ.update(GEC_DATABASE_URL=url, GEC_INBOX_DIR=str(inbox), GEC_ARCHIVE_DIR=str(archive))
    get_settings.cache_clear()
    dispose_engines()
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.wait_for_workers(workers)
        os.environ["GEC_TASK_RUNNER"] = cluster.scheduler_address
        get_settings.cache_clear()
        from flows.collect import collect_submissions
        from flows.runner import task_runner_from_settings

        collect = collect_submissions.with_options(task_runner=task_runner_from_settings())
        collect(inbox_dir=str(work / "empty"))  # migrations, registry, worker imports: not timed
        started = time.perf_counter()
        summary = collect(inbox_dir=str(inbox), batch_size=batch_size)
        seconds = time.perf_counter() - started
    return seconds, summary.one_line()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workbooks", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="gec-dask-bench-"))
    source = work / "source"
    source.mkdir()
    (work / "empty").mkdir()
    names: list[str] = []
    try:
        built = ingest.write_inbox(source, args.workbooks)
        print(f"workbooks written: {args.workbooks} in {built:.1f} s (not timed below)")
        timings = {}
        for workers in (1, 2):
            names.append(f"gec_bench_{secrets.token_hex(4)}")
            url = ingest.create_database(names[-1])
            load = os.getloadavg()[0]
            seconds, line = collect_on_cluster(workers, source, work, url, args.batch_size)
            timings[workers] = seconds
            print(f"{workers} Dask worker(s): {seconds:.1f} s = {args.workbooks / seconds:.0f} workbooks/s "
                  f"(load average {load:.1f} before, {os.getloadavg()[0]:.1f} after; {line})")
        print(f"speed-up of two workers over one: {timings[1] / timings[2]:.2f}x  "
              f"(target >= 1.6 on 2 idle cores)")
    finally:
        from db.engine import dispose_engines

        dispose_engines()
        for name in names:
            ingest.drop_database(name)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
