"""Submission states and completeness (SPEC §4) as pure functions over plain facts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from schemas.states import Completeness, Decision, State

__all__ = [
    "Completeness",
    "Decision",
    "SchoolStatus",
    "State",
    "SubmissionFacts",
    "derive_states",
    "school_status",
]


@dataclass(frozen=True)
class SubmissionFacts:
    """What the state rules need to know about one submission."""

    id: int  # arrival order breaks ties between equal received times
    school_code: str | None
    received_at: dt.datetime
    decision: Decision


@dataclass(frozen=True)
class SchoolStatus:
    state: Completeness
    on_time: bool
    current_id: int | None  # the school's current (newest accepted) submission
    received_at: dt.datetime | None


def _order(facts: SubmissionFacts) -> tuple[dt.datetime, int]:
    return facts.received_at, facts.id


def derive_states(facts: Sequence[SubmissionFacts]) -> dict[int, State]:
    """Return each submission's state: older accepted ones of the same school become superseded."""
    newest_accepted: dict[str, SubmissionFacts] = {}
    for item in facts:
        if item.decision is Decision.ACCEPTED and item.school_code:
            best = newest_accepted.get(item.school_code)
            if best is None or _order(item) > _order(best):
                newest_accepted[item.school_code] = item
    current_ids = {item.id for item in newest_accepted.values()}
    return {item.id: _state_of(item, current_ids) for item in facts}


def _state_of(item: SubmissionFacts, current_ids: set[int]) -> State:
    if item.decision is Decision.ACCEPTED:
        if item.school_code and item.id not in current_ids:
            return State.SUPERSEDED
        return State.ACCEPTED
    return State(item.decision.value)


def school_status(
    facts: Sequence[SubmissionFacts], deadline_end: dt.datetime, *, exempt: bool = False
) -> SchoolStatus:
    """Return one school's completeness for a cycle from all its submissions of that cycle."""
    accepted = [item for item in facts if item.decision is Decision.ACCEPTED]
    if exempt:
        current = max(accepted, key=_order) if accepted else None
        return SchoolStatus(
            Completeness.EXEMPT,
            False,
            current.id if current else None,
            current.received_at if current else None,
        )
    if accepted:
        current = max(accepted, key=_order)
        # On time once any accepted version arrived by the deadline, even if corrected later.
        on_time = any(item.received_at < deadline_end for item in accepted)
        state = Completeness.ON_TIME if on_time else Completeness.LATE
        return SchoolStatus(state, on_time, current.id, current.received_at)
    if any(item.decision is Decision.HELD for item in facts):
        return SchoolStatus(Completeness.HELD, False, None, None)
    if facts:
        return SchoolStatus(Completeness.RECEIVED_INVALID, False, None, None)
    return SchoolStatus(Completeness.MISSING, False, None, None)
