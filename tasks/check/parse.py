"""Parse a submitted workbook into the contract's shape (SPEC §3), tolerant and bounded.

Values only: python-calamine reads cached formula results and never runs macros. Sheets, columns,
keys and pre-filled row labels are matched by `match_key`, so NFD, upper-case or diacritic-free
copies parse like the template. `tasks.intake.sniff` decides first whether the bytes may reach
python-calamine at all and bounds every sheet this module loads.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import math
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from python_calamine import CalamineError, CalamineWorkbook, PasswordError

from schemas.contract import HEADER_SEARCH_ROWS, SHEETS, YES_NO, CodeList, Field, Kind, Sheet
from schemas.findings import Finding, make_finding
from schemas.text import match_key, nfc
from schemas.workbook import EXCEL_ROW, KeyCell, ParsedWorkbook
from tasks.check.legacy_text import fix_rows, legacy_finding
from tasks.intake.sniff import Identified, check_sheets, identify

log = logging.getLogger(__name__)

# Contract sheets a school fills in; `_meta` is optional and never reported missing.
_REQUIRED_SHEETS = tuple(key for key, sheet in SHEETS.items() if not sheet.hidden)
# Longer text cannot be a header, key or row label; skipping it keeps hostile cells cheap.
_MAX_LABEL_CHARS = 300


@lru_cache(maxsize=8192)
def _key(text: str) -> str:
    """Return the match key of a label, tolerating a trailing colon or required-field star."""
    return match_key(text).rstrip(" :*")


def _build_indexes() -> tuple[dict[str, str], dict[str, dict[str, str]], dict[str, CodeList]]:
    sheets: dict[str, str] = {}
    fields: dict[str, dict[str, str]] = {}
    codelists: dict[str, CodeList] = {YES_NO.key: YES_NO}
    for sheet in SHEETS.values():
        for key in sheet.match_keys():
            sheets.setdefault(key.rstrip(" :*"), sheet.key)
        index: dict[str, str] = {}
        for fld in sheet.fields:
            for key in fld.match_keys():
                index.setdefault(key.rstrip(" :*"), fld.key)
            if fld.codes is not None:
                codelists[fld.codes.key] = fld.codes
        fields[sheet.key] = index
        if sheet.rows is not None:
            codelists[sheet.rows.key] = sheet.rows
    return sheets, fields, codelists


_SHEET_INDEX, _FIELD_INDEX, _CODELISTS = _build_indexes()


@lru_cache(maxsize=8192)
def _code(list_key: str, text: str) -> str | None:
    return _CODELISTS[list_key].lookup(text)


# --------------------------------------------------------------------------------------------------
# Cells: display text and coercions (SPEC §3 "Coercions")


def _is_blank(value: object) -> bool:
    if value is None or value == "":
        return True
    return type(value) is str and value.isspace()


def _display(value: object) -> str:
    """Return a cell as the clerk sees it: NFC text, integral numbers without `.0`, dd/mm/yyyy."""
    if value is None:
        return ""
    if isinstance(value, str):
        return nfc(value)
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return f"{value:.15g}"
    if isinstance(value, dt.datetime):
        if value.time() == dt.time():
            return value.strftime("%d/%m/%Y")
        return value.strftime("%d/%m/%Y %H:%M")
    if isinstance(value, dt.date):
        return value.strftime("%d/%m/%Y")
    return str(value)


_INT = re.compile(r"[+-]?\d+")
# Vietnamese thousands separators: `1.250`, `1 250` (also the no-break spaces Excel and Word insert).
_THOUSANDS = re.compile(r"([+-]?)(\d{1,3}(?:([. \u00a0\u202f])\d{3})(?:\3\d{3})*)")
_ZERO_DECIMALS = re.compile(r"([+-]?\d+)[.,]0+")


def _to_int(value: object) -> object:
    if type(value) is float:  # what python-calamine returns for most xlsx numbers
        return int(value) if math.isfinite(value) and value.is_integer() else _display(value)
    if isinstance(value, bool):
        return _display(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = nfc(value).strip()
        if _INT.fullmatch(text):
            return int(text)
        found = _THOUSANDS.fullmatch(text)
        if found:
            return int(found.group(1) + re.sub(r"\D", "", found.group(2)))
        found = _ZERO_DECIMALS.fullmatch(text)
        if found:
            return int(found.group(1))
        return text
    return _display(value)


_EXCEL_EPOCH = dt.date(1899, 12, 30)
_MAX_SERIAL = 2958465  # 31/12/9999
_DMY = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")
_YMD = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")


def _serial_date(serial: float) -> dt.date | None:
    """Convert an Excel 1900-system serial number to a date (Excel counts a 29/02/1900)."""
    if not math.isfinite(serial) or serial < 1 or serial > _MAX_SERIAL:
        return None
    days = int(serial)
    if days == 60:
        return None  # the 29/02/1900 that never was
    if days < 60:
        days += 1
    return _EXCEL_EPOCH + dt.timedelta(days=days)


def _to_date(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, bool):
        return _display(value)
    if isinstance(value, int | float):
        return _serial_date(value) or _display(value)
    if isinstance(value, str):
        text = nfc(value).strip()
        found = _DMY.fullmatch(text)
        parts: tuple[int, int, int] | None = None
        if found:
            day, month, year = (int(part) for part in found.groups())
            parts = (year, month, day)
        else:
            found = _YMD.fullmatch(text)
            if found:
                year, month, day = (int(part) for part in found.groups())
                parts = (year, month, day)
        if parts:
            try:
                return dt.date(*parts)
            except ValueError:
                return text
        return text
    return _display(value)


def _label_text(value: object) -> str:
    """Return the text to look a coded value up by (numbers lose `.0`, so `1` means yes)."""
    return _display(value).strip()


def _to_yes_no(value: object, codes: CodeList) -> object:
    if isinstance(value, bool):
        return value
    text = _label_text(value)
    code = _code(codes.key, text) if len(text) <= _MAX_LABEL_CHARS else None
    if code == "yes":
        return True
    if code == "no":
        return False
    return text


def _to_code(value: object, codes: CodeList) -> object:
    text = _label_text(value)
    code = _code(codes.key, text) if len(text) <= _MAX_LABEL_CHARS else None
    return code if code is not None else text


def _to_text(value: object) -> object:
    text = _display(value).strip()
    return text or None


def coerce(fld: Field, value: object) -> object:
    """Coerce one cell by its field's kind; blank gives None, failure gives the raw text."""
    if _is_blank(value):
        return None
    kind = fld.kind
    if kind is Kind.INT:
        return _to_int(value)
    if kind is Kind.DATE:
        return _to_date(value)
    if kind is Kind.YES_NO:
        return _to_yes_no(value, fld.codes or YES_NO)
    if kind is Kind.CODE and fld.codes is not None:
        return _to_code(value, fld.codes)
    return _to_text(value)


