"""Parsing contract-shaped workbooks: tolerant matching, coercions, findings (SPEC §3)."""

from __future__ import annotations

import datetime as dt
import unicodedata

import pytest

from schemas.contract import (
    ACTIVITIES,
    ACTIVITY_TYPES,
    AUDIENCE_GROUPS,
    CHECKLIST,
    CHECKLIST_ITEMS,
    GENERAL,
    INCIDENT_CATEGORIES,
    INCIDENTS,
    META,
    REACH,
    TEMPLATE_VERSION,
    YES_NO,
    Kind,
)
from schemas.workbook import EXCEL_ROW, ParsedWorkbook
from tasks.check import parse as parse_module
from tasks.check.parse import coerce, parse_workbook
from tests.support.grid_workbooks import (
    ACTIVITY_ROWS,
    CHECKLIST_ANSWERS,
    CYCLE,
    INCIDENT_COUNTS,
    REACH_COUNTS,
    REPORT_DATE,
    SCHOOL_CODE,
    WRITERS,
    Formula,
    contract_grid,
    nfd,
    strip_diacritics,
    write_xlsx,
)

MAX_BYTES = 20 * 1024 * 1024


def parse(grid: dict, fmt: str = "xlsx") -> ParsedWorkbook:
    return parse_workbook(WRITERS[fmt](grid, hidden=[META.name]), max_bytes=MAX_BYTES)


def rules(parsed: ParsedWorkbook) -> list[tuple[str, str | None, str | None, int | None]]:
    return [(f.rule, f.sheet, f.column, f.row) for f in parsed.findings]


def records(parsed: ParsedWorkbook, sheet_key: str) -> list[dict]:
    return parsed.tables[sheet_key].to_dict("records")


def values_of(parsed: ParsedWorkbook) -> dict:
    """Everything a parse produced except positions, for comparing two spellings of one workbook."""
    return {
        "general": {key: cell.value for key, cell in parsed.general.items()},
        "meta": {key: cell.value for key, cell in parsed.meta.items()},
        "tables": {
            key: frame.drop(columns=EXCEL_ROW).to_dict("records") for key, frame in parsed.tables.items()
        },
    }


def find_row(grid: dict, sheet_name: str, first_cell: object) -> list:
    return next(row for row in grid[sheet_name] if row and row[0] == first_cell)


# --------------------------------------------------------------------------------------------------
# A contract-shaped workbook, in each accepted format


