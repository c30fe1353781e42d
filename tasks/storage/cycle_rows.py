"""What one cycle looks like at a moment, as typed rows: the queries `gec status` and the report share.

`read_cycle_rows` reads the registry and the submissions received by `as_of` (all of them when
`as_of` is None), takes the decision each submission had at that moment and re-derives the states
with `tasks.storage.states`, so "now" and "as of a past moment" are answered by the same code.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from config.settings import TIMEZONE
from db import models
from schemas.reference import Reference
from tasks.storage.states import Completeness, Decision, SubmissionFacts, derive_states, school_status
from tasks.storage.tables import DECISIONS, FINDINGS, RECEIPTS, RECEIVED_FILES, SUBMISSIONS

REGISTRY = models.RegistryEntry.__table__
SCHOOLS = models.School.__table__
CYCLES = models.Cycle.__table__
# Decisions that judge a file's contents; a review decides on top of the latest of them.
VALIDATION_REASONS = ("validation", "revalidate")
DECIDING_REASONS = (*VALIDATION_REASONS, "review")


@dataclass(frozen=True)
class ExpectedSchool:
    """A school the registry expects for the cycle, with its completeness at the moment asked."""

    code: str
    name: str
    level: str
    ward: str
    exempt: bool
    state: str  # a `Completeness` value
    on_time: bool
    received_at: dt.datetime | None  # of the current accepted submission, in Asia/Ho_Chi_Minh
    submission_id: int | None  # the current accepted submission


@dataclass(frozen=True)
class FindingRow:
    """One finding of a submission's validation in force at the moment asked."""

    severity: str
    rule: str
    sheet: str | None
    row: int | None
    column: str | None


@dataclass(frozen=True)
class SubmissionRow:
    """A submission received by the moment asked, with the state it had then."""

    id: int
    school_code: str | None
    file: str
    sha256: str
    source: str
    sender: str | None
    received_at: dt.datetime  # in Asia/Ho_Chi_Minh
    state: str  # a `Decision` value after derivation (superseded included)
    findings: tuple[FindingRow, ...]


@dataclass(frozen=True)
class CycleRows:
    """A cycle's expected schools and submissions as of one moment, with totals per school state."""

    cycle_id: str
    schools: tuple[ExpectedSchool, ...]
    submissions: tuple[SubmissionRow, ...]
    totals: dict[str, int]

    def current(self) -> dict[int, str]:
        """Return the current accepted submission of each school that has one: {submission id: code}."""
        return {
            school.submission_id: school.code for school in self.schools if school.submission_id is not None
        }


@dataclass(frozen=True)
class _DecisionRow:
    id: int
    submission_id: int
    state: str
    reason: str
    decided_at: dt.datetime


def _local(moment: dt.datetime | None) -> dt.datetime | None:
    return moment.astimezone(TIMEZONE) if moment is not None else None


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=TIMEZONE)


def _decision_at(rows: Sequence[_DecisionRow], as_of: dt.datetime | None) -> _DecisionRow | None:
    """Return the decision in force at `as_of` (None: now).

    A submission received by `as_of` but collected later had no decision then; its first decision
    (validation of exactly the bytes received) stands for it, so a report as of a past moment does not
    depend on when the collect run happened.
    """
    if not rows:
        return None
    if as_of is None:
        return rows[-1]
    earlier = [row for row in rows if row.decided_at <= as_of]
    return earlier[-1] if earlier else rows[0]


def _expected_schools(conn: Connection, reference: Reference, cycle_id: str) -> list[dict[str, Any]]:
    """Return the registry as it stood for the cycle: expected schools with exempt flags, and the name,
    level and ward the cycle's snapshot recorded (a later registry edit never rewrites a past cycle)."""
    query = (
        select(
            REGISTRY.c.school_code,
            REGISTRY.c.exempt,
            func.coalesce(REGISTRY.c.name, SCHOOLS.c.name).label("name"),
            func.coalesce(REGISTRY.c.level, SCHOOLS.c.level).label("level"),
            func.coalesce(REGISTRY.c.ward, SCHOOLS.c.ward).label("ward"),
        )
        .join(SCHOOLS, SCHOOLS.c.code == REGISTRY.c.school_code)
        .where(REGISTRY.c.cycle_id == cycle_id, REGISTRY.c.expected.is_(True))
        .order_by(REGISTRY.c.school_code)
    )
    rows = [dict(row._mapping) for row in conn.execute(query)]
    if rows or conn.execute(select(CYCLES.c.id).where(CYCLES.c.id == cycle_id)).first():
        return rows
    # A cycle nothing was collected for yet: the registry file as it stands.
    return [
        {"school_code": school.code, "exempt": reference.is_exempt(school, cycle_id), "name": school.name,
         "level": school.level, "ward": school.ward}
        for school in reference.expected_schools(cycle_id)
    ]


