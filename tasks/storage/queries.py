"""Reads of stored submissions that the flows need after a run's writes."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, select

from tasks.storage.tables import SUBMISSIONS


def current_states(engine: Engine, submission_ids: Sequence[int]) -> dict[int, str]:
    """Return the current state of submissions by id."""
    found: dict[int, str] = {}
    with engine.connect() as conn:
        for start in range(0, len(submission_ids), 500):  # SQLite caps bound parameters
            chunk = submission_ids[start:start + 500]
            query = select(SUBMISSIONS.c.id, SUBMISSIONS.c.state).where(SUBMISSIONS.c.id.in_(chunk))
            found.update((row.id, row.state) for row in conn.execute(query))
    return found
