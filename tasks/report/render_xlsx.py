"""The cycle report as Excel workbooks (xlsxwriter, in memory): the public rollup and the restricted file.

One sheet per report table, named by its section number, with frozen headers, a filter, widths,
number formats and met/not-met colouring; a chart sheet draws the same two views as the HTML page.
Every text cell is written with `write_string`, so a school named `=HYPERLINK(...)` stays text. The
workbook's dates come from `as_of`, so the same report always gives the same bytes.
"""

from __future__ import annotations

import datetime as dt
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import xlsxwriter
from xlsxwriter.utility import xl_rowcol_to_cell
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from schemas.states import CHARTED_SCHOOL_STATES as CHART_STATES
from tasks.report.model import Column, CycleReport, Table
from tasks.report.section_1_header import OFFICE, OFFICE_PARENT, TITLE, administrative_date
from tasks.report.wording import (
    MET_TEXT,
    STATE_LABELS,
    fmt_date,
    fmt_datetime,
    is_missing,
    local_time,
    verdict,
)

FONT = "Times New Roman"
TITLE_ROW, SUBTITLE_ROW, HEADER_ROW = 0, 1, 3
FIRST_DATA_ROW = HEADER_ROW + 1
CHART_SHEET = "Biểu đồ"
INFO_SHEET = "Thông tin"
STATE_FILLS = {
    "on_time": "#2E7D32",
    "late": "#F2A900",
    "received_invalid": "#8E44AD",
    "held": "#5C8DD6",
    "missing": "#C62828",
}
SERIES_FILLS = ("#1F5FA8", "#1B8A6B", "#7B4FA0", "#B8860B")
A4_PAPER = 9  # Excel's paper code for A4
# Column widths (in characters): an A4 portrait page shows about 95 at full size. Up to LANDSCAPE_FROM
# a table prints portrait scaled down (no smaller than 70%, and long lists take fewer pages than they
# would landscape); wider tables print landscape. Every sheet is scaled to one page wide either way.
PORTRAIT_WIDTH = 95
LANDSCAPE_FROM = 135
RESTRICTED_WARNING = (
    "TÀI LIỆU HẠN CHẾ: số liệu vụ việc theo từng trường, chỉ dùng nội bộ lãnh đạo Phòng; "
    "không công bố, không chuyển tiếp, không đưa vào báo cáo tổng hợp."
)


class _Formats:
    """The workbook's cell formats, created once per workbook."""

    def __init__(self, book: Workbook) -> None:
        base = {"font_name": FONT, "font_size": 11, "valign": "top"}
        cell = {**base, "border": 1, "border_color": "#BFBFBF"}

        def make(**extra: Any) -> Any:
            return book.add_format({**cell, **extra})

        self.title = book.add_format({**base, "bold": True, "font_size": 13})
        self.subtitle = book.add_format({**base, "italic": True})
        self.title_wrap = book.add_format({**base, "bold": True, "font_size": 13, "text_wrap": True})
        self.subtitle_wrap = book.add_format({**base, "italic": True, "text_wrap": True})
        self.wrap = book.add_format({**base, "text_wrap": True})
        self.plain = book.add_format(base)
        self.bold = book.add_format({**base, "bold": True})
        self.warning = book.add_format({**base, "bold": True, "font_color": "#8B1A1A", "text_wrap": True})
        self.link = book.add_format({**base, "font_color": "#1F5FA8", "underline": 1})
        self.header = make(bold=True, text_wrap=True, bg_color="#EEF2F7", valign="vcenter")
        self.text = make(text_wrap=True)
        self.int = make(num_format="#,##0")
        self.decimal = make(num_format="#,##0.00")
        self.pct = make(num_format="0.0%")
        self.date = make(num_format="dd/mm/yyyy")
        self.datetime = make(num_format="dd/mm/yyyy hh:mm")
        self.centre = make(align="center")
        self.right = make(align="right")
        self.change_int = make(num_format="+#,##0;-#,##0;0")
        self.change_points = make(num_format='+0.0" điểm %";-0.0" điểm %";0" điểm %"')
        self.met = book.add_format({"bg_color": "#D7F0DC", "font_color": "#1B5E20"})
        self.not_met = book.add_format({"bg_color": "#F9D6D5", "font_color": "#8B1A1A"})


