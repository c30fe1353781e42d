"""A cycle's status (SPEC §7 `gec status --json`), operator review of held submissions, re-validation.

`cycle_status` reads the database and re-derives states with `tasks.storage.states`, so the same code answers
"now" and "as of a past moment". `review_submission` and `revalidate` append decisions, never
overwrite one, and re-derive the states of the schools they touch.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.orm import Session

from config.settings import TIMEZONE, get_settings
from schemas.reference import Reference
from schemas.workbook import ParsedWorkbook
from tasks.check.parse import parse_workbook
from tasks.check.validate import validate_batch
from tasks.intake.folder import incoming_file
from tasks.storage.cycle_rows import read_cycle_rows
from tasks.storage.states import Decision
from tasks.storage.submissions import (
    DECISIONS,
    RECEIPTS,
    RECEIVED_FILES,
    SUBMISSIONS,
    Checked,
    Judged,
    RawRecord,
    delete_sheet_rows,
    identify,
    insert_decisions,
    insert_results,
    is_data_problem,
    judge,
    now,
    recompute_states,
    submission_values,
)

log = logging.getLogger(__name__)


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


# --------------------------------------------------------------------------------------------------
# Status


def cycle_status(
    engine: Engine, reference: Reference, cycle_id: str, as_of: dt.datetime | None = None
) -> dict[str, Any]:
    """Return the SPEC §7 status of a cycle: schools' completeness, submissions, totals per state.

    With `as_of`, only submissions received by then count, each with the decision it had then.
    """
    rows = read_cycle_rows(engine, reference, cycle_id, as_of)
    return {
        "cycle": rows.cycle_id,
        "schools": [
            {
                "code": school.code,
                "name": school.name,
                "level": school.level,
                "ward": school.ward,
                "state": school.state,
                "on_time": school.on_time,
                "received_at": _iso(school.received_at),
                "submission_id": school.submission_id,
            }
            for school in rows.schools
        ],
        "submissions": [
            {
                "id": item.id,
                "school_code": item.school_code,
                "file": item.file,
                "sha256": item.sha256,
                "source": item.source,
                "sender": item.sender,
                "received_at": _iso(item.received_at),
                "state": item.state,
                "findings": [
                    {"severity": one.severity, "rule": one.rule, "sheet": one.sheet, "row": one.row,
                     "column": one.column}
                    for one in item.findings
                ],
            }
            for item in rows.submissions
        ],
        "totals": rows.totals,
    }


# --------------------------------------------------------------------------------------------------
# Review


class ReviewRefused(ValueError):
    """The submission cannot be reviewed (only held submissions wait for an operator)."""


class SubmissionNotFound(ReviewRefused, LookupError):
    """No submission has that id (a ReviewRefused too, so one `except` serves the command line)."""


def review_submission(
    engine: Engine,
    submission_id: int,
    decision: Literal["accept", "reject"],
    note: str | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """Accept or reject a held submission: record the review decision and re-derive states.

    Only held submissions (valid, from an unregistered sender) are reviewed: accepting a rejected one
    would put data with errors into the reports, and re-deciding an accepted one is a resubmission.
    Raise SubmissionNotFound (a ReviewRefused and a LookupError) for an unknown id, ReviewRefused for
    one that is not held.
    """
    if decision not in ("accept", "reject"):
        raise ValueError(f"decision must be 'accept' or 'reject', not {decision!r}")
    verdict = Decision.ACCEPTED if decision == "accept" else Decision.REJECTED
    with Session(engine) as session, session.begin():
        conn = session.connection()
        query = select(SUBMISSIONS.c.id, SUBMISSIONS.c.school_code, SUBMISSIONS.c.cycle_id,
                       SUBMISSIONS.c.decision, SUBMISSIONS.c.state).where(SUBMISSIONS.c.id == submission_id)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()  # two operators reviewing at once: one wins, one is refused
        row = conn.execute(query).first()
        if row is None:
            raise SubmissionNotFound(f"there is no submission {submission_id}")
        if row.decision != Decision.HELD.value:
            raise ReviewRefused(
                f"submission {submission_id} is {row.state}, not held: only held submissions are reviewed"
            )
        decided_at = now()
        insert_decisions(conn, [(row.id, verdict, "review")], decided_at, note=note, actor=actor)
        conn.execute(
            update(SUBMISSIONS)
            .where(SUBMISSIONS.c.id == row.id)
            .values(decision=verdict.value, state=verdict.value, decided_at=decided_at)
        )
        recompute_states(conn, [(row.school_code, row.cycle_id)])
        state = conn.execute(select(SUBMISSIONS.c.state).where(SUBMISSIONS.c.id == row.id)).scalar_one()
    return {
        "id": row.id,
        "school_code": row.school_code,
        "cycle": row.cycle_id,
        "decision": verdict.value,
        "state": state,
        "previous_state": row.state,
        "note": note,
        "actor": actor,
    }


# --------------------------------------------------------------------------------------------------
# Re-validation


@dataclass(frozen=True)
class _Stored:
    """A stored submission as re-validation reads it back."""

    id: int
    received_file_id: int
    receipt_id: int | None
    school_code: str | None
    cycle_id: str
    decision: str
    state: str
    received_at: dt.datetime
    content: bytes
    original_name: str
    source: str
    sender: str | None
    review: str | None  # the latest operator review's decision, if any


def _load(conn: Connection, ids: Sequence[int]) -> list[_Stored]:
    query = (
        select(
            SUBMISSIONS.c.id, SUBMISSIONS.c.received_file_id, SUBMISSIONS.c.receipt_id,
            SUBMISSIONS.c.school_code, SUBMISSIONS.c.cycle_id, SUBMISSIONS.c.decision, SUBMISSIONS.c.state,
            SUBMISSIONS.c.received_at, RECEIVED_FILES.c.content,
            RECEIVED_FILES.c.original_name.label("file_name"), RECEIVED_FILES.c.source.label("file_source"),
            RECEIVED_FILES.c.sender.label("file_sender"), RECEIPTS.c.original_name.label("receipt_name"),
            RECEIPTS.c.source.label("receipt_source"), RECEIPTS.c.sender.label("receipt_sender"),
        )
        .join(RECEIVED_FILES, RECEIVED_FILES.c.id == SUBMISSIONS.c.received_file_id)
        .outerjoin(RECEIPTS, RECEIPTS.c.id == SUBMISSIONS.c.receipt_id)
        .where(SUBMISSIONS.c.id.in_(ids))
        .order_by(SUBMISSIONS.c.id)
    )
    reviews: dict[int, str] = {}
    for submission_id, state in conn.execute(
        select(DECISIONS.c.submission_id, DECISIONS.c.state)
        .where(DECISIONS.c.submission_id.in_(ids), DECISIONS.c.reason == "review")
        .order_by(DECISIONS.c.id)
    ):
        reviews[submission_id] = state
    stored = []
    for row in conn.execute(query):
        from_receipt = row.receipt_source is not None
        stored.append(
            _Stored(
                id=row.id,
                received_file_id=row.received_file_id,
                receipt_id=row.receipt_id,
                school_code=row.school_code,
                cycle_id=row.cycle_id,
                decision=row.decision,
                state=row.state,
                received_at=row.received_at,
                content=row.content,
                original_name=row.receipt_name or row.file_name,
                source=row.receipt_source or row.file_source,
                sender=row.receipt_sender if from_receipt else row.file_sender,
                review=reviews.get(row.id),
            )
        )
    return stored


def _checked(stored: Sequence[_Stored], reference: Reference, max_bytes: int) -> list[Checked]:
    """Parse and validate stored raw bytes again, as one batch."""
    parsed: list[tuple[int, ParsedWorkbook]] = [
        (item.id, parse_workbook(item.content, max_bytes=max_bytes)) for item in stored
    ]
    findings = validate_batch(parsed, reference) if parsed else {}
    checked = []
    for item, (key, workbook) in zip(stored, parsed, strict=True):
        received_at = item.received_at.astimezone(TIMEZONE)
        file = incoming_file(
            item.content,
            source=item.source,
            original_name=item.original_name,
            received_at=received_at,
            source_ref="",  # not an arrival: nothing is recorded from it
            sender=item.sender,
        )
        record = RawRecord(file, item.received_file_id, item.receipt_id or 0, False, False, item.id, True)
        school_code, cycle_id, cycle_source = identify(workbook, reference, received_at)
        checked.append(Checked(record, workbook, findings[key], school_code, cycle_id, cycle_source))
    return checked


def _with_review(entry: Judged, review: str | None) -> Judged:
    """Keep an operator's review: an accepted held file stays accepted while it has no errors."""
    if review is None or entry.decision is Decision.REJECTED:
        return entry
    if review == Decision.ACCEPTED.value:
        return Judged(entry.item, entry.findings, Decision.ACCEPTED)
    if review == Decision.REJECTED.value:
        return Judged(entry.item, entry.findings, Decision.REJECTED)  # the operator's no stands
    return entry


