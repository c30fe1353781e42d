"""The school workbook template (SPEC §3), built from the contract and pre-filled for one school.

`template_grid` lays the workbook out as a `WorkbookGrid` (instructions, the five data sheets, a
hidden list sheet feeding the drop-downs, hidden `_meta`); `build_template` renders it as .xlsx with
xlsxwriter. Demo data fills the same grid through `SubmissionValues` and may write it as .xls or .ods.
Every label comes from `schemas.contract`; only the instructions' own sentences are written here.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from schemas.contract import (
    ACTIVITIES,
    CHECKLIST,
    DATA_SHEETS,
    GENERAL,
    INCIDENTS,
    INSTRUCTIONS_SHEET_NAME,
    META,
    PRESCHOOL_ONLY_ITEM,
    REACH,
    TEMPLATE_VERSION,
    YES_NO,
    CodeList,
    Field,
    Kind,
    Sheet,
)
from schemas.text import nfc
from tasks.template.writer import (
    CellValue,
    ListValidation,
    SheetGrid,
    Style,
    ValueValidation,
    WorkbookGrid,
    write_xlsx,
)

if TYPE_CHECKING:
    from schemas.reference import Cycle, School

LIST_SHEET_NAME = "_lists"  # hidden source of the drop-downs; the parser ignores extra sheets
TITLE_ROW, HINT_ROW, HEADER_ROW = 0, 1, 2
FIRST_DATA_ROW = HEADER_ROW + 1
# Drop-downs and formats reach this many activity rows; schools rarely report more than a few dozen.
ACTIVITY_ROWS = 300
# Empty bordered rows shown under the activities so the table looks ready to fill in.
BLANK_ACTIVITY_ROWS = 15
KEY_COLUMN_WIDTH = 44
VALUE_COLUMN_WIDTH = 40
# One column of wrapped text that fits the width of a portrait A4 page (0.5" margins) unscaled.
INSTRUCTIONS_WIDTH = 92
# Sheets wider than this (in character widths) print landscape; portrait A4 holds about 100.
PORTRAIT_MAX_WIDTH = 100
LINE_HEIGHT = 15.5  # points per line of the 12 pt font
# General-sheet fields kept as text so Excel does not drop a leading 0 or reformat them.
TEXT_KEYS = frozenset({"school_code", "cycle", "phone"})
PREFILLED_KEYS = frozenset({"school_code", "school_name", "cycle"})


@dataclass
class SubmissionValues:
    """Values a clerk typed, by contract key, for demo files and tests.

    `general` maps field keys of `Thông tin chung` to cell values; a key given as None blanks the
    pre-filled value. `rows` maps a table sheet's key to its rows as {field key: value}: pre-filled
    sheets name their row by the row field's code (e.g. {"group": "quan_ly", "total": 3, ...}),
    activities are written in order. Coded values given as codes are shown by their labels, booleans
    in yes/no columns as the yes/no labels; anything else is written as is (e.g. "x", "mười").
    `meta` overrides `_meta` entries.
    """

    general: dict[str, CellValue] = field(default_factory=dict)
    rows: dict[str, list[dict[str, CellValue]]] = field(default_factory=dict)
    meta: dict[str, CellValue] = field(default_factory=dict)


def build_template(
    school: School, cycle: Cycle, values: SubmissionValues | None = None, *, send_to: str | None = None
) -> bytes:
    """Return the .xlsx template for one school and cycle, optionally filled with values.

    `send_to` is the office's address the instructions name; without it they say to reply to the
    office's e-mail (the builder reads no settings).
    """
    return write_xlsx(template_grid(school, cycle, values, send_to=send_to))


def template_file_name(school: School, cycle: Cycle) -> str:
    """Return the template's file name, e.g. `Bao-cao-BDG-TE_2023-H1_MN001.xlsx` (ASCII, mail-safe)."""
    return f"Bao-cao-BDG-TE_{cycle.id}_{re.sub(r'[^A-Za-z0-9-]', '', school.code)}.xlsx"


