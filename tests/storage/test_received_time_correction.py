"""The operator corrects when a submission was received, with a note (issue 12 item 6).

A drop-folder file's received time is its modification time: a file copied on 6 May from a Zalo message
of 4 May arrives late. `gec review ID --received-at … --note …` (and the review-submission deployment's
`received_at`) set the time it was really sent, record who, when and why, and re-derive the states.
Storage tests run on SQLite and PostgreSQL; the command line test runs the real `gec` on SQLite.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from config.settings import PROJECT_ROOT, TIMEZONE
from db import models
from demo.data import school_values
from schemas.reference import load_reference
from tasks.operator.review import (
    ReviewRefused,
    SubmissionNotFound,
    correct_received_at,
    received_time_corrections,
)
from tasks.template.build import build_template
from tests.storage import test_intake_store as store_tests
from tests.storage.test_intake_store import AFTER, H1, _folder_file, _ingest, _school_status, _workbook

# The intake store tests' registry (deadline 5 May 2023) and a freshly initialised database per test.
reference = store_tests.reference
db = store_tests.db

ZALO_DAY = dt.datetime(2023, 5, 4, 16, 20, tzinfo=TIMEZONE)  # when the school really sent it
NOTE = "Trường gửi qua Zalo lúc 16:20 ngày 4/5; tệp chép vào thư mục ngày 6/5"
GEC = str(Path(sys.executable).with_name("gec"))


def _receipt_times(engine: Engine) -> list[dt.datetime]:
    with engine.connect() as conn:
        return list(conn.execute(select(models.FileReceipt.received_at)).scalars())


def test_a_file_copied_late_from_zalo_becomes_on_time(db: Engine, reference: Any) -> None:
    (late,) = _ingest(db, reference, _folder_file(_workbook(reference, "MN001"), "MN001.xlsx", AFTER))
    assert _school_status(db, reference, "MN001")["state"] == "late"

    result = correct_received_at(db, late.submission_id, ZALO_DAY, NOTE, actor="chuyen.vien")
    assert (result["changed"], result["previous_on_time"], result["on_time"]) == (True, False, True)
    assert result["state"] == "accepted"
    assert _school_status(db, reference, "MN001")["state"] == "on_time"
    # Also as of the deadline: the rollup of 5 May counts it now.
    as_of = dt.datetime(2023, 5, 5, 23, 59, tzinfo=TIMEZONE)
    assert _school_status(db, reference, "MN001", as_of=as_of)["state"] == "on_time"

    # Recorded: who, when, why and the time it replaced; the arrival itself is kept as it happened.
    [correction] = received_time_corrections(db, late.submission_id)
    assert correction["previous_received_at"] == AFTER and correction["received_at"] == ZALO_DAY
    assert (correction["note"], correction["actor"]) == (NOTE, "chuyen.vien")
    assert abs(correction["corrected_at"] - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    assert _receipt_times(db) == [AFTER]

    # The same correction again (a retried deployment run) records nothing more.
    again = correct_received_at(db, late.submission_id, ZALO_DAY, NOTE, actor="chuyen.vien")
    assert again["changed"] is False and len(received_time_corrections(db, late.submission_id)) == 1


def test_a_corrected_time_decides_which_version_is_current(db: Engine, reference: Any) -> None:
    first = _folder_file(_workbook(reference, "MN002"), "MN002 lan 1.xlsx", AFTER - dt.timedelta(days=1))
    second = _folder_file(_workbook(reference, "MN002", reporter="Cô Hoa"), "MN002 lan 2.xlsx", AFTER)
    one, two = _ingest(db, reference, first, second)
    assert (one.state, two.state) == ("superseded", "accepted")

    # The second file was in fact an older version the school had sent by Zalo before the first.
    correct_received_at(db, two.submission_id, AFTER - dt.timedelta(days=3), "bản cũ gửi qua Zalo")
    with db.connect() as conn:
        states = dict(conn.execute(select(models.Submission.id, models.Submission.state)).all())
    assert states == {one.submission_id: "accepted", two.submission_id: "superseded"}


def test_a_correction_needs_a_note_a_past_time_and_a_known_submission(db: Engine, reference: Any) -> None:
    (outcome,) = _ingest(db, reference, _folder_file(_workbook(reference, "TH001"), "TH001.xlsx", AFTER))
    with pytest.raises(ReviewRefused, match="note"):
        correct_received_at(db, outcome.submission_id, ZALO_DAY, "  ")
    with pytest.raises(ReviewRefused, match="future"):
        correct_received_at(db, outcome.submission_id, dt.datetime.now(dt.UTC) + dt.timedelta(days=1), NOTE)
    with pytest.raises(SubmissionNotFound):
        correct_received_at(db, 999_999, ZALO_DAY, NOTE)
    with pytest.raises(ValueError, match="timezone"):
        correct_received_at(db, outcome.submission_id, ZALO_DAY.replace(tzinfo=None), NOTE)
    assert received_time_corrections(db, outcome.submission_id) == []
    assert _school_status(db, reference, "TH001")["state"] == "late"


def test_gec_review_received_at_with_a_note(tmp_path: Path) -> None:
    real = load_reference(PROJECT_ROOT / "reference")
    school = next(item for item in real.schools.values() if item.active)
    cycle = real.calendar.get(H1)
    assert cycle is not None
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    path = inbox / f"{school.code}.xlsx"
    path.write_bytes(build_template(school, cycle, copy.deepcopy(school_values(school, cycle, 5))))
    copied = dt.datetime(2023, 5, 6, 10, 0, tzinfo=TIMEZONE).timestamp()
    os.utime(path, (copied, copied))  # the drop folder's received time: when the file was copied
    env = {
        **os.environ,
        "GEC_DATABASE_URL": f"sqlite:///{tmp_path / 'gec.sqlite3'}",
        "GEC_ARCHIVE_DIR": str(tmp_path / "archive"),
        "GEC_OUTPUT_DIR": str(tmp_path / "outputs"),
        "PREFECT_HOME": str(tmp_path / "prefect"),
    }

    def gec(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([GEC, *args], capture_output=True, text=True, env=env, timeout=600,
                              cwd=tmp_path)

    def status() -> tuple[int, str]:
        done = gec("status", "--cycle", H1, "--json")
        assert done.returncode == 0, done.stderr[-2000:]
        result = json.loads(done.stdout)
        [submission] = result["submissions"]
        return submission["id"], next(row["state"] for row in result["schools"] if row["code"] == school.code)

    for args in (("init",), ("collect", "--source", "folder", "--inbox", str(inbox))):
        done = gec(*args)
        assert done.returncode == 0, done.stderr[-3000:]
    submission_id, state = status()
    assert state == "late"

    # Usage errors: nothing to do, or a correction without a note saying why.
    assert gec("review", str(submission_id)).returncode == 2
    refused = gec("review", str(submission_id), "--received-at", "2023-05-04T16:20")
    assert refused.returncode == 2 and "note" in refused.stderr

    fixed = gec("review", str(submission_id), "--received-at", "2023-05-04T16:20", "--note", NOTE)
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    assert "on time" in " ".join(fixed.stdout.split())
    assert status() == (submission_id, "on_time")
