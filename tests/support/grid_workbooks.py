"""Write hand-made test workbooks from a grid {sheet name: rows} as .xlsx, .xls or .ods.

A grid is what a clerk's copy looks like, without the template's styling: tests build one (usually
from `contract_grid`, which takes every label from the contract), bend it (rename, reorder, shift,
add columns) and write it with the writer of the format under test.
"""

from __future__ import annotations

import datetime as dt
import io
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from schemas.contract import (
    ACTIVITIES,
    ACTIVITY_FORMATS,
    ACTIVITY_TYPES,
    AUDIENCE_GROUPS,
    CHECKLIST,
    CHECKLIST_ITEMS,
    GENERAL,
    INCIDENT_CATEGORIES,
    INCIDENTS,
    INSTRUCTIONS_SHEET_NAME,
    META,
    REACH,
    TEMPLATE_VERSION,
    YES_NO,
)


@dataclass(frozen=True)
class Formula:
    """A formula cell and the cached value a spreadsheet program would have stored with it."""

    formula: str
    value: object = None


Grid = Mapping[str, Sequence[Sequence[object] | None]]  # a None row is an empty row


# --------------------------------------------------------------------------------------------------
# Writers


def write_xlsx(grid: Grid, *, hidden: Iterable[str] = ()) -> bytes:
    """Write a grid as .xlsx with xlsxwriter (dates formatted dd/mm/yyyy, formulas with values)."""
    import xlsxwriter

    hidden = set(hidden)
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    date_format = book.add_format({"num_format": "dd/mm/yyyy"})
    for name, rows in grid.items():
        sheet = book.add_worksheet(name)
        if name in hidden:
            sheet.hide()
        for r, row in enumerate(rows):
            for c, value in enumerate(row or ()):
                if value is None:
                    continue
                if isinstance(value, Formula):
                    sheet.write_formula(r, c, value.formula, None, value.value)
                elif isinstance(value, bool):
                    sheet.write_boolean(r, c, value)
                elif isinstance(value, dt.date):
                    as_datetime = value if isinstance(value, dt.datetime) else dt.datetime.combine(
                        value, dt.time()
                    )
                    sheet.write_datetime(r, c, as_datetime, date_format)
                elif isinstance(value, int | float):
                    sheet.write_number(r, c, value)
                else:
                    sheet.write_string(r, c, str(value))
    book.close()
    return buffer.getvalue()


def write_xls(grid: Grid, *, hidden: Iterable[str] = ()) -> bytes:
    """Write a grid as BIFF8 .xls with xlwt (formulas keep no cached value in xlwt)."""
    import xlwt

    hidden = set(hidden)
    book = xlwt.Workbook(encoding="utf-8")
    date_style = xlwt.easyxf(num_format_str="DD/MM/YYYY")
    for name, rows in grid.items():
        sheet = book.add_sheet(name)
        if name in hidden:
            sheet.visibility = 1
        for r, row in enumerate(rows):
            for c, value in enumerate(row or ()):
                if value is None:
                    continue
                if isinstance(value, Formula):
                    sheet.write(r, c, xlwt.Formula(value.formula.lstrip("=")))
                elif isinstance(value, dt.date):
                    sheet.write(r, c, value, date_style)
                else:
                    sheet.write(r, c, value)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def write_ods(grid: Grid, *, hidden: Iterable[str] = ()) -> bytes:
    """Write a grid as .ods with odfpy (typed cells: float, date, boolean, string)."""
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.style import Style, TableProperties
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    hidden = set(hidden)
    document = OpenDocumentSpreadsheet()
    hidden_style = Style(name="hiddentable", family="table")
    hidden_style.addElement(TableProperties(display="false"))
    document.automaticstyles.addElement(hidden_style)
    for name, rows in grid.items():
        table = Table(name=name, stylename=hidden_style if name in hidden else None)
        for row in rows:
            table_row = TableRow()
            for value in row or ():
                table_row.addElement(_ods_cell(value, TableCell, P))
            table.addElement(table_row)
        document.spreadsheet.addElement(table)
    buffer = io.BytesIO()
    document.write(buffer)
    return buffer.getvalue()


def _ods_cell(value: object, table_cell: type, paragraph: type) -> object:
    formula = None
    if isinstance(value, Formula):
        formula = "of:" + value.formula
        value = value.value
    extra = {"formula": formula} if formula else {}
    if value is None:
        return table_cell(**extra)
    if isinstance(value, bool):
        cell = table_cell(valuetype="boolean", booleanvalue="true" if value else "false", **extra)
        cell.addElement(paragraph(text="TRUE" if value else "FALSE"))
        return cell
    if isinstance(value, dt.date):
        cell = table_cell(valuetype="date", datevalue=value.isoformat(), **extra)
        cell.addElement(paragraph(text=value.strftime("%d/%m/%Y")))
        return cell
    if isinstance(value, int | float):
        cell = table_cell(valuetype="float", value=repr(value), **extra)
        cell.addElement(paragraph(text=str(value)))
        return cell
    cell = table_cell(valuetype="string", **extra)
    cell.addElement(paragraph(text=str(value)))
    return cell


