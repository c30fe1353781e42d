"""Hostile files get a verdict within 5 s and 300 MB, measured in a separate process (SPEC §3)."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from schemas.contract import ACTIVITIES, ACTIVITY_TYPES, REACH
from tasks.check.parse import parse_workbook
from tasks.intake.sniff import MAX_CELLS
from tests.support.grid_workbooks import contract_grid, write_xlsx

ROOT = Path(__file__).resolve().parents[2]
# Time bounds are on the parser's CPU time: the suite runs two workers beside Prefect servers on two
# cores, so wall time measures the neighbours; a separate, generous wall bound still catches a hang.
MAX_SECONDS = 5.0
HANG_SECONDS = 60.0
MAX_RSS_MB = 300.0
MAX_BYTES = 20 * 1024 * 1024
# The child's address-space cap: a regressed guard then dies of a failed allocation instead of
# swapping the machine (imports alone reserve ~210 MB of address space).
CHILD_ADDRESS_SPACE = 2 * 1024**3
# Interpreter start-up and imports are not part of the measured parse; this only stops a hang.
CHILD_TIMEOUT = 300

# Peak memory is the child's own VmHWM: ru_maxrss would carry over the parent's peak across
# fork and exec, and pytest's process is not what is measured.
_RUNNER = r"""
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[2]), int(sys.argv[2])))


def peak_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


from tasks.check.parse import parse_workbook
max_bytes = int(sys.argv[1])
for path in sys.argv[3:]:
    print(json.dumps({"start": path}), flush=True)
    with open(path, "rb") as handle:
        data = handle.read()
    started = time.perf_counter()
    cpu_started = time.process_time()
    try:
        parsed = parse_workbook(data, max_bytes=max_bytes)
        result = {"rules": [f.rule for f in parsed.findings], "format": parsed.file_format}
    except BaseException as exc:
        result = {"exception": repr(exc)}
    result["seconds"] = time.process_time() - cpu_started
    result["wall_seconds"] = time.perf_counter() - started
    result["maxrss_mb"] = peak_mb()
    result["path"] = path
    print(json.dumps(result), flush=True)
