"""Validation of parsed workbooks (SPEC §3): every rule on tiny hand-built ParsedWorkbook objects."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from pandera.config import config_context

from schemas.contract import CHECKLIST_ITEMS, DATA_SHEETS, GENERAL, NOT_GREATER, RULES, SHEETS, Severity
from schemas.findings import Finding, make_finding
from schemas.models import MODELS
from schemas.reference import CycleCalendar, Reference, School
from schemas.workbook import EXCEL_ROW, KeyCell, ParsedWorkbook
from tasks.check.validate import has_errors, resolve_identity, validate_batch, validate_workbook

FIRST_DATA_ROW = 5  # header on row 4 of every table sheet
GENERAL_FIRST_ROW = 3
ACTIVITY = FIRST_DATA_ROW  # the first activity's Excel row

G, R, A, C, INC = (SHEETS[key].name for key in ("general", "reach", "activities", "checklist", "incidents"))


def _school(code: str, level: str) -> School:
    return School(code, f"Trường {code}", level, "cong_lap", "Phường 1", (), True, None, None, frozenset())


@pytest.fixture(scope="module")
def reference() -> Reference:
    schools = {code: _school(code, level) for code, level in (("MN001", "mam_non"), ("TH001", "tieu_hoc"))}
    return Reference(schools=schools, calendar=CycleCalendar(), indicators=())


# --------------------------------------------------------------------------------------------------
# A clean workbook and ways to spoil it


def _text(value: object) -> str:
    """Return a cell as the clerk sees it, the way the parser fills `raw`."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Có" if value else "Không"
    if isinstance(value, dt.date):
        return value.strftime("%d/%m/%Y")
    return str(value)


