"""Indicators the office enters (SPEC §2, issue 14 item 3): a workbook to fill, read back, checked, saved.

`build_indicator_template` writes the catalog's manual indicators for one cycle into an Excel workbook
with one column to fill; `read_indicator_values` reads it back through the same bounded reader as
submissions and checks every row like a submission (numbers, 0–100 for "%" indicators, known manual
codes), collecting one Vietnamese/English line per problem; `write_indicator_values` stores the
figures under each indicator's `values: {CYCLE: value}` in indicators.yaml, and only when the whole
file was clean.
"""

from __future__ import annotations

import io
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xlsxwriter
import yaml
from python_calamine import CalamineError, CalamineWorkbook, PasswordError

from schemas.reference import INDICATORS_FILE, Cycle, Indicator, Reference, ReferenceDataError, load_reference
from schemas.text import match_key, nfc
from tasks.intake.sniff import check_sheets, identify

SHEET = "Chỉ tiêu Phòng nhập"
CYCLE_LABEL = "Kỳ báo cáo"
HEADERS = ("Mã", "Chỉ tiêu", "Chương trình", "Đơn vị", "Mục tiêu", "Giá trị kỳ này", "Ghi chú")
CODE_COLUMN, VALUE_COLUMN = 0, 5
HEADER_ROW = 3  # 0-based: title, cycle line, instructions, then the header
_PERCENT_TEXT = re.compile(r"^\s*([-+]?\d+(?:[.,]\d+)?)\s*%?\s*$")


class IndicatorImportError(ValueError):
    """The workbook cannot be used at all (not a workbook, no sheet, unknown cycle)."""


@dataclass(frozen=True)
class EnteredValue:
    """One figure read from the workbook: the indicator, the old and the new value."""

    code: str
    old: float | None
    new: float


@dataclass
class ImportedValues:
    """What a filled template holds: its cycle, the figures, and every problem found."""

    cycle_id: str
    values: list[EnteredValue] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    blank: list[str] = field(default_factory=list)  # codes left empty: not entered yet

    @property
    def changes(self) -> list[EnteredValue]:
        """Return the figures that differ from what the catalog holds."""
        return [value for value in self.values if value.old != value.new]


def manual_indicators(reference: Reference) -> list[Indicator]:
    """Return the catalog's indicators the office enters, in catalog order."""
    return [indicator for indicator in reference.indicators if indicator.manual]


def template_file_name(cycle: Cycle) -> str:
    """Return the file name the template is saved under, e.g. chi-tieu-phong-nhap_2023-H1.xlsx."""
    return f"chi-tieu-phong-nhap_{cycle.id}.xlsx"


def is_percent(indicator: Indicator) -> bool:
    """Return whether the indicator is a percentage (its value must lie in 0–100)."""
    return (indicator.unit or "").strip() == "%"


