"""The school template: sheets, pre-filled labels, drop-downs, protection, formats, all from the contract."""

from __future__ import annotations

import io
import os
import re
import subprocess
from pathlib import Path

import openpyxl
import pytest
from openpyxl.utils import get_column_letter, range_boundaries
from python_calamine import CalamineWorkbook, SheetVisibleEnum

from config.settings import get_settings
from demo.data import school_values
from schemas.contract import (
    ACTIVITIES,
    CHECKLIST,
    DATA_SHEETS,
    GENERAL,
    INCIDENTS,
    INSTRUCTIONS_SHEET_NAME,
    META,
    REACH,
    TEMPLATE_VERSION,
    Kind,
)
from schemas.reference import load_reference
from schemas.text import nfc
from tasks.check.parse import parse_workbook
from tasks.check.validate import resolve_identity
from tasks.template.build import (
    FIRST_DATA_ROW,
    HEADER_ROW,
    LIST_SHEET_NAME,
    build_template,
    template_file_name,
    template_grid,
)
from tasks.template.writer import write_workbook
from tests.support.office import A4_LONG, A4_SHORT, pages, require_tools, to_pdf

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "reference"
HEADER = HEADER_ROW + 1  # 1-based Excel rows, as openpyxl counts
FIRST = FIRST_DATA_ROW + 1
TABLE_SHEETS = tuple(sheet for sheet in DATA_SHEETS if sheet.layout == "table")
PREFILLED_SHEETS = tuple(sheet for sheet in TABLE_SHEETS if sheet.rows is not None)
OFFICE = "bao-cao@q8.test"
PRINTED_SHEETS = (INSTRUCTIONS_SHEET_NAME, *(sheet.name for sheet in DATA_SHEETS))
DOC_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "img"


@pytest.fixture(scope="module")
def reference():
    return load_reference(REFERENCE_DIR)


@pytest.fixture(scope="module")
def cycle(reference):
    return reference.calendar.get("2023-H1")


@pytest.fixture(scope="module")
def school(reference):
    return next(s for s in reference.expected_schools("2023-H1") if s.level == "mam_non")


@pytest.fixture(scope="module")
def template(school, cycle) -> bytes:
    return build_template(school, cycle, send_to=OFFICE)


@pytest.fixture(scope="module")
def book(template):
    return openpyxl.load_workbook(io.BytesIO(template))


@pytest.fixture(scope="module")
def values_book(template):
    return CalamineWorkbook.from_filelike(io.BytesIO(template))


def _rows(calamine: CalamineWorkbook, name: str) -> list[list[object]]:
    return calamine.get_sheet_by_name(name).to_python(skip_empty_area=False)


def test_sheets_in_order_with_hidden_helpers(values_book):
    names = values_book.sheet_names
    assert names[0] == INSTRUCTIONS_SHEET_NAME
    assert names[1 : 1 + len(DATA_SHEETS)] == [sheet.name for sheet in DATA_SHEETS]
    assert names[-1] == META.name
    visibility = {meta.name: meta.visible for meta in values_book.sheets_metadata}
    assert visibility[META.name] == SheetVisibleEnum.Hidden
    assert visibility[LIST_SHEET_NAME] == SheetVisibleEnum.Hidden
    for name in (INSTRUCTIONS_SHEET_NAME, *(sheet.name for sheet in DATA_SHEETS)):
        assert visibility[name] == SheetVisibleEnum.Visible


def test_instructions_tell_the_clerk_what_to_do(values_book, cycle, school):
    text = "\n".join(str(cell) for row in _rows(values_book, INSTRUCTIONS_SHEET_NAME) for cell in row)
    assert text == nfc(text)
    assert cycle.deadline.strftime("%d/%m/%Y") in text
    assert "dd/mm/yyyy" in text
    assert school.code in text and school.name in text
    assert "MẬT" in text and INCIDENTS.name in text
    assert OFFICE in text  # the office address to send to
    for sheet in DATA_SHEETS:
        assert f"\u201c{sheet.name}\u201d" in text
    for item in (ACTIVITIES.field("activity_type"), ACTIVITIES.field("format"), CHECKLIST.field("answer")):
        for label in item.codes.labels:
            assert label in text


def test_general_sheet_prefilled_with_school_and_cycle(values_book, school, cycle):
    rows = _rows(values_book, GENERAL.name)
    keys = {row[0]: row[1] for row in rows if row and row[0]}
    assert [row[0] for row in rows[: len(GENERAL.fields)]] == [f.label for f in GENERAL.fields]
    assert keys[GENERAL.field("school_code").label] == school.code
    assert keys[GENERAL.field("school_name").label] == school.name
    # The period in words, as the clerk says it; the code stays in `_meta`.
    assert keys[GENERAL.field("cycle").label] == "6 tháng đầu năm 2023" == cycle.label_vi
    assert cycle.id not in keys[GENERAL.field("cycle").label]


