"""The annotated copy is bounded like parsing and never turns a school's text into a formula (issue 11).

A file the parser reads in part (it ignores the instructions sheet) must not crash or stall the reply
when the copy reads all of it; hostile cases run in a child process: python-calamine aborts the
whole process on a span it cannot allocate, which would take pytest with it.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import Engine

from db.setup import init_database
from schemas import messages as vi
from schemas.reference import Reference
from tasks.mail import annotate
from tasks.mail.annotate import AnnotatedCopy, annotate_workbook
from tasks.mail.feedback import ReceivedMessage, compose_feedback
from tests.mail.test_feedback import (  # noqa: F401  (the module-scoped fixture is used by name)
    ARRIVED,
    MAX_BYTES,
    _store,
    flat,
    read,
    reference,
    teachers_female_above_total,
    workbook,
)

ROOT = Path(__file__).resolve().parents[2]
MAX_SECONDS = 5.0
MAX_RSS_MB = 300.0
CHILD_ADDRESS_SPACE = 2 * 1024**3

_RUNNER = r"""
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[1]), int(sys.argv[1])))
from config.settings import get_settings
from schemas.reference import load_reference
from tasks.check.parse import parse_workbook
from tasks.check.validate import validate_workbook
from tasks.mail.annotate import annotate_workbook


def peak_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024


reference = load_reference(get_settings().reference_dir)
data = open(sys.argv[2], "rb").read()
parsed = parse_workbook(data, max_bytes=20 * 1024 * 1024)
findings = validate_workbook(parsed, reference)
started = time.process_time()
copy = annotate_workbook(data, parsed, findings, file_name="bao cao.xlsx")
print(json.dumps({"copy": type(copy).__name__, "seconds": time.process_time() - started,
                  "maxrss_mb": peak_mb(), "rules": [item.rule for item in findings]}))
"""


def annotate_in_subprocess(path: Path) -> dict:
    completed = subprocess.run([sys.executable, "-c", _RUNNER, str(CHILD_ADDRESS_SPACE), str(path)],
                               cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, f"annotating killed the process (rc={completed.returncode}):\n" + \
        completed.stderr[-2000:]
    return json.loads(completed.stdout.splitlines()[-1])


def with_instructions_cell(content: bytes, coordinate: str) -> bytes:
    """Put a value far away on the instructions sheet (which the parser ignores)."""
    book = openpyxl.load_workbook(io.BytesIO(content))
    book[book.sheetnames[0]][coordinate] = "x"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def openpyxl_cannot_open(content: bytes) -> bytes:
    """Garble the document properties: openpyxl refuses the package, python-calamine reads it."""
    source = zipfile.ZipFile(io.BytesIO(content))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = b"<not xml" if info.filename == "docProps/core.xml" else source.read(info)
            target.writestr(info, data)
    return out.getvalue()


def with_ignored_values(content: bytes, cells: int) -> bytes:
    """Fill the instructions sheet with `cells` numbers (a big sheet nobody asked for)."""
    book = openpyxl.load_workbook(io.BytesIO(content))
    sheet = book[book.sheetnames[0]]
    for index in range(cells):
        sheet.cell(100 + index // 20, 1 + index % 20, index)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.mark.parametrize("openpyxl_opens", [True, False], ids=["openpyxl", "values-copy"])
def test_a_far_cell_on_an_ignored_sheet_costs_the_copy_not_the_process(
    reference: Reference, tmp_path: Path, openpyxl_opens: bool  # noqa: F811
) -> None:
    content = with_instructions_cell(workbook(reference, change=teachers_female_above_total), "XFD1048576")
    if not openpyxl_opens:
        content = openpyxl_cannot_open(content)
    assert len(content) < 32 * 1024
    path = tmp_path / "xfd.xlsx"
    path.write_bytes(content)
    result = annotate_in_subprocess(path)
    assert result["rules"] == ["female_gt_total"]  # the parser read it: the school gets its findings
    assert result["copy"] == "CopyOmitted", result
    assert result["seconds"] < MAX_SECONDS and result["maxrss_mb"] < MAX_RSS_MB, result


def test_a_big_ignored_sheet_is_copied_only_within_the_budget(reference: Reference, tmp_path: Path  # noqa: F811
                                                               ) -> None:
    content = with_ignored_values(workbook(reference, change=teachers_female_above_total), 150_000)
    path = tmp_path / "big.xlsx"
    path.write_bytes(content)
    result = annotate_in_subprocess(path)
    assert result["copy"] == "CopyOmitted", result
    assert result["seconds"] < MAX_SECONDS and result["maxrss_mb"] < MAX_RSS_MB, result


def test_an_ordinary_file_still_gets_its_copy_by_either_path(reference: Reference,  # noqa: F811
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    content = workbook(reference, change=teachers_female_above_total)
    parsed, findings = read(content)
    assert isinstance(annotate_workbook(content, parsed, findings, file_name="a.xlsx"), AnnotatedCopy)
    monkeypatch.setattr(annotate, "OPENPYXL_MAX_BYTES", 0)
    assert isinstance(annotate_workbook(content, parsed, findings, file_name="a.xlsx"), AnnotatedCopy)


def test_the_reply_says_the_copy_was_left_out(engine: Engine, database_url: str,
                                              reference: Reference) -> None:  # noqa: F811
    init_database(database_url, reference)
    content = with_ignored_values(workbook(reference, change=teachers_female_above_total), 120_000)
    received = _store(engine, reference, content, "mn001@truong.q8.test", "1:1:1")
    with engine.connect() as conn:
        message = ReceivedMessage("1:1", "mn001@truong.q8.test", "BC", "<m@x>", ARRIVED)
        mail = compose_feedback(conn, reference, message, [received], max_bytes=MAX_BYTES)
    assert mail is not None and mail.attachments == ()
    assert flat(vi.ANNOTATED_OMITTED) in flat(mail.text)
    assert "giáo viên" in flat(mail.text).lower()  # the findings are still listed


HOSTILE_TEXT = ('=HYPERLINK("http://evil.test/","bấm vào đây")', "=cmd|' /C calc'!A0", "+1+cmd|'/C calc'!A0")


def test_a_values_copy_writes_formula_looking_text_as_text(reference: Reference,  # noqa: F811
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def typed(found: object) -> None:
        teachers_female_above_total(found)  # type: ignore[arg-type]
        found.general.update(reporter=HOSTILE_TEXT[0], phone=HOSTILE_TEXT[1],  # type: ignore[attr-defined]
                             email=HOSTILE_TEXT[2])
    content = workbook(reference, change=typed)
    parsed, findings = read(content)
    monkeypatch.setattr(annotate, "OPENPYXL_MAX_BYTES", 0)  # the values copy
    copy_ = annotate_workbook(content, parsed, findings, file_name="a.xlsx")
    assert isinstance(copy_, AnnotatedCopy)
    sheets = zipfile.ZipFile(io.BytesIO(copy_.content))
    xml = b"".join(sheets.read(name) for name in sheets.namelist() if name.startswith("xl/worksheets/"))
    assert b"<f>" not in xml  # no formula anywhere: the text is written as text
    book = openpyxl.load_workbook(io.BytesIO(copy_.content))
    texts = {cell.value for sheet in book.worksheets for row in sheet.iter_rows() for cell in row
             if isinstance(cell.value, str)}
    assert set(HOSTILE_TEXT[:2]) <= texts
    assert not any(cell.data_type == "f" for sheet in book.worksheets for row in sheet.iter_rows()
                   for cell in row)
