"""The cycle report from stored submissions: as_of rebuilds, provenance, reproducibility, file modes.

Runs on SQLite and PostgreSQL with real template-made workbooks stored by the intake code.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pandas as pd
import pytest
from sqlalchemy import Engine, select

from config.settings import PROJECT_ROOT
from db import models
from db.engine import make_engine
from db.setup import init_database
from demo.data import generate_demo_data, school_values
from schemas.reference import Reference, load_reference
from tasks.intake.folder import incoming_file
from tasks.report.build import build_report
from tasks.report.files import record_report_run, write_report_files
from tasks.report.inputs import load_cycle_data
from tasks.report.section_6_incidents import incident_cutoff
from tasks.template.build import build_template
from tests.support.stages import ingest

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
H1 = "2023-H1"


@pytest.fixture(scope="module")
def reference() -> Reference:
    return load_reference(PROJECT_ROOT / "reference")


def _file(reference: Reference, code: str, when: dt.datetime, *, seed: int = 1, **reach_changes: int):
    school = reference.schools[code]
    cycle = reference.calendar.get(H1)
    assert cycle is not None
    values = copy.deepcopy(school_values(school, cycle, seed))
    if reach_changes:
        values.rows["reach"][0].update(reach_changes)
    content = build_template(school, cycle, values)
    name = f"{code}-{when:%m%d%H%M}.xlsx"
    return incoming_file(content, source="folder", original_name=name, received_at=when,
                         source_ref=f"/inbox/{name}")


@pytest.fixture
def stored(engine: Engine, database_url: str, reference: Reference) -> dict[str, int]:
    """Store: MN001 on time then corrected late, TH001 late only, MN002 rejected (reached > total)."""
    init_database(database_url, reference)
    first = _file(reference, "MN001", dt.datetime(2023, 5, 2, 9, tzinfo=HCM))
    corrected = _file(reference, "MN001", dt.datetime(2023, 5, 10, 9, tzinfo=HCM), seed=2)
    late = _file(reference, "TH001", dt.datetime(2023, 5, 8, 9, tzinfo=HCM))
    bad = _file(reference, "MN002", dt.datetime(2023, 5, 3, 9, tzinfo=HCM), total=10, reached=50)
    outcomes = ingest(engine, reference, [first, corrected, late, bad], max_bytes=20 * 1024 * 1024)
    ids = {item.original_name: item.submission_id for item in outcomes}
    return {
        "first": ids[first.original_name],
        "corrected": ids[corrected.original_name],
        "late": ids[late.original_name],
        "bad": ids[bad.original_name],
    }


def _manifest(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_as_of_rebuild_uses_only_what_had_arrived(
    engine: Engine, reference: Reference, stored: dict[str, int], tmp_path: Path
) -> None:
    early = load_cycle_data(engine, reference, H1, dt.datetime(2023, 5, 6, 8, tzinfo=HCM))
    files = write_report_files(early, tmp_path)
    used = {entry["school_code"]: entry["id"] for entry in _manifest(files.manifest)["submissions"]}
    assert used == {"MN001": stored["first"]}  # TH001 not yet received, the correction not yet either
    states = dict(zip(early.schools["code"], early.schools["state"], strict=True))
    assert (states["MN001"], states["TH001"], states["MN002"]) == ("on_time", "missing", "received_invalid")
    assert files.directory == tmp_path / H1 / "2023-05-06"

    later = load_cycle_data(engine, reference, H1, dt.datetime(2023, 5, 20, tzinfo=HCM))
    files = write_report_files(later, tmp_path)
    manifest = _manifest(files.manifest)
    used = {entry["school_code"]: entry["id"] for entry in manifest["submissions"]}
    assert used == {"MN001": stored["corrected"], "TH001": stored["late"]}
    states = dict(zip(later.schools["code"], later.schools["state"], strict=True))
    assert (states["MN001"], states["TH001"]) == ("on_time", "late")  # on time stays on time
    with engine.connect() as conn:
        sha = conn.execute(
            select(models.ReceivedFile.sha256)
            .join(models.Submission, models.Submission.received_file_id == models.ReceivedFile.id)
            .where(models.Submission.id == stored["corrected"])
        ).scalar_one()
    assert {"id": stored["corrected"], "school_code": "MN001", "sha256": sha} in manifest["submissions"]
    assert manifest["as_of"] == "2023-05-20T00:00:00+07:00"
    assert manifest["contract_version"] and manifest["code_version"]


def test_same_data_same_as_of_gives_identical_files(
    engine: Engine, reference: Reference, stored: dict[str, int], tmp_path: Path
) -> None:
    as_of = dt.datetime(2023, 5, 20, 8, 0, tzinfo=HCM)
    one = write_report_files(load_cycle_data(engine, reference, H1, as_of), tmp_path / "one")
    two = write_report_files(load_cycle_data(engine, reference, H1, as_of), tmp_path / "two")
    assert one.html.read_bytes() == two.html.read_bytes()
    assert one.xlsx.read_bytes() == two.xlsx.read_bytes()
    assert one.docx.read_bytes() == two.docx.read_bytes()
    assert "bao-cao.docx" in _manifest(one.manifest)["files"]
    assert one.restricted.read_bytes() == two.restricted.read_bytes()
    assert _manifest(one.manifest)["files"] == _manifest(two.manifest)["files"]


def test_restricted_file_modes_and_recorded_run(
    engine: Engine, reference: Reference, stored: dict[str, int], tmp_path: Path
) -> None:
    data = load_cycle_data(engine, reference, H1, dt.datetime(2023, 5, 20, tzinfo=HCM))
    started = dt.datetime.now(dt.UTC)
    files = write_report_files(data, tmp_path)
    assert stat.S_IMODE(files.restricted.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.restricted.parent.stat().st_mode) == 0o700
    run_id = record_report_run(engine, data, files, started)
    with engine.connect() as conn:
        run = conn.execute(select(models.ReportRun.__table__).where(models.ReportRun.id == run_id)).one()
    assert run.cycle_id == H1
    assert run.as_of == dt.datetime(2023, 5, 20, tzinfo=HCM)
    assert run.submission_versions == _manifest(files.manifest)["submissions"]
    assert run.manifest["files"] == _manifest(files.manifest)["files"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_gec_report_command_prints_the_paths_it_wrote(
    engine: Engine, reference: Reference, stored: dict[str, int], database_url: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "GEC_DATABASE_URL": database_url,
        "GEC_OUTPUT_DIR": str(tmp_path / "outputs"),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    result = subprocess.run(
        [str(Path(sys.executable).with_name("gec")), "report", "--cycle", H1, "--as-of", "2023-05-20T08:00"],
        env=env, capture_output=True, text=True, timeout=240, cwd=PROJECT_ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    printed = [Path(line) for line in result.stdout.splitlines() if line.startswith(str(tmp_path))]
    folder = tmp_path / "outputs" / H1 / "2023-05-20"
    # The PDF only where LibreOffice is installed, and outside the manifest (it dates itself).
    pdf = [folder / "bao-cao.pdf"] if shutil.which("soffice") else []
    assert printed == [
        folder / "tong-hop.html",
        folder / "tong-hop.xlsx",
        folder / "bao-cao.docx",
        *pdf,
        folder / "restricted" / "vu-viec.xlsx",
        folder / "manifest.json",
    ]
    assert "bao-cao.pdf" not in _manifest(folder / "manifest.json")["files"]
    assert all(path.is_file() for path in printed)
    assert "MN001" in {e["school_code"] for e in _manifest(folder / "manifest.json")["submissions"]}


# -------------------------------------------------------------------------------- disclosure control

COUNTS = ("cases", "children", "children_female", "reported", "supported")
LATE_INCIDENT = {"category": "duoi_nuoc", "cases": 7, "children": 7, "children_female": 3, "reported": 7,
                 "supported": 6}


def _incident_file(reference: Reference, code: str, when: dt.datetime):
    school = reference.schools[code]
    cycle = reference.calendar.get(H1)
    assert cycle is not None
    values = copy.deepcopy(school_values(school, cycle, 1))
    values.rows["incidents"] = [dict(LATE_INCIDENT)]
    name = f"{code}-{when:%m%d%H%M}.xlsx"
    return incoming_file(build_template(school, cycle, values), source="folder", original_name=name,
                         received_at=when, source_ref=f"/inbox/{name}")


def _public_counts(engine: Engine, reference: Reference, as_of: dt.datetime) -> dict[str, tuple]:
    report = build_report(load_cycle_data(engine, reference, H1, as_of))
    frame = report.table("bang-5-1").frame
    return {
        category: tuple(None if pd.isna(value) else value for value in values)
        for category, *values in frame[["category", *COUNTS]].itertuples(index=False)
    }


def test_two_public_reports_never_differ_by_one_schools_incidents(
    engine: Engine, reference: Reference, stored: dict[str, int], tmp_path: Path
) -> None:
    """A school's late file with 7 drownings: no two public as_of builds subtract to its counts."""
    cycle = reference.calendar.get(H1)
    assert cycle is not None
    cutoff = incident_cutoff(cycle.deadline_end)
    assert cutoff == dt.datetime(2023, 5, 13, tzinfo=HCM)
    before_cutoff = _incident_file(reference, "MN003", dt.datetime(2023, 5, 10, 9, tzinfo=HCM))
    after_cutoff = _incident_file(reference, "TH002", dt.datetime(2023, 5, 20, 9, tzinfo=HCM))
    outcomes = ingest(engine, reference, [before_cutoff, after_cutoff], max_bytes=20 * 1024 * 1024)
    assert all(item.submission_id for item in outcomes)
    moments = [dt.datetime(2023, 5, day, 12, tzinfo=HCM) for day in (9, 11, 15, 25)]
    public = {moment: _public_counts(engine, reference, moment) for moment in moments}

    school = tuple(LATE_INCIDENT[key] for key in COUNTS)
    for one, two in itertools.combinations(moments, 2):
        for category, first in public[one].items():
            second = public[two][category]
            if None in first or None in second:
                continue  # one of them publishes nothing: there is nothing to subtract
            # "<5" cells hide their value: that column's difference is unknown to a reader.
            difference = tuple(
                b - a if isinstance(a, int) and isinstance(b, int) else None
                for a, b in zip(first, second, strict=True)
            )
            assert difference != school, (one, two, category)
    # Before the cutoff nothing is published; after it every build shows the same frozen totals,
    # which include the file received before the cutoff and not the one received after it.
    assert all(value is None for counts in public[moments[0]].values() for value in counts)
    assert all(value is None for counts in public[moments[1]].values() for value in counts)
    assert public[moments[2]] == public[moments[3]]
    assert public[moments[2]]["duoi_nuoc"][0] >= LATE_INCIDENT["cases"]
    # The restricted file still follows as_of: the school after the cutoff is there, for the office.
    later = build_report(load_cycle_data(engine, reference, H1, moments[3]))
    assert "TH002" in set(later.restricted_incidents.frame["school_code"])
    # Same as_of, same bytes.
    one = write_report_files(load_cycle_data(engine, reference, H1, moments[3]), tmp_path / "a")
    two = write_report_files(load_cycle_data(engine, reference, H1, moments[3]), tmp_path / "b")
    assert one.html.read_bytes() == two.html.read_bytes()
    assert one.xlsx.read_bytes() == two.xlsx.read_bytes()


