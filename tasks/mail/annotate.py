"""The annotated copy of a school's own workbook (SPEC §4): offending cells filled, each with a comment,
and a last sheet (`Danh sách lỗi`) listing every finding so it reads without hovering (on a phone).

Cells are found from the findings (sheet name, Excel row, column label as the school sees them) and
from where the parser found each sheet and column in this very file (`ParsedWorkbook.sheet_names`
and `.columns`), so hand-made or rearranged copies are marked in the right place.

.xlsx files are opened with openpyxl and saved with everything else kept (formats, drop-downs,
protection, hidden sheets). .xlsm copies come back as .xlsx without their macros (we never send code
back). .xls and .ods files, and .xlsx files openpyxl cannot open, become an .xlsx copy of their values
(python-calamine reads them), annotated the same way. openpyxl is imported lazily: without it there
is no annotated copy and the feedback e-mail still lists every finding.

The copy reads every sheet of a file the parser read only in part (the instructions sheet, hidden
sheets), so it is bounded like parsing (SPEC §3: 5 s CPU, 300 MB): the same pre-check of the cells
each sheet would allocate (`tasks.intake.sniff.check_workbook`) runs before python-calamine or
openpyxl sees the bytes, with a tighter cell budget because openpyxl costs ~20 µs and ~1 KB a cell,
and a CPU deadline stops a values copy that runs long anyway. Past the budget the reply goes out
without the copy and says so (`CopyOmitted`).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from schemas.contract import Severity
from schemas.findings import Finding, render_message
from schemas.messages import COMMENT_AUTHOR, SEVERITY_LABELS, SUMMARY_HEADERS, SUMMARY_SHEET
from schemas.workbook import ParsedWorkbook
from tasks.intake.sniff import check_workbook, identify

log = logging.getLogger(__name__)

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ERROR_FILL = "FFC7CE"  # Excel's own "Bad" fill: the clerk knows it means wrong
WARNING_FILL = "FFEB9C"  # Excel's "Neutral": look again
ERROR_TAB = "C00000"
# Bigger .xlsx files are copied by value: openpyxl needs ~50x a package's size in memory and time.
OPENPYXL_MAX_BYTES = 5 * 1024 * 1024
# Cells a copy may hold. Measured on the 2-core machine: openpyxl opening and saving a package of
# 100,000 cells costs 2.3 s CPU and ~190 MB, a values copy of as many 1.3 s and ~180 MB; 200,000
# cost 4.1 s and 260 MB, too close to the parse budget with a reply still to compose.
MAX_COPY_CELLS = 100_000
# CPU seconds a values copy may spend before it gives up (the parse budget is 5 s).
MAX_COPY_SECONDS = 4.0
COPY_SUFFIX = "_danh-dau"
_INVALID_TITLE = re.compile(r"[\\/*?:\[\]]")
_ILLEGAL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


@dataclass(frozen=True)
class Mark:
    """One cell to highlight: sheet as named in the file, 1-based row and column, the messages."""

    sheet: str
    row: int
    column: int
    severity: Severity
    messages: tuple[str, ...]


@dataclass(frozen=True)
class AnnotatedCopy:
    """The annotated workbook to attach to a feedback e-mail."""

    filename: str
    content: bytes = field(repr=False)
    marked: int  # cells highlighted
    mime_type: str = XLSX_TYPE


@dataclass(frozen=True)
class CopyOmitted:
    """No annotated copy: the file is too big to copy within the budget (the reply says so)."""

    reason: str  # English, for logs and operators


def cell_of(finding: Finding, parsed: ParsedWorkbook) -> tuple[str, int, int] | None:
    """Return (sheet name in this file, 1-based row, 1-based column) of a finding's cell, if it has one."""
    sheet_key, field_key = finding.sheet_key, finding.field_key
    if sheet_key is None or finding.row is None:
        return None
    name = parsed.sheet_names.get(sheet_key)
    column = parsed.columns.get(sheet_key, {}).get(field_key) if field_key else None
    if name is None or column is None:
        return None
    return name, finding.row, column + 1


def cell_address(finding: Finding, parsed: ParsedWorkbook) -> str | None:
    """Return a finding's cell as Excel names it (`C5`), or None."""
    found = cell_of(finding, parsed)
    if found is None:
        return None
    letters, index = "", found[2]
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return f"{letters}{found[1]}"


def locate(findings: Iterable[Finding], parsed: ParsedWorkbook) -> list[Mark]:
    """Return the cells the findings point at in this file; findings about no cell are left out.

    Several findings on one cell make one mark carrying every message; an error outranks a warning.
    """
    cells: dict[tuple[str, int, int], list[Finding]] = {}
    for finding in findings:
        found = cell_of(finding, parsed)
        if found is not None:
            cells.setdefault(found, []).append(finding)
    marks = []
    for (name, row, column), found_here in cells.items():
        severity = Severity.ERROR if any(item.is_error for item in found_here) else Severity.WARNING
        # The copy goes back to the sender of this very file: its own values may be shown.
        messages = tuple(dict.fromkeys(render_message(item, reveal=True) for item in found_here))
        marks.append(Mark(name, row, column, severity, messages))
    return sorted(marks, key=lambda mark: (mark.sheet, mark.row, mark.column))


