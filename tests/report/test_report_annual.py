"""The annual view over stored cycles: 2023 H1 and H2 side by side, and each half against 2022's."""

from __future__ import annotations

import copy
import datetime as dt
import io
import os
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import docx
import openpyxl
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from cli.main import app
from config.settings import PROJECT_ROOT
from db.setup import init_database
from demo.data import school_values
from schemas.reference import Reference, load_reference
from tasks.intake.folder import incoming_file
from tasks.report.annual_files import load_annual_inputs, write_annual_files
from tasks.report.build import build_report
from tasks.report.inputs import load_cycle_data
from tasks.template.build import build_template
from tests.support.stages import ingest

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
AS_OF = dt.datetime(2023, 11, 20, 8, tzinfo=HCM)
# cycle -> (schools that sent a valid report, when)
STORED = {
    "2022-H1": (("MN001",), dt.datetime(2022, 5, 2, 9, tzinfo=HCM)),
    "2023-H1": (("MN001", "TH001"), dt.datetime(2023, 5, 2, 9, tzinfo=HCM)),
    "2023-H2": (("MN001", "TH001", "MN002"), dt.datetime(2023, 11, 2, 9, tzinfo=HCM)),
}


@pytest.fixture(scope="module")
def reference() -> Reference:
    return load_reference(PROJECT_ROOT / "reference")


@pytest.fixture
def stored(engine: Engine, database_url: str, reference: Reference) -> None:
    """Store demo workbooks: one school in 2022-H1, two in 2023-H1, three in 2023-H2."""
    init_database(database_url, reference, cycle_ids=tuple(STORED))
    files = []
    for cycle_id, (codes, when) in STORED.items():
        cycle = reference.calendar.get(cycle_id)
        assert cycle is not None
        for code in codes:
            school = reference.schools[code]
            values = copy.deepcopy(school_values(school, cycle, 1))
            name = f"{code}-{cycle_id}.xlsx"
            files.append(incoming_file(build_template(school, cycle, values), source="folder",
                                       original_name=name, received_at=when, source_ref=f"/inbox/{name}"))
    outcomes = ingest(engine, reference, files, max_bytes=20 * 1024 * 1024)
    assert all(outcome.submission_id for outcome in outcomes)


