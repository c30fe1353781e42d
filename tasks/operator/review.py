"""Operator review (SPEC §6): accept or reject a held submission, or correct when a submission was
received, each recorded with who, when and why; states re-derived."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.orm import Session

from db.models import ReceivedTimeCorrection
from tasks.storage.recompute import recompute_states
from tasks.storage.states import Decision
from tasks.storage.submissions import insert_decisions
from tasks.storage.tables import SUBMISSIONS, now


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


CORRECTIONS = ReceivedTimeCorrection.__table__


def correct_received_at(
    engine: Engine,
    submission_id: int,
    received_at: dt.datetime,
    note: str,
    actor: str | None = None,
) -> dict[str, Any]:
    """Set when a submission was received (e.g. the day a school sent it by Zalo, not the day the file
    was copied), record the correction with who, when and why, and re-derive the school's states.

    The arrival as stored (`file_receipts`) is kept as it was; the cycle is not re-chosen. Setting the
    time it already has records nothing (a retried run changes nothing twice). Raise ValueError for a
    naive time, ReviewRefused without a note or for a time in the future, SubmissionNotFound for an
    unknown id.
    """
    if received_at.tzinfo is None:
        raise ValueError("received_at must be timezone-aware")
    note = (note or "").strip()
    if not note:
        raise ReviewRefused("a correction of the received time needs a note saying why (--note)")
    corrected_at = now()
    if received_at > corrected_at:
        raise ReviewRefused(f"{received_at.isoformat()} is in the future: a file cannot be received then")
    with Session(engine) as session, session.begin():
        conn = session.connection()
        query = select(SUBMISSIONS.c.id, SUBMISSIONS.c.school_code, SUBMISSIONS.c.cycle_id,
                       SUBMISSIONS.c.received_at, SUBMISSIONS.c.state, SUBMISSIONS.c.is_on_time
                       ).where(SUBMISSIONS.c.id == submission_id)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()  # two corrections at once: each sees the other's result
        row = conn.execute(query).first()
        if row is None:
            raise SubmissionNotFound(f"there is no submission {submission_id}")
        changed = row.received_at != received_at
        if changed:
            conn.execute(insert(CORRECTIONS).values(
                submission_id=row.id, previous_received_at=row.received_at, received_at=received_at,
                note=note, actor=actor, corrected_at=corrected_at))
            conn.execute(update(SUBMISSIONS).where(SUBMISSIONS.c.id == row.id)
                         .values(received_at=received_at))
            recompute_states(conn, [(row.school_code, row.cycle_id)])
        state, on_time = conn.execute(
            select(SUBMISSIONS.c.state, SUBMISSIONS.c.is_on_time).where(SUBMISSIONS.c.id == row.id)).one()
    return {
        "id": row.id,
        "school_code": row.school_code,
        "cycle": row.cycle_id,
        "changed": changed,
        "previous_received_at": row.received_at.isoformat(),
        "received_at": received_at.isoformat(),
        "previous_state": row.state,
        "state": state,
        "previous_on_time": row.is_on_time,
        "on_time": on_time,
        "note": note,
        "actor": actor,
    }


def received_time_corrections(engine: Engine, submission_id: int) -> list[dict[str, Any]]:
    """Return a submission's received-time corrections, oldest first (who, when, why, from, to)."""
    with engine.connect() as conn:
        rows = conn.execute(select(CORRECTIONS).where(CORRECTIONS.c.submission_id == submission_id)
                            .order_by(CORRECTIONS.c.id))
        return [dict(item._mapping) for item in rows]
