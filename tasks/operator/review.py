"""Operator review of held submissions (SPEC §6): accept or reject as a new decision; states re-derived."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

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


# --------------------------------------------------------------------------------------------------
# Re-validation