# --------------------------------------------------------------------------------------------------
# Sheets


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _lookup_label(index: dict[str, str], value: object) -> str | None:
    if not isinstance(value, str) or not value or len(value) > _MAX_LABEL_CHARS:
        return None
    return index.get(_key(value))


def _parse_key_value(sheet: Sheet, rows: list[list[Any]]) -> tuple[dict[str, KeyCell], dict[str, int]]:
    index = _FIELD_INDEX[sheet.key]
    cells: dict[str, KeyCell] = {}
    for number, row in enumerate(rows, start=1):
        if not row:
            continue
        field_key = _lookup_label(index, row[0])
        if field_key is None or field_key in cells:
            continue
        value = row[1] if len(row) > 1 else None
        cells[field_key] = KeyCell(coerce(sheet.field(field_key), value), _display(value), number)
    return cells, dict.fromkeys(cells, 1)


def _find_header(sheet: Sheet, rows: list[list[Any]]) -> tuple[int | None, dict[str, int]]:
    """Return the 0-based header row (the one matching most labels) and field -> column."""
    index = _FIELD_INDEX[sheet.key]
    best_row: int | None = None
    best: dict[str, int] = {}
    for number in range(min(HEADER_SEARCH_ROWS, len(rows))):
        found: dict[str, int] = {}
        for col, value in enumerate(rows[number]):
            field_key = _lookup_label(index, value)
            if field_key is not None and field_key not in found:
                found[field_key] = col
        if len(found) > len(best):
            best_row, best = number, found
            if len(found) == len(sheet.fields):
                break
    return best_row, best