def build_indicator_template(reference: Reference, cycle: Cycle) -> bytes:
    """Return the workbook the specialist fills: one row per manual indicator, the value column open."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    # A fixed creation date keeps the file the same for the same catalog (like the reports).
    book.set_properties({"title": f"Chỉ tiêu Phòng nhập {cycle.id}", "created": None})
    sheet = book.add_worksheet(SHEET)
    title = book.add_format({"bold": True, "font_size": 14})
    bold = book.add_format({"bold": True})
    header = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True,
                              "valign": "vcenter", "align": "center"})
    locked = book.add_format({"border": 1, "text_wrap": True, "valign": "top", "locked": True})
    to_fill = book.add_format({"border": 2, "bg_color": "#FFF2CC", "locked": False, "num_format": "0.##"})
    note = book.add_format({"border": 1, "locked": False, "text_wrap": True})
    sheet.write(0, 0, f"CHỈ TIÊU DO PHÒNG NHẬP — {cycle.label_vi.upper()}", title)
    sheet.write(1, 0, CYCLE_LABEL, bold)
    sheet.write_string(1, 1, cycle.id, bold)
    sheet.write(2, 0, "Nhập số liệu vào cột \"Giá trị kỳ này\" (ô màu vàng); để trống nếu chưa có số liệu. "
                "Chỉ tiêu có đơn vị % nhập số từ 0 đến 100 (ví dụ 72,5).")
    sheet.write_row(HEADER_ROW, 0, HEADERS, header)
    for offset, indicator in enumerate(manual_indicators(reference), start=1):
        row = HEADER_ROW + offset
        # Excel and LibreOffice do not grow a row for wrapped text written by xlsxwriter: size it here.
        lines = max(math.ceil(len(indicator.name) / 70), math.ceil(len(indicator.program) / 48), 1)
        sheet.set_row(row, 15 * lines + 2)
        sheet.write_string(row, 0, indicator.code, locked)
        sheet.write_string(row, 1, indicator.name, locked)
        sheet.write_string(row, 2, indicator.program, locked)
        sheet.write_string(row, 3, indicator.unit or "", locked)
        if indicator.target is None:
            sheet.write_blank(row, 4, None, locked)
        else:
            sheet.write_number(row, 4, indicator.target, locked)
        current = indicator.values.get(cycle.id) if indicator.values else None
        if current is None:
            sheet.write_blank(row, VALUE_COLUMN, None, to_fill)
        else:
            sheet.write_number(row, VALUE_COLUMN, current, to_fill)
        sheet.write_blank(row, 6, None, note)
        maximum = 100 if is_percent(indicator) else 1e12
        sheet.data_validation(row, VALUE_COLUMN, row, VALUE_COLUMN, {
            "validate": "decimal", "criteria": "between", "minimum": 0, "maximum": maximum,
            "error_title": "Giá trị không hợp lệ",
            "error_message": "Nhập một số từ 0 đến 100." if is_percent(indicator)
            else "Nhập một số không âm.",
            "input_title": indicator.code,
            "input_message": "Tỷ lệ %, từ 0 đến 100" if is_percent(indicator) else "Số không âm",
        })
    sheet.set_column(0, 0, 10)
    sheet.set_column(1, 1, 60)
    sheet.set_column(2, 2, 40)
    sheet.set_column(3, 4, 10)
    sheet.set_column(5, 5, 16)
    sheet.set_column(6, 6, 30)
    sheet.freeze_panes(HEADER_ROW + 1, 0)
    sheet.set_landscape()
    sheet.set_paper(9)  # A4
    sheet.fit_to_pages(1, 0)
    sheet.repeat_rows(HEADER_ROW)
    book.close()
    return buffer.getvalue()


def _number(cell: Any) -> float | str | None:
    """Return the cell as a number, None when blank, or the text that is not a number."""
    if cell is None or (isinstance(cell, str) and not cell.strip()):
        return None
    if isinstance(cell, bool):
        return str(cell)
    if isinstance(cell, int | float):
        return float(cell) if math.isfinite(cell) else str(cell)
    text = nfc(str(cell)).strip()
    found = _PERCENT_TEXT.match(text)
    if found is None:
        return text
    return float(found.group(1).replace(",", "."))


def _rows(data: bytes, max_bytes: int) -> list[list[Any]]:
    verdict = identify(data, max_bytes=max_bytes)
    if not verdict.ok:
        raise IndicatorImportError(
            f"tệp không đọc được ({verdict.detail_vi or verdict.rule}) / the file cannot be read "
            f"({verdict.rule}: {verdict.detail})"
        )
    try:
        with CalamineWorkbook.from_filelike(io.BytesIO(data)) as book:
            names = {match_key(name): name for name in book.sheet_names}
            only = book.sheet_names[0] if len(book.sheet_names) == 1 else None
            name = names.get(match_key(SHEET)) or only
            if name is None:
                raise IndicatorImportError(f'không có trang "{SHEET}" / the workbook has no sheet "{SHEET}"')
            rejection = check_sheets(verdict, [name])
            if rejection is not None:
                raise IndicatorImportError(f"tệp quá lớn / the file is too large ({rejection.detail})")
            return book.get_sheet_by_name(name).to_python(skip_empty_area=False)
    except (CalamineError, PasswordError) as exc:
        raise IndicatorImportError(f"tệp không đọc được / the file cannot be read ({exc})") from exc


def read_indicator_values(data: bytes, reference: Reference, *, max_bytes: int) -> ImportedValues:
    """Read a filled template and check every row; problems are collected, never raised."""
    rows = _rows(data, max_bytes)
    cycle_id = ""
    header_at = None
    for index, row in enumerate(rows):
        first = match_key(str(row[0])) if row and row[0] is not None else ""
        if first == match_key(CYCLE_LABEL) and len(row) > 1:
            cycle_id = str(row[1] or "").strip()
        if first == match_key(HEADERS[0]):
            header_at = index
            break
    if header_at is None:
        raise IndicatorImportError('không thấy dòng tiêu đề "Mã" / no header row starting with "Mã"')
    cycle = reference.calendar.get(cycle_id) if cycle_id else None
    if cycle is None:
        raise IndicatorImportError(f'ô "{CYCLE_LABEL}" không ghi một kỳ báo cáo hợp lệ ("{cycle_id}") / '
                                   f'the cycle cell does not hold a known cycle ("{cycle_id}")')
    cycle_id = cycle.id
    result = ImportedValues(cycle_id)
    catalog = {indicator.code: indicator for indicator in reference.indicators}
    seen: dict[str, int] = {}
    for index in range(header_at + 1, len(rows)):
        row = list(rows[index]) + [None] * 7
        line = index + 1
        raw_code, cell = row[CODE_COLUMN], row[VALUE_COLUMN]
        code = nfc(str(raw_code or "")).strip().upper()
        if not code and _number(cell) is None:
            continue
        where = f"Dòng {line} ({code or 'không có mã'})"
        where_en = f"row {line} ({code or 'no code'})"
        indicator = catalog.get(code)
        if indicator is None:
            result.problems.append(f'{where}: mã chỉ tiêu "{code}" không có trong danh mục / '
                                   f'{where_en}: indicator code "{code}" is not in the catalog')
            continue
        if not indicator.manual:
            result.problems.append(f"{where}: chỉ tiêu này được tính từ báo cáo của trường, không nhập tay / "
                                   f"{where_en}: this indicator is computed from the submissions")
            continue
        if code in seen:
            result.problems.append(f"{where}: mã đã có ở dòng {seen[code]} / {where_en}: code already on "
                                   f"row {seen[code]}")
            continue
        seen[code] = line
        number = _number(cell)
        if number is None:
            result.blank.append(code)
            continue
        if isinstance(number, str):
            result.problems.append(f'{where}: giá trị "{number}" không phải là số / '
                                   f'{where_en}: value "{number}" is not a number')
            continue
        if number < 0:
            result.problems.append(f"{where}: giá trị {number:g} là số âm / "
                                   f"{where_en}: value {number:g} is negative")
            continue
        if is_percent(indicator) and number > 100:
            result.problems.append(f"{where}: tỷ lệ {number:g}% vượt quá 100% / "
                                   f"{where_en}: percentage {number:g} is over 100")
            continue
        old = indicator.values.get(cycle_id) if indicator.values else None
        result.values.append(EnteredValue(code, old, number))
    return result


def _header_comments(text: str) -> str:
    lines = []
    for line in text.splitlines(keepends=True):
        if not line.startswith("#") and line.strip():
            break
        lines.append(line)
    return "".join(lines)


def _plain(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def write_indicator_values(directory: Path, imported: ImportedValues) -> Path:
    """Write the figures into indicators.yaml's per-cycle `values`; reload it, keep the old file if bad."""
    if imported.problems:
        raise ValueError("refusing to write values read with problems")
    path = directory / INDICATORS_FILE
    original = path.read_text(encoding="utf-8")
    document = yaml.safe_load(original)
    entries = {entry.get("code"): entry for entry in document.get("indicators", [])}
    for value in imported.values:
        entry = entries[value.code]
        if entry.get("value") is not None:  # the legacy single figure cannot sit beside `values`
            legacy = entry.pop("value")
            old_note = str(entry.get("note") or "")
            entry["note"] = f"{old_note} (giá trị cũ dùng cho mọi kỳ: {legacy})".strip()
        values = dict(entry.get("values") or {})
        values[imported.cycle_id] = _plain(value.new)
        entry["values"] = dict(sorted(values.items()))
    body = yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=110)
    text = _header_comments(original) + ("\n" if _header_comments(original) else "") + body
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".indicators-", suffix=".yaml")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    try:
        os.replace(temporary, path)
        load_reference(directory)
    except ReferenceDataError:
        path.write_text(original, encoding="utf-8")
        raise
    finally:
        Path(temporary).unlink(missing_ok=True)
    return path
