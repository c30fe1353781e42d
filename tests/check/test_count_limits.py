"""Counts too large for any school (and for the database) are errors, and never stop a run (issue 11 #3).

A count of 1e20, 9.9e300 or 3,000,000,007 used to pass with only `reach_extreme`; storing it then raised
OverflowError on SQLite (the whole batch lost) and a numeric-range error on PostgreSQL.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from db import models
from db.setup import init_database
from demo.data import school_values
from schemas.contract import ACTIVITIES, INCIDENTS, MAX_COUNT, REACH, RULES, Severity, count_limit
from schemas.reference import Cycle, CycleCalendar, Reference, School
from tasks.check.parse import parse_workbook
from tasks.check.validate import validate_workbook
from tasks.intake.folder import incoming_file
from tasks.template.build import SubmissionValues, build_template
from tests.support.stages import ingest

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
H1 = "2023-H1"
MAX_BYTES = 20 * 1024 * 1024
RECEIVED = dt.datetime(2023, 5, 2, 9, 30, tzinfo=HCM)


def _school(code: str, level: str) -> School:
    return School(code, f"Trường {code}", level, "cong_lap", "Phường 4", (f"{code.lower()}@truong.q8.test",),
                  True, None, None, frozenset())


@pytest.fixture(scope="module")
def reference() -> Reference:
    schools = (_school("TH001", "tieu_hoc"), _school("TH002", "tieu_hoc"))
    calendar = CycleCalendar([Cycle(H1, dt.date(2023, 1, 1), dt.date(2023, 4, 30), dt.date(2023, 5, 5))])
    return Reference({school.code: school for school in schools}, calendar, ())


def _values(reference: Reference, code: str) -> SubmissionValues:
    cycle = reference.calendar.get(H1)
    assert cycle is not None
    return copy.deepcopy(school_values(reference.schools[code], cycle, 7))


def _huge(reference: Reference) -> bytes:
    """Return TH001's workbook with an absurd count on every sheet that has counts."""
    values = _values(reference, "TH001")
    reach = values.rows["reach"][0]
    reach.update(total=1e20, female=1, reached=1, reached_female=1)
    values.rows["activities"][0].update(students=9.9e300, students_female=0)
    values.rows["incidents"][0].update(cases=3_000_000_007, children=3_000_000_007, children_female=0,
                                       reported=0, supported=0)
    values.general["child_protection_staff"] = 3_000_000_007
    values.general["trained_staff"] = 0
    cycle = reference.calendar.get(H1)
    assert cycle is not None
    return build_template(reference.schools["TH001"], cycle, values)


def _too_large(findings: list[Any]) -> set[tuple[str | None, str | None]]:
    return {(finding.sheet, finding.column) for finding in findings if finding.rule == "count_too_large"}


def test_count_too_large_is_a_contract_error_rule_with_a_vietnamese_message() -> None:
    rule = RULES["count_too_large"]
    assert rule.severity is Severity.ERROR
    assert "quá lớn" in rule.message and "{detail}" in rule.message
    # The message never repeats the value: an incident count must not reach a log through it.
    assert "{value}" not in rule.message
    assert count_limit(INCIDENTS.key) == 10_000 and count_limit(REACH.key) == MAX_COUNT == 1_000_000


def test_huge_counts_are_rejected_with_count_too_large(reference: Reference) -> None:
    findings = validate_workbook(parse_workbook(_huge(reference), max_bytes=MAX_BYTES), reference)
    flagged = _too_large(findings)
    assert (REACH.name, REACH.field("total").label) in flagged
    assert (ACTIVITIES.name, ACTIVITIES.field("students").label) in flagged
    assert (INCIDENTS.name, INCIDENTS.field("cases").label) in flagged
    assert (INCIDENTS.name, INCIDENTS.field("children").label) in flagged
    assert ("Thông tin chung", "Số cán bộ làm công tác bảo vệ trẻ em") in flagged
    message = next(f.message for f in findings if f.rule == "count_too_large" and f.sheet == REACH.name)
    assert "1.000.000" in message
    # Confidential values stay out of the finding's text.
    incident = next(f for f in findings if f.rule == "count_too_large" and f.sheet == INCIDENTS.name)
    assert "3000000007" not in incident.message and "10.000" in incident.message


def test_limits_are_inclusive(reference: Reference) -> None:
    values = _values(reference, "TH001")
    values.rows["reach"][0].update(total=MAX_COUNT, female=0, reached=0, reached_female=0)
    values.rows["incidents"][0].update(cases=10_000, children=10_000, children_female=0, reported=0,
                                       supported=0)
    cycle = reference.calendar.get(H1)
    assert cycle is not None
    data = build_template(reference.schools["TH001"], cycle, values)
    findings = validate_workbook(parse_workbook(data, max_bytes=MAX_BYTES), reference)
    assert not _too_large(findings), findings
    values.rows["incidents"][0].update(cases=10_001, children=10_001)
    data = build_template(reference.schools["TH001"], cycle, values)
    findings = validate_workbook(parse_workbook(data, max_bytes=MAX_BYTES), reference)
    assert _too_large(findings) == {(INCIDENTS.name, INCIDENTS.field("cases").label),
                                    (INCIDENTS.name, INCIDENTS.field("children").label)}


def test_huge_counts_are_stored_as_rejected_beside_a_valid_file(
    engine: Engine, database_url: str, reference: Reference
) -> None:
    init_database(database_url, reference)
    cycle = reference.calendar.get(H1)
    assert cycle is not None
    good = build_template(reference.schools["TH002"], cycle, _values(reference, "TH002"))
    files = [
        incoming_file(content, source="folder", original_name=name, received_at=RECEIVED,
                      source_ref=f"/inbox/{name}")
        for name, content in (("huge.xlsx", _huge(reference)), ("good.xlsx", good))
    ]
    outcomes = ingest(engine, reference, files, max_bytes=MAX_BYTES)  # must not raise
    states = {outcome.original_name: outcome.state for outcome in outcomes}
    assert states == {"huge.xlsx": "rejected", "good.xlsx": "accepted"}
    huge = next(outcome for outcome in outcomes if outcome.original_name == "huge.xlsx")
    findings = models.Finding.__table__
    incidents = models.IncidentCount.__table__
    with engine.connect() as conn:
        mine = findings.c.submission_id == huge.submission_id
        rules = set(conn.scalars(select(findings.c.rule).where(mine)))
        stored_cases = set(conn.scalars(
            select(incidents.c.cases).where(incidents.c.submission_id == huge.submission_id)
        ))
        incident_values = list(conn.scalars(
            select(findings.c.value).where(mine, findings.c.sheet == INCIDENTS.name)
        ))
    assert "count_too_large" in rules
    # The readable cells are kept for the next diff, the impossible ones as NULL.
    assert 3_000_000_007 not in stored_cases and None in stored_cases
    assert incident_values and all(value is None for value in incident_values)
