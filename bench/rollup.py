"""Benchmark the cycle report on a synthetic district of N schools stored in PostgreSQL.

Prints the seconds to load the cycle and to build both report files, and the peak RSS. Target
(issue "Cycle rollups"): under 20 s for 5,000 schools on this machine. Figures only, no asserts.

    .venv/bin/python bench/rollup.py [--schools 5000] [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from config.settings import PROJECT_ROOT, TIMEZONE
from db.engine import make_engine
from db.setup import init_database
from demo.data import school_values
from schemas.reference import Reference, School, load_reference
from tasks.check.checking import check_files
from tasks.intake.folder import incoming_file
from tasks.report.files import write_report_files
from tasks.report.inputs import load_cycle_data
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
    args = parser.parse_args()

    reference = synthetic_reference(args.schools)
    cycle = reference.calendar.get(CYCLE)
    assert cycle is not None
    name = f"gec_bench_rollup_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
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
            store_submissions(engine, reference, records,
                              check_files(records, reference, max_bytes=20 * 1024 * 1024))
        print(f"stored {len(codes)} schools' submissions in {time.perf_counter() - started:.1f} s (setup)")

        as_of = dt.datetime(2023, 5, 20, tzinfo=TIMEZONE)
        t0 = time.perf_counter()
        data = load_cycle_data(engine, reference, CYCLE, as_of)
        t1 = time.perf_counter()
        with tempfile.TemporaryDirectory() as out:
            files = write_report_files(data, Path(out))
            t2 = time.perf_counter()
            sizes = {path.name: path.stat().st_size for path in files.paths()}
        print(f"load cycle data: {t1 - t0:.1f} s")
        print(f"build HTML + Excel + restricted + manifest: {t2 - t1:.1f} s")
        print(f"total report time for {len(codes)} schools: {t2 - t0:.1f} s (target < 20 s)")
        print(f"file sizes: {sizes}")
        print(f"peak RSS: {peak_rss_mb():.0f} MB")
    finally:
        make_engine(url).dispose()
        with psycopg.connect(args.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