def template_grid(
    school: School, cycle: Cycle, values: SubmissionValues | None = None, *, send_to: str | None = None
) -> WorkbookGrid:
    """Lay out the template for one school and cycle as a grid any writer can render."""
    values = values or SubmissionValues()
    lists = _ListSheet()
    grid = WorkbookGrid()
    grid.sheets.append(_instructions(school, cycle, send_to))
    grid.sheets.append(_general_sheet(school, cycle, values))
    for sheet in DATA_SHEETS[1:]:
        grid.sheets.append(_table_sheet(sheet, school, cycle, values.rows.get(sheet.key, []), lists))
    grid.sheets.append(lists.grid)
    grid.sheets.append(_meta_sheet(school, cycle, values))
    return grid


def _lines(text: str, width: float) -> int:
    """Estimate how many lines a wrapped text takes in a column this many characters wide."""
    # Times New Roman 12 pt fits about one character per width unit; 0.9 leaves room for long words.
    return max(1, sum(math.ceil(len(part) / (width * 0.9)) or 1 for part in text.split("\n")))


def _value_check(item: Field) -> str | None:
    if item.kind is Kind.INT:
        return "count"
    if item.kind is Kind.DATE:
        return "date"
    return None


# --------------------------------------------------------------------------------------------------
# Cells


def _input_style(sheet: Sheet, item: Field) -> Style:
    if item.kind is Kind.INT:
        return Style.COUNT
    if item.kind is Kind.DATE:
        return Style.DATE
    if sheet.key == GENERAL.key and item.key in TEXT_KEYS:
        return Style.TEXT
    return Style.INPUT


def _shown(item: Field, value: CellValue) -> CellValue:
    """Turn a code or boolean into the label the template shows; keep anything else as typed."""
    if item.codes is not None:
        if item.codes is YES_NO and isinstance(value, bool):
            return item.codes.label("yes" if value else "no")
        if isinstance(value, str) and value in item.codes.codes:
            return item.codes.label(value)
    return value


class _ListSheet:
    """The hidden sheet holding one column per coded list, referenced by the drop-downs."""

    def __init__(self) -> None:
        self.grid = SheetGrid(name=LIST_SHEET_NAME, hidden=True, protected=True)
        self._columns: dict[str, str] = {}

    def source(self, codes: CodeList) -> str:
        """Return the absolute range holding a list's labels, adding the list on first use."""
        if codes.key not in self._columns:
            column = len(self._columns)
            for row, label in enumerate(codes.labels):
                self.grid.set(row, column, label, Style.PLAIN)
            self.grid.widths[column] = max(len(label) for label in codes.labels)
            letter = _column_letter(column)
            self._columns[codes.key] = f"'{LIST_SHEET_NAME}'!${letter}$1:${letter}${len(codes.labels)}"
        return self._columns[codes.key]


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


# --------------------------------------------------------------------------------------------------
# Sheets


def _general_sheet(school: School, cycle: Cycle, values: SubmissionValues) -> SheetGrid:
    """Key in column A, value in column B, no title row: the parser reads keys by label."""
    grid = SheetGrid(name=GENERAL.name, key=GENERAL.key, protected=True)
    grid.widths = {0: KEY_COLUMN_WIDTH, 1: VALUE_COLUMN_WIDTH}
    grid.field_columns = {"key": 0, "value": 1}
    prefilled: dict[str, CellValue] = {
        "school_code": school.code,
        "school_name": school.name,
        # In words, as the clerk says it; the code stays in `_meta` and the parser reads both.
        "cycle": cycle.label_vi,
    }
    for row, item in enumerate(GENERAL.fields):
        grid.set(row, 0, item.label, Style.LABEL)
        value = values.general[item.key] if item.key in values.general else prefilled.get(item.key)
        style = Style.FIXED if item.key in PREFILLED_KEYS else _input_style(GENERAL, item)
        grid.set(row, 1, value, style)
        grid.row_index[item.key] = row
        check = _value_check(item)
        if check is not None:
            grid.validations.append(ValueValidation(1, row, row, check))
    return grid


