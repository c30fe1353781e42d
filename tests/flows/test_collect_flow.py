"""The collect flow under Prefect (SPEC §4, §6): drop folder in, stored and archived, re-runs idempotent."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from config.settings import get_settings
from db import models
from db.engine import make_engine
from demo.data import TRUTH_FILE, generate_demo_data, school_values
from flows.collect import check_source, collect_submissions
from flows.review import revalidate_submissions, review_submission
from schemas.reference import Reference, load_reference
from tasks.intake.folder import incoming_file
from tasks.operator.status import cycle_status
from tasks.template.build import build_template
from tests.support.stages import ingest, task_runs

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
H1 = "2023-H1"
ARCHIVED = re.compile(r"^(?P<id>\d+)-(?P<name>.+)$")


@pytest.fixture
def folders(configured_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Point GEC_INBOX_DIR and GEC_ARCHIVE_DIR at fresh folders for one test."""
    paths = {"inbox": tmp_path / "inbox", "archive": tmp_path / "archive"}
    paths["inbox"].mkdir()
    monkeypatch.setenv("GEC_INBOX_DIR", str(paths["inbox"]))
    monkeypatch.setenv("GEC_ARCHIVE_DIR", str(paths["archive"]))
    get_settings.cache_clear()
    return paths


@pytest.fixture(scope="module")
def reference() -> Reference:
    return load_reference(get_settings().reference_dir)


def _drop(inbox: Path, name: str, content: bytes, received_at: dt.datetime) -> Path:
    path = inbox / name
    path.write_bytes(content)
    os.utime(path, (received_at.timestamp(), received_at.timestamp()))
    return path


def _workbook(reference: Reference, code: str, broken: bool = False, **general: Any) -> bytes:
    cycle = reference.calendar.get(H1)
    assert cycle is not None
    values = school_values(reference.schools[code], cycle, 5)
    values.general.update(general)
    if broken:
        row = next(row for row in values.rows["reach"] if row["group"] == "giao_vien")
        row.update(total=5, female=9)
    return build_template(reference.schools[code], cycle, values)


def _snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = make_engine(url)
    tables = {
        "received_files": ("id", "sha256"),
        "file_receipts": ("id", "received_file_id", "source_ref"),
        "submissions": ("id", "received_file_id", "state", "decision", "superseded_by_id", "is_on_time"),
        "decisions": ("id", "submission_id", "state", "reason"),
        "findings": ("id", "submission_id", "rule"),
        "reach_rows": ("id", "submission_id", "group"),
    }
    metadata = models.Base.metadata
    with engine.connect() as conn:
        return {
            name: sorted(tuple(row) for row in conn.execute(
                select(*(metadata.tables[name].c[column] for column in columns))))
            for name, columns in tables.items()
        }


def _archived(archive: Path) -> dict[str, tuple[str, str, int]]:
    """Return original file name -> (cycle, state folder, submission id) of every archived file."""
    found = {}
    for path in archive.rglob("*"):
        if path.is_file():
            match = ARCHIVED.match(path.name)
            assert match, f"unexpected archive name {path}"
            cycle, state = path.relative_to(archive).parts[:2]
            found[match["name"]] = (cycle, state, int(match["id"]))
    return found


def test_unknown_source_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="folder, mailbox or all"):
        check_source("zalo")
    for source in ("folder", "mailbox", "all"):
        check_source(source)


