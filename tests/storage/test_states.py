"""State and completeness rules of SPEC §4, on plain facts."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from tasks.storage.states import Completeness, Decision, State, SubmissionFacts, derive_states, school_status

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
DEADLINE_END = dt.datetime(2023, 5, 6, tzinfo=TZ)


def at(day: int, hour: int = 9) -> dt.datetime:
    return dt.datetime(2023, 5, day, hour, tzinfo=TZ)


def facts(*items: tuple[int, str | None, dt.datetime, Decision]) -> list[SubmissionFacts]:
    return [SubmissionFacts(i, code, when, decision) for i, code, when, decision in items]


def test_resubmission_supersedes_older_accepted() -> None:
    subs = facts((1, "MN001", at(2), Decision.ACCEPTED), (2, "MN001", at(4), Decision.ACCEPTED))
    assert derive_states(subs) == {1: State.SUPERSEDED, 2: State.ACCEPTED}


def test_rejected_resubmission_does_not_supersede() -> None:
    subs = facts((1, "MN001", at(2), Decision.ACCEPTED), (2, "MN001", at(4), Decision.REJECTED))
    assert derive_states(subs) == {1: State.ACCEPTED, 2: State.REJECTED}
    status = school_status(subs, DEADLINE_END)
    assert (status.state, status.current_id) == (Completeness.ON_TIME, 1)


def test_equal_received_times_break_ties_by_arrival() -> None:
    subs = facts((7, "MN001", at(2), Decision.ACCEPTED), (9, "MN001", at(2), Decision.ACCEPTED))
    assert derive_states(subs)[7] is State.SUPERSEDED


def test_on_time_school_stays_on_time_after_late_correction() -> None:
    subs = facts((1, "MN001", at(5, 23), Decision.ACCEPTED), (2, "MN001", at(9), Decision.ACCEPTED))
    status = school_status(subs, DEADLINE_END)
    assert status.state is Completeness.ON_TIME and status.on_time and status.current_id == 2


def test_late_only_is_late() -> None:
    subs = facts((1, "MN001", at(6, 0), Decision.ACCEPTED))
    assert school_status(subs, DEADLINE_END).state is Completeness.LATE


def test_completeness_without_accepted_submission() -> None:
    assert school_status([], DEADLINE_END).state is Completeness.MISSING
    rejected = facts((1, "MN001", at(2), Decision.REJECTED))
    assert school_status(rejected, DEADLINE_END).state is Completeness.RECEIVED_INVALID
    held = facts((1, "MN001", at(2), Decision.REJECTED), (2, "MN001", at(3), Decision.HELD))
    assert school_status(held, DEADLINE_END).state is Completeness.HELD
    assert school_status(held, DEADLINE_END, exempt=True).state is Completeness.EXEMPT