def test_period_in_words_still_names_the_cycle(reference, school):
    for cycle_id, words in (("2023-H1", "6 tháng đầu năm 2023"), ("2023-H2", "6 tháng cuối năm 2023")):
        data = build_template(school, reference.calendar.get(cycle_id))
        parsed = parse_workbook(data, max_bytes=10 * 1024 * 1024)
        assert parsed.general_value("cycle") == words
        assert resolve_identity(parsed, reference) == (school.code, cycle_id)


@pytest.mark.parametrize("sheet", TABLE_SHEETS, ids=lambda s: s.key)
def test_headers_are_the_contract_labels(values_book, sheet):
    rows = _rows(values_book, sheet.name)
    assert rows[HEADER_ROW][: len(sheet.fields)] == [f.label for f in sheet.fields]
    # The title row above must not look like a header to the parser.
    assert not set(rows[0]) & {f.label for f in sheet.fields}


@pytest.mark.parametrize("sheet", PREFILLED_SHEETS, ids=lambda s: s.key)
def test_every_prefilled_row_label(values_book, sheet):
    rows = _rows(values_book, sheet.name)
    column = sheet.field_keys.index(sheet.row_field)
    labels = [row[column] for row in rows[FIRST_DATA_ROW : FIRST_DATA_ROW + len(sheet.rows.choices)]]
    # Checklist rows show the full label (SPEC §3), never the short one.
    assert labels == list(sheet.rows.labels)


def test_meta_sheet(values_book, school, cycle):
    rows = {row[0]: row[1] for row in _rows(values_book, META.name)}
    assert rows == {"template_version": TEMPLATE_VERSION, "cycle": cycle.id, "school_code": school.code}
    assert [f.label for f in META.fields] == list(rows)


def _width(worksheet, column: int) -> float | None:
    """Return a column's width; xlsxwriter writes neighbours of equal width as one <col> range."""
    for dimension in worksheet.column_dimensions.values():
        if dimension.min is not None and dimension.min <= column <= dimension.max:
            return dimension.width
    return None


def _list_values(book, formula: str) -> list[str]:
    sheet_part, cells = formula.lstrip("=").split("!")
    assert sheet_part.strip("'") == LIST_SHEET_NAME
    worksheet = book[LIST_SHEET_NAME]
    min_col, min_row, _, max_row = range_boundaries(cells.replace("$", ""))
    return [worksheet.cell(row, min_col).value for row in range(min_row, max_row + 1)]


@pytest.mark.parametrize("sheet", TABLE_SHEETS, ids=lambda s: s.key)
def test_dropdown_on_every_coded_column(book, sheet):
    worksheet = book[sheet.name]
    validations = worksheet.data_validations.dataValidation
    for index, item in enumerate(sheet.fields):
        if item.codes is None:
            continue
        letter = get_column_letter(index + 1)
        found = [
            dv for dv in validations
            if dv.type == "list" and any(
                r.min_col == index + 1 and r.min_row <= FIRST and r.max_row >= FIRST for r in dv.sqref.ranges
            )
        ]
        assert found, f"no drop-down on {sheet.name}!{letter}"
        assert _list_values(book, found[0].formula1) == list(item.codes.labels)
        if sheet.rows is not None:
            last = FIRST + len(sheet.rows.choices) - 1
            assert any(r.max_row >= last for r in found[0].sqref.ranges)
        else:
            assert any(r.max_row >= FIRST + 100 for r in found[0].sqref.ranges)


@pytest.mark.parametrize("sheet", DATA_SHEETS, ids=lambda s: s.key)
def test_sheets_protected_without_password(book, sheet):
    protection = book[sheet.name].protection
    assert protection.sheet is True
    assert not protection.password


def test_general_keys_locked_values_unlocked(book):
    worksheet = book[GENERAL.name]
    prefilled = {"school_code", "school_name", "cycle"}
    for row, item in enumerate(GENERAL.fields, start=1):
        assert worksheet.cell(row, 1).protection.locked is True
        # B1-B3 (code, name, period) are the office's: locked and shaded; the rest is the clerk's.
        assert worksheet.cell(row, 2).protection.locked is (item.key in prefilled), item.label
        fill = worksheet.cell(row, 2).fill
        shaded = fill.fill_type == "solid" and fill.fgColor.rgb not in (None, "FFFFFFFF", "00000000")
        assert shaded is (item.key in prefilled), item.label
    assert [GENERAL.field_keys[row] for row in range(3)] == ["school_code", "school_name", "cycle"]


