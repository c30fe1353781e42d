"""Benchmark the cycle report on a synthetic district of N schools stored in PostgreSQL.

Prints the seconds to load the cycle and to build the report files, their sizes and the peak RSS.
Target (issue 15 item 4): 5,000 schools in under 5 s, HTML under 2 MB. Figures only, no asserts.

    .venv/bin/python bench/rollup.py [--schools 5000] [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]
        [--keep] [--database NAME]

Storing the synthetic district takes minutes on a busy machine: `--keep` leaves the database in place
(its name is printed) and `--database NAME` reports from a kept one without storing again.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from sqlalchemy import Engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from config.settings import PROJECT_ROOT, TIMEZONE
from db.engine import make_engine
from db.setup import init_database
from demo.data import school_values
from schemas.reference import Cycle, Reference, School, load_reference
from tasks.check.checking import check_files
from tasks.intake.folder import incoming_file
from tasks.report.build import build_report
from tasks.report.files import write_report_files
from tasks.report.inputs import load_cycle_data
from tasks.report.render_html import render_html
from tasks.report.render_xlsx import render_xlsx
from tasks.storage.raw import store_raw
from tasks.storage.submissions import store_submissions
from tasks.template.build import build_template

CYCLE = "2023-H1"
LEVELS = ("mam_non",) * 5 + ("tieu_hoc",) * 3 + ("thcs", "lien_cap")


def synthetic_reference(count: int) -> Reference:
    """Return the shipped calendar and catalog with `count` synthetic schools over the 16 wards."""
    shipped = load_reference(PROJECT_ROOT / "reference")
    schools = {}
    for number in range(1, count + 1):
        code = f"S{number:05d}"
        schools[code] = School(
            code, f"Trường thử nghiệm {number}", LEVELS[number % len(LEVELS)], "cong_lap",
            f"Phường {number % 16 + 1}", (f"s{number}@truong.q8.test",), True, None, None, frozenset(),
        )
    return Reference(schools, shipped.calendar, shipped.indicators)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--schools", type=int, default=5000)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--database", help="report from this kept benchmark database")
    args = parser.parse_args()

    reference = synthetic_reference(args.schools)
    cycle = reference.calendar.get(CYCLE)
    assert cycle is not None
    name = args.database or f"gec_bench_rollup_{uuid.uuid4().hex[:8]}"
    if not args.database:
        with psycopg.connect(args.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        if not args.database:
            store_district(url, reference, cycle)
        report(make_engine(url), reference, len(reference.schools))
    finally:
        make_engine(url).dispose()
        if args.keep or args.database:
            print(f"kept database {name}")
        else:
            with psycopg.connect(args.admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


def store_district(url: str, reference: Reference, cycle: Cycle) -> None:
    """Store one workbook per school of the synthetic registry."""
    started = time.perf_counter()
    init_database(url, reference)
    engine = make_engine(url)
    # One workbook per school; build them in chunks so memory stays flat.
    received = dt.datetime(2023, 5, 3, 9, tzinfo=TIMEZONE)
    first_of = {school.level: school for school in reversed(reference.schools.values())}
    base = {level: school_values(first_of[level], cycle, 1) for level in set(LEVELS)}
    codes = list(reference.schools)
    for start in range(0, len(codes), 250):
        files = []
        for offset, code in enumerate(codes[start:start + 250]):
            school = reference.schools[code]
            values = copy.deepcopy(base[school.level])
            values.general["school_name"] = school.name
            values.rows["reach"][0]["total"] = 3 + (start + offset) % 7
            content = build_template(school, cycle, values)
            files.append(incoming_file(content, source="folder", original_name=f"{code}.xlsx",
                                       received_at=received + dt.timedelta(minutes=start + offset),
                                       source_ref=f"bench/{code}"))
        records = store_raw(engine, files)
        checked = check_files(records, reference, max_bytes=20 * 1024 * 1024)
        store_submissions(engine, reference, records, checked)
    print(f"stored {len(codes)} schools' submissions in {time.perf_counter() - started:.1f} s (setup)")


def report(engine: Engine, reference: Reference, count: int) -> None:
    """Time loading, building and writing the report; print the stages, sizes and peak RSS.

    Wall time and this process's CPU time are both printed: on a shared machine the wall figure
    mostly measures the other processes, the CPU figure what the report costs.
    """
    as_of = dt.datetime(2023, 5, 20, tzinfo=TIMEZONE)
    marks = [(time.perf_counter(), time.process_time())]

    def mark() -> tuple[float, float]:
        marks.append((time.perf_counter(), time.process_time()))
        (w0, c0), (w1, c1) = marks[-2], marks[-1]
        return w1 - w0, c1 - c0

    data = load_cycle_data(engine, reference, CYCLE, as_of)
    load = mark()
    with tempfile.TemporaryDirectory() as out:
        files = write_report_files(data, Path(out))
        write = mark()
        sizes = {path.name: path.stat().st_size for path in files.paths()}
    built = build_report(data)
    build = mark()
    render_html(built)
    html = mark()
    render_xlsx(built)
    xlsx = mark()
    total = (load[0] + write[0], load[1] + write[1])
    print(f"load cycle data: {load[0]:.1f} s wall, {load[1]:.2f} s CPU")
    print(f"build HTML + Excel + restricted + manifest: {write[0]:.1f} s wall, {write[1]:.2f} s CPU")
    print(f"  timed again: build {build[1]:.2f} s, HTML {html[1]:.2f} s, Excel {xlsx[1]:.2f} s CPU")
    print(f"total report time for {count} schools: {total[0]:.1f} s wall, {total[1]:.2f} s CPU "
          "(target < 5 s)")
    print(f"file sizes: {sizes} (HTML target < 2 MB)")
    print(f"peak RSS: {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    raise SystemExit(main())
