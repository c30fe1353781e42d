"""What a reply may say about stored data: the school's CT1/CT2 figures and what changed (SPEC §4).

Stored values only ever reach a sender registered for the school (`may_see_stored`), a change list
compares only with that school's own earlier submission (`previous_version`), and no incident count
is ever listed: a change on `Vụ việc` is said without its numbers.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parseaddr
from typing import Any

from sqlalchemy import Connection, and_, or_, select

from db import models
from schemas import messages as vi
from schemas.contract import (
    ACTIVITIES,
    ACTIVITY_TYPES,
    AUDIENCE_GROUPS,
    CHECKLIST,
    CHECKLIST_ITEMS,
    GENERAL,
    INCIDENTS,
    REACH,
)
from schemas.indicators import reach_percent
from schemas.reference import Reference, School
from schemas.states import State
from tasks.mail.wording import day

SUBMISSIONS = models.Submission.__table__
RECEIPTS = models.FileReceipt.__table__
SHEET_TABLES = {
    GENERAL.key: models.GeneralInfo.__table__,
    REACH.key: models.ReachRow.__table__,
    ACTIVITIES.key: models.Activity.__table__,
    CHECKLIST.key: models.ChecklistAnswer.__table__,
    INCIDENTS.key: models.IncidentCount.__table__,
}
INDICATOR_CODES = ("CT1", "CT2")
# A reviewed submission is the school's own whoever mailed it; a held one is not (yet).
_REVIEWED_STATES = (State.ACCEPTED.value, State.SUPERSEDED.value)


def _address(sender: str | None) -> str:
    return parseaddr(sender or "")[1].strip().casefold()


def may_see_stored(sender: str | None, school: School | None) -> bool:
    """Return whether a sender is registered for the school, so may read what is stored for it."""
    address = _address(sender)
    return bool(address and school is not None and address in {_address(item) for item in school.emails})


def previous_version(
    conn: Connection, submission_id: int, school: School, cycle_id: str, received_at: dt.datetime
) -> tuple[int, dt.datetime] | None:
    """Return (id, received_at) of the school's own submission for the cycle received just before one.

    Its own: sent by one of the school's registered addresses, dropped in the folder by the office, or
    accepted by the operator's review. A stranger's held or rejected file is never compared with.
    """
    earlier = or_(
        SUBMISSIONS.c.received_at < received_at,
        and_(SUBMISSIONS.c.received_at == received_at, SUBMISSIONS.c.id < submission_id),
    )
    rows = conn.execute(
        select(SUBMISSIONS.c.id, SUBMISSIONS.c.received_at, SUBMISSIONS.c.state, RECEIPTS.c.sender)
        .outerjoin(RECEIPTS, RECEIPTS.c.id == SUBMISSIONS.c.receipt_id)
        .where(
            SUBMISSIONS.c.school_code == school.code,
            SUBMISSIONS.c.cycle_id == cycle_id,
            SUBMISSIONS.c.id != submission_id,
            SUBMISSIONS.c.file_format != "",  # an unreadable file has no values to compare with
            earlier,
        )
        .order_by(SUBMISSIONS.c.received_at.desc(), SUBMISSIONS.c.id.desc())
    )
    for row in rows:
        if row.state in _REVIEWED_STATES or not row.sender or may_see_stored(row.sender, school):
            return row.id, row.received_at
    return None


@dataclass
class SheetValues:
    """A submission's stored sheet values, keyed by contract codes (incident counts included: they are
    compared to say that `Vụ việc` changed, never listed)."""

    general: dict[str, object] = field(default_factory=dict)
    reach: dict[str, dict[str, object]] = field(default_factory=dict)
    checklist: dict[str, dict[str, object]] = field(default_factory=dict)
    incidents: dict[str, dict[str, object]] = field(default_factory=dict)
    activities: list[dict[str, object]] = field(default_factory=list)


def load_values(conn: Connection, submission_id: int) -> SheetValues:
    """Read one submission's normalised sheet rows."""
    values = SheetValues()
    general = SHEET_TABLES[GENERAL.key]
    row = conn.execute(select(general).where(general.c.submission_id == submission_id)).first()
    if row is not None:
        values.general = {item.key: row._mapping[item.key] for item in GENERAL.fields}
    for sheet, target, key in (
        (REACH, values.reach, "group"),
        (CHECKLIST, values.checklist, "item"),
        (INCIDENTS, values.incidents, "category"),
    ):
        table = SHEET_TABLES[sheet.key]
        for found in conn.execute(select(table).where(table.c.submission_id == submission_id)):
            target[found._mapping[key]] = {item.key: found._mapping[item.key] for item in sheet.fields}
    table = SHEET_TABLES[ACTIVITIES.key]
    values.activities = [
        {item.key: found._mapping[item.key] for item in ACTIVITIES.fields}
        for found in conn.execute(
            select(table)
            .where(table.c.submission_id == submission_id)
            .order_by(table.c.excel_row, table.c.id)
        )
    ]
    return values


# --------------------------------------------------------------------------------------------------
# Indicators


@dataclass(frozen=True)
class IndicatorFigure:
    """One school-level indicator: Σreached / Σtotal over its groups, in %, against its target."""

    code: str
    value: float | None
    target: float | None
    direction: str
    met: bool | None