@pytest.mark.parametrize("fmt", ["xlsx", "xls", "ods"])
def test_contract_workbook_parses_to_its_values(fmt: str) -> None:
    parsed = parse(contract_grid(), fmt)

    assert parsed.findings == []
    assert parsed.file_format == fmt
    general = {key: cell.value for key, cell in parsed.general.items()}
    assert general["school_code"] == SCHOOL_CODE
    assert general["cycle"] == CYCLE
    assert general["report_date"] == REPORT_DATE
    assert general["child_protection_staff"] == 3 and type(general["child_protection_staff"]) is int
    assert general["trained_staff"] == 2
    assert general["phone"] == "0909123456"
    assert parsed.general["report_date"].raw == REPORT_DATE.strftime("%d/%m/%Y")
    assert parsed.general["school_code"].row == 1 + GENERAL.field_keys.index("school_code")
    assert {key: cell.value for key, cell in parsed.meta.items()} == {
        "template_version": TEMPLATE_VERSION, "cycle": CYCLE, "school_code": SCHOOL_CODE,
    }

    reach = records(parsed, "reach")
    assert [row["group"] for row in reach] == list(AUDIENCE_GROUPS.codes)
    for row in reach:
        counts = tuple(row[key] for key in REACH.field_keys[1:])
        assert counts == REACH_COUNTS[row["group"]]
        assert all(type(count) is int for count in counts)
    assert [row[EXCEL_ROW] for row in reach] == list(range(2, 2 + len(AUDIENCE_GROUPS.codes)))

    activities = records(parsed, "activities")
    assert len(activities) == len(ACTIVITY_ROWS)
    first, second = activities
    start, end, kind, content, docs, fmt_code, *counts = ACTIVITY_ROWS[0]
    assert (first["seq"], first["start_date"], first["end_date"]) == (1, start, end)
    assert (first["activity_type"], first["content"], first["documents"], first["format"]) == (
        kind, content, docs, fmt_code,
    )
    assert [first[key] for key in ACTIVITIES.field_keys[7:]] == counts
    assert second["end_date"] is None and second["documents"] is None
    assert second["activity_type"] == ACTIVITY_ROWS[1][2]

    checklist = records(parsed, "checklist")
    assert {row["item"]: row["answer"] for row in checklist} == CHECKLIST_ANSWERS
    assert all(type(row["answer"]) is bool for row in checklist)

    incidents = records(parsed, "incidents")
    assert [row["category"] for row in incidents] == list(INCIDENT_CATEGORIES.codes)
    for row in incidents:
        expected = INCIDENT_COUNTS.get(row["category"], (0, 0, 0, 0, 0))
        assert tuple(row[key] for key in INCIDENTS.field_keys[1:]) == expected

    assert parsed.sheet_names == {key: sheet.name for key, sheet in (
        ("general", GENERAL), ("reach", REACH), ("activities", ACTIVITIES), ("checklist", CHECKLIST),
        ("incidents", INCIDENTS), ("meta", META),
    )}
    assert parsed.columns["activities"] == {key: i for i, key in enumerate(ACTIVITIES.field_keys)}
    # The raw frames hold what the clerk sees.
    raw_first = parsed.raw["activities"].iloc[0]
    assert raw_first["start_date"] == start.strftime("%d/%m/%Y")
    assert raw_first["activity_type"] == ACTIVITY_TYPES.label(kind)
    assert raw_first["staff"] == str(counts[0])
    assert parsed.raw["activities"].iloc[1]["end_date"] == ""


# --------------------------------------------------------------------------------------------------
# Tolerant matching


def _upper(text: str) -> str:
    return text.upper()


@pytest.mark.parametrize("spell", [nfd, _upper, strip_diacritics], ids=["nfd", "upper", "no-diacritics"])
def test_labels_match_in_any_spelling(spell) -> None:
    baseline = parse(contract_grid())
    grid = contract_grid(label=spell)
    assert REACH.name not in grid  # the spelling really changed the names
    parsed = parse(grid)

    assert parsed.findings == []
    assert values_of(parsed) == values_of(baseline)
    assert parsed.sheet_names["reach"] == spell(REACH.name)


def test_nfd_text_values_come_out_nfc() -> None:
    grid = contract_grid()
    content = ACTIVITY_ROWS[0][3]
    find_row(grid, ACTIVITIES.name, 1)[4] = nfd(content)
    find_row(grid, GENERAL.name, GENERAL.field("reporter").label)[1] = nfd("Nguyễn Thị Lan")
    assert nfd(content) != content

    parsed = parse(grid)

    assert records(parsed, "activities")[0]["content"] == content
    assert parsed.general["reporter"].value == "Nguyễn Thị Lan"
    assert parsed.raw["activities"].iloc[0]["content"] == content


def test_header_two_rows_lower_and_sheets_reordered() -> None:
    baseline = parse(contract_grid())
    grid = contract_grid()
    for sheet in (REACH, ACTIVITIES, CHECKLIST, INCIDENTS):
        grid[sheet.name] = [["Báo cáo kết quả"], [], *grid[sheet.name]]
    reordered = dict(reversed(list(grid.items())))

    parsed = parse(reordered)

    assert parsed.findings == []
    assert values_of(parsed) == values_of(baseline)
    assert records(parsed, "reach")[0][EXCEL_ROW] == 4
    assert parsed.columns == baseline.columns


def test_header_is_the_row_matching_most_labels() -> None:
    grid = contract_grid()
    # A title row that happens to contain one label must not win over the real header.
    grid[REACH.name] = [[REACH.field("total").label], *grid[REACH.name]]

    parsed = parse(grid)

    assert parsed.findings == []
    assert [row["group"] for row in records(parsed, "reach")] == list(AUDIENCE_GROUPS.codes)