def _new_workbook(buffer: io.BytesIO, report: CycleReport, title: str) -> Workbook:
    book = xlsxwriter.Workbook(
        buffer,
        {
            "in_memory": True,
            # Text from schools is data, never a formula or a link.
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
            "nan_inf_to_errors": True,
        },
    )
    created = report.as_of.astimezone(dt.UTC).replace(tzinfo=None)
    book.set_properties(
        {
            "title": f"{title} - {report.cycle_label}",
            "subject": f"Kỳ báo cáo {report.cycle_id}",
            "author": f"{OFFICE.capitalize()} Quận 8",
            "company": f"{OFFICE.capitalize()} Quận 8",
            "comments": f"Số liệu tính đến {fmt_datetime(report.as_of)}",
            "created": created,
        }
    )
    return book


def _write_cell(
    sheet: Worksheet, row: int, col: int, column: Column, record: Mapping[str, Any], formats: _Formats
) -> None:
    """Write one value with the number format its kind calls for; text always as a string."""
    value = record[column.key]
    unit = str(record[column.unit_key]) if column.unit_key else ""
    if is_missing(value) and column.kind != "met":
        # "Chưa nhập" says something a blank does not; "—" is only a placeholder.
        if column.empty != "—":
            sheet.write_string(row, col, column.empty, formats.right)
        else:
            sheet.write_blank(row, col, None, formats.text)
        return
    match column.kind:
        case "int":
            sheet.write_number(row, col, float(value), formats.int)
        case "pct":
            sheet.write_number(row, col, float(value), formats.pct)
        case "date":
            day = local_time(value).date() if isinstance(value, dt.datetime) else value
            sheet.write_datetime(row, col, dt.datetime.combine(day, dt.time()), formats.date)
        case "datetime":
            sheet.write_datetime(row, col, local_time(value).replace(tzinfo=None), formats.datetime)
        case "met":
            judged = verdict(value)
            sheet.write_string(row, col, "" if judged is None else MET_TEXT[judged], formats.centre)
        case "small_count":
            if isinstance(value, str):
                sheet.write_string(row, col, value, formats.right)
            else:
                sheet.write_number(row, col, float(value), formats.int)
        case "measure":
            number = float(value)
            fmt = formats.pct if unit == "%" else (formats.int if number == int(number) else formats.decimal)
            sheet.write_number(row, col, number, fmt)
        case "change":
            if unit == "%":
                sheet.write_number(row, col, round(float(value) * 100, 6), formats.change_points)
            else:
                sheet.write_number(row, col, float(value), formats.change_int)
        case _:
            sheet.write_string(row, col, str(value), formats.text)


def _column_width(column: Column) -> int:
    if column.width:
        return column.width
    return 16 if column.kind == "text" else 13


def _banner(
    sheet: Worksheet, row: int, text: str, columns: int, width: int, fmt: Any, scale: float
) -> None:
    """Write a title across the table's columns, wrapped, so a page one table wide prints it whole."""
    if columns > 1:
        sheet.merge_range(row, 0, row, columns - 1, text, fmt)
    else:
        sheet.write_string(row, 0, text, fmt)
    lines = max(1, math.ceil(len(text) * scale / max(width, 1)))
    if lines > 1:
        sheet.set_row(row, 17 * scale * lines)


def _print_setup(sheet: Worksheet, width: int, *, repeat_to: int | None = None) -> None:
    """Print on A4, one page wide (as many pages tall as needed), repeating the title and header rows."""
    sheet.set_paper(A4_PAPER)
    if width >= LANDSCAPE_FROM:
        sheet.set_landscape()
    else:
        sheet.set_portrait()
    sheet.set_margins(left=0.5, right=0.5, top=0.6, bottom=0.6)
    sheet.fit_to_pages(1, 0)
    if repeat_to is not None:
        sheet.repeat_rows(0, repeat_to)
    sheet.set_footer("&C&P/&N")