_HINTS: dict[str, str] = {
    REACH.key: "Ghi số người của từng đối tượng và số người đã được truyền thông trong kỳ. "
    "Điền đủ mọi ô, không có thì ghi 0.",
    ACTIVITIES.key: "Mỗi hoạt động ghi một dòng. Ngày ghi theo dạng ngày/tháng/năm. "
    "Ô số người tham dự để trống được hiểu là 0.",
    CHECKLIST.key: "Chọn {yes} hoặc {no} cho từng nội dung; ghi minh chứng (số, ngày văn bản) nếu có.",
    INCIDENTS.key: "THÔNG TIN MẬT: chỉ ghi số lượng, không ghi họ tên hay bất kỳ thông tin nào nhận "
    "diện trẻ. Ô để trống được hiểu là 0.",
}


def _table_sheet(
    sheet: Sheet, school: School, cycle: Cycle, rows: list[dict[str, CellValue]], lists: _ListSheet
) -> SheetGrid:
    """Title, hint, header, then pre-filled rows (or the activities typed so far)."""
    grid = SheetGrid(name=sheet.name, key=sheet.key, protected=True, header_row=HEADER_ROW)
    grid.freeze_row = FIRST_DATA_ROW
    total_width = sum(item.width for item in sheet.fields)
    grid.landscape = total_width > PORTRAIT_MAX_WIDTH
    grid.repeat_rows = (TITLE_ROW, HEADER_ROW)
    title = f"{sheet.name.upper()} — {school.name} — {cycle.label_vi}"
    grid.set(TITLE_ROW, 0, title, Style.TITLE)
    yes, no = YES_NO.labels
    hint = _HINTS[sheet.key].format(yes=yes, no=no)
    grid.set(HINT_ROW, 0, hint, Style.HINT)
    # Title and hint span the table so they wrap inside the printed width instead of running off it.
    last_column = len(sheet.fields) - 1
    grid.merged_rows = {TITLE_ROW: last_column, HINT_ROW: last_column}
    grid.row_heights[TITLE_ROW] = _lines(title, total_width * 0.85) * LINE_HEIGHT * 1.2
    grid.row_heights[HINT_ROW] = _lines(hint, total_width) * LINE_HEIGHT
    grid.row_heights[HEADER_ROW] = max(_lines(item.label, item.width) for item in sheet.fields) * LINE_HEIGHT
    for column, item in enumerate(sheet.fields):
        grid.set(HEADER_ROW, column, item.label, Style.HEADER)
        grid.widths[column] = item.width
        grid.column_styles[column] = _input_style(sheet, item)
        grid.field_columns[item.key] = column

    if sheet.rows is not None and sheet.row_field is not None:
        by_code = {row.get(sheet.row_field): row for row in rows}
        for offset, choice in enumerate(sheet.rows.choices):
            row = FIRST_DATA_ROW + offset
            grid.row_index[choice.code] = row
            typed = by_code.get(choice.code, {})
            label_width = sheet.field(sheet.row_field).width
            grid.row_heights[row] = _lines(choice.label, label_width) * LINE_HEIGHT
            for column, item in enumerate(sheet.fields):
                if item.key == sheet.row_field:
                    grid.set(row, column, choice.label, Style.LABEL)
                else:
                    grid.set(row, column, _shown(item, typed.get(item.key)), _input_style(sheet, item))
        last_row = FIRST_DATA_ROW + len(sheet.rows.choices) - 1
    else:
        for offset in range(max(len(rows), BLANK_ACTIVITY_ROWS)):
            typed = rows[offset] if offset < len(rows) else {}
            for column, item in enumerate(sheet.fields):
                grid.set(FIRST_DATA_ROW + offset, column, _shown(item, typed.get(item.key)),
                         _input_style(sheet, item))
        last_row = FIRST_DATA_ROW + max(ACTIVITY_ROWS, len(rows)) - 1

    for column, item in enumerate(sheet.fields):
        if item.codes is not None:
            source = lists.source(item.codes)
            grid.validations.append(ListValidation(column, FIRST_DATA_ROW, last_row, source))
        check = _value_check(item)
        if check is not None:
            grid.validations.append(ValueValidation(column, FIRST_DATA_ROW, last_row, check))
    return grid