def test_extra_column_is_dropped_with_a_warning() -> None:
    grid = contract_grid()
    for row in grid[REACH.name]:
        row.insert(2, "Ghi chú" if row is grid[REACH.name][0] else "đã rà soát")

    parsed = parse(grid)

    assert rules(parsed) == [("extra_column_dropped", REACH.name, "Ghi chú", 1)]
    assert parsed.findings[0].severity == "warning"
    assert parsed.columns["reach"] == {"group": 0, "total": 1, "female": 3, "reached": 4, "reached_female": 5}
    reach = records(parsed, "reach")
    assert (reach[0]["total"], reach[0]["female"]) == REACH_COUNTS["quan_ly"][:2]
    assert "Ghi chú" not in parsed.tables["reach"].columns


def test_text_under_a_blank_header_is_dropped_with_a_warning() -> None:
    grid = contract_grid()
    width = len(INCIDENTS.fields)
    find_row(grid, INCIDENTS.name, INCIDENT_CATEGORIES.label("bao_luc")).extend([None, "tên một em"])

    parsed = parse(grid)

    column = parse_module._column_letter(width + 1)
    assert rules(parsed) == [("extra_column_dropped", INCIDENTS.name, f"Cột {column}", 2)]
    assert parsed.findings[0].confidential
    assert parsed.findings[0].value is None  # the dropped text is never echoed


def test_formula_total_is_read_from_its_cached_value() -> None:
    grid = contract_grid()
    row = find_row(grid, REACH.name, AUDIENCE_GROUPS.label("hoc_sinh"))
    row[1] = Formula("=SUM(F3:G3)", REACH_COUNTS["hoc_sinh"][0])

    parsed = parse(grid)

    assert parsed.findings == []
    students = next(r for r in records(parsed, "reach") if r["group"] == "hoc_sinh")
    assert students["total"] == REACH_COUNTS["hoc_sinh"][0]


def test_unknown_prefilled_row_is_skipped_with_a_warning() -> None:
    grid = contract_grid()
    grid[REACH.name].append(["Tổng cộng", 668, 384, 587, 343])
    grid[INCIDENTS.name].insert(3, [INCIDENT_CATEGORIES.label("bao_luc"), 9, 9, 9, 9, 9])  # duplicate

    parsed = parse(grid)

    assert rules(parsed) == [
        ("extra_column_dropped", REACH.name, "Tổng cộng", 2 + len(AUDIENCE_GROUPS.codes)),
        ("extra_column_dropped", INCIDENTS.name, "Dòng 4", 4),  # an incident row is named by its number
    ]
    assert [row["group"] for row in records(parsed, "reach")] == list(AUDIENCE_GROUPS.codes)
    assert records(parsed, "incidents")[0]["cases"] == INCIDENT_COUNTS["bao_luc"][0]


def test_text_typed_as_an_incident_row_is_never_shown() -> None:
    grid = contract_grid()
    grid[INCIDENTS.name].insert(2, ["Nguyễn Văn An", 1, 1, 0, 0, 0])  # a name where a category goes

    parsed = parse(grid)

    [dropped] = parsed.findings
    assert (dropped.rule, dropped.column, dropped.confidential) == ("extra_column_dropped", "Dòng 3", True)
    assert dropped.public_value == "***" and "Nguyễn" not in dropped.message
    assert "Nguyễn" not in str(dropped.to_public_dict())


def test_prefilled_rows_match_by_short_label_or_code() -> None:
    grid = contract_grid()
    for row in grid[CHECKLIST.name][1:]:
        code = CHECKLIST_ITEMS.lookup(row[0])
        short = next(choice.short_label for choice in CHECKLIST_ITEMS.choices if choice.code == code)
        row[0] = short if code != "tong_dai_111" else code

    parsed = parse(grid)

    assert parsed.findings == []
    assert {row["item"]: row["answer"] for row in records(parsed, "checklist")} == CHECKLIST_ANSWERS


def test_data_rows_end_at_the_first_fully_blank_row() -> None:
    grid = contract_grid()
    late = [99, dt.date(2023, 4, 20), None, ACTIVITY_TYPES.label("khac"), "Ghi chú cuối"]
    grid[ACTIVITIES.name] += [[], late]

    parsed = parse(grid)

    assert len(parsed.tables["activities"]) == len(ACTIVITY_ROWS)