# -------------------------------------------------------------------------------- print (LibreOffice)


def soffice() -> str:
    path = shutil.which("soffice") or shutil.which("libreoffice")
    if path is None:
        pytest.fail("LibreOffice is not installed: run scripts/install-system-deps.sh (CI installs it).")
    return path


@pytest.fixture(scope="module")
def demo_rollup(tmp_path_factory: pytest.TempPathFactory, reference: Reference) -> Path:
    """Build the demo's rollup (`gec demo-data` files, stored, reported as of the day after the deadline)."""
    root = tmp_path_factory.mktemp("demo")
    generate_demo_data(reference, H1, root / "inbox", seed=2023)
    files = [
        incoming_file(path.read_bytes(), source="folder", original_name=path.name,
                      received_at=dt.datetime.fromtimestamp(path.stat().st_mtime, HCM), source_ref=str(path))
        for path in sorted((root / "inbox").glob("*.xls*"))
    ]
    url = f"sqlite:///{root / 'gec.sqlite3'}"
    init_database(url, reference)
    engine = make_engine(url)
    ingest(engine, reference, files, max_bytes=20 * 1024 * 1024)
    data = load_cycle_data(engine, reference, H1, dt.datetime(2023, 12, 31, tzinfo=HCM))
    engine.dispose()
    return write_report_files(data, root / "outputs").xlsx