def _meta_sheet(school: School, cycle: Cycle, values: SubmissionValues) -> SheetGrid:
    grid = SheetGrid(name=META.name, key=META.key, hidden=True, protected=True)
    grid.widths = {0: 18, 1: 18}
    defaults: dict[str, CellValue] = {
        "template_version": TEMPLATE_VERSION,
        "cycle": cycle.id,
        "school_code": school.code,
    }
    for row, item in enumerate(META.fields):
        grid.set(row, 0, item.label, Style.LABEL)
        grid.set(row, 1, values.meta.get(item.key, defaults[item.key]), Style.TEXT)
        grid.row_index[item.key] = row
    return grid


def _instructions(school: School, cycle: Cycle, send_to: str | None) -> SheetGrid:
    """The clerk's guide: what each sheet is, the lists, formats, deadline, confidentiality."""
    grid = SheetGrid(name=INSTRUCTIONS_SHEET_NAME, protected=True)
    grid.widths = {0: INSTRUCTIONS_WIDTH}
    lines: list[tuple[str, Style]] = []

    def heading(text: str) -> None:
        lines.append(("", Style.PLAIN))
        lines.append((text, Style.HEADING))

    def say(text: str) -> None:
        lines.append((text, Style.PLAIN))

    def day(value: dt.date) -> str:
        return value.strftime("%d/%m/%Y")

    activities = ACTIVITIES
    content = activities.field("content")
    checklist_item = CHECKLIST.rows.choices[CHECKLIST.rows.codes.index(PRESCHOOL_ONLY_ITEM)] \
        if CHECKLIST.rows else None
    yes, no = YES_NO.labels
    general = {item.key: item.label for item in GENERAL.fields}

    lines.append(("HƯỚNG DẪN ĐIỀN BÁO CÁO CÔNG TÁC BÌNH ĐẲNG GIỚI VÀ TRẺ EM", Style.TITLE))
    say(f"{general['school_name']}: {school.name} — {general['school_code']}: {school.code}")
    say(f"{general['cycle']}: {cycle.label_vi}, số liệu từ ngày {day(cycle.period_start)} "
        f"đến hết ngày {day(cycle.period_end)}.")
    say(f"Hạn nộp: trước khi hết ngày {day(cycle.deadline)}.")

    heading("1. Các trang tính cần điền")
    descriptions = {
        GENERAL.key: "thông tin về đơn vị, người báo cáo và số cán bộ làm công tác bảo vệ trẻ em. "
        "Mã trường, tên trường và kỳ báo cáo đã được điền sẵn, vui lòng không sửa.",
        REACH.key: "số người của từng đối tượng và số người đã được truyền thông về bảo vệ, chăm sóc "
        "trẻ em, bình đẳng giới, phòng, chống bạo lực trên cơ sở giới. Phải điền đủ mọi ô.",
        ACTIVITIES.key: "mỗi hoạt động đã tổ chức trong kỳ ghi một dòng, thêm dòng nếu cần.",
        CHECKLIST.key: "tự đánh giá từng nội dung công tác.",
        INCIDENTS.key: "số vụ việc xâm hại, bạo lực, tai nạn liên quan đến trẻ em (chỉ ghi số lượng).",
    }
    for sheet in DATA_SHEETS:
        say(f"• Trang \u201c{sheet.name}\u201d: {descriptions[sheet.key]}")
    say(f"• Trang \u201c{INSTRUCTIONS_SHEET_NAME}\u201d (trang này) chỉ để đọc.")

    heading("2. Cách điền")
    say("• Chỉ điền vào các ô trắng. Tên mục, tiêu đề cột và tên dòng (ô có nền màu) đã được khóa: không "
        "sửa, không xóa, không đổi tên hay xóa trang tính, không chèn thêm cột.")
    say("• Ngày ghi theo dạng ngày/tháng/năm (dd/mm/yyyy), ví dụ 15/03/2023.")
    say("• Số liệu là số nguyên không âm, chỉ ghi số (ví dụ 25), không ghi chữ, không ghi số thập phân.")
    say("• Ô số liệu và ô ngày được kiểm tra ngay khi nhập: nếu máy báo \u201cKhông phải số nguyên không "
        "âm\u201d hoặc \u201cNgày không hợp lệ\u201d, vui lòng nhập lại cho đúng.")
    say(f"• Trang \u201c{REACH.name}\u201d: điền đủ mọi ô; số nữ không lớn hơn tổng số, số được truyền "
        "thông không lớn hơn tổng số.")
    say(f"• Trang \u201c{activities.name}\u201d: bắt buộc có \u201c{activities.field('start_date').label}"
        f"\u201d và \u201c{content.label}\u201d (không quá {content.max_length} ký tự); ô số người tham "
        "dự để trống được hiểu là 0.")
    say(f"• Trang \u201c{CHECKLIST.name}\u201d: mỗi nội dung chọn \u201c{yes}\u201d hoặc \u201c{no}\u201d.")
    if checklist_item is not None:
        say(f"  Trường mầm non bắt buộc trả lời nội dung \u201c{checklist_item.short_label}\u201d; "
            "các trường khác có thể để trống nội dung này.")
    for item in GENERAL.fields:
        # Pre-filled keys need no hint; dates are explained above.
        if item.note and item.kind is not Kind.DATE and item.key not in PREFILLED_KEYS:
            say(f"• \u201c{item.label}\u201d — {item.note}.")
    for sheet in DATA_SHEETS:
        for item in sheet.fields:
            if item.note and sheet.key != GENERAL.key:
                say(f"• \u201c{item.label}\u201d ({sheet.name}) — {item.note}.")

    heading("3. Danh sách lựa chọn (chọn trong danh sách thả xuống)")
    for sheet in DATA_SHEETS:
        for item in sheet.fields:
            if item.codes is None or item.key == sheet.row_field:
                continue
            say(f"\u201c{item.label}\u201d ({sheet.name}):")
            for label in item.codes.labels:
                say(f"    – {label}")

    heading("4. Bảo mật")
    say(f"• Trang \u201c{INCIDENTS.name}\u201d là thông tin MẬT: chỉ ghi số lượng; tuyệt đối không ghi họ "
        "tên, địa chỉ, lớp hay bất kỳ chi tiết nào giúp nhận biết trẻ.")
    say("• Số liệu vụ việc chỉ dùng để Phòng tổng hợp, không công bố theo từng trường; không gửi kèm "
        "hồ sơ vụ việc vào tệp này.")

    heading("5. Nộp báo cáo")
    to = f"về {send_to}" if send_to else "trả lời thư của Phòng đã gửi kèm biểu mẫu này"
    say(f"• Gửi tệp này qua email {to} (hoặc qua Zalo cho chuyên viên phụ trách) trước khi hết "
        f"ngày {day(cycle.deadline)}. Giữ nguyên định dạng tệp (.xlsx); có thể đổi tên tệp.")
    say("• Có thể in các trang tính để Hiệu trưởng ký: mỗi trang tính in vừa khổ A4.")
    say("• Hệ thống sẽ gửi email phản hồi: báo cáo được ghi nhận, hoặc danh sách lỗi cần sửa kèm bản "
        "báo cáo có đánh dấu các ô cần sửa.")
    say("• Khi cần sửa, vui lòng sửa trên chính tệp này và gửi lại toàn bộ tệp; Phòng ghi nhận bản nhận "
        "được sau cùng.")

    for row, (text, style) in enumerate(lines):
        grid.set(row, 0, nfc(text), style)
        if text:
            scale = 1.25 if style in (Style.TITLE, Style.HEADING) else 1.0
            grid.row_heights[row] = _lines(text, INSTRUCTIONS_WIDTH / scale) * LINE_HEIGHT * scale
    return grid