def test_collect_twice_stores_nothing_new_and_archives_by_state(
    prefect_harness: str, folders: dict[str, Path], configured_database: str, reference: Reference
) -> None:
    inbox, archive = folders["inbox"], folders["archive"]
    opens = dt.datetime(2023, 4, 28, 8, 0, tzinfo=HCM)
    same = _workbook(reference, "MN003")
    dropped = {
        "MN001 lần 1.xlsx": (_workbook(reference, "MN001"), opens),
        "MN001 lần 2 (sửa).xlsx": (_workbook(reference, "MN001", reporter="Lê Thị Hoa"),
                                   opens + dt.timedelta(days=2)),
        "MN002 sai.xlsx": (_workbook(reference, "MN002", broken=True), opens + dt.timedelta(hours=3)),
        "MN003.xlsx": (same, opens + dt.timedelta(hours=4)),
        "MN003 (1).xlsx": (same, opens + dt.timedelta(hours=5)),  # the same file saved twice
        "ghi chú.txt": (b"Kinh gui Phong, truong em gui bao cao a", opens + dt.timedelta(hours=6)),
        "MN004 trễ.xlsx": (_workbook(reference, "MN004"), dt.datetime(2023, 5, 7, 10, 0, tzinfo=HCM)),
    }
    for name, (content, received_at) in dropped.items():
        _drop(inbox, name, content, received_at)

    first = collect_submissions(batch_size=2)
    assert (first.files_seen, first.new_files, first.duplicates, first.submissions) == (7, 6, 1, 6)
    assert first.archived == 7 and first.left_in_inbox == []
    assert first.states == {"accepted": 3, "rejected": 2, "superseded": 1}  # as the run left them
    assert {(problem.file, problem.state) for problem in first.problems} == {
        ("MN002 sai.xlsx", "rejected"), ("ghi chú.txt", "rejected")}
    assert not list(inbox.iterdir())

    status = cycle_status(make_engine(configured_database), reference, H1)
    states = {row["file"]: row["state"] for row in status["submissions"]}
    assert states == {
        "MN001 lần 1.xlsx": "superseded",
        "MN001 lần 2 (sửa).xlsx": "accepted",
        "MN002 sai.xlsx": "rejected",
        "MN003.xlsx": "accepted",
        "ghi chú.txt": "rejected",
        "MN004 trễ.xlsx": "accepted",
    }
    archived = _archived(archive)
    assert set(archived) == set(dropped)
    by_file = {row["file"]: row for row in status["submissions"]}
    for name, (cycle, state, submission_id) in archived.items():
        stored = by_file["MN003.xlsx" if name == "MN003 (1).xlsx" else name]
        assert (cycle, submission_id) == (H1, stored["id"])
        # Filed under the state it had when its batch was committed; a later batch may supersede it.
        assert state == stored["state"] or (stored["state"], state) == ("superseded", "accepted")
    schools = {row["code"]: row for row in status["schools"]}
    assert (schools["MN004"]["state"], schools["MN002"]["state"]) == ("late", "received_invalid")
    before = _snapshot(configured_database)

    second = collect_submissions(batch_size=2)
    assert (second.files_seen, second.submissions) == (0, 0)
    assert _snapshot(configured_database) == before

    # Files put back as they were (a crash after the commit, before the move): recognised, archived only.
    for path in list(archive.rglob("*")):
        if path.is_file():
            os.replace(path, inbox / ARCHIVED.match(path.name)["name"])  # type: ignore[index]
    third = collect_submissions(batch_size=3)
    assert (third.files_seen, third.new_files, third.already_recorded, third.submissions) == (7, 0, 7, 0)
    assert third.archived == 7 and not list(inbox.iterdir())
    assert _snapshot(configured_database) == before


def test_collect_demo_data_agrees_with_truth(
    prefect_harness: str, folders: dict[str, Path], configured_database: str, reference: Reference,
    tmp_path: Path,
) -> None:
    inbox = folders["inbox"]
    truth_path = generate_demo_data(reference, H1, inbox, seed=2023)
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    shutil.move(truth_path, tmp_path / TRUTH_FILE)  # the office's inbox holds only what schools sent

    summary = collect_submissions()
    assert summary.files_seen == len(truth["files"]) == summary.submissions
    assert not list(inbox.iterdir())

    status = cycle_status(make_engine(configured_database), reference, H1)
    files = {row["file"]: row for row in status["submissions"]}
    assert {item["file"]: files[item["file"]]["state"] for item in truth["files"]} == {
        item["file"]: item["expect_state"] for item in truth["files"]
    }
    for item in truth["files"]:
        assert files[item["file"]]["school_code"] == item["school_code"]
    schools = {row["code"]: (row["state"], row["on_time"]) for row in status["schools"]}
    expected = {item["code"]: (item["expect_state"], item["expect_on_time"]) for item in truth["schools"]}
    assert schools == expected
    assert sum(status["totals"].values()) == len(truth["schools"])