def indicator_figures(
    reference: Reference, reach: Mapping[str, Mapping[str, object]]
) -> list[IndicatorFigure]:
    """Return CT1 and CT2 of one school from its reach rows (catalog groups and targets)."""
    figures = []
    for code in INDICATOR_CODES:
        indicator = reference.indicator(code)
        if indicator is None or indicator.manual:
            continue
        value = reach_percent(indicator.groups, reach)
        figures.append(IndicatorFigure(code, value, indicator.target, indicator.direction,
                                       indicator.is_met(value)))
    return figures


def _percent(value: float) -> str:
    return f"{value:.1f}".replace(".", ",") + "%"


def indicator_lines(figures: Sequence[IndicatorFigure]) -> list[str]:
    """Return one Vietnamese line per indicator figure."""
    lines = []
    for figure in figures:
        sign = "≥" if figure.direction == ">=" else "≤"
        target = f"{sign} {figure.target:g}%" if figure.target is not None else "-"
        verdict = vi.INDICATOR_VERDICTS[figure.met] if figure.met is not None else vi.INDICATOR_NO_DATA
        value = _percent(figure.value) if figure.value is not None else vi.INDICATOR_NO_DATA
        lines.append(vi.INDICATOR_LINE.format(code=figure.code, value=value, target=target, verdict=verdict))
    return lines


# --------------------------------------------------------------------------------------------------
# Changes


def _shown(value: object, codes: Any = None) -> str:
    """Show a stored value as the school typed it: labels for codes, Có/Không, dd/mm/yyyy, (trống)."""
    if value is None or value == "":
        return vi.BLANK
    if isinstance(value, bool):
        return vi.YES if value else vi.NO
    if codes is not None and isinstance(value, str) and value in codes.codes:
        return codes.label(value)
    if isinstance(value, dt.date):
        return day(value)
    return str(value)


def _row_changes(sheet: Any, rows: Any, before: Mapping[str, Mapping[str, object]],
                 after: Mapping[str, Mapping[str, object]]) -> list[str]:
    lines = []
    for choice in rows.choices:
        old, new = before.get(choice.code, {}), after.get(choice.code, {})
        if not old and not new:
            continue
        for item in sheet.fields:
            if item.key == sheet.row_field:
                continue
            was, now = old.get(item.key), new.get(item.key)
            if was != now:
                lines.append(vi.CHANGE_CELL.format(
                    sheet=sheet.name, row=vi.CHANGE_ROW.format(label=choice.short_label or choice.label),
                    column=item.label, before=_shown(was, item.codes), after=_shown(now, item.codes)))
    return lines


def _activity(row: Mapping[str, object]) -> tuple[object, ...]:
    return tuple(row.get(item.key) for item in ACTIVITIES.fields if item.key != "seq")


def _describe_activity(row: Mapping[str, object]) -> str:
    content = str(row.get("content") or vi.BLANK)
    content = content if len(content) <= 80 else content[:79] + "…"
    parts = [_shown(row.get("start_date")), _shown(row.get("activity_type"), ACTIVITY_TYPES), content]
    return " - ".join(parts)


def _incidents_changed(before: SheetValues, after: SheetValues) -> bool:
    for code in set(before.incidents) | set(after.incidents):
        old, new = before.incidents.get(code, {}), after.incidents.get(code, {})
        for item in INCIDENTS.fields:
            if item.key != INCIDENTS.row_field and (old.get(item.key) or 0) != (new.get(item.key) or 0):
                return True
    return False


def changes(before: SheetValues, after: SheetValues) -> list[str]:
    """Return what changed between two versions of a school's report, in the order of the workbook.

    Incident counts are confidential even to the school's own mailbox: a change there is said, not shown.
    """
    lines = []
    for item in GENERAL.fields:
        was, now = before.general.get(item.key), after.general.get(item.key)
        if was != now:
            lines.append(vi.CHANGE_FIELD.format(sheet=GENERAL.name, column=item.label, before=_shown(was),
                                                after=_shown(now)))
    lines += _row_changes(REACH, AUDIENCE_GROUPS, before.reach, after.reach)
    if len(before.activities) != len(after.activities):
        lines.append(vi.ACTIVITY_COUNT.format(sheet=ACTIVITIES.name, before=len(before.activities),
                                              after=len(after.activities)))
    # Activities have no key: compare them as a multiset, so an inserted row is one addition.
    unmatched = Counter(_activity(row) for row in before.activities)
    for row in after.activities:
        key = _activity(row)
        if unmatched[key] > 0:
            unmatched[key] -= 1
        else:
            lines.append(vi.ACTIVITY_ADDED.format(sheet=ACTIVITIES.name, activity=_describe_activity(row)))
    for row in before.activities:
        key = _activity(row)
        if unmatched[key] > 0:
            unmatched[key] -= 1
            lines.append(vi.ACTIVITY_REMOVED.format(sheet=ACTIVITIES.name, activity=_describe_activity(row)))
    lines += _row_changes(CHECKLIST, CHECKLIST_ITEMS, before.checklist, after.checklist)
    if _incidents_changed(before, after):
        lines.append(vi.INCIDENTS_CHANGED.format(sheet=INCIDENTS.name))
    return lines