"""


def parse_in_subprocess(paths: Sequence[Path], max_bytes: int = MAX_BYTES) -> dict[str, dict]:
    """Parse files one after another in a fresh interpreter; return each file's verdict and costs.

    `maxrss_mb` is the child's peak resident memory so far (interpreter and imports included), so
    with one file per child it is that file's honest peak and with many it bounds every one of them.
    """
    completed = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(max_bytes), str(CHILD_ADDRESS_SPACE), *map(str, paths)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        check=False,
    )
    results: dict[str, dict] = {}
    started = None
    for line in completed.stdout.splitlines():
        record = json.loads(line)
        if "start" in record:
            started = record["start"]
        else:
            results[record["path"]] = record
            started = None
    if completed.returncode != 0 or started is not None:
        raise AssertionError(
            f"parser process died (rc={completed.returncode}) while parsing {started}:\n"
            f"{completed.stderr[-3000:]}"
        )
    return results


def assert_verdict(result: dict, expected: set[str] | str) -> None:
    expected = {expected} if isinstance(expected, str) else expected
    assert "exception" not in result, result
    assert result["seconds"] < MAX_SECONDS and result["wall_seconds"] < HANG_SECONDS, result
    assert result["maxrss_mb"] < MAX_RSS_MB, result
    assert result["rules"] and result["rules"][0] in expected, result
    assert result["format"] == "", result


# --------------------------------------------------------------------------------------------------
# Hostile inputs, built in the test


def contract_xlsx() -> bytes:
    return write_xlsx(contract_grid())


def encrypted_xlsx() -> bytes:
    from msoffcrypto.format.ooxml import OOXMLFile

    encrypted = io.BytesIO()
    OOXMLFile(io.BytesIO(contract_xlsx())).encrypt("matkhau123", encrypted)
    return encrypted.getvalue()


def cell_span_xlsx() -> bytes:
    # Two cells, 20 million cells apart: calamine would allocate the whole span (≈ 850 MB).
    return write_xlsx({REACH.name: [["a"], *([None] * 999_998), [*([None] * 19), "b"]]})


def cell_span_xls() -> bytes:
    # A1 and IV65536: python-calamine loads every xls sheet on open (≈ 1.2 GB for this span).
    import xlwt

    book = xlwt.Workbook()
    sheet = book.add_sheet(REACH.name)
    sheet.write(0, 0, "a")
    sheet.write(65535, 255, "b")
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def ods_repeat_bomb(rows: int, columns: int) -> bytes:
    """An ODS whose one cell repeats rows x columns times (python-calamine materialises them)."""
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        f'<office:body><office:spreadsheet><table:table table:name="{REACH.name}">'
        f'<table:table-row table:number-rows-repeated="{rows}">'
        f'<table:table-cell table:number-columns-repeated="{columns}" office:value-type="string">'
        "<text:p>X</text:p></table:table-cell></table:table-row>"
        "</table:table></office:spreadsheet></office:body></office:document-content>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", content)
    return buffer.getvalue()


def shared_strings_bomb() -> bytes:
    """63 MB of one-letter shared strings: python-calamine parses them all on open (≈ 200 MB)."""
    template = zipfile.ZipFile(io.BytesIO(write_xlsx({REACH.name: [["a"]]})))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in template.infolist():
            if info.filename != "xl/sharedStrings.xml":
                archive.writestr(info.filename, template.read(info))
                continue
            with archive.open(info.filename, "w") as member:
                member.write(b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">')
                for _ in range(3_700):
                    member.write(b"<si><t>a</t></si>" * 1_000)
                member.write(b"</sst>")
    return buffer.getvalue()


def duplicate_members() -> bytes:
    """Two parts named alike: the one checked must be the one parsed, so neither is trusted."""
    template = zipfile.ZipFile(io.BytesIO(write_xlsx({REACH.name: [["a"]]})))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for info in template.infolist():
            archive.writestr(info.filename, template.read(info))
        archive.writestr("xl\\worksheets\\sheet1.xml", template.read("xl/worksheets/sheet1.xml"))
    return buffer.getvalue()


def docx_like_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", '<Types><Override PartName="/word/document.xml" '
                         'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.'
                         'document.main+xml"/></Types>')
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


CASES: dict[str, tuple[object, str | set[str]]] = {
    "empty": (lambda: b"", "unreadable_file"),
    "text": (lambda: "Xin chào, đây là thư chứ không phải bảng tính.\n".encode(), "unreadable_file"),
    "html-named-xls": (lambda: b"<html><body><table><tr><td>1</td></tr></table></body></html>",
                       "unreadable_file"),
    "truncated-xlsx": (lambda: contract_xlsx()[: len(contract_xlsx()) // 2], "unreadable_file"),
    "xlsx-missing-its-end": (lambda: contract_xlsx()[:-30], "unreadable_file"),
    "encrypted-xlsx": (encrypted_xlsx, "encrypted_file"),
    "docx-zip": (docx_like_zip, "unreadable_file"),
    "xlsx-cell-span": (cell_span_xlsx, "too_large"),
    "xls-cell-span": (cell_span_xls, "too_large"),
    "ods-repeat-bomb": (lambda: ods_repeat_bomb(10_000, 5_000), "too_large"),
    "ods-repeat-bomb-1e9": (lambda: ods_repeat_bomb(999_999_999, 999_999_999), "too_large"),
    "shared-strings-bomb": (shared_strings_bomb, "too_large"),
    "duplicate-members": (duplicate_members, "unreadable_file"),
}


@pytest.fixture(scope="module")
def hostile_verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Parse every case in one child: its peak memory then bounds each case's (start-up is slow)."""
    folder = tmp_path_factory.mktemp("hostile")
    paths = {}
    for case, (build, _) in CASES.items():
        paths[case] = folder / f"{case}.xlsx"  # the extension lies on purpose
        paths[case].write_bytes(build())
    results = parse_in_subprocess(list(paths.values()))
    return {case: results[str(path)] for case, path in paths.items()}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_file_gets_a_bounded_verdict(case: str, hostile_verdicts: dict[str, dict]) -> None:
    assert_verdict(hostile_verdicts[case], CASES[case][1])


def test_file_over_the_size_limit_is_too_large(tmp_path: Path) -> None:
    path = tmp_path / "big.xlsx"
    path.write_bytes(contract_xlsx())

    result = parse_in_subprocess([path], max_bytes=path.stat().st_size - 1)[str(path)]

    assert_verdict(result, "too_large")


# --------------------------------------------------------------------------------------------------
# The cell budget itself keeps a parse bounded


