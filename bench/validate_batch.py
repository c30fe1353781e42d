"""Time validate_batch in steady state: ms per workbook for a batch of 200 (figures, not asserts).

Run: .venv/bin/python bench/validate_batch.py [--workbooks 200] [--activities 8] [--repeat 5]
About one workbook in five carries a realistic mistake, so pandera takes its failure path too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

started = time.perf_counter()
from schemas.contract import ACTIVITY_TYPES, GENERAL, SHEETS  # noqa: E402
from schemas.reference import CycleCalendar, Reference, School  # noqa: E402
from schemas.workbook import EXCEL_ROW, KeyCell, ParsedWorkbook  # noqa: E402
from tasks.check.validate import has_errors, validate_batch, validate_workbook  # noqa: E402

IMPORT_MS = (time.perf_counter() - started) * 1000


def _frame(sheet_key: str, records: list[dict[str, object]]) -> pd.DataFrame:
    keys = list(SHEETS[sheet_key].field_keys)
    frame = pd.DataFrame([[r.get(k) for k in keys] for r in records], columns=keys, dtype=object)
    frame[EXCEL_ROW] = range(5, 5 + len(records))
    return frame


def _raw(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.map(lambda v: "" if v is None else str(v))


def make_workbook(code: str, rng: random.Random, activities: int) -> ParsedWorkbook:
    """Return a parsed workbook shaped like the template, sometimes with a clerk's mistake."""
    general = {
        "school_code": code, "school_name": f"Trường {code}", "cycle": "2023-H1",
        "report_date": dt.date(2023, 4, 28), "child_protection_staff": 3, "trained_staff": 2,
    }
    reach = []
    for group in SHEETS["reach"].rows.codes:
        total = rng.randint(5, 400)
        female = rng.randint(0, total)
        reached = rng.randint(1, total - 1) if total > 2 else 1
        reach.append(
            {"group": group, "total": total, "female": female, "reached": reached,
             "reached_female": min(female, reached)}
        )
    acts = []
    for seq in range(1, activities + 1):
        start = dt.date(2023, 1, 2) + dt.timedelta(days=rng.randint(0, 110))
        staff = rng.randint(0, 40)
        acts.append(
            {"seq": seq, "start_date": start, "end_date": start, "content": f"Hoạt động {seq}",
             "activity_type": rng.choice(ACTIVITY_TYPES.codes), "format": "truc_tiep",
             "staff": staff, "staff_female": rng.randint(0, staff), "parents": None}
        )
    checklist = [{"item": item, "answer": True} for item in SHEETS["checklist"].rows.codes]
    incidents = [{"category": category} for category in SHEETS["incidents"].rows.codes]
    if rng.random() < 0.2:  # a realistic mistake in about one workbook in five
        mistake = rng.randrange(4)
        if mistake == 0:
            reach[1]["female"] = reach[1]["total"] + 3
        elif mistake == 1:
            acts[0]["activity_type"] = "Văn nghệ"
        elif mistake == 2:
            checklist[0]["answer"] = None
        else:
            incidents[0].update(cases=2, children=0)
    tables = {
        "reach": _frame("reach", reach),
        "activities": _frame("activities", acts),
        "checklist": _frame("checklist", checklist),
        "incidents": _frame("incidents", incidents),
    }
    rows = {key: 3 + index for index, key in enumerate(GENERAL.field_keys)}
    return ParsedWorkbook(
        file_format="xlsx",
        general={key: KeyCell(value, str(value), rows[key]) for key, value in general.items()},
        tables=tables,
        raw={key: _raw(frame) for key, frame in tables.items()},
    )


def _timed(call: Callable[[], object]) -> tuple[float, float]:
    """Return (wall ms, CPU ms) of one call; CPU time is the steadier figure on a shared machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def main() -> None:
    """Print import time, then batch and one-by-one validation time per workbook."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workbooks", type=int, default=200)
    parser.add_argument("--activities", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    rng = random.Random(8)
    codes = [f"MN{n:03d}" for n in range(1, args.workbooks + 1)]
    schools = {code: School(code, code, "mam_non", "cong_lap", "Phường 1", (), True, None, None, frozenset())
               for code in codes}
    reference = Reference(schools=schools, calendar=CycleCalendar(), indicators=())
    items = [(code, make_workbook(code, rng, args.activities)) for code in codes]

    first, _ = _timed(lambda: validate_batch(items, reference))  # warm-up: pandera's first-call costs
    runs = [_timed(lambda: validate_batch(items, reference)) for _ in range(args.repeat)]
    singles = 20
    single_wall, single_cpu = _timed(lambda: [validate_workbook(p, reference) for _, p in items[:singles]])
    found = validate_batch(items, reference)
    rejected = sum(has_errors(findings) for findings in found.values())

    n = args.workbooks
    wall = statistics.median(run[0] for run in runs)
    cpu = statistics.median(run[1] for run in runs)
    print(f"import (pandas, pandera, contract, models): {IMPORT_MS:.0f} ms")
    print(f"{n} workbooks, {args.activities} activities each, {rejected} with errors")
    print(f"first batch (warm-up): {first:.0f} ms wall")
    print(f"batch of {n}, median of {args.repeat}: {wall:.0f} ms wall, {cpu:.0f} ms CPU "
          f"= {wall / n:.2f} ms wall, {cpu / n:.2f} ms CPU per workbook")
    print(f"one workbook at a time: {single_wall / singles:.1f} ms wall, {single_cpu / singles:.1f} ms CPU "
          "per workbook")

if __name__ == "__main__":
    main()