def annotated_name(original: str) -> str:
    """Return the annotated copy's file name: the school's own name, marked, always .xlsx."""
    stem = PurePath(original.replace("\\", "/")).stem or "bao-cao"
    return f"{stem}{COPY_SUFFIX}.xlsx"


class _OverBudget(Exception):
    """The copy would cost more than the budget allows."""


def annotate_workbook(
    content: bytes, parsed: ParsedWorkbook, findings: Sequence[Finding], *, file_name: str
) -> AnnotatedCopy | CopyOmitted | None:
    """Return the annotated copy of a workbook; CopyOmitted past the budget; None when nothing to mark."""
    if not parsed.readable:
        return None
    marks = locate(findings, parsed)
    if not marks:
        return None
    try:
        import openpyxl  # noqa: F401  (runtime dependency of this feature only)
    except ImportError:
        log.warning("openpyxl is not installed: feedback goes out without an annotated copy")
        return None
    # Every sheet is bounded before anything loads one: python-calamine aborts the process on a
    # span it cannot allocate, and the parser never looked at the sheets it ignores.
    over = check_workbook(identify(content, max_bytes=len(content) or 1), MAX_COPY_CELLS)
    if over is not None:
        log.info("no annotated copy of %s: %s (%s)", file_name, over.rule, over.detail)
        return CopyOmitted(f"{over.rule}: {over.detail}")
    opened = None
    if parsed.file_format in ("xlsx", "xlsm") and len(content) <= OPENPYXL_MAX_BYTES:
        opened = _open_original(content)
    try:
        if opened is None:
            opened = _values_copy(content)
    except _OverBudget as error:
        log.info("no annotated copy of %s: %s", file_name, error)
        return CopyOmitted(str(error))
    if opened is None:
        return None
    book, sheets = opened
    try:
        marked = _mark(book, sheets, marks)
        if not marked:
            return None
        _summary(book, sheets, findings, parsed)
        out = io.BytesIO()
        book.save(out)
    except Exception as error:  # a feedback e-mail must go out even when the copy cannot be made
        log.warning("cannot annotate %s: %s: %s", file_name, type(error).__name__, error)
        return None
    return AnnotatedCopy(annotated_name(file_name), out.getvalue(), marked)


def _open_original(content: bytes) -> tuple[Any, dict[str, Any]] | None:
    """Open the school's .xlsx/.xlsm with openpyxl (macros dropped): the book and its sheets by name."""
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(content), keep_vba=False, keep_links=True)
    except Exception as error:  # openpyxl is stricter than calamine on odd packages
        log.info("openpyxl cannot open the workbook (%s: %s); annotating a copy of its values",
                 type(error).__name__, error)
        return None
    # Saved under .xlsx: an .xlsm's macro-enabled content type must not survive without its macros.
    book.template = False
    if getattr(book, "vba_archive", None) is not None:
        book.vba_archive = None
    return book, {sheet.title: sheet for sheet in book.worksheets}


def _title(name: str, taken: set[str]) -> str:
    """Return a sheet title Excel accepts (ODS allows longer names and more characters)."""
    title = _INVALID_TITLE.sub("_", name).strip("'")[:31] or "Sheet"
    candidate, number = title, 1
    while candidate.casefold() in taken:
        number += 1
        suffix = f" ({number})"
        candidate = title[: 31 - len(suffix)] + suffix
    taken.add(candidate.casefold())
    return candidate


def _cell_value(value: object) -> object:
    if isinstance(value, str):
        return _ILLEGAL_CHARS.sub("", value)
    if isinstance(value, dt.timedelta):
        return str(value)
    return value


def _values_copy(content: bytes) -> tuple[Any, dict[str, Any]] | None:
    """Return a new workbook holding every sheet's values, and its sheets by their original names."""
    import openpyxl
    from python_calamine import CalamineWorkbook

    try:
        source = CalamineWorkbook.from_filelike(io.BytesIO(content))
    except Exception as error:
        log.info("cannot read the workbook for a values copy: %s: %s", type(error).__name__, error)
        return None
    book = openpyxl.Workbook()
    book.remove(book.active)
    taken: set[str] = set()
    # Marks name sheets as the file does; titles may change here (ODS allows what Excel does not).
    sheets: dict[str, Any] = {}
    cells = 0
    deadline = time.process_time() + MAX_COPY_SECONDS
    with source:
        visible = {meta.name: str(meta.visible) for meta in source.sheets_metadata}
        for name in source.sheet_names:
            try:
                rows = source.get_sheet_by_name(name).to_python(skip_empty_area=False)
            except Exception:  # a chart sheet or an unreadable one: nothing to copy
                continue
            sheet = book.create_sheet(_title(name, taken))
            sheets[name] = sheet
            if "hidden" in visible.get(name, "").lower():
                sheet.sheet_state = "hidden"
            for row_number, row in enumerate(rows, start=1):
                for column_number, value in enumerate(row, start=1):
                    if value is None or value == "":
                        continue
                    cells += 1
                    if cells > MAX_COPY_CELLS:
                        raise _OverBudget(f"more than {MAX_COPY_CELLS} cells to copy")
                    if not cells % 1024 and time.process_time() > deadline:
                        raise _OverBudget(f"values copy past {MAX_COPY_SECONDS} s of CPU")
                    cell = sheet.cell(row_number, column_number, _cell_value(value))
                    if isinstance(value, str):
                        # A value read as text stays text: `=HYPERLINK(…)` or `=cmd|…` typed in a
                        # cell must not come back to the school as a live formula or DDE link.
                        cell.data_type = "s"
                    if isinstance(value, dt.date | dt.datetime):
                        cell.number_format = "DD/MM/YYYY"
    if not book.sheetnames:
        return None
    if all(book[name].sheet_state != "visible" for name in book.sheetnames):
        book[book.sheetnames[0]].sheet_state = "visible"
    return book, sheets