def read_cycle_rows(
    engine: Engine, reference: Reference, cycle_id: str, as_of: dt.datetime | None = None
) -> CycleRows:
    """Return a cycle's expected schools and submissions; with `as_of`, only what was received by then."""
    cycle = reference.calendar.get(cycle_id)
    if cycle is None:
        raise ValueError(f"malformed cycle id {cycle_id!r}; expected YYYY-H1 or YYYY-H2")
    as_of = _aware(as_of) if as_of is not None else None
    with engine.connect() as conn:
        deadline_end = conn.execute(select(CYCLES.c.deadline_end).where(CYCLES.c.id == cycle.id)).scalar()
        deadline_end = deadline_end or cycle.deadline_end
        schools = _expected_schools(conn, reference, cycle.id)

        where = [SUBMISSIONS.c.cycle_id == cycle.id]
        if as_of is not None:
            where.append(SUBMISSIONS.c.received_at <= as_of)
        submissions = conn.execute(
            select(
                SUBMISSIONS.c.id,
                SUBMISSIONS.c.school_code,
                SUBMISSIONS.c.received_at,
                SUBMISSIONS.c.decision,
                RECEIVED_FILES.c.sha256,
                RECEIVED_FILES.c.original_name.label("file_name"),
                RECEIVED_FILES.c.source.label("file_source"),
                RECEIVED_FILES.c.sender.label("file_sender"),
                RECEIPTS.c.original_name.label("receipt_name"),
                RECEIPTS.c.source.label("receipt_source"),
                RECEIPTS.c.sender.label("receipt_sender"),
            )
            .join(RECEIVED_FILES, RECEIVED_FILES.c.id == SUBMISSIONS.c.received_file_id)
            .outerjoin(RECEIPTS, RECEIPTS.c.id == SUBMISSIONS.c.receipt_id)
            .where(*where)
            .order_by(SUBMISSIONS.c.received_at, SUBMISSIONS.c.id)
        ).all()
        ids = select(SUBMISSIONS.c.id).where(*where)
        decisions: dict[int, list[_DecisionRow]] = {}
        for row in conn.execute(
            select(DECISIONS.c.id, DECISIONS.c.submission_id, DECISIONS.c.state, DECISIONS.c.reason,
                   DECISIONS.c.decided_at)
            .where(DECISIONS.c.submission_id.in_(ids), DECISIONS.c.reason.in_(DECIDING_REASONS))
            .order_by(DECISIONS.c.id)
        ):
            decisions.setdefault(row.submission_id, []).append(_DecisionRow(*row))
        findings: dict[int | None, list[FindingRow]] = {}
        for row in conn.execute(
            select(FINDINGS.c.decision_id, FINDINGS.c.severity, FINDINGS.c.rule, FINDINGS.c.sheet,
                   FINDINGS.c.row, FINDINGS.c.column)
            .where(FINDINGS.c.submission_id.in_(ids))
            .order_by(FINDINGS.c.id)
        ):
            findings.setdefault(row.decision_id, []).append(
                FindingRow(row.severity, row.rule, row.sheet, row.row, row.column)
            )

    facts = []
    listed = []
    for row in submissions:
        history = decisions.get(row.id, [])
        decided = _decision_at(history, as_of)
        validated = _decision_at([item for item in history if item.reason in VALIDATION_REASONS], as_of)
        decision = Decision(decided.state if decided is not None else row.decision)
        facts.append(SubmissionFacts(row.id, row.school_code, row.received_at, decision))
        listed.append((row, findings.get(validated.id, []) if validated is not None else []))
    states = derive_states(facts)

    by_school: dict[str, list[SubmissionFacts]] = {}
    for item in facts:
        if item.school_code:
            by_school.setdefault(item.school_code, []).append(item)
    school_rows = []
    totals = Counter({state.value: 0 for state in Completeness})
    for entry in schools:
        status = school_status(by_school.get(entry["school_code"], []), deadline_end, exempt=entry["exempt"])
        totals[status.state.value] += 1
        school_rows.append(
            ExpectedSchool(
                code=entry["school_code"],
                name=entry["name"],
                level=entry["level"],
                ward=entry["ward"],
                exempt=bool(entry["exempt"]),
                state=status.state.value,
                on_time=status.on_time,
                received_at=_local(status.received_at),
                submission_id=status.current_id,
            )
        )
    return CycleRows(
        cycle_id=cycle.id,
        schools=tuple(school_rows),
        submissions=tuple(
            SubmissionRow(
                id=row.id,
                school_code=row.school_code,
                file=row.receipt_name or row.file_name,
                sha256=row.sha256,
                source=row.receipt_source or row.file_source,
                sender=row.receipt_sender if row.receipt_source else row.file_sender,
                received_at=row.received_at.astimezone(TIMEZONE),
                state=states[row.id].value,
                findings=tuple(found),
            )
            for row, found in listed
        ),
        totals=dict(totals),
    )