def _conditional_met(sheet: Worksheet, table: Table, last_row: int, formats: _Formats) -> None:
    """Colour met columns and the value columns they judge: green met, red not met."""
    if last_row < FIRST_DATA_ROW:
        return
    index = {column.key: i for i, column in enumerate(table.columns)}
    for col, column in enumerate(table.columns):
        met_key = column.key if column.kind == "met" else column.met_key
        if met_key is None or met_key not in index:
            continue
        anchor = xl_rowcol_to_cell(FIRST_DATA_ROW, index[met_key], col_abs=True)
        for judged, fmt in ((True, formats.met), (False, formats.not_met)):
            sheet.conditional_format(
                FIRST_DATA_ROW,
                col,
                last_row,
                col,
                {
                    "type": "formula",
                    "criteria": f'={anchor}="{MET_TEXT[judged]}"',
                    "format": fmt,
                },
            )


def _write_table(book: Workbook, table: Table, report: CycleReport, formats: _Formats) -> Worksheet:
    """Write one table on its own sheet: title, header, rows, filter, frozen header, note."""
    sheet = book.add_worksheet(table.sheet)
    sheet.hide_gridlines(2)
    subtitle = f"Kỳ báo cáo: {report.cycle_label} - Số liệu tính đến {fmt_datetime(report.as_of)}"
    width = sum(_column_width(column) for column in table.columns)
    _banner(sheet, TITLE_ROW, table.title, len(table.columns), width, formats.title_wrap, 1.3)
    _banner(sheet, SUBTITLE_ROW, subtitle, len(table.columns), width, formats.subtitle_wrap, 1.0)
    for col, column in enumerate(table.columns):
        sheet.set_column(col, col, _column_width(column))
        sheet.write_string(HEADER_ROW, col, column.label, formats.header)
    sheet.set_row(HEADER_ROW, 48)
    # Plain dicts, not iterrows(): a row Series per school made 5,000-row sheets slow.
    for offset, record in enumerate(table.frame.to_dict("records")):
        for col, column in enumerate(table.columns):
            _write_cell(sheet, FIRST_DATA_ROW + offset, col, column, record, formats)
    last_row = FIRST_DATA_ROW + len(table.frame) - 1
    sheet.autofilter(HEADER_ROW, 0, max(last_row, HEADER_ROW), len(table.columns) - 1)
    sheet.freeze_panes(FIRST_DATA_ROW, 0)
    _conditional_met(sheet, table, last_row, formats)
    note_row = max(last_row, HEADER_ROW) + 2
    if table.frame.empty:
        sheet.write_string(note_row, 0, "Không có dữ liệu.", formats.subtitle)
        note_row += 1
    if table.note:
        sheet.write_string(note_row, 0, table.note, formats.subtitle)
    _print_setup(sheet, width, repeat_to=HEADER_ROW)
    return sheet