def test_missing_sheet_and_missing_column_are_reported() -> None:
    grid = contract_grid()
    del grid[CHECKLIST.name]
    for row in grid[ACTIVITIES.name]:
        del row[ACTIVITIES.field_keys.index("content")]

    parsed = parse(grid)

    assert rules(parsed) == [
        ("missing_sheet", CHECKLIST.name, None, None),
        ("missing_column", ACTIVITIES.name, ACTIVITIES.field("content").label, None),
    ]
    assert "checklist" not in parsed.tables
    assert "content" not in parsed.tables["activities"].columns
    assert len(parsed.tables["activities"]) == len(ACTIVITY_ROWS)
    assert parsed.readable


def test_not_our_template_reports_every_sheet_missing() -> None:
    parsed = parse_workbook(write_xlsx({"Sheet1": [["a", 1]]}), max_bytes=MAX_BYTES)

    assert [f.rule for f in parsed.findings] == ["missing_sheet"] * 5
    assert parsed.readable and parsed.tables == {}


def test_hidden_meta_is_optional() -> None:
    grid = contract_grid()
    del grid[META.name]

    parsed = parse(grid)

    assert parsed.findings == [] and parsed.meta == {}


def test_general_keys_tolerate_a_trailing_colon_and_ignore_unknown_keys() -> None:
    grid = contract_grid()
    grid[GENERAL.name].insert(0, ["BÁO CÁO CÔNG TÁC BÌNH ĐẲNG GIỚI", None])
    for row in grid[GENERAL.name][1:]:
        row[0] = f"{row[0]}:"

    parsed = parse(grid)

    assert parsed.findings == []
    assert parsed.general["school_code"].value == SCHOOL_CODE
    assert parsed.general["school_code"].row == 2


# --------------------------------------------------------------------------------------------------
# Coercions (SPEC §3), one field of each kind


INT_FIELD = REACH.field("total")
DATE_FIELD = ACTIVITIES.field("start_date")
YES_NO_FIELD = CHECKLIST.field("answer")
CODE_FIELD = ACTIVITIES.field("activity_type")
TEXT_FIELD = GENERAL.field("school_code")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (25, 25), (25.0, 25), ("25", 25), ("1.250", 1250), ("1 250", 1250), ("1\u00a0250", 1250),
        ("12.0", 12), ("12,0", 12), ("1.250.000", 1250000), (-3, -3), ("-3", -3), (-3.0, -3),
        (12.5, "12.5"), ("12.5", "12.5"), ("abc", "abc"), ("1.25", "1.25"), (True, "TRUE"),
        (dt.date(2023, 1, 1), "01/01/2023"), (None, None), ("  ", None),
    ],
)
def test_int_coercion(value: object, expected: object) -> None:
    result = coerce(INT_FIELD, value)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (dt.datetime(2023, 3, 15, 0, 0), dt.date(2023, 3, 15)),
        (dt.date(2023, 3, 15), dt.date(2023, 3, 15)),
        (45000, dt.date(2023, 3, 15)), (45000.75, dt.date(2023, 3, 15)), (1, dt.date(1900, 1, 1)),
        (61, dt.date(1900, 3, 1)),
        ("15/03/2023", dt.date(2023, 3, 15)), ("5/3/2023", dt.date(2023, 3, 5)),
        ("2023-03-15", dt.date(2023, 3, 15)), (" 05/03/2023 ", dt.date(2023, 3, 5)),
        ("31/02/2023", "31/02/2023"), ("tháng 3", "tháng 3"), (-5, "-5"), (True, "TRUE"), (None, None),
    ],
)
def test_date_coercion(value: object, expected: object) -> None:
    assert coerce(DATE_FIELD, value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        *[(text, True) for text in ("Có", "có", "CÓ", "x", "X", "Yes", "1", "Đã", nfd("Có"))],
        (1, True), (1.0, True), (True, True),
        *[(text, False) for text in ("Không", "không", "chưa", "No", "0")],
        (0, False), (False, False),
        ("maybe", "maybe"), (2, "2"), (None, None),
    ],
)
def test_yes_no_coercion(value: object, expected: object) -> None:
    result = coerce(YES_NO_FIELD, value)
    assert result == expected and type(result) is type(expected)