def test_one_cell_over_the_budget_is_too_large() -> None:
    width = len(ACTIVITIES.fields)
    rows = MAX_CELLS // width + 1  # the span A1:M{rows} is just over the budget
    grid = {ACTIVITIES.name: [[fld.label for fld in ACTIVITIES.fields], *([None] * (rows - 2)), [1] * width]}

    over = parse_workbook(write_xlsx(grid), max_bytes=MAX_BYTES)
    grid[ACTIVITIES.name].pop(-2)
    within = parse_workbook(write_xlsx(grid), max_bytes=MAX_BYTES)

    assert [f.rule for f in over.findings] == ["too_large"]
    assert "too_large" not in [f.rule for f in within.findings] and within.readable


def test_the_largest_workbook_the_budget_admits_parses_in_bounds(tmp_path: Path) -> None:
    import xlsxwriter

    width = len(ACTIVITIES.fields)
    rows = MAX_CELLS // width - 1
    path = tmp_path / "dense.xlsx"
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = book.add_worksheet(ACTIVITIES.name)
    sheet.write_row(0, 0, [fld.label for fld in ACTIVITIES.fields])
    row = [None, "15/03/2023", "16/03/2023", ACTIVITY_TYPES.label("tap_huan"), "Tập huấn kỹ năng",
           "Luật Trẻ em 2016", "Trực tiếp", 10, 5, 100, 50, 20, 10]
    for number in range(1, rows + 1):
        row[0] = number
        sheet.write_row(number, 0, row)
    book.close()

    result = parse_in_subprocess([path])[str(path)]

    assert "exception" not in result, result
    assert result["format"] == "xlsx" and "too_large" not in result["rules"], result
    assert result["seconds"] < MAX_SECONDS and result["wall_seconds"] < HANG_SECONDS, result
    assert result["maxrss_mb"] < MAX_RSS_MB, result


# --------------------------------------------------------------------------------------------------
# Zip bombs


BOMB_BYTES = 1100 * 1024 * 1024  # the sheet XML expands past 1 GB


def write_zip_bomb(path: Path) -> None:
    """Write a small .xlsx whose sheet XML inflates past 1 GB, streaming so the test stays cheap."""
    template = zipfile.ZipFile(io.BytesIO(write_xlsx({REACH.name: [["a"]]})))
    chunk = b"<!-- padding -->" * 65536  # 1 MiB of XML comment: still a valid sheet when inflated
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for info in template.infolist():
            if info.filename != "xl/worksheets/sheet1.xml":
                archive.writestr(info.filename, template.read(info))
                continue
            sheet = template.read(info)
            head, tail = sheet.split(b"<sheetData>")
            with archive.open(info.filename, "w") as member:
                member.write(head)
                for _ in range(BOMB_BYTES // len(chunk)):
                    member.write(chunk)
                member.write(b"<sheetData>" + tail)


def understate_sizes(data: bytes, member: bytes, size: int) -> bytes:
    """Make the zip's headers claim `member` inflates to `size` bytes (a lying bomb)."""
    patched = bytearray(data)
    # (signature, offset of the uncompressed size, of the name length, of the name) per header kind
    headers = ((b"PK\x01\x02", 24, 28, 46), (b"PK\x03\x04", 22, 26, 30))
    for signature, size_at, name_len_at, name_at in headers:
        start = 0
        while (start := patched.find(signature, start)) >= 0:
            (name_len,) = struct.unpack_from("<H", patched, start + name_len_at)
            if bytes(patched[start + name_at : start + name_at + name_len]) == member:
                struct.pack_into("<I", patched, start + size_at, size)
            start += 4
    return bytes(patched)


def test_zip_bombs_are_refused_without_inflating(tmp_path: Path) -> None:
    honest = tmp_path / "bomb.xlsx"
    write_zip_bomb(honest)
    lying = tmp_path / "bomb-lying.xlsx"
    lying.write_bytes(understate_sizes(honest.read_bytes(), b"xl/worksheets/sheet1.xml", 4000))
    assert honest.stat().st_size < 10 * 1024 * 1024
    declared = zipfile.ZipFile(honest).getinfo("xl/worksheets/sheet1.xml").file_size
    assert declared > 1024**3

    results = parse_in_subprocess([honest, lying])

    assert_verdict(results[str(honest)], "too_large")
    # Headers that lie are caught when the member outgrows them: bounded, and reported unreadable.
    assert_verdict(results[str(lying)], {"unreadable_file", "too_large"})
