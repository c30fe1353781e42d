"""The report's input contract: `CycleData`, one frame per kind of row, and its normalisation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from schemas.reference import Cycle, Indicator

from schemas.states import SCHOOL_STATES, SUBMISSION_STATES  # noqa: F401  (re-exported for the sections)

COLUMNS: dict[str, tuple[str, ...]] = {
    "schools": (
        "code",
        "name",
        "level",
        "ward",
        "ownership",
        "state",
        "on_time",
        "received_at",
        "submission_id",
    ),
    "submissions": (
        "id",
        "school_code",
        "state",
        "received_at",
        "sha256",
        "error_count",
        "warning_count",
    ),
    "findings": ("submission_id", "severity", "rule"),
    "reach": ("school_code", "group", "total", "female", "reached", "reached_female"),
    "activities": (
        "school_code",
        "activity_type",
        "start_date",
        "end_date",
        "format",
        "content",
        "staff",
        "staff_female",
        "students",
        "students_female",
        "parents",
        "parents_female",
    ),
    "checklist": ("school_code", "item", "answer"),
    "incidents": (
        "school_code",
        "category",
        "cases",
        "children",
        "children_female",
        "reported",
        "supported",
    ),
    "general": ("school_code", "child_protection_staff", "trained_staff"),
}
PREVIOUS_FRAMES = ("schools", "reach", "activities")

# Count columns: blank means 0 (SPEC §3 for activities and incidents; reach counts are required).
_COUNTS: dict[str, tuple[str, ...]] = {
    "reach": ("total", "female", "reached", "reached_female"),
    "activities": ("staff", "staff_female", "students", "students_female", "parents", "parents_female"),
    "incidents": ("cases", "children", "children_female", "reported", "supported"),
    "general": ("child_protection_staff", "trained_staff"),
    "submissions": ("error_count", "warning_count"),
}


def empty_frame(name: str) -> pd.DataFrame:
    """Return an empty frame with the columns `CycleData` expects for `name`."""
    return pd.DataFrame({column: pd.Series(dtype=object) for column in COLUMNS[name]})


def _check_columns(name: str, frame: pd.DataFrame) -> None:
    missing = [column for column in COLUMNS[name] if column not in frame.columns]
    if missing:
        raise ValueError(f"{name} frame lacks columns {missing}")


@dataclass(frozen=True, eq=False)
class PreviousCycle:
    """The previous cycle's schools, reach and activities frames (same columns as in `CycleData`)."""

    cycle_id: str
    schools: pd.DataFrame
    reach: pd.DataFrame
    activities: pd.DataFrame

    def __post_init__(self) -> None:
        for name in PREVIOUS_FRAMES:
            _check_columns(name, getattr(self, name))


@dataclass(frozen=True, eq=False)
class CycleData:
    """Everything one cycle's report is computed from; frames hold only current accepted data.

    Columns (COLUMNS) and the dtypes expected; extra columns are ignored, count columns are coerced
    (blank → 0) and text columns may be `object` or `str`:
    - schools: code, name, level (SCHOOL_LEVELS code), ward, ownership: str; state: one of
      SCHOOL_STATES; on_time: bool; received_at: tz-aware datetime64 or NaT; submission_id: Int64.
    - submissions: id: int; school_code: str or None; state: one of SUBMISSION_STATES;
      received_at: tz-aware datetime64; sha256: str; error_count, warning_count: int.
    - findings: submission_id: int; severity: "error" | "warning"; rule: RULES code.
    - reach: school_code, group (AUDIENCE_GROUPS code): str; total, female, reached, reached_female: int.
    - activities: school_code, activity_type, format, content: str; start_date, end_date: date or
      None; staff, staff_female, students, students_female, parents, parents_female: int.
    - checklist: school_code, item (CHECKLIST_ITEMS code): str; answer: bool or None.
    - incidents: school_code, category (INCIDENT_CATEGORIES code): str; cases, children,
      children_female, reported, supported: int.
    - general: school_code: str; child_protection_staff, trained_staff: int.
    `manual_values` are in the catalog's unit (a "%" indicator's 72.5 means 72.5%) and override
    `Indicator.value`; an indicator with neither shows "Chưa nhập".
    `incidents` are the current rows (for the restricted file only). `published_incidents` are the
    rows the public totals are computed from: the cycle's incidents frozen at `incidents_cutoff`
    (see `section_6_incidents`), or None while the cutoff has not passed (nothing is published).
    """

    cycle: Cycle
    as_of: dt.datetime
    indicators: tuple[Indicator, ...]
    schools: pd.DataFrame
    submissions: pd.DataFrame
    findings: pd.DataFrame
    reach: pd.DataFrame
    activities: pd.DataFrame
    checklist: pd.DataFrame
    incidents: pd.DataFrame
    general: pd.DataFrame
    manual_values: Mapping[str, float] = field(default_factory=dict)
    reference_files: Mapping[str, str] = field(default_factory=dict)  # file name -> sha256 (manifest)
    previous_cycle_id: str | None = None
    previous: PreviousCycle | None = None
    published_incidents: pd.DataFrame | None = None
    incidents_cutoff: dt.datetime | None = None

    def __post_init__(self) -> None:
        if self.as_of.tzinfo is None:
            raise ValueError("as_of must be timezone-aware")
        for name in COLUMNS:
            _check_columns(name, getattr(self, name))
        if self.published_incidents is not None:
            _check_columns("incidents", self.published_incidents)
        unknown = set(self.schools["state"].dropna()) - set(SCHOOL_STATES)
        if unknown:
            raise ValueError(f"unknown school states {sorted(unknown)}")


def with_counts(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    frame = frame.copy()
    for column in _COUNTS.get(name, ()):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").fillna(0).astype("int64")
    return frame


def text_column(series: pd.Series) -> pd.Series:
    return series.astype(object).where(series.notna(), "").map(str)


def sorted_schools(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for column in ("code", "name", "level", "ward", "ownership", "state"):
        frame[column] = text_column(frame[column])
    return frame.sort_values("code", kind="stable").reset_index(drop=True)

