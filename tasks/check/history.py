"""The rules a workbook cannot be judged on alone (SPEC §3): `late`, `total_jump`, `unregistered_sender`.

The rules are plain functions over plain values; `previous_totals` looks up in the database what
`total_jump` compares with, and `db_findings` applies the three rules to one checked file (called by
`tasks.storage.submissions.judge`). `decide` turns a submission's findings into its decision: any
error rejects, else an unregistered sender holds it for review.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.utils import parseaddr

from sqlalchemy import Connection, select

from config.settings import TIMEZONE
from schemas.contract import REACH_EXTREME_MIN_GROUP, TOTAL_JUMP_RATIO
from schemas.findings import Finding, make_finding
from schemas.reference import Reference
from schemas.workbook import EXCEL_ROW, ParsedWorkbook
from tasks.check.checking import Checked
from tasks.storage.rows import is_blank
from tasks.storage.states import Decision, State
from tasks.storage.tables import SHEET_TABLES, SUBMISSIONS

UNREGISTERED_SENDER = "unregistered_sender"


@dataclass(frozen=True)
class GroupTotal:
    """One audience group's `Tổng số` in a submission, with the Excel row it was read from."""

    group: str
    total: object  # an int when readable; anything else is ignored by the rules
    excel_row: int | None = None


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def late_finding(received_at: dt.datetime, deadline_end: dt.datetime) -> Finding | None:
    """Return a `late` warning when the file arrived at or after the end of the deadline day."""
    if received_at < deadline_end:
        return None
    local = received_at.astimezone(TIMEZONE)
    # deadline_end is the first instant after the (inclusive) deadline day.
    deadline_day = (deadline_end.astimezone(TIMEZONE) - dt.timedelta(microseconds=1)).date()
    return make_finding(
        "late", value=local.strftime("%d/%m/%Y %H:%M"), detail=deadline_day.strftime("%d/%m/%Y")
    )


def total_jump_findings(
    current: Iterable[GroupTotal],
    previous: Mapping[str, object],
    *,
    ratio: float = TOTAL_JUMP_RATIO,
    min_group: int = REACH_EXTREME_MIN_GROUP,
) -> list[Finding]:
    """Return a `total_jump` warning per reach group whose total moved more than `ratio` since last cycle.

    `previous` maps group codes to the totals of the school's current accepted submission of the
    previous cycle. Groups missing on either side, a previous total of 0 (no base to compare with) and
    groups smaller than `min_group` on both sides (3 → 4 managers is not news) are left alone.
    """
    found = []
    for row in current:
        now, before = _count(row.total), _count(previous.get(row.group))
        if now is None or before is None or before == 0:
            continue
        if max(now, before) < min_group or abs(now - before) <= ratio * before:
            continue
        change = (now - before) / before
        found.append(
            make_finding(
                "total_jump",
                "reach",
                row.excel_row,
                "total",
                now,
                detail=f"kỳ trước {before}, kỳ này {now}, {change:+.0%}",
                row_code=row.group,
            )
        )
    return found


def sender_address(sender: str | None) -> str:
    """Return the bare, case-folded address of a sender such as `Cô Lan <Lan@Truong.vn>`."""
    return parseaddr(sender or "")[1].strip().casefold()


def unregistered_sender_finding(sender: str | None, registered: Iterable[str]) -> Finding | None:
    """Return an `unregistered_sender` warning when a sender is given and is not one of the school's.

    Files without a sender (the drop folder) are never held.
    """
    if not sender or not sender.strip():
        return None
    address = sender_address(sender)
    if address and address in {sender_address(item) for item in registered}:
        return None
    return make_finding(UNREGISTERED_SENDER, value=address or sender.strip())


def decide(findings: Iterable[Finding]) -> Decision:
    """Return the decision findings lead to: any error rejects, an unregistered sender holds."""
    findings = list(findings)
    if any(finding.is_error for finding in findings):
        return Decision.REJECTED
    if any(finding.rule == UNREGISTERED_SENDER for finding in findings):
        return Decision.HELD
    return Decision.ACCEPTED


# --------------------------------------------------------------------------------------------------
# The rules over what the database holds


def reach_totals(parsed: ParsedWorkbook) -> list[GroupTotal]:
    """Return the reach sheet's group totals with their Excel rows, for `total_jump`."""
    frame = parsed.tables.get("reach")
    if frame is None or "group" not in frame.columns or "total" not in frame.columns:
        return []
    excel_rows = frame[EXCEL_ROW] if EXCEL_ROW in frame.columns else [None] * len(frame)
    return [
        GroupTotal(group, total, None if is_blank(row) else int(row))
        for group, total, row in zip(frame["group"], frame["total"], excel_rows, strict=True)
        if isinstance(group, str)
    ]


def previous_totals(
    conn: Connection, reference: Reference, pairs: Iterable[tuple[str | None, str]]
) -> dict[tuple[str, str], dict[str, object]]:
    """Return per (school, cycle) the group totals of the school's current accepted previous-cycle report."""
    wanted = {
        (school, reference.calendar.previous(cycle_id)): (school, cycle_id)
        for school, cycle_id in pairs
        if school
    }
    if not wanted:
        return {}
    reach = SHEET_TABLES["reach"]
    query = (
        select(SUBMISSIONS.c.school_code, SUBMISSIONS.c.cycle_id, reach.c.group, reach.c.total)
        .join(reach, reach.c.submission_id == SUBMISSIONS.c.id)
        .where(
            SUBMISSIONS.c.state == State.ACCEPTED.value,
            SUBMISSIONS.c.school_code.in_({school for school, _ in wanted}),
            SUBMISSIONS.c.cycle_id.in_({cycle for _, cycle in wanted}),
        )
    )
    found: dict[tuple[str, str], dict[str, object]] = {}
    for school, cycle_id, group, total in conn.execute(query):
        target = wanted.get((school, cycle_id))
        if target is not None:
            found.setdefault(target, {})[group] = total  # type: ignore[index]
    return found


def db_findings(
    item: Checked, reference: Reference, previous: Mapping[str, object] | None, sender: str | None
) -> list[Finding]:
    """Return the database-dependent findings of a checked file: late, total_jump, unregistered_sender."""
    found: list[Finding] = []
    cycle = reference.calendar.get(item.cycle_id)
    if cycle is not None:
        late = late_finding(item.record.file.received_at, cycle.deadline_end)
        if late is not None:
            found.append(late)
    school = reference.schools.get(item.school_code) if item.school_code else None
    if school is not None:
        held = unregistered_sender_finding(sender, school.emails)
        if held is not None:
            found.append(held)
    if previous:
        found.extend(total_jump_findings(reach_totals(item.parsed), previous))
    return found
