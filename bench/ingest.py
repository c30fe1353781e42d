"""Time the collect flow end to end on PostgreSQL against a bare parse floor (figures, not asserts).

Run: .venv/bin/python bench/ingest.py [--workbooks 1000] [--schools N] [--batch-size 200] [--keep]

`--schools N` writes a synthetic registry of N schools (the shipped calendar and indicators) and
points GEC_REFERENCE_DIR at it, so a city-sized run (`--workbooks 50000 --schools 50000`) has one
school per workbook; without it the shipped district registry (150 schools) is used.

Writes N template-made workbooks (a tenth with a validation error, about a third of the schools
sending a correction later) into a temporary drop folder, creates a throwaway PostgreSQL database
(GEC_BENCH_POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432/postgres, to create it from),
and prints in one run:

- Prefect start-up (import, ephemeral API, an empty flow run) and a warm-up collect of an empty inbox
  (migrations, registry load): paid once per process, reported apart;
- the steady-state collect of the N files: seconds, workbooks per second;
- the bare parse floor: python-calamine reading the same files into memory (every sheet), nothing else;
- the ratio collect / floor (target <= 5), the same pipeline without Prefect (plain functions, a
  second database, run after the collect) to show the orchestration's share, and the peak RSS of
  this process and of its checking worker processes, with the RSS after every 1,000 workbooks stored
  (flat when nothing is held per file);
- the load average beside the figures: the machine is shared, so compare runs at similar load.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import multiprocessing
import os
import resource
import secrets
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# Figures, not a log: keep Prefect's per-task lines off the terminal.
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# Its own Prefect home, reused between runs (ephemeral API start ≈ 3 s instead of ≈ 10 s fresh) and not
# shared with another process's ephemeral server, whose SQLite file would be locked.
os.environ.setdefault("PREFECT_HOME", str(Path(__file__).resolve().parent.parent / "data" / "prefect-bench"))
# Prefect creates its database file but not the folder it lives in (a fresh clone has no data/).
Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

ADMIN_URL = os.environ.get("GEC_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _write_batch(job: tuple[Path, list[int], int]) -> None:
    """Write some of the workbooks (in a worker process, so the parent's peak RSS is the pipeline's).

    The registry is GEC_REFERENCE_DIR's (a synthetic one with --schools): workbook n is school n mod N.
    """
    from zoneinfo import ZoneInfo

    from config.settings import get_settings
    from demo.data import school_values
    from schemas.reference import load_reference
    from tasks.template.build import build_template

    folder, numbers, total = job
    reference = load_reference(get_settings().reference_dir)
    cycle = reference.calendar.get("2023-H1")
    assert cycle is not None
    schools = reference.expected_schools(cycle.id)
    opens = dt.datetime(2023, 4, 20, 7, 0, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
    span = (cycle.deadline_end - opens).total_seconds()
    for number in numbers:
        school = schools[number % len(schools)]
        values = school_values(school, cycle, 7)
        values.general["reporter"] = f"Người báo cáo {number}"  # every file distinct
        if number % 10 == 9:
            values.rows["reach"][1].update(total=5, female=9)  # female > total: rejected
        path = folder / f"{number:05d} {school.code} báo cáo BĐG-TE.xlsx"
        path.write_bytes(build_template(school, cycle, values))
        moment = (opens + dt.timedelta(seconds=span * number / total)).timestamp()
        os.utime(path, (moment, moment))


def write_inbox(folder: Path, count: int) -> float:
    """Write `count` workbooks into `folder` with two worker processes; return the seconds taken."""
    started = time.perf_counter()
    jobs = [(folder, list(range(part, count, 4)), count) for part in range(4)]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_write_batch, jobs)
    return time.perf_counter() - started


def parse_floor(folder: Path) -> float:
    """Return the seconds python-calamine takes to read every file and every sheet into memory."""
    from python_calamine import CalamineWorkbook

    started = time.perf_counter()
    for path in sorted(folder.iterdir()):
        book = CalamineWorkbook.from_filelike(io.BytesIO(path.read_bytes()))
        for name in book.sheet_names:
            book.get_sheet_by_name(name).to_python(skip_empty_area=False)
    return time.perf_counter() - started


def create_database(name: str) -> str:
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    with psycopg.connect(make_url(ADMIN_URL).render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_url(ADMIN_URL).set(drivername="postgresql+psycopg", database=name).render_as_string(
        hide_password=False)


def drop_database(name: str) -> None:
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    with psycopg.connect(make_url(ADMIN_URL).render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def write_registry(folder: Path, count: int) -> Path:
    """Write a reference folder: the shipped calendar and indicators and `count` synthetic schools."""
    import csv

    from config.settings import PROJECT_ROOT

    folder.mkdir(parents=True)
    shipped = PROJECT_ROOT / "reference"
    for name in ("cycles.yaml", "indicators.yaml"):
        shutil.copy2(shipped / name, folder / name)
    levels = ("mam_non",) * 5 + ("tieu_hoc",) * 3 + ("thcs", "lien_cap")
    with (folder / "schools.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("code", "name", "level", "ownership", "ward", "emails", "active", "opened",
                         "closed", "exempt_cycles"))
        for number in range(1, count + 1):
            writer.writerow((f"S{number:05d}", f"Trường thử nghiệm {number}", levels[number % len(levels)],
                             "cong_lap", f"Phường {number % 16 + 1}", f"s{number}@truong.q8.test", "true",
                             "", "", ""))
    return folder


class RssSampler(threading.Thread):
    """Sample this process's and its checking workers' RSS twice a second while a collect runs."""

    def __init__(self, inbox: Path, total: int) -> None:
        super().__init__(daemon=True)
        self.inbox, self.total = inbox, total
        self.stop = threading.Event()
        self.peak_own = self.peak_workers = 0.0
        self.steps: list[tuple[int, float]] = []  # (workbooks stored, this process's RSS MB)

    def run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self.stop.wait(0.5):
            own = me.memory_info().rss / 2**20
            workers = 0.0
            for child in me.children(recursive=True):
                try:
                    if "prefect" not in " ".join(child.cmdline()):  # not the ephemeral API server
                        workers += child.memory_info().rss / 2**20
                except psutil.Error:
                    continue
            self.peak_own, self.peak_workers = max(self.peak_own, own), max(self.peak_workers, workers)
            with os.scandir(self.inbox) as entries:
                stored = self.total - sum(1 for _ in entries)
            if stored >= 1000 * (len(self.steps) + 1):
                self.steps.append((stored, own))


def children_cpu() -> float:
    """Return the CPU seconds used so far by this process's children (the ephemeral Prefect API)."""
    import psutil

    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workbooks", "--files", dest="files", type=int, default=1000)
    parser.add_argument("--schools", type=int, default=0, help="a synthetic registry of N schools")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the flow's own")
    parser.add_argument("--keep", action="store_true", help="keep the databases and folders")
    parser.add_argument("--no-plain", action="store_true", help="skip the run without Prefect")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="gec-bench-"))
    source, inbox, archive = work / "source", work / "inbox", work / "archive"
    source.mkdir()
    names = [f"gec_bench_{secrets.token_hex(4)}", f"gec_bench_{secrets.token_hex(4)}"]
    try:
        if args.schools:
            registry = write_registry(work / "reference", args.schools)
            os.environ["GEC_REFERENCE_DIR"] = str(registry)
            print(f"synthetic registry: {args.schools} schools in {registry}")
        built = write_inbox(source, args.files)
        print(f"workbooks written: {args.files} in {built:.1f} s (not timed below)")
        shutil.copytree(source, inbox)
        floor = parse_floor(source)
        floor = min(floor, parse_floor(source))  # the second pass has a warm page cache, like collect's

        url = create_database(names[0])
        os.environ.update(GEC_DATABASE_URL=url, GEC_INBOX_DIR=str(inbox), GEC_ARCHIVE_DIR=str(archive))

        started = time.perf_counter()
        from prefect import flow

        @flow(name="bench-warm-up")
        def warm_up() -> None:
            """Start the API and run nothing."""

        warm_up()
        prefect_start = time.perf_counter() - started

        from flows.collect import DEFAULT_BATCH_SIZE, collect_submissions

        batch_size = args.batch_size or DEFAULT_BATCH_SIZE

        empty = work / "empty"
        empty.mkdir()
        started = time.perf_counter()
        collect_submissions(inbox_dir=str(empty))
        warm_collect = time.perf_counter() - started
        started = time.perf_counter()
        collect_submissions(inbox_dir=str(empty))
        empty_collect = time.perf_counter() - started

        rss_before = peak_rss_mb()
        server_before, cpu_before = children_cpu(), os.times()
        load_before = os.getloadavg()[0]
        sampler = RssSampler(inbox, args.files)
        sampler.start()
        started = time.perf_counter()
        summary = collect_submissions(inbox_dir=str(inbox), batch_size=batch_size)
        collect = time.perf_counter() - started
        sampler.stop.set()
        sampler.join()
        load_after = os.getloadavg()[0]
        cpu_after = os.times()
        own_cpu = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
        server_cpu = children_cpu() - server_before
        rss = peak_rss_mb()
        # After the timed collect: run first, its database writes (checkpoints, autovacuum) were
        # measured slowing the collect that followed by a third.
        plain = None if args.no_plain else run_plain(source, create_database(names[1]), batch_size)

        print(f"Prefect start-up (import, API, empty flow run): {prefect_start:.1f} s")
        print(f"warm-up collect of an empty inbox (migrate, load registry): {warm_collect:.1f} s; "
              f"a second one (the fixed cost of every run): {empty_collect:.1f} s")
        print(f"collect {summary.files_seen} workbooks in batches of {batch_size}: {collect:.1f} s "
              f"= {summary.files_seen / collect:.0f} workbooks/s, {collect / args.files * 1000:.1f} ms each "
              f"({summary.one_line()})")
        print(f"bare parse floor (python-calamine, every sheet, in memory): {floor:.2f} s "
              f"= {floor / args.files * 1000:.1f} ms per workbook")
        print(f"ratio collect / floor: {collect / floor:.1f}  (target <= 5); without the per-run cost of "
              f"an empty collect: {(collect - empty_collect) / floor:.1f}")
        print(f"CPU during the collect: this process {own_cpu:.1f} s, its children (checking workers, "
              f"Prefect API server) {server_cpu:.1f} s; load average {load_before:.1f} before, "
              f"{load_after:.1f} after (2 cores shared with everything else on the machine)")
        if plain is not None:
            print(f"same pipeline without Prefect: {plain['total']:.1f} s  (read {plain['read']:.1f}, "
                  f"raw store {plain['raw']:.1f}, parse+validate {plain['check']:.1f}, "
                  f"store {plain['store']:.1f}); ratio {plain['total'] / floor:.1f}")
        print(f"peak RSS: {rss:.0f} MB (before the timed collect: {rss_before:.0f} MB); checking worker "
              f"processes together: {sampler.peak_workers:.0f} MB at most")
        if sampler.steps:
            steps = ", ".join(f"{stored // 1000}k {mb:.0f}" for stored, mb in sampler.steps)
            first, last = sampler.steps[0], sampler.steps[-1]
            growth = (last[1] - first[1]) / max(1, (last[0] - first[0]) / 1000)
            print(f"RSS (MB) after every 1,000 stored: {steps}; growth {growth:+.1f} MB per 1,000")
    finally:
        if args.keep:
            print(f"kept: {work} and databases {', '.join(names)}")
        else:
            from db.engine import dispose_engines

            dispose_engines()
            for name in names:
                drop_database(name)
            shutil.rmtree(work, ignore_errors=True)


