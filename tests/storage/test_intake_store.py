"""Folder intake, the raw store, storing submissions and their states (SPEC §4), on SQLite and PostgreSQL.

Workbooks are real: the office template filled with plausible values (tasks.template.build + demo values),
bent where a test needs a mistake.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select

from db import models
from db.setup import init_database
from demo.data import school_values
from schemas.reference import Cycle, CycleCalendar, Reference, School
from tasks.check.checking import check_files
from tasks.intake import folder as intake
from tasks.intake.folder import IncomingFile, incoming_file
from tasks.operator.revalidate import revalidate
from tasks.operator.review import ReviewRefused, review_submission
from tasks.operator.status import cycle_status
from tasks.storage import submissions as store
from tasks.storage.raw import store_raw
from tasks.template.build import SubmissionValues, build_template
from tests.support.stages import ingest

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
MAX_BYTES = 20 * 1024 * 1024
H1 = "2023-H1"
BEFORE = dt.datetime(2023, 5, 2, 9, 30, tzinfo=HCM)
DEADLINE_DAY = dt.datetime(2023, 5, 5, 23, 59, tzinfo=HCM)  # still on time: the deadline is inclusive
AFTER = dt.datetime(2023, 5, 6, 8, 15, tzinfo=HCM)


def _school(code: str, level: str = "mam_non") -> School:
    return School(code, f"Trường {code}", level, "cong_lap", "Phường 4", (f"{code.lower()}@truong.q8.test",),
                  True, None, None, frozenset())


@pytest.fixture(scope="module")
def reference() -> Reference:
    schools = (_school("MN001"), _school("MN002"), _school("TH001", "tieu_hoc"))
    calendar = CycleCalendar([Cycle(H1, dt.date(2023, 1, 1), dt.date(2023, 4, 30), dt.date(2023, 5, 5))])
    return Reference({school.code: school for school in schools}, calendar, ())


@pytest.fixture
def db(engine: Engine, database_url: str, reference: Reference) -> Engine:
    init_database(database_url, reference)
    return engine


def _values(reference: Reference, code: str, cycle_id: str = H1, seed: int = 1) -> SubmissionValues:
    cycle = reference.calendar.get(cycle_id)
    assert cycle is not None
    return school_values(reference.schools[code], cycle, seed)


def _workbook(reference: Reference, code: str, cycle_id: str = H1, values: SubmissionValues | None = None,
              **general: Any) -> bytes:
    cycle = reference.calendar.get(cycle_id)
    assert cycle is not None
    values = copy.deepcopy(values or _values(reference, code, cycle_id))
    values.general.update(general)
    return build_template(reference.schools[code], cycle, values)


def _set_reach(values: SubmissionValues, group: str, **changes: int) -> SubmissionValues:
    row = next(row for row in values.rows["reach"] if row["group"] == group)
    row.update(changes)
    return values


def _folder_file(content: bytes, name: str, received_at: dt.datetime) -> IncomingFile:
    return incoming_file(content, source="folder", original_name=name, received_at=received_at,
                         source_ref=f"/inbox/{name}|{received_at.isoformat()}")


def _ingest(engine: Engine, reference: Reference, *files: IncomingFile) -> list[store.Outcome]:
    return ingest(engine, reference, list(files), max_bytes=MAX_BYTES)


def _submissions(engine: Engine) -> dict[int, Any]:
    with engine.connect() as conn:
        return {row.id: row for row in conn.execute(select(models.Submission.__table__))}


def _count(engine: Engine, model: type[models.Base]) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model.__table__)).scalar_one()


def _findings(engine: Engine, submission_id: int) -> list[Any]:
    table = models.Finding.__table__
    with engine.connect() as conn:
        return list(conn.execute(select(table).where(table.c.submission_id == submission_id)
                                 .order_by(table.c.id)))


def _school_status(engine: Engine, reference: Reference, code: str, **kwargs: Any) -> dict[str, Any]:
    status = cycle_status(engine, reference, H1, **kwargs)
    return next(row for row in status["schools"] if row["code"] == code)


# --------------------------------------------------------------------------------------------------
# Folder intake: plain file-system functions


def test_inbox_lists_files_oldest_first_with_aware_received_times(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name, moment in (("b.xlsx", AFTER), ("a.xlsx", BEFORE), ("~$a.xlsx", BEFORE), (".hidden", BEFORE),
                         ("tải về.xlsx.crdownload", BEFORE)):
        path = inbox / name
        path.write_bytes(b"PK\x03\x04" + name.encode())
        os.utime(path, (moment.timestamp(), moment.timestamp()))
    (inbox / "sub").mkdir()
    assert [path.name for path in intake.list_inbox(inbox)] == ["a.xlsx", "b.xlsx"]
    read = intake.read_inbox_file(inbox / "a.xlsx")
    assert read.received_at == BEFORE and read.received_at.utcoffset() == dt.timedelta(hours=7)
    assert read.source == "folder" and read.sender is None and read.path == inbox / "a.xlsx"
    # The same file left in place is the same arrival; touched again it is a new one.
    assert intake.read_inbox_file(inbox / "a.xlsx").source_ref == read.source_ref
    os.utime(inbox / "a.xlsx", (AFTER.timestamp(), AFTER.timestamp()))
    assert intake.read_inbox_file(inbox / "a.xlsx").source_ref != read.source_ref
    with pytest.raises(FileNotFoundError, match="GEC_INBOX_DIR"):
        intake.list_inbox(tmp_path / "missing")


def test_inbox_batches_keep_order_and_cap_files_and_bytes(tmp_path: Path) -> None:
    sizes = {"a": 10, "b": 10, "c": 10, "d": 45, "e": 200, "f": 5, "g": 5}
    paths = []
    for name, size in sizes.items():
        path = tmp_path / name
        path.write_bytes(b"x" * size)
        paths.append(path)
    batches = intake.batch_paths(paths, max_files=2, max_bytes=50)
    assert [[path.name for path in batch] for batch in batches] == [
        ["a", "b"], ["c"], ["d"], ["e"], ["f", "g"],  # c+d would pass 50 bytes; e is alone, too big
    ]
    assert [path for batch in batches for path in batch] == paths  # nothing dropped, order kept
    (tmp_path / "b").unlink()  # vanished since listing: still batched, read_inbox_files skips it
    assert sum(map(len, intake.batch_paths(paths, max_files=200, max_bytes=1000))) == len(paths)
    with pytest.raises(ValueError, match="at least one"):
        intake.batch_paths(paths, max_files=0, max_bytes=50)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Báo cáo BĐG-TE 6T đầu năm 2023 - MN Thỏ Trắng.xlsx",
         "Báo cáo BĐG-TE 6T đầu năm 2023 - MN Thỏ Trắng.xlsx"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\cô Lan\\Desktop\\bao cao.xls", "bao cao.xls"),
        ("bao\x00cao\r\n?.xlsx", "bao cao _.xlsx"),
        ("Ba\u0301o ca\u0301o.ods", "Báo cáo.ods"),  # NFD from macOS becomes NFC
        ("...", "file"),
        ("", "file"),
    ],
)
def test_safe_name_keeps_vietnamese_and_drops_paths(name: str, expected: str) -> None:
    assert intake.safe_name(name) == expected


def test_safe_name_is_bounded_in_bytes_and_keeps_the_extension() -> None:
    name = intake.safe_name("Trường Mầm non " * 40 + ".xlsx")
    assert name.endswith(".xlsx") and len(name.encode()) <= intake.MAX_NAME_BYTES


def test_archive_moves_after_commit_and_never_overwrites(tmp_path: Path) -> None:
    inbox, archive = tmp_path / "inbox", tmp_path / "archive"
    inbox.mkdir()
    first, second = inbox / "bao cao.xlsx", inbox / "copy.xlsx"
    first.write_bytes(b"one")
    second.write_bytes(b"two")
    target = intake.archive_path(archive, H1, "accepted", 7, "bao cao.xlsx")
    assert target == archive / H1 / "accepted" / "7-bao cao.xlsx"
    assert intake.archive_file(first, target) == target
    moved = intake.archive_file(second, target)  # same target: kept beside, not overwritten
    assert moved == target.with_name("7-bao cao (2).xlsx")
    assert target.read_bytes() == b"one" and moved is not None and moved.read_bytes() == b"two"
    assert intake.archive_file(inbox / "gone.xlsx", target) is None  # a failed move leaves it be


# --------------------------------------------------------------------------------------------------
# Raw store


def test_same_bytes_twice_are_stored_once(db: Engine, reference: Reference) -> None:
    content = _workbook(reference, "MN001")
    first = _folder_file(content, "bao cao.xlsx", BEFORE)
    copy_in_batch = _folder_file(content, "bao cao (1).xlsx", BEFORE + dt.timedelta(minutes=5))
    outcomes = _ingest(db, reference, first, copy_in_batch)
    assert [item.created for item in outcomes] == [True, False]
    assert outcomes[0].submission_id == outcomes[1].submission_id
    assert (outcomes[0].new_file, outcomes[1].new_file) == (True, False)

    again_later = _folder_file(content, "bao cao.xlsx", AFTER)  # sent again after the deadline
    later = _ingest(db, reference, again_later)
    assert later[0].submission_id == outcomes[0].submission_id and not later[0].created
    assert _count(db, models.ReceivedFile) == 1
    assert _count(db, models.FileReceipt) == 3
    assert _count(db, models.Submission) == 1

    # The same arrival seen again (a re-run after a crash) records nothing new.
    rerun = _ingest(db, reference, first, again_later)
    assert [item.new_receipt for item in rerun] == [False, False]
    assert _count(db, models.FileReceipt) == 3
    assert _count(db, models.Submission) == 1
    submission = _submissions(db)[outcomes[0].submission_id]
    assert submission.received_at == BEFORE  # the first arrival is the one read
    assert submission.state == "accepted" and submission.is_on_time


def test_raw_bytes_are_committed_before_parsing(db: Engine, reference: Reference) -> None:
    content = b"\x00\x01 not a workbook at all"
    records = store_raw(db, [_folder_file(content, "hỏng.xlsx", BEFORE)])
    # Nothing parsed yet, yet the bytes and the arrival are already in the database.
    with db.connect() as conn:
        stored = conn.execute(select(models.ReceivedFile.__table__)).one()
    assert stored.content == content and stored.safe_name == "hỏng.xlsx"
    assert records[0].to_read and records[0].submission_id is None
    outcome = store.store_submissions(db, reference, records,
                                      check_files(records, reference, max_bytes=MAX_BYTES))[0]
    submission = _submissions(db)[outcome.submission_id]
    # An unreadable file counts under the cycle open when it arrived.
    assert (submission.state, submission.school_code, submission.cycle_id, submission.cycle_source) == (
        "rejected", None, H1, "arrival")
    assert [finding.rule for finding in _findings(db, submission.id)] == ["unreadable_file"]


# --------------------------------------------------------------------------------------------------
# States


def test_resubmission_supersedes_older_accepted_by_received_time(db: Engine, reference: Reference) -> None:
    older = _folder_file(_workbook(reference, "MN001"), "v1.xlsx", BEFORE)
    newer = _folder_file(_workbook(reference, "MN001", reporter="Lê Thị Hoa"), "v2.xlsx",
                         BEFORE + dt.timedelta(days=1))
    # Collected newest first: received time decides which is current, not collection order.
    (second,) = _ingest(db, reference, newer)
    (first,) = _ingest(db, reference, older)
    rows = _submissions(db)
    assert rows[second.submission_id].state == "accepted"
    assert rows[first.submission_id].state == "superseded"
    assert rows[first.submission_id].superseded_by_id == second.submission_id
    status = _school_status(db, reference, "MN001")
    assert (status["state"], status["on_time"], status["submission_id"]) == ("on_time", True,
                                                                              second.submission_id)


def test_rejected_resubmission_does_not_supersede(db: Engine, reference: Reference) -> None:
    good = _folder_file(_workbook(reference, "MN001"), "v1.xlsx", BEFORE)
    broken_values = _set_reach(_values(reference, "MN001"), "giao_vien", total=5, female=9)
    broken = _folder_file(_workbook(reference, "MN001", values=broken_values), "v2.xlsx",
                          BEFORE + dt.timedelta(hours=2))
    first, second = _ingest(db, reference, good, broken)
    rows = _submissions(db)
    assert rows[first.submission_id].state == "accepted"
    assert rows[second.submission_id].state == "rejected"
    assert rows[first.submission_id].superseded_by_id is None
    assert "female_gt_total" in {finding.rule for finding in _findings(db, second.submission_id)}
    assert second.message is not None and "Trong đó nữ" in second.message
    assert _school_status(db, reference, "MN001")["submission_id"] == first.submission_id


def test_on_time_school_stays_on_time_after_late_correction(db: Engine, reference: Reference) -> None:
    on_time = _folder_file(_workbook(reference, "MN002"), "v1.xlsx", DEADLINE_DAY)
    late = _folder_file(_workbook(reference, "MN002", reporter="Lê Thị Hoa"), "v2.xlsx", AFTER)
    first, second = _ingest(db, reference, on_time, late)
    rows = _submissions(db)
    assert rows[first.submission_id].is_on_time and not rows[second.submission_id].is_on_time
    assert (rows[first.submission_id].state, rows[second.submission_id].state) == ("superseded", "accepted")
    status = _school_status(db, reference, "MN002")
    assert (status["state"], status["on_time"], status["submission_id"]) == ("on_time", True,
                                                                              second.submission_id)
    assert status["received_at"] == AFTER.isoformat()


def test_late_file_is_accepted_with_a_late_warning(db: Engine, reference: Reference) -> None:
    (outcome,) = _ingest(db, reference, _folder_file(_workbook(reference, "TH001"), "tre.xlsx", AFTER))
    (late,) = [finding for finding in _findings(db, outcome.submission_id) if finding.rule == "late"]
    assert (late.severity, late.value) == ("warning", "06/05/2023 08:15")
    assert "06/05/2023 08:15" in late.message and "05/05/2023" in late.message
    assert outcome.state == "accepted"
    status = _school_status(db, reference, "TH001")
    assert (status["state"], status["on_time"]) == ("late", False)


def test_unregistered_sender_is_held_until_review_accepts(db: Engine, reference: Reference) -> None:
    content = _workbook(reference, "MN001")
    mail = incoming_file(content, source="mailbox", original_name="bao cao.xlsx", received_at=BEFORE,
                         source_ref="<m1@zalo.test>#1", sender="Cô Lan <lan.nguyen@gmail.com>")
    (outcome,) = _ingest(db, reference, mail)
    assert outcome.state == "held"
    assert outcome.message is not None and "lan.nguyen@gmail.com" in outcome.message
    (held,) = [finding for finding in _findings(db, outcome.submission_id)
               if finding.rule == "unregistered_sender"]
    assert held.severity == "warning"
    assert _school_status(db, reference, "MN001")["state"] == "held"

    result = review_submission(db, outcome.submission_id, "accept", note="Cô Lan gọi điện xác nhận",
                               actor="chuyenvien")
    assert (result["previous_state"], result["state"]) == ("held", "accepted")
    status = _school_status(db, reference, "MN001")
    assert (status["state"], status["on_time"], status["submission_id"]) == ("on_time", True,
                                                                              outcome.submission_id)
    with pytest.raises(ReviewRefused, match="not held"):
        review_submission(db, outcome.submission_id, "reject")
    with pytest.raises(LookupError):
        review_submission(db, 999_999, "accept")

    # The review survives re-validation while the file still has no errors; every decision is kept.
    revalidate(db, reference, H1)
    assert _submissions(db)[outcome.submission_id].state == "accepted"
    table = models.Decision.__table__
    with db.connect() as conn:
        reasons = list(conn.execute(select(table.c.reason, table.c.state).where(
            table.c.submission_id == outcome.submission_id).order_by(table.c.id)))
    assert reasons == [("validation", "held"), ("review", "accepted"), ("revalidate", "accepted")]


def test_registered_sender_and_folder_files_are_never_held(db: Engine, reference: Reference) -> None:
    registered = incoming_file(_workbook(reference, "MN001"), source="mailbox", original_name="a.xlsx",
                               received_at=BEFORE, source_ref="<m2@truong>#1",
                               sender="Trường MN001 <MN001@Truong.Q8.test>")
    folder = _folder_file(_workbook(reference, "TH001"), "b.xlsx", BEFORE)
    assert [item.state for item in _ingest(db, reference, registered, folder)] == ["accepted", "accepted"]


def test_held_submission_rejected_by_review(db: Engine, reference: Reference) -> None:
    mail = incoming_file(_workbook(reference, "TH001"), source="mailbox", original_name="x.xlsx",
                         received_at=BEFORE, source_ref="<m3@x>#1", sender="stranger@example.com")
    (outcome,) = _ingest(db, reference, mail)
    review_submission(db, outcome.submission_id, "reject", note="không rõ người gửi")
    status = _school_status(db, reference, "TH001")
    assert status["state"] == "received_invalid"


def test_total_jump_warns_against_the_previous_cycle(db: Engine, reference: Reference) -> None:
    previous_values = _values(reference, "TH001", "2022-H2")
    _set_reach(previous_values, "giao_vien", total=40, female=30, reached=30, reached_female=20)
    _set_reach(previous_values, "quan_ly", total=3, female=2, reached=3, reached_female=2)
    previous = _folder_file(_workbook(reference, "TH001", "2022-H2", previous_values), "2022.xlsx",
                            dt.datetime(2022, 11, 1, 9, 0, tzinfo=HCM))
    now_values = _values(reference, "TH001")
    _set_reach(now_values, "giao_vien", total=60, female=45, reached=40, reached_female=30)  # +50%
    _set_reach(now_values, "quan_ly", total=4, female=2, reached=3, reached_female=2)  # +33%, but tiny
    current = _folder_file(_workbook(reference, "TH001", values=now_values), "2023.xlsx", BEFORE)
    _ingest(db, reference, previous)
    (outcome,) = _ingest(db, reference, current)
    jumps = [finding for finding in _findings(db, outcome.submission_id) if finding.rule == "total_jump"]
    assert [(jump.sheet, jump.column, jump.value) for jump in jumps] == [("Truyền thông", "Tổng số", "60")]
    assert "kỳ trước 40, kỳ này 60" in jumps[0].message
    assert outcome.state == "accepted"  # a warning only


def test_confidential_findings_are_stored_without_their_value(db: Engine, reference: Reference) -> None:
    values = _values(reference, "MN001")
    row = next(row for row in values.rows["incidents"] if row["category"] == "bao_luc")
    row.update(cases=2, children=3, children_female=7, reported=1, supported=1)
    (outcome,) = _ingest(db, reference, _folder_file(_workbook(reference, "MN001", values=values), "vv.xlsx",
                                                     BEFORE))
    (found,) = [finding for finding in _findings(db, outcome.submission_id) if finding.confidential]
    assert found.rule == "female_gt_total" and found.sheet == "Vụ việc"
    assert found.value is None and "7" not in found.message and "***" in found.message
    assert outcome.message is not None and "7" not in outcome.message
    # The counts themselves are kept, in their own table.
    table = models.IncidentCount.__table__
    with db.connect() as conn:
        stored = conn.execute(select(table.c.children_female).where(
            table.c.submission_id == outcome.submission_id, table.c.category == "bao_luc")).scalar_one()
    assert stored == 7


def test_sheet_rows_are_stored_for_readable_workbooks(db: Engine, reference: Reference) -> None:
    values = _values(reference, "MN001")
    (outcome,) = _ingest(db, reference, _folder_file(_workbook(reference, "MN001", values=values), "a.xlsx",
                                                     BEFORE))
    with db.connect() as conn:
        reach = {row.group: row.total for row in conn.execute(select(models.ReachRow.__table__))}
        general = conn.execute(select(models.GeneralInfo.__table__)).one()
    activities, answers = _count(db, models.Activity), _count(db, models.ChecklistAnswer)
    incidents = _count(db, models.IncidentCount)
    assert reach == {row["group"]: row["total"] for row in values.rows["reach"]}
    assert general.submission_id == outcome.submission_id and general.school_code == "MN001"
    assert activities == len(values.rows["activities"]) and answers == 9 and incidents == 8


def test_one_bad_submission_never_blocks_the_others(
    db: Engine, reference: Reference, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [_folder_file(_workbook(reference, code), f"{code}.xlsx", BEFORE) for code in ("MN001", "MN002",
                                                                                          "TH001")]
    real = store.sheet_rows

    def broken_for_mn002(submission_id: int, parsed: Any) -> dict[str, list[dict[str, Any]]]:
        rows = real(submission_id, parsed)
        if parsed.general_value("school_code") == "MN002":
            rows["reach"][0]["group"] = None  # NOT NULL: the database refuses this submission
        return rows

    monkeypatch.setattr(store, "sheet_rows", broken_for_mn002)
    outcomes = _ingest(db, reference, *files)
    # Recorded as rejected with `storage_error` (issue 11 #3): it leaves the inbox, nothing half-written.
    assert [item.state for item in outcomes] == ["accepted", "rejected", "accepted"]
    assert outcomes[1].submission_id is not None and outcomes[1].created
    assert _count(db, models.Submission) == 3 and _count(db, models.Decision) == 3
    with db.connect() as conn:  # no sheet row of the failed submission
        stored_for = set(conn.execute(select(models.ReachRow.submission_id)).scalars())
    assert stored_for == {outcomes[0].submission_id, outcomes[2].submission_id}
    assert _count(db, models.ReceivedFile) == 3  # its raw bytes are kept all the same
    monkeypatch.setattr(store, "sheet_rows", real)
    again = _ingest(db, reference, files[1])  # the next run does not trip on it, nor store it twice
    assert not again[0].created and again[0].submission_id == outcomes[1].submission_id


def test_status_as_of_a_past_moment(db: Engine, reference: Reference) -> None:
    first = _folder_file(_workbook(reference, "MN001"), "v1.xlsx", BEFORE)
    second = _folder_file(_workbook(reference, "MN001", reporter="Lê Thị Hoa"), "v2.xlsx", AFTER)
    one, two = _ingest(db, reference, first, second)
    now = cycle_status(db, reference, H1)
    assert {row["id"]: row["state"] for row in now["submissions"]} == {one.submission_id: "superseded",
                                                                       two.submission_id: "accepted"}
    then = cycle_status(db, reference, H1, as_of=BEFORE + dt.timedelta(hours=1))
    assert [row["id"] for row in then["submissions"]] == [one.submission_id]
    assert then["submissions"][0]["state"] == "accepted"
    school = next(row for row in then["schools"] if row["code"] == "MN001")
    assert (school["state"], school["submission_id"]) == ("on_time", one.submission_id)
    assert then["totals"] == {"on_time": 1, "late": 0, "received_invalid": 0, "held": 0, "missing": 2,
                              "exempt": 0}
    assert set(now) == {"cycle", "schools", "submissions", "totals"}
    assert set(now["submissions"][0]) == {"id", "school_code", "file", "sha256", "source", "sender",
                                          "received_at", "state", "findings"}
