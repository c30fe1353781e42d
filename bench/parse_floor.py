"""Time parsing one template-made workbook against python-calamine's own floor (figures, not asserts).

Run: .venv/bin/python bench/parse_floor.py [--repeat 300]

For each format the office accepts it prints best and median milliseconds of: identify() (the
first-bytes sniff and container pre-checks), check_sheets() (the cell-span guard run before each
lazy sheet load), python-calamine opening the file and reading the contract sheets (the floor no
parser built on it can beat), and the whole parse_workbook(). The machine has 2 cores shared with
other work: the best run is the cost, the median shows the noise.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

started = time.perf_counter()
from python_calamine import CalamineWorkbook  # noqa: E402

from tasks.check.parse import _match_sheets, parse_workbook  # noqa: E402
from tasks.intake.sniff import check_sheets, identify  # noqa: E402

IMPORT_MS = (time.perf_counter() - started) * 1000
MAX_BYTES = 20 * 1024 * 1024


def template_workbooks() -> dict[str, bytes]:
    """Return one filled template per format, as the office's `gec template` would make it."""
    from demo.data import school_values
    from schemas.reference import load_reference
    from tasks.template.build import template_grid
    from tasks.template.writer import write_workbook

    reference = load_reference(Path(__file__).resolve().parent.parent / "reference")
    school = next(iter(reference.schools.values()))
    cycle = reference.calendar.get("2023-H1")
    grid = template_grid(school, cycle, school_values(school, cycle))
    return {fmt: write_workbook(grid, fmt) for fmt in ("xlsx", "xls", "ods")}


def timed(action: Callable[[], object], repeat: int) -> tuple[float, float]:
    for _ in range(min(20, repeat)):
        action()
    runs = []
    for _ in range(repeat):
        begin = time.perf_counter()
        action()
        runs.append((time.perf_counter() - begin) * 1000)
    return min(runs), statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    print(f"imports: {IMPORT_MS:.0f} ms (once per process)")
    for fmt, data in template_workbooks().items():
        verdict = identify(data, max_bytes=MAX_BYTES)
        parsed = parse_workbook(data, max_bytes=MAX_BYTES)
        assert not parsed.findings, parsed.findings  # a clean template must parse clean
        names = list(_match_sheets(CalamineWorkbook.from_filelike(io.BytesIO(data)).sheet_names).values())

        def floor(data: bytes = data, names: list[str] = names) -> None:
            book = CalamineWorkbook.from_filelike(io.BytesIO(data))
            for name in names:
                book.get_sheet_by_name(name).to_python(skip_empty_area=False)

        rows = {
            "identify": timed(lambda data=data: identify(data, max_bytes=MAX_BYTES), args.repeat),
            "check_sheets": timed(lambda v=verdict, n=names: check_sheets(v, n), args.repeat),
            "calamine floor": timed(floor, args.repeat),
            "parse_workbook": timed(lambda data=data: parse_workbook(data, max_bytes=MAX_BYTES), args.repeat),
        }
        print(f"\n{fmt}: {len(data):,} bytes, {len(names)} contract sheets")
        for label, (best, median) in rows.items():
            print(f"  {label:15} best {best:6.3f} ms   median {median:6.3f} ms")


if __name__ == "__main__":
    main()