def _write_info(book: Workbook, report: CycleReport, formats: _Formats) -> None:
    """Write the cover sheet: administrative header, title, cycle, as-of and a linked contents list."""
    sheet = book.add_worksheet(INFO_SHEET)
    sheet.hide_gridlines(2)
    sheet.set_column(0, 0, 12)
    sheet.set_column(1, 1, 70)
    lines = (
        (OFFICE_PARENT, formats.plain),
        (OFFICE, formats.bold),
        ("", formats.plain),
        (TITLE, formats.title),
        (
            f"Kỳ báo cáo: {report.cycle_label} ({fmt_date(report.period_start)} - "
            f"{fmt_date(report.period_end)}), hạn nộp {fmt_date(report.deadline)}",
            formats.bold,
        ),
        (f"Số liệu tính đến {fmt_datetime(report.as_of)}", formats.subtitle),
        (administrative_date(report.as_of), formats.subtitle),
    )
    for row, (text, fmt) in enumerate(lines):
        sheet.write_string(row, 0, text, fmt)
    row = len(lines) + 1
    sheet.write_string(row, 0, "Mục lục", formats.bold)
    row += 1
    for section in report.sections:
        sheet.write_string(row, 0, f"{section.number}. {section.title}", formats.bold)
        row += 1
        for paragraph in section.paragraphs:
            sheet.write_string(row, 1, paragraph, formats.wrap)
            row += 1
        for table in section.tables:
            sheet.write_string(row, 0, table.sheet, formats.plain)
            sheet.write_url(row, 1, f"internal:'{table.sheet}'!A1", formats.link, string=table.title)
            row += 1
    sheet.write_string(row, 0, CHART_SHEET, formats.plain)
    sheet.write_url(
        row, 1, f"internal:'{CHART_SHEET}'!A1", formats.link, string="Biểu đồ 1 và 2 cùng số liệu của biểu đồ"
    )
    _print_setup(sheet, 82)


def _write_charts(book: Workbook, report: CycleReport, formats: _Formats) -> None:
    """Write the chart sheet: each chart beside the data block it draws, in the page's order."""
    sheet = book.add_worksheet(CHART_SHEET)
    sheet.hide_gridlines(2)
    sheet.set_column(0, 0, 18)
    sheet.set_column(1, 6, 12)
    sheet.write_string(0, 0, "Số liệu của biểu đồ", formats.title)
    last = _chart_completeness(book, sheet, report, formats, top=2)
    _chart_reach(book, sheet, report, formats, top=max(last + 3, 22))
    # The charts sit right of their data blocks: landscape, one page wide.
    _print_setup(sheet, LANDSCAPE_FROM)


def _chart_completeness(
    book: Workbook, sheet: Worksheet, report: CycleReport, formats: _Formats, top: int
) -> int:
    """Write completeness states per level and a 100% stacked bar chart; return the block's last row."""
    levels = report.completeness_by_level
    levels = levels[levels["expected"] > 0]  # exempt schools are outside the expected count
    sheet.write_string(top, 0, "Cấp học", formats.header)
    for i, state in enumerate(CHART_STATES):
        sheet.write_string(top, 1 + i, STATE_LABELS[state], formats.header)
    for offset, (_, record) in enumerate(levels.iterrows()):
        row = top + 1 + offset
        sheet.write_string(row, 0, str(record["label"]), formats.text)
        for i, state in enumerate(CHART_STATES):
            sheet.write_number(row, 1 + i, int(record[state]), formats.int)
    last = top + len(levels)
    if len(levels):
        chart = book.add_chart({"type": "bar", "subtype": "percent_stacked"})
        for i, state in enumerate(CHART_STATES):
            chart.add_series(
                {
                    "name": [CHART_SHEET, top, 1 + i],
                    "categories": [CHART_SHEET, top + 1, 0, last, 0],
                    "values": [CHART_SHEET, top + 1, 1 + i, last, 1 + i],
                    "fill": {"color": STATE_FILLS[state]},
                    "gap": 60,
                }
            )
        chart.set_title({"name": "Biểu đồ 1. Tình hình nộp báo cáo theo cấp học"})
        chart.set_x_axis({"num_format": "0%"})  # in a bar chart x is the value axis
        chart.set_y_axis({"reverse": True})  # levels top to bottom, as in the table
        chart.set_legend({"position": "bottom"})
        chart.set_size({"width": 760, "height": 320})
        sheet.insert_chart(top, 7, chart)
    return last