WRITERS: dict[str, Callable[..., bytes]] = {"xlsx": write_xlsx, "xls": write_xls, "ods": write_ods}


# --------------------------------------------------------------------------------------------------
# A contract-shaped submission, every label taken from schemas.contract


SCHOOL_CODE = "MN-Q8-001"
CYCLE = "2023-H1"
REPORT_DATE = dt.date(2023, 5, 3)
ACTIVITY_ROWS = (
    # start, end, type code, content, documents, format code, staff, staff f, students, students f,
    # parents, parents f
    (dt.date(2023, 3, 1), dt.date(2023, 3, 2), "tuyen_truyen", "Tuyên truyền Luật Trẻ em cho phụ huynh",
     "Luật Trẻ em 2016", "truc_tiep", 12, 10, 0, 0, 85, 60),
    (dt.date(2023, 4, 15), None, "tap_huan", "Tập huấn kỹ năng phòng chống xâm hại",
     None, "truc_tuyen", 20, 18, 150, 70, 0, 0),
)
REACH_COUNTS = {  # total, female, reached, reached female
    "quan_ly": (3, 3, 3, 3),
    "giao_vien": (24, 23, 24, 23),
    "nhan_vien": (9, 6, 8, 5),
    "hoc_sinh": (320, 150, 300, 140),
    "phu_huynh": (310, 200, 250, 170),
    "cong_tac_vien": (2, 2, 2, 2),
}
CHECKLIST_ANSWERS = {code: code != "ban_giao_he" for code in CHECKLIST_ITEMS.codes}
INCIDENT_COUNTS = {  # cases, children, children female, reported, supported
    "bao_luc": (1, 1, 0, 1, 1),
    "tai_nan_thuong_tich": (2, 2, 1, 0, 2),
}


def identity(text: str) -> str:
    return text


def strip_diacritics(text: str) -> str:
    """Drop Vietnamese diacritics the way a keyboard without Telex would type a label."""
    folded = text.replace("đ", "d").replace("Đ", "D")
    return unicodedata.normalize(
        "NFC", "".join(ch for ch in unicodedata.normalize("NFD", folded) if not unicodedata.combining(ch))
    )


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def contract_grid(label: Callable[[str], str] = identity) -> dict[str, list[list[object]]]:
    """Return a filled, contract-shaped submission; `label` rewrites every sheet name and label."""
    yes, no = YES_NO.label("yes"), YES_NO.label("no")
    general_values = {
        "school_code": SCHOOL_CODE,
        "school_name": "Trường Mầm non Họa Mi",
        "cycle": CYCLE,
        "reporter": "Nguyễn Thị Lan",
        "position": "Phó Hiệu trưởng",
        "phone": "0909123456",
        "email": "mnhoami@q8.edu.vn",
        "report_date": REPORT_DATE,
        "child_protection_staff": 3,
        "trained_staff": 2,
    }
    general = [[label(fld.label), general_values[fld.key]] for fld in GENERAL.fields]
    reach = [[label(fld.label) for fld in REACH.fields]]
    reach += [[label(AUDIENCE_GROUPS.label(code)), *counts] for code, counts in REACH_COUNTS.items()]
    activities = [[label(fld.label) for fld in ACTIVITIES.fields]]
    for seq, (start, end, kind, content, docs, fmt, *counts) in enumerate(ACTIVITY_ROWS, start=1):
        activities.append([seq, start, end, ACTIVITY_TYPES.label(kind), content, docs,
                           ACTIVITY_FORMATS.label(fmt), *counts])
    checklist = [[label(fld.label) for fld in CHECKLIST.fields]]
    checklist += [
        [label(CHECKLIST_ITEMS.label(code)), yes if answer else no, "Biên bản" if answer else None]
        for code, answer in CHECKLIST_ANSWERS.items()
    ]
    incidents = [[label(fld.label) for fld in INCIDENTS.fields]]
    incidents += [
        [label(INCIDENT_CATEGORIES.label(code)), *INCIDENT_COUNTS.get(code, (0, 0, 0, 0, 0))]
        for code in INCIDENT_CATEGORIES.codes
    ]
    meta = [["template_version", TEMPLATE_VERSION], ["cycle", CYCLE], ["school_code", SCHOOL_CODE]]
    return {
        label(INSTRUCTIONS_SHEET_NAME): [["Hướng dẫn điền biểu mẫu"], ["Điền số liệu vào các trang."]],
        label(GENERAL.name): general,
        label(REACH.name): reach,
        label(ACTIVITIES.name): activities,
        label(CHECKLIST.name): checklist,
        label(INCIDENTS.name): incidents,
        META.name: meta,
    }
