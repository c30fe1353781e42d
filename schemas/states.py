"""The coded states of SPEC §4, spelled once: the database's CHECK constraints, the state rules, the
status output, the report and the messages all read them from here."""

from __future__ import annotations

from enum import StrEnum


class Decision(StrEnum):
    """What validation or an operator decided about one submission on its own."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    HELD = "held"


class State(StrEnum):
    """A submission's state once its school's other submissions are taken into account."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    HELD = "held"
    SUPERSEDED = "superseded"


class Completeness(StrEnum):
    """A school's completeness for one cycle."""

    ON_TIME = "on_time"
    LATE = "late"
    RECEIVED_INVALID = "received_invalid"
    HELD = "held"
    MISSING = "missing"
    EXEMPT = "exempt"


DECISIONS: tuple[str, ...] = tuple(item.value for item in Decision)
SUBMISSION_STATES: tuple[str, ...] = tuple(item.value for item in State)
SCHOOL_STATES: tuple[str, ...] = tuple(item.value for item in Completeness)
# Exempt schools owe nothing, so the completeness charts leave them out.
CHARTED_SCHOOL_STATES: tuple[str, ...] = tuple(
    item.value for item in Completeness if item is not Completeness.EXEMPT
)
