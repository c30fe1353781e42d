"""Every workbook-level rule code, triggered by a real template-made workbook.

Each case fills the office template for a preschool with plausible values, makes one mistake a clerk
makes, writes the .xlsx, parses and validates it, and checks the finding the school would read: rule
code, sheet, Excel row and column label.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from config.settings import PROJECT_ROOT
from demo.data import school_values
from schemas.contract import ACTIVITIES, CHECKLIST, GENERAL, INCIDENTS, REACH, RULES, Severity
from schemas.reference import Reference, load_reference
from tasks.check.parse import parse_workbook
from tasks.check.validate import validate_workbook
from tasks.template.build import SubmissionValues, build_template, template_grid
from tasks.template.writer import WorkbookGrid, write_workbook

SCHOOL = "MN001"  # a preschool: self-inspection is required
CYCLE = "2023-H1"
FIRST_DATA_ROW = 4  # title, hint, header, then data (Excel rows)


@pytest.fixture(scope="module")
def reference() -> Reference:
    return load_reference(PROJECT_ROOT / "reference")


@pytest.fixture(scope="module")
def clean(reference: Reference) -> SubmissionValues:
    school = reference.schools[SCHOOL]
    cycle = reference.calendar.get(CYCLE)
    assert cycle is not None
    values = school_values(school, cycle, 7)
    # Realistic, not extreme: no group at exactly 0% or 100% reach, no incidents.
    for row in values.rows["reach"]:
        row.update(total=40, female=30, reached=30, reached_female=20)
    for row in values.rows["incidents"]:
        row.update(cases=0, children=0, children_female=0, reported=0, supported=0)
    return values


def _row(values: SubmissionValues, sheet: str, code: str) -> dict:
    key = {"reach": "group", "checklist": "item", "incidents": "category"}[sheet]
    return next(row for row in values.rows[sheet] if row[key] == code)


def _findings(reference: Reference, content: bytes) -> list[tuple[str, str | None, int | None, str | None]]:
    parsed = parse_workbook(content, max_bytes=20 * 1024 * 1024)
    return [(f.rule, f.sheet, f.row, f.column) for f in validate_workbook(parsed, reference)]


def _workbook(reference: Reference, values: SubmissionValues) -> bytes:
    cycle = reference.calendar.get(CYCLE)
    assert cycle is not None
    return build_template(reference.schools[SCHOOL], cycle, values)


@dataclass(frozen=True)
class Case:
    rule: str
    change: Callable[[SubmissionValues], None]
    sheet: str
    row: int | None
    column: str | None


def general(**changes: object) -> Callable[[SubmissionValues], None]:
    return lambda values: values.general.update(changes)


def table(sheet: str, code_or_index: str | int, **changes: object) -> Callable[[SubmissionValues], None]:
    def change(values: SubmissionValues) -> None:
        if isinstance(code_or_index, int):
            values.rows[sheet][code_or_index].update(changes)
        else:
            _row(values, sheet, code_or_index).update(changes)

    return change


def reach_row(group: str) -> int:
    return FIRST_DATA_ROW + REACH.rows.codes.index(group)  # type: ignore[union-attr]


def checklist_row(item: str) -> int:
    return FIRST_DATA_ROW + CHECKLIST.rows.codes.index(item)  # type: ignore[union-attr]


def incident_row(category: str) -> int:
    return FIRST_DATA_ROW + INCIDENTS.rows.codes.index(category)  # type: ignore[union-attr]


def label(sheet, key: str) -> str:
    return sheet.field(key).label


CASES = [
    Case("unknown_school", general(school_code="ZZ999"), GENERAL.name, 1, label(GENERAL, "school_code")),
    Case("unknown_cycle", general(cycle="2023-H3"), GENERAL.name, 3, label(GENERAL, "cycle")),
    Case("missing_value", table("reach", "quan_ly", total=None), REACH.name, reach_row("quan_ly"),
         label(REACH, "total")),
    Case("not_integer", table("reach", "giao_vien", female="mười"), REACH.name, reach_row("giao_vien"),
         label(REACH, "female")),
    Case("not_integer", general(child_protection_staff=-3), GENERAL.name, 9,
         label(GENERAL, "child_protection_staff")),
    Case("female_gt_total", table("reach", "nhan_vien", female=45), REACH.name, reach_row("nhan_vien"),
         label(REACH, "female")),
    Case("female_gt_total", table("activities", 0, staff=10, staff_female=12), ACTIVITIES.name,
         FIRST_DATA_ROW, label(ACTIVITIES, "staff_female")),
    Case("female_gt_total", table("incidents", "bao_luc", cases=1, children=1, children_female=2),
         INCIDENTS.name, incident_row("bao_luc"), label(INCIDENTS, "children_female")),
    Case("reached_gt_total", table("reach", "hoc_sinh", reached=41), REACH.name, reach_row("hoc_sinh"),
         label(REACH, "reached")),
    Case("reached_female_gt_reached", table("reach", "phu_huynh", reached=20, reached_female=25),
         REACH.name, reach_row("phu_huynh"), label(REACH, "reached_female")),
    Case("reached_female_gt_female", table("reach", "giao_vien", female=15, reached_female=18),
         REACH.name, reach_row("giao_vien"), label(REACH, "reached_female")),
    Case("trained_gt_staff", general(child_protection_staff=2, trained_staff=3), GENERAL.name, 10,
         label(GENERAL, "trained_staff")),
    Case("bad_activity_type", table("activities", 0, activity_type="Văn nghệ chào mừng"), ACTIVITIES.name,
         FIRST_DATA_ROW, label(ACTIVITIES, "activity_type")),
    Case("bad_format", table("activities", 0, format="Qua Zalo"), ACTIVITIES.name, FIRST_DATA_ROW,
         label(ACTIVITIES, "format")),
    Case("missing_start_date", table("activities", 1, start_date=None), ACTIVITIES.name, FIRST_DATA_ROW + 1,
         label(ACTIVITIES, "start_date")),
    Case("missing_content", table("activities", 0, content=None), ACTIVITIES.name, FIRST_DATA_ROW,
         label(ACTIVITIES, "content")),
    Case("content_too_long", table("activities", 0, content="Tuyên truyền " * 50), ACTIVITIES.name,
         FIRST_DATA_ROW, label(ACTIVITIES, "content")),
    Case("end_before_start",
         table("activities", 0, start_date=dt.date(2023, 3, 10), end_date=dt.date(2023, 3, 8)),
         ACTIVITIES.name, FIRST_DATA_ROW, label(ACTIVITIES, "end_date")),
    Case("bad_date", table("activities", 0, start_date="32/13/2023"), ACTIVITIES.name, FIRST_DATA_ROW,
         label(ACTIVITIES, "start_date")),
    Case("bad_yes_no", table("checklist", "long_ghep_gioi", answer="Có thể"), CHECKLIST.name,
         checklist_row("long_ghep_gioi"), label(CHECKLIST, "answer")),
    Case("self_inspection_required", table("checklist", "tu_kiem_tra_an_toan", answer=None), CHECKLIST.name,
         checklist_row("tu_kiem_tra_an_toan"), label(CHECKLIST, "answer")),
    Case("reported_gt_cases", table("incidents", "bao_luc", cases=1, children=1, reported=2), INCIDENTS.name,
         incident_row("bao_luc"), label(INCIDENTS, "reported")),
    Case("supported_gt_cases", table("incidents", "duoi_nuoc", cases=1, children=1, supported=3),
         INCIDENTS.name, incident_row("duoi_nuoc"), label(INCIDENTS, "supported")),
    Case("date_outside_period",
         table("activities", 0, start_date=dt.date(2022, 12, 1), end_date=dt.date(2022, 12, 1)),
         ACTIVITIES.name, FIRST_DATA_ROW, label(ACTIVITIES, "start_date")),
    Case("reach_extreme", table("reach", "hoc_sinh", reached=40, reached_female=30), REACH.name,
         reach_row("hoc_sinh"), label(REACH, "reached")),
]


def test_clean_template_made_workbook_has_no_finding(reference: Reference, clean: SubmissionValues) -> None:
    assert _findings(reference, _workbook(reference, clean)) == []


@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case.rule}-{case.sheet}")
def test_rule_is_raised_at_the_cell_the_school_sees(
    case: Case, reference: Reference, clean: SubmissionValues
) -> None:
    values = copy.deepcopy(clean)
    case.change(values)
    findings = _findings(reference, _workbook(reference, values))
    assert (case.rule, case.sheet, case.row, case.column) in findings, findings
    # The one mistake raises this rule only (a rule may point at more than one cell).
    assert {rule for rule, *_ in findings} == {case.rule}, findings


def test_children_cases_mismatch_either_way(reference: Reference, clean: SubmissionValues) -> None:
    for changes in ({"cases": 2, "children": 0}, {"cases": 0, "children": 3}):
        values = copy.deepcopy(clean)
        _row(values, "incidents", "boc_lot").update(changes)
        findings = _findings(reference, _workbook(reference, values))
        assert {rule for rule, *_ in findings} == {"children_cases_mismatch"}, findings
        where = incident_row("boc_lot")
        assert all(sheet == INCIDENTS.name and row == where for _, sheet, row, _ in findings)


def _grid(reference: Reference, values: SubmissionValues) -> WorkbookGrid:
    cycle = reference.calendar.get(CYCLE)
    assert cycle is not None
    return template_grid(reference.schools[SCHOOL], cycle, values)


def _sheet(grid: WorkbookGrid, key: str):
    return next(sheet for sheet in grid.sheets if sheet.key == key)


def test_missing_sheet(reference: Reference, clean: SubmissionValues) -> None:
    grid = _grid(reference, clean)
    _sheet(grid, "checklist").name = "Danh gia cu"
    findings = _findings(reference, write_workbook(grid, "xlsx"))
    assert findings == [("missing_sheet", CHECKLIST.name, None, None)]


def test_missing_column(reference: Reference, clean: SubmissionValues) -> None:
    grid = _grid(reference, clean)
    sheet = _sheet(grid, "activities")
    column = sheet.field_columns["format"]
    sheet.cells = {(r, c): cell for (r, c), cell in sheet.cells.items() if c != column}
    findings = _findings(reference, write_workbook(grid, "xlsx"))
    assert ("missing_column", ACTIVITIES.name, None, label(ACTIVITIES, "format")) in [
        (rule, sheet_name, None, column_label) for rule, sheet_name, _, column_label in findings
    ], findings
    assert {rule for rule, *_ in findings} == {"missing_column"}, findings


def test_extra_column_dropped_is_a_warning(reference: Reference, clean: SubmissionValues) -> None:
    grid = _grid(reference, clean)
    sheet = _sheet(grid, "activities")
    extra = max(column for _, column in sheet.cells) + 1
    sheet.set(sheet.header_row, extra, "Ghi chú")
    sheet.set(sheet.header_row + 1, extra, "Phối hợp với Hội Phụ nữ phường")
    parsed = parse_workbook(write_workbook(grid, "xlsx"), max_bytes=20 * 1024 * 1024)
    findings = validate_workbook(parsed, reference)
    assert [(f.rule, f.sheet, f.column, f.severity) for f in findings] == [
        ("extra_column_dropped", ACTIVITIES.name, "Ghi chú", Severity.WARNING)
    ]


def test_every_workbook_rule_has_a_case_here() -> None:
    # File-level rules (unreadable/encrypted/too large) are proved in test_hostile_files; late,
    # total_jump and unregistered_sender need the database (test_intake_store, test_mail_intake).
    covered = {case.rule for case in CASES} | {
        "children_cases_mismatch", "missing_sheet", "missing_column", "extra_column_dropped",
    }
    elsewhere = {
        "unreadable_file", "encrypted_file", "too_large", "late", "total_jump", "unregistered_sender",
        "legacy_encoding",  # test_legacy_text
        "count_too_large",  # test_count_limits
        "duplicate_sheet",  # test_inert_text
        "storage_error",  # test_storage_faults (a database fault, not a workbook's content)
    }
    assert set(RULES) - elsewhere == covered