@pytest.mark.parametrize("sheet", TABLE_SHEETS, ids=lambda s: s.key)
def test_table_labels_locked_values_unlocked(book, sheet):
    worksheet = book[sheet.name]
    for column, item in enumerate(sheet.fields, start=1):
        assert worksheet.cell(HEADER, column).protection.locked is True
        rows = len(sheet.rows.choices) if sheet.rows is not None else 1
        for row in range(FIRST, FIRST + rows):
            locked = worksheet.cell(row, column).protection.locked
            assert locked is (item.key == sheet.row_field), (sheet.name, row, item.label)


def test_number_formats_and_widths(book):
    general = book[GENERAL.name]
    expected = {Kind.INT: "#,##0", Kind.DATE: "dd/mm/yyyy"}
    for row, item in enumerate(GENERAL.fields, start=1):
        if item.kind in expected:
            assert general.cell(row, 2).number_format == expected[item.kind]
    for key in ("school_code", "phone"):
        row = GENERAL.field_keys.index(key) + 1
        assert general.cell(row, 2).number_format == "@"
    for sheet in TABLE_SHEETS:
        worksheet = book[sheet.name]
        assert worksheet.freeze_panes == f"A{FIRST}"
        for column, item in enumerate(sheet.fields, start=1):
            letter = get_column_letter(column)
            assert _width(worksheet, column) == pytest.approx(item.width, abs=1), (sheet.name, letter)
            if item.kind in expected:
                shown = worksheet.cell(FIRST, column).number_format
                assert shown == expected[item.kind], (sheet.name, letter)


def test_filled_values_show_labels_and_numbers(school, cycle):
    values = school_values(school, cycle)
    data = build_template(school, cycle, values)
    rows = _rows(CalamineWorkbook.from_filelike(io.BytesIO(data)), REACH.name)
    reach = {row["group"]: row for row in values.rows[REACH.key]}
    for offset, choice in enumerate(REACH.rows.choices):
        row = rows[FIRST_DATA_ROW + offset]
        assert row[0] == choice.label
        assert [int(v) for v in row[1:5]] == [reach[choice.code][k] for k in REACH.field_keys[1:]]
    activity_rows = _rows(CalamineWorkbook.from_filelike(io.BytesIO(data)), ACTIVITIES.name)
    first = values.rows[ACTIVITIES.key][0]
    typed = activity_rows[FIRST_DATA_ROW]
    type_column = ACTIVITIES.field_keys.index("activity_type")
    assert typed[type_column] == ACTIVITIES.field("activity_type").codes.label(first["activity_type"])
    checklist = _rows(CalamineWorkbook.from_filelike(io.BytesIO(data)), CHECKLIST.name)
    answers = {row["item"]: row["answer"] for row in values.rows[CHECKLIST.key]}
    yes_no = CHECKLIST.field("answer").codes
    for offset, code in enumerate(CHECKLIST.rows.codes):
        shown = checklist[FIRST_DATA_ROW + offset][1]
        answer = answers[code]
        assert shown == ("" if answer is None else yes_no.label("yes" if answer else "no"))


def test_deterministic_bytes(school, cycle, template):
    assert build_template(school, cycle, send_to=OFFICE) == template


def test_file_name_is_ascii(school, cycle):
    name = template_file_name(school, cycle)
    assert name.isascii() and name.endswith(".xlsx") and cycle.id in name and school.code in name


@pytest.mark.parametrize("file_format", ["xls", "ods"])
def test_other_formats_hold_the_same_values(school, cycle, file_format):
    values = school_values(school, cycle)
    grid = template_grid(school, cycle, values)
    xlsx = CalamineWorkbook.from_filelike(io.BytesIO(write_workbook(grid, "xlsx")))
    other = CalamineWorkbook.from_filelike(io.BytesIO(write_workbook(grid, file_format)))
    assert other.sheet_names == xlsx.sheet_names
    hidden = {m.name for m in other.sheets_metadata if m.visible != SheetVisibleEnum.Visible}
    assert hidden == {LIST_SHEET_NAME, META.name}
    for sheet in (*DATA_SHEETS, META):
        mine = xlsx.get_sheet_by_name(sheet.name).to_python()
        theirs = other.get_sheet_by_name(sheet.name).to_python()
        assert _normalised(theirs) == _normalised(mine), sheet.name
    again = template_grid(school, cycle, values)
    assert write_workbook(grid, file_format) == write_workbook(again, file_format)


