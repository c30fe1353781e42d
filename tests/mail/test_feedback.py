"""Feedback content (SPEC §4): the annotated copy, the figures, the changes, the wording, confidentiality.

Workbooks are real: the office template filled with demo values, with clerks' mistakes injected
through SubmissionValues; .xls and .ods copies come from the same grid.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import zipfile
from collections.abc import Callable
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from sqlalchemy import Engine, select

from config.settings import get_settings
from db import models
from db.setup import init_database
from demo.data import school_values
from schemas.contract import TEMPLATE_VERSION, resolve_cycle
from schemas.findings import make_finding
from schemas.reference import Reference, load_reference
from tasks.check.checking import check_files
from tasks.check.parse import parse_workbook
from tasks.check.validate import validate_workbook
from tasks.intake.folder import incoming_file
from tasks.mail.annotate import annotate_workbook, locate
from tasks.mail.changes import SheetValues, changes, indicator_figures
from tasks.mail.feedback import (
    ReceivedMessage,
    ReceivedWorkbook,
    compose_feedback,
    finding_line,
)
from tasks.mail.notices import DueSchool, compose_reminder
from tasks.mail.wording import Body
from tasks.storage.raw import store_raw
from tasks.storage.submissions import store_submissions
from tasks.template.build import SubmissionValues, template_grid
from tasks.template.writer import write_workbook

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
H1 = "2023-H1"
MAX_BYTES = 20 * 1024 * 1024
ARRIVED = dt.datetime(2023, 5, 2, 9, 30, tzinfo=HCM)
ERROR_FILL = "FFC7CE"


@pytest.fixture(scope="module")
def reference() -> Reference:
    return load_reference(get_settings().reference_dir)


def values(reference: Reference, code: str = "MN001",
           change: Callable[[SubmissionValues], None] | None = None) -> SubmissionValues:
    cycle = reference.calendar.get(H1)
    assert cycle is not None
    found = copy.deepcopy(school_values(reference.schools[code], cycle, 11))
    if change is not None:
        change(found)
    return found


def workbook(
    reference: Reference,
    code: str = "MN001",
    change: Callable[[SubmissionValues], None] | None = None,
    file_format: str = "xlsx",
) -> bytes:
    cycle = reference.calendar.get(H1)
    assert cycle is not None
    return write_workbook(template_grid(reference.schools[code], cycle, values(reference, code, change)),
                          file_format)


def row_of(found: SubmissionValues, sheet: str, key: str, code: str) -> dict:
    return next(row for row in found.rows[sheet] if row[key] == code)


def teachers_female_above_total(found: SubmissionValues) -> None:
    row = row_of(found, "reach", "group", "giao_vien")
    row["female"] = row["total"] + 4


def girls_above_children(found: SubmissionValues) -> None:
    row = row_of(found, "incidents", "category", "bao_luc")
    row.update(cases=2, children=2, children_female=7, reported=1, supported=1)


def read(content: bytes) -> tuple[object, list]:
    parsed = parse_workbook(content, max_bytes=MAX_BYTES)
    return parsed, validate_workbook(parsed, load_reference(get_settings().reference_dir))


# --------------------------------------------------------------------------------------------------
# The annotated copy


def test_xlsx_copy_marks_the_cell_and_keeps_everything_else(reference: Reference) -> None:
    original = workbook(reference, change=teachers_female_above_total)
    parsed, findings = read(original)
    assert [item.rule for item in findings if item.is_error] == ["female_gt_total"]

    copy_ = annotate_workbook(original, parsed, findings, file_name="Báo cáo MN001.xlsx")

    assert copy_ is not None and copy_.filename == "Báo cáo MN001_danh-dau.xlsx" and copy_.marked == 1
    before = openpyxl.load_workbook(io.BytesIO(original))
    after = openpyxl.load_workbook(io.BytesIO(copy_.content))
    cell = after["Truyền thông"]["C5"]
    assert cell.fill.fgColor.rgb.endswith(ERROR_FILL)
    assert cell.comment is not None and "số nữ" in cell.comment.text and cell.comment.author
    # The school's sheets, then the list of findings readable without hovering (on a phone).
    assert after.sheetnames == [*before.sheetnames, "Danh sách lỗi"]
    assert after["_meta"].sheet_state == "hidden"
    listed = [[cell.value for cell in row] for row in after["Danh sách lỗi"].iter_rows()]
    assert listed[0] == ["Trang", "Ô", "Dòng", "Mức độ", "Nội dung"]
    assert listed[1][:4] == ["Truyền thông", "C5", "Giáo viên", "Lỗi"] and "số nữ" in listed[1][4]
    assert after["Danh sách lỗi"]["B2"].hyperlink.location == "'Truyền thông'!C5"
    assert after["Truyền thông"].protection.sheet  # the school's locked labels stay locked
    assert len(after["Truyền thông"].data_validations.dataValidation) == len(
        before["Truyền thông"].data_validations.dataValidation)
    assert after.active.title == "Truyền thông"  # opens where the first fix is
    for name in before.sheetnames:  # every value kept ("" and blank are the same cell to a clerk)
        assert [[c.value or None for c in row] for row in after[name].iter_rows()] == [
            [c.value or None for c in row] for row in before[name].iter_rows()]
    unmarked = after["Truyền thông"]["B5"]
    assert unmarked.comment is None and not unmarked.fill.fgColor.rgb.endswith(ERROR_FILL)
    # The copy reads back as the same report with the same findings: the school can fix and resend it.
    again, found_again = read(copy_.content)
    assert again.tables["reach"].equals(parsed.tables["reach"]) and found_again == findings


def test_copy_opens_on_the_first_sheet_with_an_error_in_tab_order(reference: Reference) -> None:
    def two_mistakes(found: SubmissionValues) -> None:
        teachers_female_above_total(found)
        found.rows["activities"][0]["format"] = "Qua loa"  # `Hoạt động` sorts before `Truyền thông`

    original = workbook(reference, change=two_mistakes)
    parsed, findings = read(original)
    assert {item.sheet for item in findings if item.is_error} == {"Truyền thông", "Hoạt động"}
    copy_ = annotate_workbook(original, parsed, findings, file_name="a.xlsx")
    assert copy_ is not None
    book = openpyxl.load_workbook(io.BytesIO(copy_.content))
    assert book.sheetnames.index("Truyền thông") < book.sheetnames.index("Hoạt động")
    assert book.active.title == "Truyền thông"
    assert [sheet.title for sheet in book.worksheets if sheet.sheet_view.tabSelected] == ["Truyền thông"]


@pytest.mark.parametrize("file_format", ["xls", "ods"])
def test_xls_and_ods_become_an_annotated_xlsx_of_their_values(reference: Reference, file_format: str) -> None:
    original = workbook(reference, change=teachers_female_above_total, file_format=file_format)
    parsed, findings = read(original)
    assert parsed.file_format == file_format

    copy_ = annotate_workbook(original, parsed, findings, file_name=f"bao cao.{file_format}")

    assert copy_ is not None and copy_.filename == "bao cao_danh-dau.xlsx"
    book = openpyxl.load_workbook(io.BytesIO(copy_.content))
    assert book["Truyền thông"]["C5"].fill.fgColor.rgb.endswith(ERROR_FILL)
    assert book["Truyền thông"]["A5"].value == "Giáo viên" and book["_meta"].sheet_state == "hidden"
    again, found_again = read(copy_.content)
    assert again.file_format == "xlsx" and again.tables["reach"].equals(parsed.tables["reach"])
    assert [item.rule for item in found_again] == [item.rule for item in findings]


def test_cells_are_found_where_this_file_has_them(reference: Reference) -> None:
    """A hand-edited copy with two columns swapped: the mark follows the column, not the template."""
    book = openpyxl.load_workbook(io.BytesIO(workbook(reference, change=teachers_female_above_total)))
    sheet = book["Truyền thông"]
    for row in sheet.iter_rows(min_row=3, max_row=9):
        row[1].value, row[2].value = row[2].value, row[1].value  # Tổng số <-> Trong đó nữ
    out = io.BytesIO()
    book.save(out)
    parsed, findings = read(out.getvalue())

    [mark] = locate(findings, parsed)
    assert (mark.sheet, mark.row, mark.column) == ("Truyền thông", 5, 2)
    copy_ = annotate_workbook(out.getvalue(), parsed, findings, file_name="x.xlsx")
    assert copy_ is not None
    marked = openpyxl.load_workbook(io.BytesIO(copy_.content))["Truyền thông"]
    assert marked["B5"].comment is not None and marked["C5"].comment is None


def test_xlsm_comes_back_as_xlsx_without_macros(reference: Reference) -> None:
    source = io.BytesIO(workbook(reference, change=teachers_female_above_total))
    out = io.BytesIO()
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as new:
        for item in old.infolist():
            data = old.read(item)
            if item.filename == "[Content_Types].xml":
                data = data.replace(b"openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
                                    b"ms-excel.sheet.macroEnabled.main+xml")
            new.writestr(item, data)
        new.writestr("xl/vbaProject.bin", b"\xd0\xcf\x11\xe0 not really a macro")
    parsed, findings = read(out.getvalue())
    assert parsed.file_format == "xlsm"

    copy_ = annotate_workbook(out.getvalue(), parsed, findings, file_name="bao cao.xlsm")

    assert copy_ is not None and copy_.filename == "bao cao_danh-dau.xlsx"
    with zipfile.ZipFile(io.BytesIO(copy_.content)) as package:
        assert not any("vba" in name.lower() for name in package.namelist())
        assert b"macroEnabled" not in package.read("[Content_Types].xml")


def test_nothing_to_mark_means_no_copy(reference: Reference) -> None:
    original = workbook(reference)
    parsed, _ = read(original)
    late = make_finding("late", value="06/05/2023 08:00", detail="05/05/2023")
    assert annotate_workbook(original, parsed, [late], file_name="a.xlsx") is None
    assert annotate_workbook(b"not a workbook", parse_workbook(b"not a workbook", max_bytes=MAX_BYTES),
                             [late], file_name="a.xlsx") is None


# --------------------------------------------------------------------------------------------------
# Figures, changes, layout


def test_indicator_figures_follow_the_catalog(reference: Reference) -> None:
    reach = {
        "quan_ly": {"total": 4, "reached": 4}, "giao_vien": {"total": 20, "reached": 10},
        "nhan_vien": {"total": 6, "reached": 0}, "hoc_sinh": {"total": 100, "reached": 40},
        "phu_huynh": {"total": 70, "reached": 30}, "cong_tac_vien": {"total": 10, "reached": 10},
    }
    ct1, ct2 = indicator_figures(reference, reach)
    assert (ct1.code, ct1.value, ct1.met) == ("CT1", 100 * 84 / 200, False)
    assert (ct2.code, ct2.value, ct2.met) == ("CT2", 100 * 24 / 40, True)
    assert indicator_figures(reference, {})[0].value is None


def test_changes_list_cells_rows_and_activities() -> None:
    day = dt.date(2023, 3, 8)
    activity = {"start_date": day, "activity_type": "thang_hd_bdg", "content": "Mít tinh 8/3", "staff": 30}
    before = SheetValues(
        general={"reporter": "Lê Thị Hà", "trained_staff": 2},
        reach={"giao_vien": {"group": "giao_vien", "total": 30, "female": 28}},
        checklist={"tong_dai_111": {"item": "tong_dai_111", "answer": False}},
        incidents={"bao_luc": {"category": "bao_luc", "cases": 0}},
        activities=[activity],
    )
    after = SheetValues(
        general={"reporter": "Lê Thị Hà", "trained_staff": 3},
        reach={"giao_vien": {"group": "giao_vien", "total": 32, "female": 28}},
        checklist={"tong_dai_111": {"item": "tong_dai_111", "answer": True}},
        incidents={"bao_luc": {"category": "bao_luc", "cases": None}},  # blank means 0 here
        activities=[activity, {**activity, "content": "Tọa đàm", "start_date": dt.date(2023, 3, 20)}],
    )
    assert changes(before, after) == [
        "Trang “Thông tin chung”, mục “Trong đó được tập huấn”: 2 → 3",
        "Trang “Truyền thông”, dòng “Giáo viên”, cột “Tổng số”: 30 → 32",
        "Trang “Hoạt động”: số hoạt động 1 → 2",
        "Trang “Hoạt động”, thêm hoạt động: 20/03/2023 - Tháng hành động vì bình đẳng giới - Tọa đàm",
        "Trang “Tự đánh giá”, dòng “Tổng đài 111”, cột “Kết quả”: Không → Có",
    ]
    assert changes(after, after) == []


def test_changes_never_show_incident_counts() -> None:
    before = SheetValues(incidents={"bao_luc": {"category": "bao_luc", "cases": 3, "children": 4}})
    after = SheetValues(incidents={"bao_luc": {"category": "bao_luc", "cases": 5, "children": 4}})
    [line] = changes(before, after)
    assert "Vụ việc" in line and "bảo mật" in line and not any(digit in line for digit in "345")
    assert changes(after, after) == []


def test_html_body_escapes_what_schools_typed() -> None:
    body = Body()
    body.para("Tệp <script>alert(1)</script> & co", tone="bad")
    body.items("Lỗi (1):", ["ô \"A1\" < 0"])
    assert "<script>" not in body.html() and "&lt;script&gt;" in body.html()
    assert "Tệp <script>alert(1)</script> & co" in body.text()


# --------------------------------------------------------------------------------------------------
# Composed replies, from stored submissions


def _store(engine: Engine, reference: Reference, content: bytes, sender: str, ref: str) -> ReceivedWorkbook:
    file = incoming_file(content, source="mailbox", original_name="bao cao.xlsx", received_at=ARRIVED,
                         source_ref=ref, sender=sender)
    records = store_raw(engine, [file])
    checked = check_files(records, reference, max_bytes=MAX_BYTES)
    [outcome] = store_submissions(engine, reference, records, checked)
    assert outcome.submission_id is not None
    # As a later run sees it: no in-memory reading, the reply is rebuilt from the database and the bytes.
    return ReceivedWorkbook("bao cao.xlsx", records[0].receipt_id, outcome.submission_id, content)


def test_confidential_values_reach_only_the_schools_own_reply(
    engine: Engine, database_url: str, reference: Reference
) -> None:
    init_database(database_url, reference)
    received = _store(engine, reference, workbook(reference, change=girls_above_children),
                      "mn001@truong.q8.test", "1:1:1")
    with engine.connect() as conn:
        stored = conn.execute(select(models.Finding.value, models.Finding.message)
                              .where(models.Finding.confidential)).all()
        message = ReceivedMessage("1:1", "mn001@truong.q8.test", "BC", "<m@x>", ARRIVED)
        mail = compose_feedback(conn, reference, message, [received], max_bytes=MAX_BYTES)
    assert stored and all(value is None and "(***)" in text for value, text in stored)
    assert all("7" not in text and "(2)" not in text for _, text in stored)
    assert mail is not None and mail.to == ("mn001@truong.q8.test",) and mail.in_reply_to == "<m@x>"
    # Keys rendered at the edge: the row by its label, both numbers of the comparison.
    assert "Trang \"Vụ việc\", dòng \u201cBạo lực\u201d: số nữ ở cột \"Trong đó nữ\" (7)" in mail.text
    assert "\"Số trẻ bị ảnh hưởng\" (2)" in mail.text
    [attached] = mail.attachments
    cell = openpyxl.load_workbook(io.BytesIO(attached.content))["Vụ việc"]["D4"]
    assert "(7)" in cell.comment.text


def flat(text: str) -> str:
    """Return a plain-text body as one line: assertions read sentences, not the phone-width wrapping."""
    return " ".join(text.split())


def _school_sent_incidents(found: SubmissionValues) -> None:
    # Primes no date, row or id of these files shows; the reporter's own details.
    row_of(found, "incidents", "category", "bao_luc").update(cases=4099, children=4111, children_female=4091,
                                                            reported=1, supported=1)
    found.general.update(reporter="Phạm Thị Bí Mật", phone="0909 765 431", email="bimat@truong.q8.test")


def _stranger_changes_everything(found: SubmissionValues) -> None:
    row_of(found, "incidents", "category", "bao_luc").update(cases=3, children=3, children_female=1,
                                                            reported=0, supported=0)
    row_of(found, "reach", "group", "giao_vien")["total"] += 3
    found.general.update(reporter="Người Lạ", phone="0123 456 789", email="ai.do@gmail.test")


SECRETS = ("4099", "4111", "4091", "Phạm Thị Bí Mật", "0909 765 431", "bimat@truong.q8.test")


def test_a_stranger_learns_nothing_stored_about_the_school(
    engine: Engine, database_url: str, reference: Reference
) -> None:
    init_database(database_url, reference)
    _store(engine, reference, workbook(reference, change=_school_sent_incidents), "mn001@truong.q8.test",
           "1:1:1")
    held = _store(engine, reference, workbook(reference, change=_stranger_changes_everything),
                  "ai.do@gmail.test", "1:2:1")

    def broken(found: SubmissionValues) -> None:
        _stranger_changes_everything(found)
        teachers_female_above_total(found)

    rejected = _store(engine, reference, workbook(reference, change=broken), "ai.do@gmail.test", "1:3:1")
    with engine.connect() as conn:
        asked = ReceivedMessage("1:2", "Ai Đó <ai.do@gmail.test>", "BC", None, ARRIVED)
        to_held = compose_feedback(conn, reference, asked, [held], max_bytes=MAX_BYTES)
        asked = ReceivedMessage("1:3", "ai.do@gmail.test", "BC", None, ARRIVED)
        to_rejected = compose_feedback(conn, reference, asked, [rejected], max_bytes=MAX_BYTES)
    assert to_held is not None and to_rejected is not None
    for mail in (to_held, to_rejected):
        shown = flat(mail.text) + mail.html + "".join(
            str(cell.value) for item in mail.attachments
            for sheet in openpyxl.load_workbook(io.BytesIO(item.content)).worksheets
            for row in sheet.iter_rows() for cell in row)
        assert not [secret for secret in SECRETS if secret in shown]
        assert "Thay đổi so với bản gửi trước" not in shown and "CT1:" not in shown
    # Held: the verdict, the sender's address and that the office will review it; nothing attached.
    held_text = flat(to_held.text)
    assert to_held.attachments == () and "ai.do@gmail.test" in held_text and "xem xét" in held_text
    assert "Lỗi cần sửa" not in held_text and "Lưu ý" not in held_text
    # Rejected: what to fix in the sender's own file, nothing more.
    assert "số nữ ở cột" in flat(to_rejected.text)


def test_the_school_sees_what_changed_against_its_own_previous_version(
    engine: Engine, database_url: str, reference: Reference
) -> None:
    init_database(database_url, reference)
    _store(engine, reference, workbook(reference, change=_school_sent_incidents), "mn001@truong.q8.test",
           "1:1:1")
    # A stranger's held file in between is not the school's: the school's next reply ignores it.
    _store(engine, reference, workbook(reference, change=_stranger_changes_everything), "ai.do@gmail.test",
           "1:2:1")

    def corrected(found: SubmissionValues) -> None:
        _school_sent_incidents(found)
        row_of(found, "incidents", "category", "bao_luc").update(cases=4133)
        row_of(found, "reach", "group", "quan_ly")["total"] += 1

    again = _store(engine, reference, workbook(reference, change=corrected), "mn001@truong.q8.test", "1:3:1")
    with engine.connect() as conn:
        mail = compose_feedback(conn, reference, ReceivedMessage("1:3", "mn001@truong.q8.test", "BC", None,
                                                                 ARRIVED), [again], max_bytes=MAX_BYTES)
    assert mail is not None
    text = flat(mail.text)
    assert "Thay đổi so với bản gửi trước" in text and "dòng “Cán bộ quản lý”, cột “Tổng số”" in text
    assert "Người Lạ" not in text and "dòng “Giáo viên”" not in text  # not compared with the stranger's
    assert "Trang “Vụ việc”: số liệu có thay đổi" in text
    assert "4133" not in text and "4099" not in text  # never an incident count in a change list
    assert "CT1:" in text, text


def test_reminder_carries_the_schools_own_prefilled_template(reference: Reference) -> None:
    school = reference.schools["MN001"]
    cycle = reference.calendar.get(H1)
    assert cycle is not None
    due = DueSchool(school.code, school.name, "received_invalid", school.emails)
    mail = compose_reminder("overdue", school, cycle, due, as_of=dt.datetime(2023, 5, 6, 9, tzinfo=HCM),
                            office_address="Phòng GD&ĐT Quận 8 <gec@q8.test>")
    assert mail.kind == "overdue" and mail.dedupe_key == "overdue:2023-H1:MN001" and mail.to == school.emails
    assert "05/05/2023" in mail.text and "còn lỗi" in mail.text and "gec@q8.test" in mail.text
    [template] = mail.attachments
    parsed = parse_workbook(template.content, max_bytes=MAX_BYTES)
    # The template names the period in words ("6 tháng đầu năm 2023"); the parser reads it as the cycle.
    assert parsed.general_value("school_code") == "MN001"
    assert resolve_cycle(parsed.general_value("cycle")) == H1
    assert parsed.meta["template_version"].value == TEMPLATE_VERSION


def test_each_finding_names_its_cell_and_the_column_when_the_message_does_not(reference: Reference) -> None:
    def mistakes(found: SubmissionValues) -> None:
        teachers_female_above_total(found)
        found.general["trained_staff"] = 40  # more trained than child-protection staff

    parsed, findings = read(workbook(reference, change=mistakes))
    lines = {item.rule: finding_line(item, parsed) for item in findings}
    assert lines["female_gt_total"].endswith("Vui lòng kiểm tra lại. (ô C5)")
    assert lines["trained_gt_staff"].endswith("(ô B10, cột “Trong đó được tập huấn”)")
    late = make_finding("late", value="06/05/2023 08:00", detail="05/05/2023")
    assert finding_line(late, parsed) == late.message
