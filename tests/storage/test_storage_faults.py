"""A fault while storing one submission is that submission's problem (issue 11 #3, #4).

The fault is injected where a checked file becomes sheet rows: one file of a batch gets a count the
database refuses. The others are stored, the faulty one is recorded as rejected with `storage_error`
(raw bytes kept, the error class for the operator), the inbox is emptied, a second run does not trip
on it, and no log line carries the refused value.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from db import models
from db.setup import init_database
from demo.data import school_values
from schemas.reference import Cycle, CycleCalendar, Reference, School
from schemas.workbook import ParsedWorkbook
from tasks.intake.folder import incoming_file
from tasks.storage import submissions
from tasks.template.build import build_template
from tests.support.stages import ingest

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
H1 = "2023-H1"
MAX_BYTES = 20 * 1024 * 1024
RECEIVED = dt.datetime(2023, 5, 2, 9, 30, tzinfo=HCM)
CODES = ("TH001", "TH002", "TH003")


def _school(code: str) -> School:
    return School(code, f"Trường {code}", "tieu_hoc", "cong_lap", "Phường 4",
                  (f"{code.lower()}@truong.q8.test",), True, None, None, frozenset())


@pytest.fixture(scope="module")
def reference() -> Reference:
    calendar = CycleCalendar([Cycle(H1, dt.date(2023, 1, 1), dt.date(2023, 4, 30), dt.date(2023, 5, 5))])
    return Reference({code: _school(code) for code in CODES}, calendar, ())


def _workbook(reference: Reference, code: str) -> bytes:
    cycle = reference.calendar.get(H1)
    assert cycle is not None
    values = copy.deepcopy(school_values(reference.schools[code], cycle, 7))
    return build_template(reference.schools[code], cycle, values)


def _files(reference: Reference) -> list[Any]:
    return [incoming_file(_workbook(reference, code), source="folder", original_name=f"{code}.xlsx",
                          received_at=RECEIVED, source_ref=f"folder:{code}",
                          sender=f"{code.lower()}@truong.q8.test")
            for code in CODES]


def _inject(monkeypatch: pytest.MonkeyPatch, code: str, value: int) -> None:
    """Make one school's incident rows carry a count the database cannot hold."""
    real = submissions.sheet_rows

    def faulty(submission_id: int, parsed: ParsedWorkbook) -> dict[str, list[dict[str, Any]]]:
        rows = real(submission_id, parsed)
        school = parsed.general.get("school_code")
        if school is not None and school.value == code:
            for row in rows.get("incidents", []):
                row["cases"] = value
        return rows

    monkeypatch.setattr(submissions, "sheet_rows", faulty)


def test_one_unstorable_file_is_recorded_and_the_others_are_stored(
    engine: Engine, database_url: str, reference: Reference, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    init_database(database_url, reference)
    # PostgreSQL's INTEGER stops at 2**31 - 1 (its COPY error quotes the value); SQLite's at 2**63 - 1.
    value = 3_000_000_007 if engine.dialect.name == "postgresql" else 10**20
    _inject(monkeypatch, "TH002", value)
    caplog.set_level(logging.DEBUG)
    outcomes = ingest(engine, reference, _files(reference), max_bytes=MAX_BYTES)

    by_school = {outcome.original_name[:5]: outcome for outcome in outcomes}
    # Every arrival has a submission: the inbox can be emptied (the flow archives what has one).
    assert all(outcome.submission_id is not None for outcome in outcomes), outcomes
    assert by_school["TH001"].state == by_school["TH003"].state == "accepted"
    failed = by_school["TH002"]
    assert failed.state == "rejected" and failed.created
    assert failed.message is not None and "lỗi kỹ thuật" in failed.message

    with engine.connect() as conn:
        finding = conn.execute(select(models.Finding.rule, models.Finding.params, models.Finding.message)
                               .where(models.Finding.submission_id == failed.submission_id)).one()
        decision = conn.execute(select(models.Decision.reason, models.Decision.note)
                                .where(models.Decision.submission_id == failed.submission_id)).one()
        raw = conn.execute(select(models.ReceivedFile.content)
                           .where(models.ReceivedFile.id == failed.received_file_id)).scalar_one()
        incidents = conn.execute(select(models.IncidentCount.submission_id)).scalars().all()
    assert finding.rule == "storage_error"
    fault = json.loads(finding.params)["detail"]
    assert fault.split(",")[0] in {"NumericValueOutOfRange", "OverflowError", "DataError"}, fault
    assert decision.reason == "validation" and fault in decision.note
    assert raw == _workbook(reference, "TH002")  # raw bytes kept for the operator
    assert failed.submission_id not in incidents  # nothing half-stored
    assert {by_school["TH001"].submission_id, by_school["TH003"].submission_id} <= set(incidents)

    # No log line carries the refused value (PostgreSQL quotes it in its error text).
    assert str(value) not in caplog.text
    assert any("TH002.xlsx" in record.getMessage() for record in caplog.records)

    # The next run meets the same bytes again (a resend): nothing new, nothing trips.
    again = ingest(engine, reference, _files(reference), max_bytes=MAX_BYTES)
    assert [outcome.submission_id for outcome in again] == [outcome.submission_id for outcome in outcomes]
    assert str(value) not in caplog.text


def test_a_fault_is_described_by_class_table_and_row_only() -> None:
    class NumericValueOutOfRange(Exception):
        pass

    from sqlalchemy.exc import DataError

    text = ('value "3000000007" is out of range for type integer\n'
            'CONTEXT:  COPY incident_counts, line 1, column cases: "3000000007"')
    error = DataError("COPY incident_counts (submission_id, category, cases) FROM STDIN", None,
                      NumericValueOutOfRange(text))
    described = submissions.describe_fault(error)
    assert described == "NumericValueOutOfRange, table incident_counts, row 1 of the batch"