def _mark(book: Any, sheets: dict[str, Any], marks: Sequence[Mark]) -> int:
    """Fill and comment every marked cell; return how many were marked."""
    from openpyxl.cell.cell import MergedCell
    from openpyxl.comments import Comment
    from openpyxl.styles import PatternFill

    fills = {
        Severity.ERROR: PatternFill(fill_type="solid", start_color=ERROR_FILL, end_color=ERROR_FILL),
        Severity.WARNING: PatternFill(fill_type="solid", start_color=WARNING_FILL, end_color=WARNING_FILL),
    }
    marked = 0
    with_errors: set[int] = set()
    for mark in marks:
        sheet = sheets.get(mark.sheet)
        if sheet is None:
            continue
        cell = sheet.cell(mark.row, mark.column)
        if isinstance(cell, MergedCell):
            # Only a merged range's top-left cell holds a value, a fill and a comment.
            merged = next((area for area in sheet.merged_cells.ranges if cell.coordinate in area), None)
            if merged is None:
                continue
            cell = sheet.cell(merged.min_row, merged.min_col)
        cell.fill = fills[mark.severity]
        text = "\n".join(f"• {message}" for message in mark.messages)
        if cell.comment is not None and cell.comment.text:
            text = f"{cell.comment.text}\n{text}"
        comment = Comment(text, COMMENT_AUTHOR)
        comment.width = 360
        comment.height = min(60 + 18 * (len(text) // 50 + text.count("\n")), 600)
        cell.comment = comment
        marked += 1
        if mark.severity is Severity.ERROR:
            sheet.sheet_properties.tabColor = ERROR_TAB
            with_errors.add(id(sheet))
    # Open the copy on the first sheet that needs fixing, in the order of the tabs.
    first = next((sheet for sheet in book.worksheets
                  if id(sheet) in with_errors and sheet.sheet_state == "visible"), None)
    if first is not None:
        for sheet in book.worksheets:
            sheet.sheet_view.tabSelected = sheet is first
        book.active = book.worksheets.index(first)
    return marked


def _summary(book: Any, sheets: dict[str, Any], findings: Sequence[Finding], parsed: ParsedWorkbook) -> None:
    """Add the sheet listing every finding (sheet, cell, row, severity, message): no hovering needed."""
    from openpyxl.styles import Alignment, Font
    from openpyxl.worksheet.hyperlink import Hyperlink

    for name in list(book.sheetnames):
        if name.casefold() == SUMMARY_SHEET.casefold():
            del book[name]  # an annotated copy sent back: its old list is out of date
    sheet = book.create_sheet(SUMMARY_SHEET)
    sheet.append(list(SUMMARY_HEADERS))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    wrap = Alignment(wrap_text=True, vertical="top")
    for finding in findings:
        found = cell_of(finding, parsed)
        address = cell_address(finding, parsed) or ""
        shown_sheet = found[0] if found else (finding.sheet or "")
        row_label = finding.row_label or (str(finding.row) if finding.row is not None else "")
        values = (shown_sheet, address, row_label, SEVERITY_LABELS[str(finding.severity)],
                  render_message(finding, reveal=True))
        sheet.append(["" for _ in values])
        row = sheet.max_row
        for column, value in enumerate(values, start=1):
            cell = sheet.cell(row, column)
            cell.value = _ILLEGAL_CHARS.sub("", value)
            cell.data_type = "s"  # words typed by a school stay words, never a formula
            cell.alignment = wrap
        if found and found[0] in sheets:
            title = sheets[found[0]].title.replace("'", "''")
            sheet.cell(row, 2).hyperlink = Hyperlink(ref=f"B{row}", location=f"'{title}'!{address}")
    for column, width in zip("ABCDE", (16, 8, 22, 8, 70), strict=True):
        sheet.column_dimensions[column].width = width
    sheet.freeze_panes = "A2"
    sheet.sheet_view.tabSelected = False