def test_yes_no_aliases_come_from_the_contract() -> None:
    for choice in YES_NO.choices:
        for alias in (choice.label, *choice.aliases):
            assert coerce(YES_NO_FIELD, alias) is (choice.code == "yes")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (ACTIVITY_TYPES.label("tap_huan"), "tap_huan"),
        (strip_diacritics(ACTIVITY_TYPES.label("tap_huan")).upper(), "tap_huan"),
        (nfd(ACTIVITY_TYPES.label("trung_thu")), "trung_thu"),
        ("trung_thu", "trung_thu"),
        ("Hội thi vẽ tranh ", "Hội thi vẽ tranh"),
        (7, "7"),
    ],
)
def test_code_coercion(value: object, expected: object) -> None:
    assert coerce(CODE_FIELD, value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (nfd("  Trường Mầm non Họa Mi "), "Trường Mầm non Họa Mi"),
        (79000101.0, "79000101"), (79000101, "79000101"), (12.5, "12.5"), ("", None), ("\n", None),
    ],
)
def test_text_coercion(value: object, expected: object) -> None:
    result = coerce(TEXT_FIELD, value)
    assert result == expected
    if isinstance(result, str):
        assert unicodedata.is_normalized("NFC", result)


def test_coercions_apply_to_typed_cells_in_a_workbook() -> None:
    grid = contract_grid()
    group = find_row(grid, REACH.name, AUDIENCE_GROUPS.label("hoc_sinh"))
    group[1:5] = ["1.320", "1 150", 300.0, "12.5"]
    activity = find_row(grid, ACTIVITIES.name, 1)
    activity[1:3] = ["5/3/2023", 45000]
    activity[3] = strip_diacritics(ACTIVITY_TYPES.label("tuyen_truyen")).upper()
    item = find_row(grid, CHECKLIST.name, CHECKLIST_ITEMS.label("tong_dai_111"))
    item[1] = "x"
    find_row(grid, GENERAL.name, GENERAL.field("child_protection_staff").label)[1] = "3"

    for fmt in ("xlsx", "xls", "ods"):
        parsed = parse(grid, fmt)
        students = next(r for r in records(parsed, "reach") if r["group"] == "hoc_sinh")
        assert (students["total"], students["female"], students["reached"]) == (1320, 1150, 300), fmt
        assert students["reached_female"] == "12.5", fmt  # left for the validator: not_integer
        first = records(parsed, "activities")[0]
        assert (first["start_date"], first["end_date"]) == (dt.date(2023, 3, 5), dt.date(2023, 3, 15)), fmt
        assert first["activity_type"] == "tuyen_truyen", fmt
        answers = {r["item"]: r["answer"] for r in records(parsed, "checklist")}
        assert answers["tong_dai_111"] is True, fmt
        assert parsed.general["child_protection_staff"].value == 3, fmt
        assert parsed.general["child_protection_staff"].raw == "3", fmt


def test_kinds_cover_the_contract() -> None:
    # Every kind the contract uses has a coercion exercised above.
    sheets = (GENERAL, REACH, ACTIVITIES, CHECKLIST, INCIDENTS)
    assert {fld.kind for sheet in sheets for fld in sheet.fields} == set(Kind)


# --------------------------------------------------------------------------------------------------
# Never raises


def test_an_unexpected_error_becomes_unreadable_file(monkeypatch: pytest.MonkeyPatch) -> None:
    class RustPanic(BaseException):  # pyo3's PanicException derives from BaseException
        pass

    def explode(*_: object, **__: object) -> None:
        raise RustPanic("index out of bounds")

    monkeypatch.setattr(parse_module.CalamineWorkbook, "from_filelike", explode)

    parsed = parse(contract_grid())

    assert rules(parsed) == [("unreadable_file", None, None, None)]
    assert not parsed.readable


def test_keyboard_interrupt_is_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(parse_module, "identify", interrupt)

    with pytest.raises(KeyboardInterrupt):
        parse(contract_grid())