def _chart_reach(book: Workbook, sheet: Worksheet, report: CycleReport, formats: _Formats, top: int) -> None:
    """Write reach rates per ward with the target as a flat series, and a column chart with a line."""
    codes = report.reach_chart_codes
    sheet.write_string(top, 0, "Phường", formats.header)
    for i, code in enumerate(codes):
        sheet.write_string(top, 1 + i, code, formats.header)
    target_col = 1 + len(codes)
    sheet.write_string(top, target_col, "Mục tiêu", formats.header)
    wards = report.reach_by_ward
    for offset, (_, record) in enumerate(wards.iterrows()):
        row = top + 1 + offset
        sheet.write_string(row, 0, str(record["ward"]), formats.text)
        for i, code in enumerate(codes):
            _write_cell(sheet, row, 1 + i, Column(f"{code}_rate", code, "pct"), record, formats)
        if report.reach_chart_target is not None:
            sheet.write_number(row, target_col, report.reach_chart_target, formats.pct)
    last = top + len(wards)
    if not codes or not len(wards):
        return
    chart = book.add_chart({"type": "column"})
    for i in range(len(codes)):
        chart.add_series(
            {
                "name": [CHART_SHEET, top, 1 + i],
                "categories": [CHART_SHEET, top + 1, 0, last, 0],
                "values": [CHART_SHEET, top + 1, 1 + i, last, 1 + i],
                "fill": {"color": SERIES_FILLS[i % len(SERIES_FILLS)]},
                "data_labels": {"value": True, "num_format": "0.0%"},
            }
        )
    if report.reach_chart_target is not None:
        line = book.add_chart({"type": "line"})
        line.add_series(
            {
                "name": [CHART_SHEET, top, target_col],
                "categories": [CHART_SHEET, top + 1, 0, last, 0],
                "values": [CHART_SHEET, top + 1, target_col, last, target_col],
                "line": {"color": "#C62828", "width": 2, "dash_type": "dash"},
                "marker": {"type": "none"},
            }
        )
        chart.combine(line)
    chart.set_title({"name": "Biểu đồ 2. Tỷ lệ được truyền thông theo phường so với mục tiêu"})
    chart.set_y_axis({"min": 0, "max": 1, "num_format": "0%", "major_gridlines": {"visible": True}})
    chart.set_x_axis({"name": "Phường"})
    chart.set_legend({"position": "bottom"})
    chart.set_size({"width": 760, "height": 380})
    sheet.insert_chart(top, target_col + 2, chart)


def render_xlsx(report: CycleReport) -> bytes:
    """Return the public rollup workbook: a cover sheet, one sheet per table, a chart sheet."""
    buffer = io.BytesIO()
    book = _new_workbook(buffer, report, "Báo cáo tổng hợp bình đẳng giới và trẻ em")
    formats = _Formats(book)
    _write_info(book, report, formats)
    for section in report.sections:
        for table in section.tables:
            _write_table(book, table, report, formats)
    _write_charts(book, report, formats)
    book.close()
    return buffer.getvalue()


def render_restricted_xlsx(report: CycleReport) -> bytes:
    """Return the restricted workbook: per-school incident counts and unsuppressed totals."""
    buffer = io.BytesIO()
    book = _new_workbook(buffer, report, "Vụ việc theo trường (hạn chế)")
    formats = _Formats(book)
    for table in (report.restricted_incidents, report.restricted_totals):
        sheet = _write_table(book, table, report, formats)
        sheet.write_string(2, 0, RESTRICTED_WARNING, formats.warning)
    book.close()
    return buffer.getvalue()


def write_workbooks(report: CycleReport, public: Path, restricted: Path) -> tuple[Path, Path]:
    """Write both workbooks; the restricted one is readable by its owner only (mode 0600)."""
    for path in (public, restricted):
        path.parent.mkdir(parents=True, exist_ok=True)
    public.write_bytes(render_xlsx(report))
    restricted.touch(mode=0o600, exist_ok=True)
    restricted.chmod(0o600)
    restricted.write_bytes(render_restricted_xlsx(report))
    return public, restricted


def sheet_names(report: CycleReport) -> Sequence[str]:
    """Return the public workbook's sheet names in order."""
    return (INFO_SHEET, *(t.sheet for s in report.sections for t in s.tables), CHART_SHEET)