def _normalised(rows: list[list[object]]) -> list[list[object]]:
    def cell(value: object) -> object:
        return int(value) if isinstance(value, float) and value.is_integer() else value

    return [[cell(value) for value in row] for row in rows]


def _validations(worksheet, kind: str) -> list:
    return [dv for dv in worksheet.data_validations.dataValidation if dv.type == kind]


def _covers(validations: list, row: int, column: int) -> list:
    return [
        dv for dv in validations
        if any(r.min_col <= column <= r.max_col and r.min_row <= row <= r.max_row for r in dv.sqref.ranges)
    ]


def _assert_count_check(found: list, where: str) -> None:
    assert len(found) == 1, where
    check = found[0]
    assert (check.operator, check.formula1) == ("greaterThanOrEqual", "0"), where
    assert check.errorStyle in (None, "stop"), where  # openpyxl reads the default "stop" as None
    assert check.showErrorMessage and check.showInputMessage, where
    assert "số nguyên" in check.error and "số nguyên" in check.prompt, where
    assert check.error == nfc(check.error) and check.errorTitle == "Không phải số nguyên không âm", where


def _assert_date_check(found: list, where: str) -> None:
    assert len(found) == 1, where
    check = found[0]
    # A missing operator means "between"; 36526 is 01/01/2000 as an Excel serial.
    assert check.operator in (None, "between") and check.formula1 == "36526", where
    assert check.showErrorMessage and check.showInputMessage, where
    assert "15/03/2023" in check.error and "ngày/tháng/năm" in check.prompt, where


def test_count_and_date_cells_checked_while_typing(book):
    general = book[GENERAL.name]
    for row, item in enumerate(GENERAL.fields, start=1):
        whole = _covers(_validations(general, "whole"), row, 2)
        dates = _covers(_validations(general, "date"), row, 2)
        assert bool(whole) is (item.kind is Kind.INT), item.label
        assert bool(dates) is (item.kind is Kind.DATE), item.label
        if whole:
            _assert_count_check(whole, item.label)
        if dates:
            _assert_date_check(dates, item.label)
    for sheet in TABLE_SHEETS:
        worksheet = book[sheet.name]
        rows = len(sheet.rows.choices) if sheet.rows is not None else 100
        for column, item in enumerate(sheet.fields, start=1):
            for row in (FIRST, FIRST + rows - 1):
                where = f"{sheet.name}!{get_column_letter(column)}{row}"
                whole = _covers(_validations(worksheet, "whole"), row, column)
                dates = _covers(_validations(worksheet, "date"), row, column)
                assert bool(whole) is (item.kind is Kind.INT), where
                assert bool(dates) is (item.kind is Kind.DATE), where
                if whole:
                    _assert_count_check(whole, where)
                if dates:
                    _assert_date_check(dates, where)


@pytest.mark.parametrize("name", PRINTED_SHEETS)
def test_every_sheet_prints_on_a4_one_page_wide(book, name):
    worksheet = book[name]
    setup = worksheet.page_setup
    assert int(setup.paperSize) == 9  # A4
    assert worksheet.sheet_properties.pageSetUpPr.fitToPage is True
    assert (setup.fitToWidth or 1, setup.fitToHeight) == (1, 0)  # a missing fitToWidth means 1
    table = next((sheet for sheet in TABLE_SHEETS if sheet.name == name), None)
    # Tables wider than a portrait page (about 100 characters) print landscape.
    wide = table is not None and sum(item.width for item in table.fields) > 100
    assert setup.orientation == ("landscape" if wide else "portrait")
    if name != INSTRUCTIONS_SHEET_NAME and name != GENERAL.name:
        # Title, hint and header repeat on every printed page.
        assert worksheet.print_title_rows == f"$1:${HEADER}"
    assert "&A" in worksheet.oddHeader.left.text and "&P" in worksheet.oddFooter.center.text