def _rewrite(session: Session, reference: Reference, stored: Sequence[_Stored], checked: Sequence[Checked]
             ) -> list[tuple[int, str, str]]:
    """Record a new decision per submission with its findings and rows; return (id, before, after)."""
    conn = session.connection()
    judged = [
        _with_review(entry, item.review)
        for entry, item in zip(judge(session, reference, checked), stored, strict=True)
    ]
    decided_at = now()
    for entry, item in zip(judged, stored, strict=True):
        conn.execute(
            update(SUBMISSIONS)
            .where(SUBMISSIONS.c.id == item.id)
            .values(**submission_values(entry, reference, decided_at), state=entry.decision.value)
        )
    ids = [item.id for item in stored]
    decision_ids = insert_decisions(
        conn, [(item.id, entry.decision, "revalidate") for item, entry in zip(stored, judged, strict=True)],
        decided_at,
    )
    delete_sheet_rows(conn, ids)
    insert_results(conn, list(zip(ids, decision_ids, judged, strict=True)))
    pairs = {(item.school_code, item.cycle_id) for item in stored}
    pairs |= {(entry.item.school_code, entry.item.cycle_id) for entry in judged}
    recompute_states(conn, pairs)
    return [
        (item.id, item.decision, entry.decision.value) for item, entry in zip(stored, judged, strict=True)
    ]


