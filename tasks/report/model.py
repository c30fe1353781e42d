"""The computed report: tables that know their Vietnamese labels but not how they are drawn."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

import pandas as pd

ColumnKind = Literal["text", "int", "pct", "date", "datetime", "met", "small_count", "measure", "change"]


@dataclass(frozen=True)
class Column:
    """One report column: frame key, Vietnamese label, and how its raw values are shown."""

    key: str
    label: str
    kind: ColumnKind = "text"
    # A "met" column whose verdict colours this one (green met, red not met).
    met_key: str | None = None
    # For "measure" and "change": the column holding each row's unit ("%" means a 0–1 fraction).
    unit_key: str | None = None
    empty: str = "—"
    width: int | None = None


@dataclass(frozen=True, eq=False)
class Table:
    """A titled frame of raw values with the columns to show, in order."""

    id: str
    title: str
    sheet: str
    columns: tuple[Column, ...]
    frame: pd.DataFrame
    note: str = ""
    # A long per-school list: printed as an appendix (Phụ lục) after the signature, not in the body.
    appendix: bool = False

    def __post_init__(self) -> None:
        if len(self.sheet) > 31 or re.search(r"[\[\]:*?/\\]", self.sheet):
            raise ValueError(f"bad Excel sheet name {self.sheet!r}")
        missing = [c.key for c in self.columns if c.key not in self.frame.columns]
        if missing:
            raise ValueError(f"table {self.id} lacks columns {missing}")


@dataclass(frozen=True, eq=False)
class Section:
    """One numbered report section: heading, lead paragraphs, tables."""

    number: int
    title: str
    tables: tuple[Table, ...]
    paragraphs: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class CycleReport:
    """The computed report: header facts, the seven sections after the header, chart data."""

    cycle_id: str
    cycle_label: str
    period_start: dt.date
    period_end: dt.date
    deadline: dt.date
    as_of: dt.datetime
    previous_cycle_id: str | None
    sections: tuple[Section, ...]
    # Chart data: ward, then one fraction column per reach indicator; and per-level state counts.
    reach_by_ward: pd.DataFrame
    reach_chart_codes: tuple[str, ...]
    reach_chart_target: float | None
    completeness_by_level: pd.DataFrame
    # Per-school incident counts: only render_restricted_xlsx may read this.
    restricted_incidents: Table
    restricted_totals: Table

    def table(self, table_id: str) -> Table:
        """Return the table with this id."""
        for section in self.sections:
            for table in section.tables:
                if table.id == table_id:
                    return table
        raise KeyError(table_id)

