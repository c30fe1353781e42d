"""Load one cycle's report input (`CycleData`) from typed storage rows, as the cycle stood at `as_of`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Engine, Table, select

from db import models
from schemas.reference import Reference
from tasks.report.cycle_data import COLUMNS, CycleData, PreviousCycle, empty_frame
from tasks.report.section_6_incidents import incident_cutoff
from tasks.storage.cycle_rows import CycleRows, read_cycle_rows

# Public sheet tables; incident counts are read separately, only for the restricted file and the
# suppressed district totals.
_SHEET_TABLES: dict[str, Table] = {
    "reach": models.ReachRow.__table__,
    "activities": models.Activity.__table__,
    "checklist": models.ChecklistAnswer.__table__,
    "general": models.GeneralInfo.__table__,
    "incidents": models.IncidentCount.__table__,
}


def _frame(name: str, rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    if not rows:
        return empty_frame(name)
    return pd.DataFrame(rows, columns=list(COLUMNS[name]))


def _sheet_rows(
    engine: Engine, name: str, current: dict[int, str]
) -> pd.DataFrame:
    """Return the rows of one sheet table for the current submissions, keyed by school code."""
    if not current:
        return empty_frame(name)
    table = _SHEET_TABLES[name]
    wanted = [column for column in COLUMNS[name] if column != "school_code"]
    with engine.connect() as conn:
        result = conn.execute(
            select(table.c.submission_id, *(table.c[column] for column in wanted))
            .where(table.c.submission_id.in_(sorted(current)))
            .order_by(table.c.submission_id, *(table.c[column] for column in wanted[:1]))
        ).all()
    rows = [
        {"school_code": current[row.submission_id], **{column: getattr(row, column) for column in wanted}}
        for row in result
    ]
    return _frame(name, rows)


def _moment(value: dt.datetime | None) -> pd.Timestamp:
    return pd.Timestamp(value) if value is not None else pd.NaT


def _schools_frame(rows: CycleRows, reference: Reference) -> pd.DataFrame:
    records = []
    for entry in rows.schools:
        school = reference.school(entry.code)
        records.append(
            {
                "code": entry.code,
                "name": entry.name,
                "level": entry.level,
                "ward": entry.ward,
                "state": entry.state,
                "on_time": entry.on_time,
                "ownership": school.ownership if school else "",
                "received_at": _moment(entry.received_at),
                "submission_id": entry.submission_id,
            }
        )
    frame = _frame("schools", records)
    frame["submission_id"] = frame["submission_id"].astype("Int64")
    return frame


def _submissions_frame(rows: CycleRows) -> tuple[pd.DataFrame, pd.DataFrame]:
    submissions, findings = [], []
    for entry in rows.submissions:
        errors = sum(item.severity == "error" for item in entry.findings)
        submissions.append(
            {
                "id": entry.id,
                "school_code": entry.school_code,
                "state": entry.state,
                "received_at": _moment(entry.received_at),
                "sha256": entry.sha256,
                "error_count": errors,
                "warning_count": len(entry.findings) - errors,
            }
        )
        findings.extend(
            {"submission_id": entry.id, "severity": item.severity, "rule": item.rule}
            for item in entry.findings
        )
    return _frame("submissions", submissions), _frame("findings", findings)


def load_cycle_data(
    engine: Engine,
    reference: Reference,
    cycle_id: str,
    as_of: dt.datetime,
    manual_values: dict[str, float] | None = None,
    *,
    public_engine: Engine | None = None,
) -> CycleData:
    """Read everything the cycle report needs, counting only submissions received by `as_of`.

    `public_engine` (on PostgreSQL the reporting role's, which cannot read incident rows) reads all but
    the incident rows; `engine` reads only those, for the restricted file and the frozen public totals.
    """
    public = public_engine or engine
    engine, confidential = public, engine
    cycle = reference.calendar.get(cycle_id)
    if cycle is None:
        raise ValueError(f"unknown cycle {cycle_id!r}")
    rows = read_cycle_rows(engine, reference, cycle_id, as_of=as_of)
    current = rows.current()
    submissions, findings = _submissions_frame(rows)

    previous_id = reference.calendar.previous(cycle_id)
    previous = None
    with engine.connect() as conn:
        has_previous = conn.execute(
            select(models.Submission.id).where(models.Submission.cycle_id == previous_id).limit(1)
        ).first()
    if has_previous:
        before = read_cycle_rows(engine, reference, previous_id, as_of=as_of)
        previous_current = before.current()
        previous = PreviousCycle(
            cycle_id=previous_id,
            schools=_schools_frame(before, reference),
            reach=_sheet_rows(engine, "reach", previous_current),
            activities=_sheet_rows(engine, "activities", previous_current),
        )

    # Public incident totals are frozen at the cycle's incident cutoff (disclosure control, see
    # section_6_incidents): read the submissions current then, not at `as_of`.
    cutoff = incident_cutoff(cycle.deadline_end)
    published = None
    if as_of >= cutoff:
        frozen = read_cycle_rows(engine, reference, cycle_id, as_of=cutoff)
        published = _sheet_rows(confidential, "incidents", frozen.current())

    return CycleData(
        cycle=cycle,
        as_of=as_of,
        indicators=reference.indicators,
        schools=_schools_frame(rows, reference),
        submissions=submissions,
        findings=findings,
        reach=_sheet_rows(engine, "reach", current),
        activities=_sheet_rows(engine, "activities", current),
        checklist=_sheet_rows(engine, "checklist", current),
        incidents=_sheet_rows(confidential, "incidents", current),
        general=_sheet_rows(engine, "general", current),
        manual_values=dict(manual_values or {}),
        reference_files=reference.fingerprint(),
        previous_cycle_id=previous_id if previous else None,
        previous=previous,
        published_incidents=published,
        incidents_cutoff=cutoff,
    )