def _received(engine: Engine, reference: Reference, cycle: str) -> int:
    report = build_report(load_cycle_data(engine, reference, cycle, AS_OF))
    return int(report.table("bang-1-1").frame.iloc[0]["received"])


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_annual_view_puts_the_halves_side_by_side_and_compares_with_last_year(
    engine: Engine, reference: Reference, stored: None, tmp_path: Path
) -> None:
    inputs = load_annual_inputs(engine, reference, 2023, AS_OF)
    paths = write_annual_files(inputs, 2023, AS_OF, tmp_path, number="7")
    folder = tmp_path / "2023" / "2023-11-20"
    assert [p.name for p in paths] == ["tong-hop-nam.html", "tong-hop-nam.xlsx", "bao-cao-nam.docx",
                                       "manifest-nam.json"]
    assert all(p.parent == folder and p.is_file() for p in paths)
    h1, h2 = _received(engine, reference, "2023-H1"), _received(engine, reference, "2023-H2")
    assert (h1, h2) == (2, 3)

    # Word: the submission table carries both halves' figures, the change table last year's.
    document = docx.Document(io.BytesIO(paths[2].read_bytes()))
    tables = [[[cell.text for cell in row.cells] for row in table.rows] for table in document.tables]
    status = next(t for t in tables if t[0][0] == "Phạm vi")
    row = dict(zip(status[0], status[1], strict=True))
    assert (row["Đã nộp hợp lệ (6 tháng đầu)"], row["Đã nộp hợp lệ (6 tháng cuối)"]) == (str(h1), str(h2))
    change = next(t for t in tables if t[0][0] == "Nội dung" and "6 tháng đầu năm 2022" in t[0])
    received = dict(zip(change[0], next(r for r in change if r[0] == "Số trường đã nộp hợp lệ"), strict=True))
    assert received["6 tháng đầu năm 2022"] == "1"
    assert received["6 tháng đầu năm 2023"] == "2"
    assert received["Thay đổi (6 tháng đầu)"] == "+1"
    assert received["6 tháng cuối năm 2022"] == "—"  # 2022-H2 has no valid report: no data, not zero
    texts = [p.text for p in document.paragraphs]
    assert "Kỳ báo cáo: Năm 2023 (01/01/2023 – 31/10/2023)" in texts
    assert [p.text for p in document.tables[0].rows[0].cells[0].paragraphs if p.text][-1] == "Số: 7/BC-GDĐT"

    # Excel: the same side-by-side sheet.
    book = openpyxl.load_workbook(paths[1], read_only=True)
    cells = [str(c) for row in book["1.1 Tổng hợp nộp báo cáo"].iter_rows(values_only=True) for c in row if c]
    assert {"Đã nộp hợp lệ (6 tháng đầu)", "Đã nộp hợp lệ (6 tháng cuối)"} <= set(cells)
    # HTML: titled as the year's view, with the comparison section.
    html = paths[0].read_text(encoding="utf-8")
    assert "Năm 2023" in html and "SO SÁNH VỚI NĂM 2022" in html
    # Same bytes on a rebuild as of the same moment.
    again = write_annual_files(load_annual_inputs(engine, reference, 2023, AS_OF), 2023, AS_OF,
                               tmp_path / "again", number="7")
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in paths]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_gec_report_year_prints_the_annual_files(
    engine: Engine, reference: Reference, stored: None, database_url: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "GEC_DATABASE_URL": database_url,
        "GEC_OUTPUT_DIR": str(tmp_path / "outputs"),
        "GEC_REPORT_NUMBER": "42",
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    result = subprocess.run(
        [str(Path(sys.executable).with_name("gec")), "report", "--year", "2023",
         "--as-of", "2023-11-20T08:00"],
        env=env, capture_output=True, text=True, timeout=240, cwd=PROJECT_ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    folder = tmp_path / "outputs" / "2023" / "2023-11-20"
    printed = [Path(line) for line in result.stdout.splitlines() if line.startswith(str(tmp_path))]
    assert printed == [folder / "tong-hop-nam.html", folder / "tong-hop-nam.xlsx",
                       folder / "bao-cao-nam.docx", folder / "manifest-nam.json"]
    document = docx.Document(str(folder / "bao-cao-nam.docx"))
    assert [p.text for p in document.tables[0].rows[0].cells[0].paragraphs if p.text][-1] == "Số: 42/BC-GDĐT"


@pytest.mark.parametrize("arguments", [["report"], ["report", "--cycle", "2023-H1", "--year", "2023"]])
def test_report_wants_a_cycle_or_a_year(arguments: list[str]) -> None:
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 2
    assert "either --cycle or --year" in result.output


def test_report_year_must_be_in_the_calendar() -> None:
    result = CliRunner().invoke(app, ["report", "--year", "2019"])
    assert result.exit_code == 2
    assert "unknown cycle '2019-H1'" in result.output


def test_side_by_side_keeps_the_cycle_reports_rows_and_values() -> None:
    import tests.support.rollup_data as fx
    from tasks.report.annual import build_annual_report

    first = build_report(fx.make_cycle_data())
    second = build_report(fx.make_cycle_data(previous=False))
    annual = build_annual_report(2023, {"H1": first, "H2": second}, {"H1": None, "H2": None}, first.as_of)
    groups = annual.table("nam-bang-2-2").frame
    assert groups["label"].tolist() == first.table("bang-2-2").frame["label"].tolist()
    assert groups["reached__H1"].tolist() == first.table("bang-2-2").frame["reached"].tolist()
    assert groups["reached__H2"].tolist() == second.table("bang-2-2").frame["reached"].tolist()
    assert annual.sections[-1].paragraphs == ("Không có số liệu năm 2022 để so sánh.",)
