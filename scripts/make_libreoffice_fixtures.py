"""Write workbooks that LibreOffice resaved, so the parser is tested on files other software wrote.

Builds one demo school's filled template (with a `=SUM(...)` total and its cached value), has
LibreOffice (`soffice --headless --convert-to`) resave it as .xlsx, .ods and .xls, and writes the
original, the three resaves and `expected.json` (the values every one of them must parse to) into
tests/fixtures/libreoffice/:

    .venv/bin/python scripts/make_libreoffice_fixtures.py [--out DIR] [--school CODE] [--cycle ID]

Needs LibreOffice (`make system-deps`). The resaves carry LibreOffice's timestamps, so rerunning
changes their bytes but not their values.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from demo.data import school_values  # noqa: E402
from schemas.contract import CHECKLIST, INCIDENTS, REACH, TEMPLATE_VERSION  # noqa: E402
from schemas.reference import School, load_reference  # noqa: E402
from tasks.template.build import SubmissionValues, build_template  # noqa: E402
from tasks.template.writer import Formula  # noqa: E402

DEFAULT_OUT = PROJECT_ROOT / "tests" / "fixtures" / "libreoffice"
ORIGINAL = "original.xlsx"
# Output extension -> LibreOffice export filter.
RESAVES = {"xlsx": "Calc MS Excel 2007 XML", "ods": "calc8", "xls": "MS Excel 97"}
SOFFICE_TIMEOUT = 180
# The sheet, row and column that hold the formula, and how the clerk split the number.
FORMULA_GROUP = "hoc_sinh"
FORMULA_FIELD = "total"


def filled_values(values: SubmissionValues) -> SubmissionValues:
    """Fill every optional cell so that each value of the fixture is compared, not only some."""
    for row in values.rows["activities"]:
        for key in ("staff", "staff_female", "students", "students_female", "parents", "parents_female"):
            row.setdefault(key, 0)
        row["end_date"] = row.get("end_date") or row["start_date"]
        row["documents"] = row.get("documents") or "Luật Trẻ em 2016"
    for row in values.rows["incidents"]:
        for key in ("cases", "children", "children_female", "reported", "supported"):
            row.setdefault(key, 0)
    for row in values.rows["checklist"]:
        if row["answer"] is None:
            row["answer"] = True
    return values


def _json_value(value: object) -> object:
    if isinstance(value, Formula):
        return value.cached
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def expected_values(values: SubmissionValues, school: School, cycle_id: str) -> dict[str, object]:
    """Return the values by contract key as the parser must read them (codes, bools, ISO dates)."""
    school_code = school.code
    general = {key: _json_value(value) for key, value in values.general.items()}
    general.update({"school_code": school_code, "school_name": school.name, "cycle": cycle_id})

    def by_row(sheet_key: str, row_field: str) -> dict[str, dict[str, object]]:
        return {
            row[row_field]: {k: _json_value(v) for k, v in row.items() if k != row_field}
            for row in values.rows[sheet_key]
        }

    return {
        "general": general,
        REACH.key: by_row(REACH.key, "group"),
        "activities": [{k: _json_value(v) for k, v in row.items()} for row in values.rows["activities"]],
        CHECKLIST.key: by_row(CHECKLIST.key, "item"),
        INCIDENTS.key: by_row(INCIDENTS.key, "category"),
        "meta": {"template_version": TEMPLATE_VERSION, "cycle": cycle_id, "school_code": school_code},
    }


def resave(source: Path, out_dir: Path) -> dict[str, Path]:
    """Have LibreOffice resave `source` in each format of RESAVES; return the files by extension."""
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        raise SystemExit("LibreOffice (soffice) is not installed; run `make system-deps` first")
    written: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="gec-lo-") as scratch:
        # A private profile: no clash with a running LibreOffice, no first-start dialogs.
        profile = Path(scratch, "profile").as_uri()
        for extension, export_filter in RESAVES.items():
            target_dir = Path(scratch, extension)
            target_dir.mkdir()
            subprocess.run(
                [soffice, f"-env:UserInstallation={profile}", "--headless", "--norestore", "--nolockcheck",
                 "--convert-to", f"{extension}:{export_filter}", "--outdir", str(target_dir), str(source)],
                check=True, timeout=SOFFICE_TIMEOUT, capture_output=True,
            )
            produced = target_dir / f"{source.stem}.{extension}"
            if not produced.exists():
                raise SystemExit(f"LibreOffice wrote no {extension} file for {source.name}")
            final = out_dir / f"resaved.{extension}"
            shutil.copyfile(produced, final)
            written[extension] = final
    return written


def main() -> None:
    """Build the original, resave it three ways and write expected.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--school", default="MN001")
    parser.add_argument("--cycle", default="2023-H1")
    parser.add_argument("--seed", type=int, default=2023)
    args = parser.parse_args()

    reference = load_reference(PROJECT_ROOT / "reference")
    cycle = reference.calendar.get(args.cycle)
    school = reference.school(args.school)
    if cycle is None or school is None:
        raise SystemExit(f"unknown cycle {args.cycle!r} or school {args.school!r}")

    values = filled_values(school_values(school, cycle, args.seed))
    row = next(r for r in values.rows[REACH.key] if r["group"] == FORMULA_GROUP)
    total = int(row[FORMULA_FIELD])
    # The clerk added two blocks of classes with a formula; the file keeps the computed value too.
    first = total // 2 + 7
    row[FORMULA_FIELD] = Formula(f"SUM({first},{total - first})", total)

    args.out.mkdir(parents=True, exist_ok=True)
    original = args.out / ORIGINAL
    original.write_bytes(build_template(school, cycle, values))
    resaved = resave(original, args.out)

    expected = expected_values(values, school, cycle.id)
    expected["formula"] = {
        "sheet": REACH.key, "row": FORMULA_GROUP, "field": FORMULA_FIELD,
        "expression": row[FORMULA_FIELD].expression, "value": total,
    }
    expected["files"] = [ORIGINAL, *(path.name for path in resaved.values())]
    (args.out / "expected.json").write_text(
        json.dumps(expected, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    for name in expected["files"]:
        print(f"wrote {args.out / name} ({(args.out / name).stat().st_size} bytes)")


if __name__ == "__main__":
    main()