def test_worker_processes_check_a_batch_exactly_as_one_process(reference: Reference) -> None:
    from tasks.check import checking
    from tasks.storage.raw import RawRecord

    opens = dt.datetime(2023, 4, 28, 8, 0, tzinfo=HCM)
    codes = sorted(reference.schools)
    records = [
        RawRecord(incoming_file(_workbook(reference, codes[number % len(codes)], broken=number % 7 == 3,
                                          reporter=f"Người báo cáo {number}"),
                                source="folder", original_name=f"{number}.xlsx",
                                received_at=opens + dt.timedelta(hours=number)),
                  received_file_id=number, receipt_id=number, new_file=True, new_receipt=True,
                  submission_id=None, to_read=number % 11 != 5)
        for number in range(checking.PROCESS_MIN_FILES + 5)
    ]
    alone = checking.check_files(records, reference, max_bytes=10 * 1024 * 1024)
    pool = checking.process_pool()
    spread = checking.check_files(records, reference, max_bytes=10 * 1024 * 1024, pool=pool)

    assert len({pool.submit(os.getpid).result() for _ in range(20)} - {os.getpid()}) >= 1
    assert [item.record.receipt_id for item in spread] == [item.record.receipt_id for item in alone]
    assert any(item.findings for item in alone) and any(not item.findings for item in alone)
    for one, other in zip(alone, spread, strict=True):
        assert (other.findings, other.school_code, other.cycle_id, other.cycle_source) == (
            one.findings, one.school_code, one.cycle_id, one.cycle_source)
        assert other.parsed.general == one.parsed.general
        assert other.parsed.tables.keys() == one.parsed.tables.keys()
        for key, frame in one.parsed.tables.items():
            assert other.parsed.tables[key].equals(frame), key


def test_large_drop_folder_is_checked_in_worker_processes_and_stored_in_arrival_order(
    prefect_harness: None, folders: dict[str, Path], configured_database: str, reference: Reference,
    tmp_path: Path,
) -> None:
    from tasks.check import checking

    inbox = folders["inbox"]
    truth_path = generate_demo_data(reference, H1, inbox, seed=2023)
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    shutil.move(truth_path, tmp_path / TRUTH_FILE)
    batch = checking.PROCESS_MIN_FILES  # every batch large enough for the worker processes
    assert len(truth["files"]) > 2 * batch, "several batches in flight"

    summary = collect_submissions(batch_size=batch)
    assert summary.files_seen == len(truth["files"]) == summary.submissions
    assert checking._pool is not None, "the batches were checked in worker processes"

    status = cycle_status(make_engine(configured_database), reference, H1)
    files = {row["file"]: row for row in status["submissions"]}
    assert {item["file"]: files[item["file"]]["state"] for item in truth["files"]} == {
        item["file"]: item["expect_state"] for item in truth["files"]}
    # Batches overlap, yet submission ids follow arrival order, as with one batch at a time.
    with make_engine(configured_database).connect() as conn:
        arrivals = conn.execute(select(models.Submission.id, models.Submission.received_at)
                                .order_by(models.Submission.id)).all()
    assert [row.received_at for row in arrivals] == sorted(row.received_at for row in arrivals)


def test_review_and_revalidate_flows(
    prefect_harness: str, folders: dict[str, Path], configured_database: str, reference: Reference
) -> None:
    collect_submissions()  # an empty inbox: creates the database and loads the registry
    engine = make_engine(configured_database)
    mail = incoming_file(_workbook(reference, "MN005"), source="mailbox", original_name="bao cao.xlsx",
                         received_at=dt.datetime(2023, 5, 1, 9, 0, tzinfo=HCM), source_ref="<x@zalo>#1",
                         sender="nguoi.la@gmail.com")
    (held,) = ingest(engine, reference, [mail], max_bytes=get_settings().max_file_bytes)
    assert held.state == "held"

    result = review_submission(held.submission_id, "accept", note="đã xác minh", actor="chuyen.vien")
    assert (result["previous_state"], result["state"]) == ("held", "accepted")
    with pytest.raises(ValueError, match="not held"):
        review_submission(held.submission_id, "reject")
    # The deployment's received_at: naive is Ho Chi Minh time; the correction needs a note, and is kept.
    with pytest.raises(ValueError, match="note"):
        review_submission(held.submission_id, "received-at-only", received_at="2023-05-07T09:00")
    with pytest.raises(ValueError, match="needs received_at"):
        review_submission(held.submission_id, "received-at-only", note="ngày gửi thật")
    moved = review_submission(held.submission_id, "received-at-only", received_at="2023-05-07T09:00",
                              note="ngày gửi thật", actor="chuyen.vien")
    assert (moved["previous_on_time"], moved["on_time"], moved["state"]) == (True, False, "accepted")
    assert moved["received_at"] == "2023-05-07T09:00:00+07:00"

    state = revalidate_submissions(cycle=H1, return_state=True)
    revalidated = state.result()
    assert revalidated["revalidated"] == 1 and revalidated["changed"] == []
    # Stored files go through the check every source uses, as a task of its own.
    name, stages = task_runs(state.state_details.flow_run_id, "summarize")
    assert re.fullmatch(r"revalidate-2023-H1-\d{8}-\d{6}", name), name
    assert (stages["load_stored"], stages["check_files"], stages["rewrite_decisions"]) == (1, 1, 1)
    assert revalidated["states"] == {"accepted": 1}
