"""Re-derive the stored states of submissions (SPEC §4) with the pure rules of `tasks.storage.states`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from tasks.storage.states import Decision, State, SubmissionFacts, derive_states
from tasks.storage.tables import CYCLES, SUBMISSIONS


def recompute_states(conn: Connection, pairs: Iterable[tuple[str | None, str]]) -> int:
    """Re-derive state, superseded_by_id and is_on_time of every submission of these schools and cycles.

    Return how many submissions changed. Submissions without a school keep their decision as state.
    """
    wanted = {(school, cycle) for school, cycle in pairs if school}
    if not wanted:
        return 0
    query = (
        select(
            SUBMISSIONS.c.id,
            SUBMISSIONS.c.school_code,
            SUBMISSIONS.c.cycle_id,
            SUBMISSIONS.c.received_at,
            SUBMISSIONS.c.decision,
            SUBMISSIONS.c.state,
            SUBMISSIONS.c.superseded_by_id,
            SUBMISSIONS.c.is_on_time,
            CYCLES.c.deadline_end,
        )
        .join(CYCLES, CYCLES.c.id == SUBMISSIONS.c.cycle_id)
        .where(
            SUBMISSIONS.c.school_code.in_({school for school, _ in wanted}),
            SUBMISSIONS.c.cycle_id.in_({cycle for _, cycle in wanted}),
        )
    )
    groups: dict[tuple[str, str], list[Any]] = {}
    for row in conn.execute(query):
        if (row.school_code, row.cycle_id) in wanted:
            groups.setdefault((row.school_code, row.cycle_id), []).append(row)
    changes = []
    for rows in groups.values():
        facts = [
            SubmissionFacts(row.id, row.school_code, row.received_at, Decision(row.decision)) for row in rows
        ]
        states = derive_states(facts)
        current = next((row.id for row in rows if states[row.id] is State.ACCEPTED), None)
        for row in rows:
            state = states[row.id].value
            superseded_by = current if state == State.SUPERSEDED.value else None
            on_time = row.received_at < row.deadline_end
            if (state, superseded_by, on_time) != (row.state, row.superseded_by_id, row.is_on_time):
                changes.append(
                    {"b_id": row.id, "b_state": state, "b_by": superseded_by, "b_on_time": on_time}
                )
    if changes:
        statement = (
            update(SUBMISSIONS)
            .where(SUBMISSIONS.c.id == bindparam("b_id"))
            .values(state=bindparam("b_state"), superseded_by_id=bindparam("b_by"),
                    is_on_time=bindparam("b_on_time"))
        )
        conn.execute(statement, changes)
    return len(changes)