def test_instructions_wrap_within_a_portrait_page(book):
    worksheet = book[INSTRUCTIONS_SHEET_NAME]
    # About 100 characters fit a portrait A4 line at 12 pt; every line wraps instead of running off.
    assert _width(worksheet, 1) <= 95
    for row in worksheet.iter_rows(min_col=1, max_col=1):
        cell = row[0]
        if isinstance(cell.value, str) and len(cell.value) > 60:
            assert cell.alignment.wrap_text, cell.coordinate
            height = worksheet.row_dimensions[cell.row].height
            assert height and height >= 15 * (len(cell.value) // 100 + 1) - 1, cell.coordinate


def test_builder_reads_no_mail_settings(school, cycle, monkeypatch):
    monkeypatch.setenv("GEC_SMTP_FROM", "Không dùng <settings-leak@q8.test>")
    get_settings.cache_clear()
    try:
        data = build_template(school, cycle)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    text = "\n".join(str(c) for row in _rows(CalamineWorkbook.from_filelike(io.BytesIO(data)),
                                             INSTRUCTIONS_SHEET_NAME) for c in row)
    assert "settings-leak" not in text and "@" not in text
    assert "trả lời thư của Phòng" in text


@pytest.fixture(scope="module")
def printed(template, tmp_path_factory) -> list:
    require_tools("soffice", "pdfinfo", "pdftotext")
    folder = tmp_path_factory.mktemp("printed")
    workbook = folder / "template.xlsx"
    workbook.write_bytes(template)
    return pages(to_pdf(workbook, folder))


def _sheet_of(page) -> str:
    """Return the sheet a printed page belongs to: its name is the page header's left part."""
    first_line = next(line for line in page.text.splitlines() if line.strip())
    return first_line.split("  ")[0].strip()


def test_template_prints_each_sheet_on_at_most_two_a4_pages(printed):
    by_sheet: dict[str, list] = {}
    for page in printed:
        assert sorted((round(page.width, 1), round(page.height, 1))) == [A4_SHORT, A4_LONG], page.number
        by_sheet.setdefault(_sheet_of(page), []).append(page)
    # Hidden helper sheets are not printed; every visible sheet is.
    assert set(by_sheet) == set(PRINTED_SHEETS)
    for name, sheet_pages in by_sheet.items():
        assert len(sheet_pages) <= 2, (name, len(sheet_pages))
    assert len(printed) <= 2 * len(PRINTED_SHEETS)


@pytest.mark.parametrize("sheet", TABLE_SHEETS, ids=lambda s: s.key)
def test_printed_tables_are_one_page_wide(printed, sheet):
    first = next(page for page in printed if _sheet_of(page) == sheet.name)
    # The first and the last column's headers are on the sheet's first page: no column spills over.
    text = re.sub(r"\s+", " ", first.text)
    for item in (sheet.fields[0], sheet.fields[-1]):
        words = item.label.split()
        assert all(word in text for word in words), (sheet.name, item.label)
    assert first.width > first.height if sum(f.width for f in sheet.fields) > 100 else True


def test_printed_instructions_fit_the_page_width(printed):
    text = "\n".join(page.text for page in printed if _sheet_of(page) == INSTRUCTIONS_SHEET_NAME)
    flat = re.sub(r"\s+", " ", text)
    # Wrapped, not cut: whole sentences from the far right of long lines survive printing.
    assert "không chèn thêm cột." in flat
    assert OFFICE in flat


def test_write_doc_images(template, tmp_path):
    """Render the template's pages as PNG for docs/huong-dan-truong.md (only when asked to)."""
    if os.environ.get("GEC_WRITE_DOC_IMAGES") != "1":
        pytest.skip("set GEC_WRITE_DOC_IMAGES=1 to regenerate docs/img")
    require_tools("soffice", "pdftoppm")
    workbook = tmp_path / "bieu-mau.xlsx"
    workbook.write_bytes(template)
    pdf = to_pdf(workbook, tmp_path)
    names = {_sheet_of(page): page.number for page in reversed(pages(pdf))}
    DOC_IMAGES.mkdir(parents=True, exist_ok=True)
    # Sheet -> (image name, share of the page's height worth showing: the tables are short).
    wanted = {INSTRUCTIONS_SHEET_NAME: ("mau-huong-dan", 1.0), GENERAL.name: ("mau-thong-tin-chung", 0.3),
              REACH.name: ("mau-truyen-thong", 0.55), ACTIVITIES.name: ("mau-hoat-dong", 0.45)}
    resolution = 90
    by_number = {page.number: page for page in pages(pdf)}
    for name, (stem, share) in wanted.items():
        page = by_number[names[name]]
        width, height = (round(side / 72 * resolution) for side in (page.width, page.height))
        number = str(page.number)
        subprocess.run(["pdftoppm", "-png", "-r", str(resolution), "-singlefile", "-f", number, "-l", number,
                        "-x", "0", "-y", "0", "-W", str(width), "-H", str(round(height * share)),
                        str(pdf), str(DOC_IMAGES / stem)], check=True, timeout=120)
        assert (DOC_IMAGES / f"{stem}.png").stat().st_size > 10_000