@lru_cache(maxsize=256)
def _columns_index(keys: tuple[str, ...]) -> pd.Index:
    """Return a parsed table's column index (cached: building an Index costs more than the frame)."""
    return pd.Index([*keys, EXCEL_ROW], dtype=object)


def _frame(keys: list[str], values: list[list[object]], excel_rows: list[int]) -> pd.DataFrame:
    """Build an all-object frame: cells keep their Python types, EXCEL_ROW holds Python ints.

    One object block is ~5x cheaper than adding an int64 column, and the parse budget is ~2 ms.
    """
    width = len(keys)
    grid = np.empty((len(values), width + 1), dtype=object)
    for i, row in enumerate(values):
        grid[i, :width] = row
        grid[i, width] = excel_rows[i]
    return pd.DataFrame(grid, columns=_columns_index(tuple(keys)), dtype=object, copy=False)


def _parse_table(
    sheet: Sheet, rows: list[list[Any]], findings: list[Finding]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    header, columns = _find_header(sheet, rows)
    for fld in sheet.fields:
        if fld.key not in columns:
            findings.append(make_finding("missing_column", sheet.key, column_key=fld.key))
    fields = [fld for fld in sheet.fields if fld.key in columns]
    keys = [fld.key for fld in fields]
    positions = [columns[key] for key in keys]
    if header is None:
        return _frame(keys, [], []), _frame(keys, [], []), columns

    header_row = rows[header]
    used = set(positions)
    header_excel_row = header + 1
    blank_headers: list[int] = []
    for col, value in enumerate(header_row):
        if col in used:
            continue
        if _is_blank(value):
            blank_headers.append(col)
        else:
            findings.append(
                make_finding("extra_column_dropped", sheet.key, header_excel_row,
                             column_label=_display(value).strip())
            )

    data_rows: list[tuple[int, list[Any]]] = []
    for number in range(header + 1, len(rows)):
        row = rows[number]
        if all(_is_blank(value) for value in row):
            break
        data_rows.append((number + 1, row))

    # Text typed under no header is dropped too, and said so (names must not hide in `Vụ việc`).
    for col in blank_headers:
        first = next((excel for excel, row in data_rows if not _is_blank(row[col])), None)
        if first is not None:
            label = f"Cột {_column_letter(col)}"
            findings.append(make_finding("extra_column_dropped", sheet.key, first, column_label=label))

    label_col = columns.get(sheet.row_field) if sheet.row_field else None
    seen: set[str] = set()
    values: list[list[object]] = []
    raws: list[list[object]] = []
    excel_rows: list[int] = []
    for excel_row, row in data_rows:
        if sheet.rows is not None:
            if label_col is None:
                break
            label = row[label_col]
            text = _label_text(label)
            code = _code(sheet.rows.key, text) if text and len(text) <= _MAX_LABEL_CHARS else None
            if code is None or code in seen:
                shown = text or f"Dòng {excel_row}"
                if sheet.confidential:
                    # Text typed as an incident row may be a child's name: named by its row, kept as
                    # the finding's (confidential, never rendered) value.
                    findings.append(make_finding("extra_column_dropped", sheet.key, excel_row, value=text,
                                                 column_label=f"Dòng {excel_row}"))
                    continue
                findings.append(
                    make_finding("extra_column_dropped", sheet.key, excel_row, column_label=shown)
                )
                continue
            seen.add(code)
        cells = [row[col] for col in positions]
        values.append([coerce(fld, cell) for fld, cell in zip(fields, cells, strict=True)])
        raws.append([_display(cell) for cell in cells])
        excel_rows.append(excel_row)
    return _frame(keys, values, excel_rows), _frame(keys, raws, excel_rows), columns


# --------------------------------------------------------------------------------------------------
# Workbook


def _rejected(rule: str, detail_vi: str = "") -> ParsedWorkbook:
    extra = {"detail": detail_vi} if detail_vi else {}
    return ParsedWorkbook(file_format="", findings=[make_finding(rule, **extra)])


def _from_verdict(verdict: Identified) -> ParsedWorkbook:
    log.info("workbook rejected: %s (%s): %s", verdict.rule, verdict.format, verdict.detail)
    return _rejected(verdict.rule or "unreadable_file", verdict.detail_vi)


def _match_sheets(names: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name in names:
        sheet_key = _lookup_label(_SHEET_INDEX, name)
        if sheet_key is not None and sheet_key not in found:
            found[sheet_key] = name
    return found


def _duplicate_sheets(names: Sequence[str]) -> list[Finding]:
    """Return a `duplicate_sheet` error for each contract sheet two or more sheets of the file fold to.

    "THONG TIN CHUNG" and "Thông tin chung" both read as the general sheet; counting the first and
    ignoring the other (which may name another school) would be a guess, so the file goes back.
    """
    matches: dict[str, list[str]] = {}
    for name in names:
        sheet_key = _lookup_label(_SHEET_INDEX, name)
        if sheet_key is not None:
            matches.setdefault(sheet_key, []).append(name)
    return [
        make_finding("duplicate_sheet", sheet_key,
                     detail=" và ".join(f"\u201c{name}\u201d" for name in found))
        for sheet_key, found in matches.items()
        if len(found) > 1
    ]


def parse_workbook(data: bytes, *, max_bytes: int) -> ParsedWorkbook:
    """Parse a submitted workbook's bytes into contract values and findings; never raises."""
    try:
        return _parse(data, max_bytes)
    except MemoryError:
        log.warning("workbook parse ran out of memory")
        return _rejected("too_large", "không đủ bộ nhớ để đọc tệp")
    except BaseException as exc:  # pyo3 turns Rust panics into PanicException, a BaseException
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        log.warning("workbook parse failed: %s: %s", type(exc).__name__, exc, exc_info=True)
        return _rejected("unreadable_file")


def _open(data: bytes) -> CalamineWorkbook | ParsedWorkbook:
    try:
        return CalamineWorkbook.from_filelike(io.BytesIO(data))
    except PasswordError:
        return _rejected("encrypted_file")
    except CalamineError as exc:
        log.info("python-calamine refused the workbook: %s", exc)
        if "limit exceeded" in str(exc).lower():
            return _rejected("too_large", "vùng dữ liệu của trang tính quá lớn")
        return _rejected("unreadable_file")


def _parse(data: bytes, max_bytes: int) -> ParsedWorkbook:
    verdict = identify(data, max_bytes=max_bytes)
    if not verdict.ok:
        return _from_verdict(verdict)
    opened = _open(data)
    if isinstance(opened, ParsedWorkbook):
        return opened
    with opened as book:
        parsed = ParsedWorkbook(file_format=verdict.format)
        found = _match_sheets(book.sheet_names)
        parsed.findings.extend(_duplicate_sheets(book.sheet_names))
        for sheet_key in _REQUIRED_SHEETS:
            if sheet_key not in found:
                parsed.findings.append(make_finding("missing_sheet", sheet_key))
        # ODS and xls were bounded whole by identify(); xlsx-like packages load sheet by sheet.
        rejection = check_sheets(verdict, list(found.values()))
        if rejection is not None:
            return _from_verdict(rejection)
        for sheet_key, name in found.items():
            try:
                rows = book.get_sheet_by_name(name).to_python(skip_empty_area=False)
            except PasswordError:
                return _rejected("encrypted_file")
            except CalamineError as exc:
                log.info("sheet %r unreadable: %s", name, exc)
                return _rejected("unreadable_file")
            sheet = SHEETS[sheet_key]
            # Text typed in TCVN3/VNI fonts becomes Unicode before any label is matched (issue 13).
            legacy = fix_rows(rows)
            if legacy is not None:
                parsed.findings.append(legacy_finding(sheet, *legacy))
            parsed.sheet_names[sheet_key] = name
            if sheet.layout == "key_value":
                cells_by_key, columns = _parse_key_value(sheet, rows)
                if sheet_key == "meta":
                    parsed.meta = cells_by_key
                else:
                    parsed.general = cells_by_key
                parsed.columns[sheet_key] = columns
            else:
                table, raw, columns = _parse_table(sheet, rows, parsed.findings)
                parsed.tables[sheet_key] = table
                parsed.raw[sheet_key] = raw
                parsed.columns[sheet_key] = columns
    return parsed
