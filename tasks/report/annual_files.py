"""Load a year's stored cycles and write the annual view: `outputs/<year>/<date>/tong-hop-nam.*`."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from config.settings import TIMEZONE
from schemas.reference import Reference
from tasks.report.annual import HALVES, build_annual_report
from tasks.report.build import build_report
from tasks.report.docx_render import render_docx
from tasks.report.files import code_version, report_directory, used_submissions
from tasks.report.inputs import load_cycle_data
from tasks.report.model import CycleReport
from tasks.report.render_html import render_html
from tasks.report.render_xlsx import render_xlsx

ANNUAL_HTML = "tong-hop-nam.html"
ANNUAL_XLSX = "tong-hop-nam.xlsx"
ANNUAL_DOCX = "bao-cao-nam.docx"
ANNUAL_MANIFEST = "manifest-nam.json"


@dataclass(frozen=True)
class AnnualInputs:
    """The year's two half reports, last year's (None where the calendar has no such cycle), provenance."""

    halves: dict[str, CycleReport]
    previous: dict[str, CycleReport | None]
    submissions: dict[str, list[dict[str, object]]]  # cycle id -> [{id, school_code, sha256}]


def load_annual_inputs(
    engine: Engine,
    reference: Reference,
    year: int,
    as_of: dt.datetime,
    *,
    public_engine: Engine | None = None,
) -> AnnualInputs:
    """Build both halves of `year` and of the previous year from the stored cycles, as of one moment."""
    halves: dict[str, CycleReport] = {}
    previous: dict[str, CycleReport | None] = {}
    submissions: dict[str, list[dict[str, object]]] = {}
    for half in HALVES:
        cycle = f"{year}-{half}"
        if reference.calendar.get(cycle) is None:
            raise LookupError(f"cycle {cycle} is not in the calendar")
        data = load_cycle_data(engine, reference, cycle, as_of, public_engine=public_engine)
        halves[half] = build_report(data)
        submissions[cycle] = used_submissions(data)
        before = f"{year - 1}-{half}"
        if reference.calendar.get(before) is None:
            previous[half] = None
            continue
        old = load_cycle_data(engine, reference, before, as_of, public_engine=public_engine)
        previous[half] = build_report(old)
        submissions[before] = used_submissions(old)
    return AnnualInputs(halves, previous, submissions)


def write_annual_files(
    inputs: AnnualInputs, year: int, as_of: dt.datetime, output_dir: Path, number: str = ""
) -> list[Path]:
    """Write the annual HTML, Excel and Word files and their manifest; return the paths."""
    report = build_annual_report(year, inputs.halves, inputs.previous, as_of)
    directory = report_directory(output_dir, str(year), as_of)
    directory.mkdir(parents=True, exist_ok=True)
    html, xlsx, docx = directory / ANNUAL_HTML, directory / ANNUAL_XLSX, directory / ANNUAL_DOCX
    html.write_text(render_html(report), encoding="utf-8", newline="\n")
    xlsx.write_bytes(render_xlsx(report))
    docx.write_bytes(render_docx(report, number))
    manifest = {
        "year": year,
        "as_of": as_of.astimezone(TIMEZONE).isoformat(),
        "code_version": code_version(),
        "cycles": dict(sorted(inputs.submissions.items())),
        "files": {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in (html, xlsx, docx)},
    }
    manifest_path = directory / ANNUAL_MANIFEST
    manifest_path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return [html, xlsx, docx, manifest_path]
