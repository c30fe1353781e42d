"""Every real-world spreadsheet of the shared corpus gets a bounded verdict (SPEC §3 robustness)."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest
from python_calamine import CalamineError, CalamineWorkbook

from schemas.contract import REACH
from tasks.intake.cell_bounds import biff12_records
from tasks.intake.sniff import LAZY_FORMATS, identify, sheet_cell_bounds
from tests.intake.test_hostile_files import HANG_SECONDS, MAX_RSS_MB, MAX_SECONDS, parse_in_subprocess
from tests.support.corpus import CORPUS, corpus_files, require_corpus

SPREADSHEETS = corpus_files("spreadsheets")
NAMES = [path.name for path in SPREADSHEETS]
MAX_BYTES = 20 * 1024 * 1024



@pytest.fixture(autouse=True)
def _corpus_present() -> None:
    require_corpus(SPREADSHEETS, "spreadsheets")


# Files that must be rejected, and why. Every other file is an ordinary workbook other software
# wrote: readable, but not our template, so each of the five data sheets is missing.
REJECTED = {
    "encrypted-agile-password.xlsx": "encrypted_file",
    "libreoffice-password-encrypted.ods": "encrypted_file",
    "excel2002-password-xor.xls": "encrypted_file",
    "excel2002-password-rc4-cryptoapi.xls": "encrypted_file",
    "gateway-stub-text-named-xls.xls": "unreadable_file",
    "biff2-bare-stream.xls": "unreadable_file",
    "biff4-bare-stream-no-ole.xls": "unreadable_file",
    "corrupt-cfb-huge-sector-count.xls": "unreadable_file",
    "numbers112-native-format.numbers": "unreadable_file",
    "ods-repeat-bomb-1e9-rows-cols.ods": "too_large",
}
# What the first bytes say, whatever the extension (two .xls hold an embedded zip; one .xlsx is OLE).
FORMATS = {
    "encrypted-agile-password.xlsx": "xlsx",
    "wps-office-biff8.xls": "xls",
    "excel2011-mac-biff8-merged-cells.xls": "xls",
    "excel-biff5-vietnamese-codepage.xls": "xls",
    "excel2007-vba-macros.xlsm": "xlsm",
    "excel2011-mac-merged-cells.xlsb": "xlsb",
    "excel2013-strict-ooxml-hidden-sheets.xlsx": "xlsx",
    "backslash-zip-paths-chinese-sheet-name.xlsx": "xlsx",
    "minimal-package-parts-at-zip-root.xlsx": "xlsx",
    "gnumeric-dimension-a1-xfd1048576.xlsx": "xlsx",
    "libreoffice74-merged-cells.ods": "ods",
    "excel2013-saved-as-ods-merged-cells.ods": "ods",
    "numbers112-native-format.numbers": "numbers",
    "biff2-bare-stream.xls": "biff",
    "gateway-stub-text-named-xls.xls": "text",
}


@pytest.fixture(scope="module")
def verdicts() -> dict[str, dict]:
    """Parse the whole corpus in one child process (start-up costs more than all the parses)."""
    results = parse_in_subprocess(SPREADSHEETS, max_bytes=MAX_BYTES)
    return {Path(path).name: result for path, result in results.items()}


def test_the_expectations_name_real_files() -> None:
    assert set(REJECTED) <= set(NAMES) and set(FORMATS) <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_every_file_gets_a_bounded_verdict(name: str, verdicts: dict[str, dict]) -> None:
    result = verdicts[name]

    assert "exception" not in result, result
    assert result["seconds"] < MAX_SECONDS and result["wall_seconds"] < HANG_SECONDS, result
    assert result["maxrss_mb"] < MAX_RSS_MB, result
    assert result["rules"], result  # parsed or not, a file always carries a rule code here
    if name in REJECTED:
        assert result["rules"] == [REJECTED[name]], result
        assert result["format"] == "", result
    else:
        assert result["rules"] == ["missing_sheet"] * 5, result
        assert result["format"] in {"xlsx", "xlsm", "xlsb", "xls", "ods"}, result


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_format_comes_from_the_first_bytes(name: str) -> None:
    data = (CORPUS / "spreadsheets" / name).read_bytes()
    assert identify(data, max_bytes=MAX_BYTES).format == FORMATS[name]


@pytest.mark.parametrize("name", [name for name in NAMES if name not in REJECTED])
def test_cell_bounds_cover_what_calamine_allocates(name: str) -> None:
    """The pre-checks' estimate is never below the span python-calamine really allocates.

    The corpus workbooks are harmless once identify() let them through, so loading them here is
    safe; the estimate being sound on files other software wrote is what keeps the bombs out.
    """
    data = (CORPUS / "spreadsheets" / name).read_bytes()
    verdict = identify(data, max_bytes=MAX_BYTES)
    assert verdict.ok
    try:
        book = CalamineWorkbook.from_filelike(io.BytesIO(data))
    except CalamineError:
        pytest.skip("python-calamine refuses this file (the parse reports unreadable_file)")
    allocated = {}
    for sheet_name in book.sheet_names:
        sheet = book.get_sheet_by_name(sheet_name)
        allocated[sheet_name] = 0 if sheet.end is None or not sheet.height else (
            (sheet.end[0] + 1) * (sheet.end[1] + 1)
        )
    if verdict.format in LAZY_FORMATS:
        bounds = sheet_cell_bounds(verdict, book.sheet_names)
        assert all(bounds[sheet] >= allocated[sheet] for sheet in allocated), (bounds, allocated)
    else:
        assert verdict.cells >= sum(allocated.values()), (verdict.cells, allocated)


# --------------------------------------------------------------------------------------------------
# An xlsb bomb, made from the corpus's real xlsb: python-calamine aborts the process on it unguarded


def _varint(size: int) -> bytes:
    out = bytearray()
    while True:
        byte, size = size & 0x7F, size >> 7
        out.append(byte | (0x80 if size else 0))
        if not size:
            return bytes(out)


def _rename_first_sheet(workbook_bin: bytes, name: str) -> bytes:
    """Rewrite the first BrtBundleSh record of an xlsb workbook part with a new sheet name."""
    out = bytearray()
    renamed = False
    for rtype, offset, size in biff12_records(workbook_bin):
        header_start = offset - 1 - (1 if rtype > 0x7F else 0) - len(_varint(size))
        record = workbook_bin[offset:offset + size]
        if rtype == 0x009C and not renamed:
            (rel_length,) = struct.unpack_from("<I", record, 8)
            keep = record[: 12 + 2 * rel_length]
            record = keep + struct.pack("<I", len(name)) + name.encode("utf-16-le")
            renamed = True
        out += workbook_bin[header_start:offset - len(_varint(size))] + _varint(len(record)) + record
    return bytes(out)


def _far_cell(sheet_bin: bytes, row: int, column: int) -> bytes:
    """Move the last row header and the last value cell of an xlsb sheet part far away."""
    patched = bytearray(sheet_bin)
    last_row = last_cell = None
    for rtype, offset, _ in biff12_records(sheet_bin):
        if rtype == 0x0000:
            last_row = offset
        elif 0x0002 <= rtype <= 0x000B:
            last_cell = offset
    assert last_row is not None and last_cell is not None
    struct.pack_into("<I", patched, last_row, row)
    struct.pack_into("<I", patched, last_cell, column)
    return bytes(patched)


def _patched_xlsb(far: bool) -> bytes:
    source = zipfile.ZipFile(CORPUS / "spreadsheets" / "excel2011-mac-merged-cells.xlsb")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "xl/workbook.bin":
                data = _rename_first_sheet(data, REACH.name)
            elif info.filename == "xl/worksheets/sheet1.bin" and far:
                data = _far_cell(data, 500_000, 2_000)
            archive.writestr(info, data)
    return buffer.getvalue()


@pytest.mark.skipif("excel2011-mac-merged-cells.xlsb" not in NAMES, reason="corpus xlsb not found")
def test_xlsb_cell_span_is_refused_and_a_plain_xlsb_sheet_is_read(tmp_path: Path) -> None:
    plain, bomb = tmp_path / "plain.xlsb", tmp_path / "bomb.xlsb"
    plain.write_bytes(_patched_xlsb(far=False))
    bomb.write_bytes(_patched_xlsb(far=True))

    results = parse_in_subprocess([plain, bomb], max_bytes=MAX_BYTES)

    assert results[str(plain)]["format"] == "xlsb"
    assert "missing_column" in results[str(plain)]["rules"]  # the renamed sheet was found and read
    assert results[str(bomb)]["rules"] == ["too_large"], results[str(bomb)]
    for result in results.values():
        assert result["seconds"] < MAX_SECONDS and result["maxrss_mb"] < MAX_RSS_MB, result