def run_plain(source: Path, url: str, batch_size: int) -> dict[str, float]:
    """Run the same stages with the plain functions (no Prefect); return seconds per stage."""
    from config.settings import get_settings
    from db.engine import make_engine
    from db.setup import init_database
    from schemas.reference import load_reference
    from tasks.check.checking import check_files
    from tasks.intake import folder as intake
    from tasks.storage.raw import store_raw
    from tasks.storage.submissions import store_submissions

    reference = load_reference(get_settings().reference_dir)
    init_database(url, reference)
    engine = make_engine(url)
    paths = intake.list_inbox(source)
    stages = dict.fromkeys(("read", "raw", "check", "store"), 0.0)
    started = time.perf_counter()
    for start in range(0, len(paths), batch_size):
        mark = time.perf_counter()
        files = intake.read_inbox_files(paths[start:start + batch_size])
        stages["read"] += time.perf_counter() - mark
        mark = time.perf_counter()
        records = store_raw(engine, files)
        stages["raw"] += time.perf_counter() - mark
        mark = time.perf_counter()
        checked = check_files(records, reference, max_bytes=get_settings().max_file_bytes)
        stages["check"] += time.perf_counter() - mark
        mark = time.perf_counter()
        store_submissions(engine, reference, records, checked)
        stages["store"] += time.perf_counter() - mark
    stages["total"] = time.perf_counter() - started
    return stages


if __name__ == "__main__":
    main()