def _batches(items: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def revalidate(
    engine: Engine,
    reference: Reference,
    cycle_id: str | None = None,
    *,
    batch_size: int = 50,
    max_bytes: int | None = None,
) -> dict[str, Any]:
    """Re-parse and re-validate stored raw files (one cycle, or all) after a rule or registry change.

    Each submission gets a new `revalidate` decision with its own findings (the old ones are kept),
    fresh sheet rows and re-derived states. Returns counts and the submissions whose decision changed.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    max_bytes = max_bytes or get_settings().max_file_bytes
    query = select(SUBMISSIONS.c.id).order_by(SUBMISSIONS.c.cycle_id, SUBMISSIONS.c.received_at,
                                              SUBMISSIONS.c.id)
    if cycle_id is not None:
        cycle = reference.calendar.get(cycle_id)
        if cycle is None:
            raise ValueError(f"malformed cycle id {cycle_id!r}; expected YYYY-H1 or YYYY-H2")
        query = query.where(SUBMISSIONS.c.cycle_id == cycle.id)
        cycle_id = cycle.id
    with engine.connect() as conn:
        all_ids = list(conn.execute(query).scalars())
    changes: list[tuple[int, str, str]] = []
    failed: list[int] = []
    for ids in _batches(all_ids, batch_size):
        with engine.connect() as conn:
            stored = _load(conn, ids)
        checked = _checked(stored, reference, max_bytes)
        try:
            with Session(engine) as session, session.begin():
                changes.extend(_rewrite(session, reference, stored, checked))
            continue
        except Exception as error:
            if not is_data_problem(error):
                raise
            log.warning("re-validating a batch failed on its data (%s); one by one", error)
        for item, check in zip(stored, checked, strict=True):
            try:
                with Session(engine) as session, session.begin():
                    changes.extend(_rewrite(session, reference, [item], [check]))
            except Exception as error:
                if not is_data_problem(error):
                    raise
                log.error("cannot re-validate submission %d: %s", item.id, error)
                failed.append(item.id)
    counted = select(SUBMISSIONS.c.state)
    if cycle_id is not None:
        counted = counted.where(SUBMISSIONS.c.cycle_id == cycle_id)
    with engine.connect() as conn:
        states = Counter(conn.execute(counted).scalars())
    return {
        "cycle": cycle_id,
        "revalidated": len(changes),
        "changed": [
            {"id": submission_id, "from": before, "to": after}
            for submission_id, before, after in changes
            if before != after
        ],
        "failed": failed,
        "states": dict(sorted(states.items())),
    }