def test_demo_rollup_prints_on_a4_one_page_wide(demo_rollup: Path, tmp_path: Path) -> None:
    """tong-hop.xlsx prints on A4, each sheet one page wide, header rows on every page, ≤ 25 pages."""
    book = openpyxl.load_workbook(demo_rollup)
    for sheet in book.worksheets:
        setup = sheet.page_setup
        assert int(setup.paperSize) == int(sheet.PAPERSIZE_A4), sheet.title
        assert sheet.sheet_properties.pageSetUpPr.fitToPage, sheet.title
        # fitToWidth is omitted when 1, the OOXML default; fitToHeight 0 means as many pages as needed.
        assert (setup.fitToWidth or 1, setup.fitToHeight) == (1, 0), sheet.title
        if sheet.title[0].isdigit():  # a table sheet: title, period line and column labels repeat
            assert sheet.print_title_rows == "$1:$4", sheet.title
    wide = book["2.1 Chỉ tiêu toàn quận"]
    assert wide.page_setup.orientation == "landscape"
    assert book["6.1 Tình trạng tệp nộp"].page_setup.orientation == "portrait"

    converted = subprocess.run(
        [soffice(), "--headless", f"-env:UserInstallation=file://{tmp_path / 'profile'}",
         "--convert-to", "pdf", "--outdir", str(tmp_path), str(demo_rollup)],
        capture_output=True, text=True, timeout=180, check=False,
    )
    pdf = tmp_path / "tong-hop.pdf"
    assert converted.returncode == 0 and pdf.exists(), converted.stderr[-2000:]
    pages = len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf.read_bytes()))
    assert 0 < pages <= 25, pages
