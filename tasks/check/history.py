"""The rules a workbook cannot be judged on alone (SPEC §3): `late`, `total_jump`, `unregistered_sender`.

Plain functions over plain values; `tasks.storage.submissions` looks the values up (deadline, the
school's previous
accepted totals, its registered addresses) and calls them. `decide` turns a submission's findings
into its decision: any error rejects, else an unregistered sender holds it for review.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.utils import parseaddr

from config.settings import TIMEZONE
from schemas.contract import REACH_EXTREME_MIN_GROUP, TOTAL_JUMP_RATIO
from schemas.findings import Finding, make_finding
from tasks.storage.states import Decision

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