def _table(sheet_key: str, records: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    keys = list(SHEETS[sheet_key].field_keys)
    rows = list(range(FIRST_DATA_ROW, FIRST_DATA_ROW + len(records)))
    values = pd.DataFrame([[r.get(k) for k in keys] for r in records], columns=keys, dtype=object)
    values[EXCEL_ROW] = rows
    raw = pd.DataFrame([[_text(r.get(k)) for k in keys] for r in records], columns=keys, dtype=object)
    raw[EXCEL_ROW] = rows
    return values, raw


def clean_workbook(school: str = "MN001", cycle: str = "2023-H1") -> ParsedWorkbook:
    general_values = {
        "school_code": school,
        "school_name": "Trường Mầm non Hoa Đào",
        "cycle": cycle,
        "reporter": "Nguyễn Thị Lan",
        "position": "Phó hiệu trưởng",
        "phone": "0909123456",
        "email": "mn001@truong.q8.test",
        "report_date": dt.date(2023, 4, 28),
        "child_protection_staff": 3,
        "trained_staff": 2,
    }
    general = {
        key: KeyCell(general_values[key], _text(general_values[key]), GENERAL_FIRST_ROW + index)
        for index, key in enumerate(GENERAL.field_keys)
    }
    reach = [
        {"group": code, "total": 20, "female": 12, "reached": 15, "reached_female": 9}
        for code in SHEETS["reach"].rows.codes
    ]
    activities = [
        {
            "seq": 1,
            "start_date": dt.date(2023, 3, 8),
            "end_date": dt.date(2023, 3, 8),
            "activity_type": "tuyen_truyen",
            "content": "Tuyên truyền Luật Trẻ em cho cha mẹ học sinh",
            "documents": "Luật Trẻ em 2016",
            "format": "truc_tiep",
            "staff": 20,
            "staff_female": 18,
            "students": None,
            "students_female": None,
            "parents": 150,
            "parents_female": 100,
        },
        {
            "seq": 2,
            "start_date": dt.date(2023, 4, 3),
            "end_date": None,
            "activity_type": "tap_huan",
            "content": "Tập huấn phòng, chống xâm hại trẻ em",
            "format": None,
            "staff": 25,
            "staff_female": 25,
        },
    ]
    checklist = [{"item": code, "answer": True, "evidence": None} for code in CHECKLIST_ITEMS.codes]
    incidents = [{"category": code} for code in SHEETS["incidents"].rows.codes]
    incidents[0].update(cases=1, children=1, children_female=1, reported=1, supported=1)
    tables, raw = {}, {}
    for key, records in (
        ("reach", reach),
        ("activities", activities),
        ("checklist", checklist),
        ("incidents", incidents),
    ):
        tables[key], raw[key] = _table(key, records)
    return ParsedWorkbook(file_format="xlsx", general=general, tables=tables, raw=raw)


def put(parsed: ParsedWorkbook, sheet_key: str, where: str | int, key: str, value: object,
        raw: str | None = None) -> None:
    """Set one cell (coerced value and displayed text); `where` is a row code, or a row position."""
    if sheet_key == "general":
        row = parsed.general[key].row
        parsed.general[key] = KeyCell(value, _text(value) if raw is None else raw, row)
        return
    table = parsed.tables[sheet_key]
    row_field = SHEETS[sheet_key].row_field
    index = table.index[table[row_field] == where][0] if isinstance(where, str) else where
    table.at[index, key] = value
    parsed.raw[sheet_key].at[index, key] = _text(value) if raw is None else raw


def drop_row(parsed: ParsedWorkbook, sheet_key: str, code: str) -> None:
    table = parsed.tables[sheet_key]
    keep = table[SHEETS[sheet_key].row_field] != code
    parsed.tables[sheet_key] = table[keep].reset_index(drop=True)
    parsed.raw[sheet_key] = parsed.raw[sheet_key][keep.to_numpy()].reset_index(drop=True)


def spots(findings: list[Finding]) -> list[tuple[str, str | None, int | None, str | None]]:
    return [(f.rule, f.sheet, f.row, f.column) for f in findings]


def row_of(sheet_key: str, code: str) -> int:
    return FIRST_DATA_ROW + SHEETS[sheet_key].rows.codes.index(code)


# --------------------------------------------------------------------------------------------------
# Every rule, one case each: (mutation, expected (rule, sheet, row, column) list)

Mutation = Callable[[ParsedWorkbook], None]
GROUP, ITEM, KIND = "giao_vien", "long_ghep_gioi", "bao_luc"
REACH_ROW, ITEM_ROW, KIND_ROW = row_of("reach", GROUP), row_of("checklist", ITEM), row_of("incidents", KIND)


def _cases(parsed: ParsedWorkbook, cases: int, children: int, female: int = 0, reported: int = 0,
           supported: int = 0) -> None:
    for key, value in (("cases", cases), ("children", children), ("children_female", female),
                       ("reported", reported), ("supported", supported)):
        put(parsed, "incidents", KIND, key, value)


def _both(*mutations: Mutation) -> Mutation:
    def apply(parsed: ParsedWorkbook) -> None:
        for mutation in mutations:
            mutation(parsed)

    return apply


RULE_CASES: dict[str, tuple[Mutation, list[tuple[str, str, int | None, str]]]] = {
    "unknown_school": (
        lambda p: put(p, "general", 0, "school_code", "MN999"),
        [("unknown_school", G, 3, "Mã trường")],
    ),
    "missing_value-school_code": (
        lambda p: put(p, "general", 0, "school_code", None),
        [("missing_value", G, 3, "Mã trường")],
    ),
    "missing_value-school_code-absent": (
        lambda p: p.general.pop("school_code"),
        [("missing_value", G, None, "Mã trường")],
    ),
    "unknown_cycle": (
        lambda p: put(p, "general", 0, "cycle", "Quý 3/2023"),
        [("unknown_cycle", G, 5, "Kỳ báo cáo")],
    ),
    "unknown_cycle-blank": (
        lambda p: put(p, "general", 0, "cycle", None),
        [("unknown_cycle", G, 5, "Kỳ báo cáo")],
    ),
    "unknown_cycle-absent": (
        lambda p: p.general.pop("cycle"),
        [("unknown_cycle", G, None, "Kỳ báo cáo")],
    ),
    "missing_value-reach": (
        lambda p: put(p, "reach", GROUP, "total", None),
        [("missing_value", R, REACH_ROW, "Tổng số")],
    ),
    "missing_value-reach-row-absent": (
        lambda p: drop_row(p, "reach", "cong_tac_vien"),
        [("missing_value", R, None, "Đối tượng")],
    ),
    "missing_value-checklist": (
        lambda p: put(p, "checklist", ITEM, "answer", None),
        [("missing_value", C, ITEM_ROW, "Kết quả")],
    ),
    "missing_value-checklist-row-absent": (
        lambda p: drop_row(p, "checklist", ITEM),
        [("missing_value", C, None, "Nội dung")],
    ),
    "missing_value-activity_type": (
        lambda p: put(p, "activities", 0, "activity_type", None),
        [("missing_value", A, ACTIVITY, "Loại hoạt động")],
    ),
    "not_integer-negative": (
        lambda p: put(p, "reach", GROUP, "female", -3),
        [("not_integer", R, REACH_ROW, "Trong đó nữ")],
    ),
    "not_integer-text": (
        lambda p: put(p, "activities", 0, "staff", "nhiều"),
        [("not_integer", A, ACTIVITY, "CB-GV-NV tham dự")],
    ),
    "not_integer-decimal": (
        lambda p: put(p, "incidents", KIND, "cases", 1.5, raw="1,5"),
        [("not_integer", INC, KIND_ROW, "Số vụ việc")],
    ),
    "not_integer-general": (
        lambda p: put(p, "general", 0, "child_protection_staff", "ba"),
        [("not_integer", G, 11, "Số cán bộ làm công tác bảo vệ trẻ em")],
    ),
    "female_gt_total-reach": (
        lambda p: put(p, "reach", GROUP, "female", 25),
        [("female_gt_total", R, REACH_ROW, "Trong đó nữ")],
    ),
    "female_gt_total-activities": (
        lambda p: put(p, "activities", 0, "parents_female", 151),
        [("female_gt_total", A, ACTIVITY, "Trong đó nữ (PH)")],
    ),
    "female_gt_total-activities-blank-total": (
        lambda p: put(p, "activities", 0, "students_female", 4),
        [("female_gt_total", A, ACTIVITY, "Trong đó nữ (HS)")],
    ),
    "female_gt_total-incidents": (
        lambda p: _cases(p, 1, 1, female=2),
        [("female_gt_total", INC, KIND_ROW, "Trong đó nữ")],
    ),
    "reached_gt_total": (
        lambda p: put(p, "reach", GROUP, "reached", 25),
        [("reached_gt_total", R, REACH_ROW, "Số được truyền thông")],
    ),
    "reached_female_gt_reached": (
        _both(
            lambda p: put(p, "reach", GROUP, "female", 18),
            lambda p: put(p, "reach", GROUP, "reached_female", 16),
        ),
        [("reached_female_gt_reached", R, REACH_ROW, "Trong đó nữ được truyền thông")],
    ),
    "reached_female_gt_female": (
        lambda p: put(p, "reach", GROUP, "female", 5),
        [("reached_female_gt_female", R, REACH_ROW, "Trong đó nữ được truyền thông")],
    ),
    "trained_gt_staff": (
        lambda p: put(p, "general", 0, "trained_staff", 4),
        [("trained_gt_staff", G, 12, "Trong đó được tập huấn")],
    ),
    "bad_activity_type": (
        lambda p: put(p, "activities", 1, "activity_type", "Văn nghệ"),
        [("bad_activity_type", A, ACTIVITY + 1, "Loại hoạt động")],
    ),
    "bad_format": (
        lambda p: put(p, "activities", 0, "format", "Qua Zalo"),
        [("bad_format", A, ACTIVITY, "Hình thức")],
    ),
    "missing_start_date": (
        lambda p: put(p, "activities", 1, "start_date", None),
        [("missing_start_date", A, ACTIVITY + 1, "Ngày bắt đầu")],
    ),
    "missing_content": (
        lambda p: put(p, "activities", 0, "content", None),
        [("missing_content", A, ACTIVITY, "Nội dung")],
    ),
    "content_too_long": (
        lambda p: put(p, "activities", 0, "content", "a" * 501),
        [("content_too_long", A, ACTIVITY, "Nội dung")],
    ),
    "end_before_start": (
        lambda p: put(p, "activities", 0, "end_date", dt.date(2023, 3, 5)),
        [("end_before_start", A, ACTIVITY, "Ngày kết thúc")],
    ),
    "bad_date-start": (
        lambda p: put(p, "activities", 0, "start_date", "32/13/2023"),
        [("bad_date", A, ACTIVITY, "Ngày bắt đầu")],
    ),
    "bad_date-end": (
        lambda p: put(p, "activities", 0, "end_date", "hôm qua"),
        [("bad_date", A, ACTIVITY, "Ngày kết thúc")],
    ),
    "bad_date-report_date": (
        lambda p: put(p, "general", 0, "report_date", "cuối tháng 4"),
        [("bad_date", G, 10, "Ngày báo cáo")],
    ),
    "bad_yes_no": (
        lambda p: put(p, "checklist", ITEM, "answer", "Có thể"),
        [("bad_yes_no", C, ITEM_ROW, "Kết quả")],
    ),
    "self_inspection_required": (
        lambda p: put(p, "checklist", "tu_kiem_tra_an_toan", "answer", None),
        [("self_inspection_required", C, row_of("checklist", "tu_kiem_tra_an_toan"), "Kết quả")],
    ),
    "missing_value-self_inspection-row-absent": (
        lambda p: drop_row(p, "checklist", "tu_kiem_tra_an_toan"),
        [("missing_value", C, None, "Nội dung")],
    ),
    "reported_gt_cases": (
        lambda p: _cases(p, 1, 1, reported=2),
        [("reported_gt_cases", INC, KIND_ROW, "Số vụ đã báo cáo cơ quan chức năng")],
    ),
    "supported_gt_cases": (
        lambda p: _cases(p, 2, 2, supported=3),
        [("supported_gt_cases", INC, KIND_ROW, "Số vụ đã được hỗ trợ, can thiệp")],
    ),
    "children_cases_mismatch-no-children": (
        lambda p: _cases(p, 2, 0),
        [("children_cases_mismatch", INC, KIND_ROW, "Số trẻ bị ảnh hưởng")],
    ),
    "children_cases_mismatch-no-cases": (
        lambda p: put(p, "incidents", "duoi_nuoc", "children", 3),
        [("children_cases_mismatch", INC, row_of("incidents", "duoi_nuoc"), "Số vụ việc")],
    ),
    "date_outside_period": (
        _both(
            lambda p: put(p, "activities", 0, "start_date", dt.date(2023, 5, 2)),
            lambda p: put(p, "activities", 0, "end_date", dt.date(2023, 5, 3)),
        ),
        [
            ("date_outside_period", A, ACTIVITY, "Ngày bắt đầu"),
            ("date_outside_period", A, ACTIVITY, "Ngày kết thúc"),
        ],
    ),
    "reach_extreme-100": (
        lambda p: put(p, "reach", GROUP, "reached", 20),
        [("reach_extreme", R, REACH_ROW, "Số được truyền thông")],
    ),
    "reach_extreme-0": (
        _both(
            lambda p: put(p, "reach", GROUP, "reached", 0),
            lambda p: put(p, "reach", GROUP, "reached_female", 0),
        ),
        [("reach_extreme", R, REACH_ROW, "Số được truyền thông")],
    ),
}


@pytest.mark.parametrize("case", list(RULE_CASES))
def test_each_rule_is_reported_at_its_cell(case: str, reference: Reference) -> None:
    mutate, expected = RULE_CASES[case]
    parsed = clean_workbook()
    mutate(parsed)
    findings = validate_workbook(parsed, reference)
    assert spots(findings) == expected
    rule = expected[0][0]
    assert all(f.severity is RULES[rule].severity for f in findings)


def test_every_validator_rule_has_a_case() -> None:
    covered = {spot[0] for _, spots_ in RULE_CASES.values() for spot in spots_}
    assert covered == {
        "unknown_school", "unknown_cycle", "missing_value", "not_integer", "female_gt_total",
        "reached_gt_total", "reached_female_gt_reached", "reached_female_gt_female", "trained_gt_staff",
        "bad_activity_type", "bad_format", "missing_start_date", "missing_content", "content_too_long",
        "end_before_start", "bad_date", "bad_yes_no", "self_inspection_required", "reported_gt_cases",
        "supported_gt_cases", "children_cases_mismatch", "date_outside_period", "reach_extreme",
    }


def test_clean_workbook_has_no_findings(reference: Reference) -> None:
    parsed = clean_workbook()
    assert validate_workbook(parsed, reference) == []
    assert not has_errors(validate_workbook(parsed, reference))


def test_self_inspection_may_be_blank_outside_preschools(reference: Reference) -> None:
    parsed = clean_workbook(school="TH001")
    put(parsed, "checklist", "tu_kiem_tra_an_toan", "answer", None)
    assert validate_workbook(parsed, reference) == []
    drop_row(parsed, "checklist", "tu_kiem_tra_an_toan")
    assert validate_workbook(parsed, reference) == []


def test_blank_activity_and_incident_counts_are_zero(reference: Reference) -> None:
    parsed = clean_workbook()
    for key in ("staff", "staff_female", "parents", "parents_female"):
        put(parsed, "activities", 0, key, None)
    _cases(parsed, 0, 0)
    assert validate_workbook(parsed, reference) == []


def test_no_activities_is_not_a_finding(reference: Reference) -> None:
    parsed = clean_workbook()
    parsed.tables["activities"] = parsed.tables["activities"].iloc[0:0]
    parsed.raw["activities"] = parsed.raw["activities"].iloc[0:0]
    assert validate_workbook(parsed, reference) == []


def test_validation_runs_even_when_pandera_is_switched_off(reference: Reference) -> None:
    parsed = clean_workbook()
    put(parsed, "reach", GROUP, "female", 25)
    with config_context(validation_enabled=False):
        findings = validate_workbook(parsed, reference)
    assert spots(findings) == [("female_gt_total", R, REACH_ROW, "Trong đó nữ")]


def test_models_are_built_from_the_contract() -> None:
    for sheet in DATA_SHEETS:
        model = MODELS[sheet.key]
        for field in sheet.fields:
            assert model.schema.columns[field.key].title == field.label
        for name, check in model.checks.items():
            assert name == f"{check.rule}:{check.field}"
            assert check.rule in RULES and check.field in sheet.field_keys
    for relation in NOT_GREATER:
        check = MODELS[relation.sheet].checks[f"{relation.rule}:{relation.smaller}"]
        assert check.other == relation.larger


# --------------------------------------------------------------------------------------------------
# What a finding says


def test_findings_show_raw_text_and_fill_message_fields(reference: Reference) -> None:
    parsed = clean_workbook()
    put(parsed, "reach", GROUP, "female", 25, raw="25")
    put(parsed, "reach", "quan_ly", "reached", 20)
    put(parsed, "activities", 0, "content", "x" * 612)
    put(parsed, "activities", 1, "start_date", dt.date(2023, 6, 1), raw="1/6/2023")
    put(parsed, "incidents", KIND, "cases", "hai")
    findings = {f.rule: f for f in validate_workbook(parsed, reference)}

    assert findings["female_gt_total"].value == "25"
    assert "\"Tổng số\"" in findings["female_gt_total"].message  # {other}: the compared column
    assert "100%" in findings["reach_extreme"].message
    assert findings["reach_extreme"].severity is Severity.WARNING
    assert "612 ký tự" in findings["content_too_long"].message
    outside = findings["date_outside_period"]
    assert outside.value == "1/6/2023"
    assert "01/01/2023 – 30/04/2023" in outside.message
    assert findings["not_integer"].value == "hai" and findings["not_integer"].confidential
    assert findings["not_integer"].public_value == "***"


def test_general_findings_show_the_key_cell_text(reference: Reference) -> None:
    parsed = clean_workbook()
    put(parsed, "general", 0, "school_code", "MN 999", raw=" MN 999 ")
    (finding,) = validate_workbook(parsed, reference)
    assert (finding.rule, finding.value) == ("unknown_school", " MN 999 ")
    assert "Mã trường \" MN 999 \"" in finding.message


def test_findings_are_sorted_by_sheet_row_column(reference: Reference) -> None:
    parsed = clean_workbook()
    put(parsed, "incidents", KIND, "cases", -1)
    put(parsed, "activities", 1, "format", "?")
    put(parsed, "activities", 1, "staff", "?")
    put(parsed, "activities", 0, "parents", "?")
    put(parsed, "general", 0, "trained_staff", "?")
    put(parsed, "general", 0, "school_code", "?")
    parsed.findings.append(make_finding("missing_column", "checklist", None, "evidence"))
    assert spots(validate_workbook(parsed, reference)) == [
        ("unknown_school", G, 3, "Mã trường"),
        ("not_integer", G, 12, "Trong đó được tập huấn"),
        ("not_integer", A, ACTIVITY, "Phụ huynh tham dự"),
        ("bad_format", A, ACTIVITY + 1, "Hình thức"),
        ("not_integer", A, ACTIVITY + 1, "CB-GV-NV tham dự"),
        ("missing_column", C, None, "Minh chứng"),
        ("not_integer", INC, KIND_ROW, "Số vụ việc"),
    ]


# --------------------------------------------------------------------------------------------------
# The parser's own findings, missing sheets and columns


def test_missing_column_passes_through_and_is_not_validated(reference: Reference) -> None:
    parsed = clean_workbook()
    parsed.tables["reach"] = parsed.tables["reach"].drop(columns=["total"])
    parsed.raw["reach"] = parsed.raw["reach"].drop(columns=["total"])
    missing = make_finding("missing_column", "reach", 4, "total")
    parsed.findings.append(missing)
    assert validate_workbook(parsed, reference) == [missing]


def test_missing_sheet_passes_through_and_is_not_validated(reference: Reference) -> None:
    parsed = clean_workbook()
    del parsed.tables["checklist"], parsed.raw["checklist"]
    missing = make_finding("missing_sheet", "checklist")
    parsed.findings.append(missing)
    assert validate_workbook(parsed, reference) == [missing]


def test_missing_general_sheet_is_not_validated(reference: Reference) -> None:
    parsed = clean_workbook()
    parsed.general.clear()
    missing = make_finding("missing_sheet", "general")
    parsed.findings.append(missing)
    assert validate_workbook(parsed, reference) == [missing]


def test_unreadable_file_only_passes_its_finding_through(reference: Reference) -> None:
    unreadable = make_finding("unreadable_file")
    parsed = ParsedWorkbook(file_format="", findings=[unreadable])
    assert validate_workbook(parsed, reference) == [unreadable]
    assert has_errors([unreadable])


def test_extra_column_warning_alone_is_not_an_error(reference: Reference) -> None:
    parsed = clean_workbook()
    dropped = make_finding("extra_column_dropped", "incidents", 4, column_label="Họ tên trẻ")
    parsed.findings.append(dropped)
    findings = validate_workbook(parsed, reference)
    assert findings == [dropped] and not has_errors(findings)


def test_frames_with_pandas_default_dtypes(reference: Reference) -> None:
    parsed = clean_workbook()
    put(parsed, "activities", 1, "content", None)
    put(parsed, "activities", 0, "documents", None)
    put(parsed, "checklist", ITEM, "evidence", "Biên bản")
    # pandas 3 infers `str` columns (NaN for blanks) and Int64/datetime columns from parser output.
    for key in ("activities", "checklist", "reach"):
        parsed.tables[key] = pd.DataFrame(parsed.tables[key].to_dict("records")).convert_dtypes()
    assert spots(validate_workbook(parsed, reference)) == [("missing_content", A, ACTIVITY + 1, "Nội dung")]


# --------------------------------------------------------------------------------------------------
# Batches


def test_batch_equals_each_workbook_alone(reference: Reference) -> None:
    first = clean_workbook()
    put(first, "reach", GROUP, "female", 25)
    put(first, "activities", 1, "activity_type", "Văn nghệ")
    second = clean_workbook(school="TH001", cycle="6 tháng cuối năm 2023")
    put(second, "checklist", ITEM, "answer", None)
    drop_row(second, "reach", "hoc_sinh")
    second.tables["activities"] = second.tables["activities"].drop(columns=["format"])
    second.findings.append(make_finding("missing_column", "activities", 4, "format"))
    third = clean_workbook()
    del third.tables["incidents"], third.raw["incidents"]
    third.findings.append(make_finding("missing_sheet", "incidents"))
    put(third, "general", 0, "cycle", "không rõ")
    workbooks = {"a": first, "b": second, "c": third}

    batch = validate_batch(list(workbooks.items()), reference)
    alone = {key: validate_workbook(copy.deepcopy(parsed), reference) for key, parsed in workbooks.items()}
    assert batch == alone
    assert all(batch.values())  # each one has something to compare
    assert list(batch) == ["a", "b", "c"]


def test_batch_maps_duplicate_excel_rows_to_their_own_workbook(reference: Reference) -> None:
    spoiled_female, spoiled_total, clean = clean_workbook(), clean_workbook(school="TH001"), clean_workbook()
    put(spoiled_female, "reach", GROUP, "female", "mười", raw="mười")
    put(spoiled_total, "reach", GROUP, "total", None)
    put(spoiled_total, "activities", 0, "staff_female", 21)
    put(clean, "activities", 1, "staff", "x")
    items = [(10, spoiled_female), (20, spoiled_total), (30, clean_workbook()), (40, clean)]
    found = validate_batch(items, reference)
    assert spots(found[10]) == [("not_integer", R, REACH_ROW, "Trong đó nữ")]
    assert found[10][0].value == "mười"
    assert spots(found[20]) == [
        ("missing_value", R, REACH_ROW, "Tổng số"),
        ("female_gt_total", A, ACTIVITY, "Trong đó nữ (CB-GV-NV)"),
    ]
    assert found[30] == []
    assert spots(found[40]) == [("not_integer", A, ACTIVITY + 1, "CB-GV-NV tham dự")]


def test_batch_rejects_duplicate_keys(reference: Reference) -> None:
    with pytest.raises(ValueError, match="distinct key"):
        validate_batch([(1, clean_workbook()), (1, clean_workbook())], reference)


def test_empty_batch(reference: Reference) -> None:
    assert validate_batch([], reference) == {}


# --------------------------------------------------------------------------------------------------
# Identity


def test_resolve_identity_reads_the_general_sheet(reference: Reference) -> None:
    parsed = clean_workbook(cycle="6 tháng đầu năm 2023")
    put(parsed, "general", 0, "school_code", " mn001 ")
    assert resolve_identity(parsed, reference) == ("MN001", "2023-H1")


def test_resolve_identity_unknown_school_and_unreadable_cycle(reference: Reference) -> None:
    parsed = clean_workbook(school="XX1", cycle="quý 2")
    assert resolve_identity(parsed, reference) == (None, None)


def test_resolve_identity_falls_back_to_meta_only_when_the_sheet_is_blank(reference: Reference) -> None:
    parsed = clean_workbook(school="TH001")
    parsed.meta = {"school_code": KeyCell("MN001", "MN001", 3), "cycle": KeyCell("2023-H2", "2023-H2", 2)}
    assert resolve_identity(parsed, reference) == ("TH001", "2023-H1")
    put(parsed, "general", 0, "school_code", None)
    put(parsed, "general", 0, "cycle", "")
    assert resolve_identity(parsed, reference) == ("MN001", "2023-H2")


def test_findings_carry_keys_and_are_worded_from_the_contract(reference: Reference) -> None:
    from schemas.findings import render_message

    parsed = clean_workbook()
    put(parsed, "reach", "phu_huynh", "female", 25, raw="25")
    put(parsed, "incidents", KIND, "reported", 9)
    found = {f.rule: f for f in validate_workbook(parsed, reference)}
    female = found["female_gt_total"]
    assert (female.sheet_key, female.field_key, female.value) == ("reach", "female", "25")
    assert (female.sheet, female.column) == ("Truyền thông", "Trong đó nữ")  # labels come from the contract
    total = female.param["other_value"]
    # Both numbers of the comparison; the row named by its label, not its number.
    assert f"(25) lớn hơn tổng số ở cột \"Tổng số\" ({total})" in female.message
    assert "dòng \u201cCha mẹ học sinh\u201d" in female.message and f"dòng {female.row}" not in female.message
    reported = found["reported_gt_cases"]
    assert reported.confidential and reported.value == "9"
    # Nobody but the school reads the incident numbers: not in the public wording, in the school's own.
    assert "9" not in reported.message and "***" in reported.message
    assert "(9)" in render_message(reported, reveal=True)
    assert reported.to_public_dict()["value"] == "***" and "9" not in reported.to_public_dict()["message"]
