"""pandera schemas of the parsed workbook, built from the contract: one per sheet, checks named by rule.

Each check is named `<rule>:<field>` (e.g. `female_gt_total:staff_female`), so a failure case maps to
a finding by data: the rule code and the cell's field come from the name, the row from the index.
The frames validated here are batches: one row per data row of every workbook of a batch (one row per
workbook for `Thông tin chung`), with a SUBMISSION column and the helper columns a sheet's rules read
(what the registry and calendar say about each row's workbook).

Cells keep the parser's values (int, date, bool, code, text, None) or the raw text when coercion
failed, so nothing is coerced here: a check judges each cell and the raw text survives to be reported.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from schemas.contract import (
    DATA_SHEETS,
    NOT_GREATER,
    PRESCHOOL_ONLY_ITEM,
    REACH_EXTREME_MIN_GROUP,
    RULES,
    SCHOOL_LEVELS,
    Field,
    Kind,
    Sheet,
    count_limit,
)
from schemas.findings import format_value
from schemas.workbook import EXCEL_ROW

# Position of a row's workbook in its batch.
SUBMISSION = "_submission"
# Helper columns: facts about a row's workbook that rules need beyond the cells themselves.
SCHOOL_KNOWN = "_school_known"
CYCLE_KNOWN = "_cycle_known"
SCHOOL_LEVEL = "_school_level"
PERIOD_START = "_period_start"
PERIOD_END = "_period_end"

# The level whose schools must answer the self-inspection item (SPEC §3).
PRESCHOOL = "mam_non"
if PRESCHOOL not in SCHOOL_LEVELS.codes:
    raise ValueError(f"the contract's school levels lack {PRESCHOOL!r}")


class _Absent:
    """Marks the cells of a column the workbook lacks: missing_column was reported, nothing else is."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()

# The rule a blank required cell raises where the SPEC names one other than missing_value; None when
# another check judges the blank (a blank cycle is unknown_cycle; a blank answer depends on the item
# and the school's level).
BLANK_RULES: dict[tuple[str, str], str | None] = {
    ("general", "cycle"): None,
    ("activities", "start_date"): "missing_start_date",
    ("activities", "content"): "missing_content",
    ("checklist", "answer"): None,
}
INVALID_RULES: dict[Kind, str] = {Kind.INT: "not_integer", Kind.DATE: "bad_date", Kind.YES_NO: "bad_yes_no"}


# --------------------------------------------------------------------------------------------------
# Cell values


def is_blank(value: object) -> bool:
    """Return whether a cell is empty (None, NaN, NA, NaT or only whitespace); ABSENT is not blank."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, str):
        return not value.strip()
    return False


def as_count(value: object) -> int | None:
    """Return the cell as a non-negative int, or None when it is not one (blank included)."""
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, numbers.Integral):
        return int(value) if value >= 0 else None
    # The parser turns `12.0` into 12; a float that still arrives whole is the same count.
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return None


def as_count_or_zero(value: object) -> int | None:
    """Return the cell as a count where a blank means 0 (activities and incidents sheets)."""
    return 0 if is_blank(value) else as_count(value)


def as_date(value: object) -> dt.date | None:
    """Return the cell as a date, or None when it is not one."""
    if value is pd.NaT:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return None


def is_yes_no(value: object) -> bool:
    """Return whether the parser read the cell as an answer (it turns Có/Không and aliases into bools)."""
    return isinstance(value, bool | np.bool_)


# Whole-column forms of the above. A batch column holds thousands of cells and each check reads
# several columns, so the common cases (None, a plain int, a date) skip the function calls.


def blanks(values: list[Any]) -> list[bool]:
    """Return is_blank of each cell."""
    return [v is None or (type(v) is not int and is_blank(v)) for v in values]


def counts(values: list[Any], blank_is_zero: bool = False) -> list[int | None]:
    """Return each cell as a count (None where it is not one; 0 for a blank if blank_is_zero)."""
    convert = as_count_or_zero if blank_is_zero else as_count
    blank = 0 if blank_is_zero else None
    return [v if type(v) is int and v >= 0 else blank if v is None else convert(v) for v in values]


def dates(values: list[Any]) -> list[dt.date | None]:
    """Return each cell as a date (None where it is not one)."""
    return [v if type(v) is dt.date else as_date(v) for v in values]


# --------------------------------------------------------------------------------------------------
# Checks


Test = Callable[[Any], pd.Series]
Detail = Callable[[pd.DataFrame, int], str]


@dataclass(frozen=True)
class RuleCheck:
    """A pandera check and what its failure means: the rule, the cell's field, the message extras."""

    rule: str
    field: str
    test: Test  # takes the column (or the frame when frame_wide), returns True where the row passes
    frame_wide: bool = False
    other: str | None = None  # field compared against, shown by its label in the message
    detail: Detail | None = None  # the message's {detail} for one failing row

    @property
    def name(self) -> str:
        return f"{self.rule}:{self.field}"

    def check(self) -> pa.Check:
        # ignore_na=False: blanks are judged by the rules themselves (missing_value and friends).
        # No `error=`: pandera would report it instead of the name, and the name is the mapping key.
        return pa.Check(self.test, name=self.name, ignore_na=False)


def _cells(passes: Callable[[list[Any]], list[bool]]) -> Test:
    """Return a column test: passes maps the column's cells to pass flags; ABSENT cells always pass."""

    def test(column: pd.Series) -> pd.Series:
        values = column.tolist()
        passed = [ok or value is ABSENT for ok, value in zip(passes(values), values, strict=True)]
        return pd.Series(passed, index=column.index, dtype=bool)

    return test


def _rows(columns: Iterable[str], passes: Callable[..., list[bool]]) -> Test:
    """Return a frame test: passes maps the named columns' cells (one list each) to pass flags."""
    names = tuple(columns)

    def test(frame: pd.DataFrame) -> pd.Series:
        passed = passes(*(frame[name].tolist() for name in names))
        return pd.Series(passed, index=frame.index, dtype=bool)

    return test


def _filled(values: list[Any]) -> list[bool]:
    return [not blank for blank in blanks(values)]


def _integers(values: list[Any]) -> list[bool]:
    return [b or c is not None for b, c in zip(blanks(values), counts(values), strict=True)]


def _dated(values: list[Any]) -> list[bool]:
    return [b or d is not None for b, d in zip(blanks(values), dates(values), strict=True)]


def _answers(values: list[Any]) -> list[bool]:
    return [b or is_yes_no(v) for b, v in zip(blanks(values), values, strict=True)]


def _field_checks(sheet: Sheet, field: Field) -> list[RuleCheck]:
    """Return the checks one cell at a time of a field: blank, kind, code list, length."""
    if field.key == sheet.row_field:
        return []  # the parser keeps only rows whose label matched, so this cell is always a code
    checks: list[RuleCheck] = []
    if field.required:
        rule = BLANK_RULES.get((sheet.key, field.key), "missing_value")
        if rule is not None and not (field.kind is Kind.INT and sheet.blank_count_is_zero):
            checks.append(RuleCheck(rule, field.key, _cells(_filled)))
    invalid = field.invalid_rule if field.kind is Kind.CODE else INVALID_RULES.get(field.kind)
    if field.kind is Kind.INT:
        checks.append(RuleCheck(invalid, field.key, _cells(_integers)))
        checks.append(_bounded(sheet, field))
    elif field.kind is Kind.DATE:
        checks.append(RuleCheck(invalid, field.key, _cells(_dated)))
    elif field.kind is Kind.YES_NO:
        checks.append(RuleCheck(invalid, field.key, _cells(_answers)))
    elif field.kind is Kind.CODE and field.codes is not None and invalid:
        codes = frozenset(field.codes.codes)

        def coded(values: list[Any]) -> list[bool]:
            return [
                b or (isinstance(v, str) and v in codes) for b, v in zip(blanks(values), values, strict=True)
            ]

        checks.append(RuleCheck(invalid, field.key, _cells(coded)))
    if field.max_length is not None:
        limit = field.max_length

        def short(values: list[Any]) -> list[bool]:
            return [not isinstance(v, str) or len(v) <= limit for v in values]

        checks.append(
            RuleCheck(
                "content_too_long",
                field.key,
                _cells(short),
                detail=lambda frame, index, key=field.key: str(len(frame.at[index, key])),
            )
        )
    return checks


def _bounded(sheet: Sheet, field: Field) -> RuleCheck:
    """Return the check that a count stays within the sheet's limit (no overflow reaches the database)."""
    limit = count_limit(sheet.key)
    shown = f"{limit:,}".replace(",", ".")  # Vietnamese thousands separator

    def within(values: list[Any]) -> list[bool]:
        return [count is None or count <= limit for count in counts(values)]

    return RuleCheck(
        "count_too_large", field.key, _cells(within), detail=lambda _frame, _index: shown
    )


def _relation_checks(sheet: Sheet) -> list[RuleCheck]:
    """Return the contract's NOT_GREATER relations of a sheet, compared only between valid counts."""
    zero = sheet.blank_count_is_zero

    def not_greater(smaller: list[Any], larger: list[Any]) -> list[bool]:
        pairs = zip(counts(smaller, zero), counts(larger, zero), strict=True)
        return [small is None or large is None or small <= large for small, large in pairs]

    return [
        RuleCheck(
            rel.rule,
            rel.smaller,
            _rows((rel.smaller, rel.larger), not_greater),
            frame_wide=True,
            other=rel.larger,
        )
        for rel in NOT_GREATER
        if rel.sheet == sheet.key
    ]


def _general_checks() -> list[RuleCheck]:
    def school_known(codes: list[Any], known: list[Any]) -> list[bool]:
        return [blank or bool(ok) for blank, ok in zip(blanks(codes), known, strict=True)]

    def cycle_known(known: list[Any]) -> list[bool]:
        return [bool(ok) for ok in known]

    return [
        RuleCheck(
            "unknown_school",
            "school_code",
            _rows(("school_code", SCHOOL_KNOWN), school_known),
            frame_wide=True,
        ),
        RuleCheck("unknown_cycle", "cycle", _rows((CYCLE_KNOWN,), cycle_known), frame_wide=True),
    ]


def _reach_checks() -> list[RuleCheck]:
    def not_extreme(total: list[Any], reached: list[Any]) -> list[bool]:
        return [
            people is None or hit is None or people < REACH_EXTREME_MIN_GROUP or hit not in (0, people)
            for people, hit in zip(counts(total), counts(reached), strict=True)
        ]

    def detail(frame: pd.DataFrame, index: int) -> str:
        return "0%" if as_count(frame.at[index, "reached"]) == 0 else "100%"

    return [
        RuleCheck(
            "reach_extreme",
            "reached",
            _rows(("total", "reached"), not_extreme),
            frame_wide=True,
            detail=detail,
        )
    ]


def _activity_checks() -> list[RuleCheck]:
    def ends_after_start(start: list[Any], end: list[Any]) -> list[bool]:
        pairs = zip(dates(start), dates(end), strict=True)
        return [first is None or last is None or last >= first for first, last in pairs]

    def in_period(day: list[Any], start: list[Any], end: list[Any]) -> list[bool]:
        return [
            date is None or first is None or last is None or first <= date <= last
            for date, first, last in zip(dates(day), start, end, strict=True)
        ]

    def period(frame: pd.DataFrame, index: int) -> str:
        return f"{format_value(frame.at[index, PERIOD_START])} – {format_value(frame.at[index, PERIOD_END])}"

    return [
        RuleCheck(
            "end_before_start",
            "end_date",
            _rows(("start_date", "end_date"), ends_after_start),
            frame_wide=True,
        ),
        *(
            RuleCheck(
                "date_outside_period",
                key,
                _rows((key, PERIOD_START, PERIOD_END), in_period),
                frame_wide=True,
                detail=period,
            )
            for key in ("start_date", "end_date")
        ),
    ]


def _checklist_checks() -> list[RuleCheck]:
    def answered(items: list[Any], answers: list[Any]) -> list[bool]:
        return [
            item == PRESCHOOL_ONLY_ITEM or not blank
            for item, blank in zip(items, blanks(answers), strict=True)
        ]

    def inspected(items: list[Any], answers: list[Any], levels: list[Any]) -> list[bool]:
        return [
            not (item == PRESCHOOL_ONLY_ITEM and level == PRESCHOOL and blank)
            for item, blank, level in zip(items, blanks(answers), levels, strict=True)
        ]

    return [
        RuleCheck("missing_value", "answer", _rows(("item", "answer"), answered), frame_wide=True),
        RuleCheck(
            "self_inspection_required",
            "answer",
            _rows(("item", "answer", SCHOOL_LEVEL), inspected),
            frame_wide=True,
        ),
    ]


def _incident_checks() -> list[RuleCheck]:
    def consistent(present: list[Any], missing: list[Any]) -> list[bool]:
        """Fail rows where one count is above 0 and the other 0; the finding goes on the 0."""
        pairs = zip(counts(present, True), counts(missing, True), strict=True)
        return [have is None or lack is None or not (have > 0 and lack == 0) for have, lack in pairs]

    return [
        RuleCheck(
            "children_cases_mismatch", "children", _rows(("cases", "children"), consistent), frame_wide=True
        ),
        RuleCheck(
            "children_cases_mismatch", "cases", _rows(("children", "cases"), consistent), frame_wide=True
        ),
    ]


# Rules of a sheet that read more than one cell, beyond the NOT_GREATER relations, and the helper
# columns they read.
_SHEET_RULES: dict[str, tuple[Callable[[], list[RuleCheck]], tuple[str, ...]]] = {
    "general": (_general_checks, (SCHOOL_KNOWN, CYCLE_KNOWN)),
    "reach": (_reach_checks, ()),
    "activities": (_activity_checks, (PERIOD_START, PERIOD_END)),
    "checklist": (_checklist_checks, (SCHOOL_LEVEL,)),
    "incidents": (_incident_checks, ()),
}


# --------------------------------------------------------------------------------------------------
# Schemas


@dataclass(frozen=True)
class SheetModel:
    """A sheet's pandera schema and the meaning of each of its named checks."""

    sheet: Sheet
    schema: pa.DataFrameSchema
    checks: dict[str, RuleCheck]  # by check name
    helpers: tuple[str, ...]  # helper columns a batch frame must carry


def build_model(sheet: Sheet) -> SheetModel:
    """Build the pandera schema of a sheet from the contract."""
    sheet_rules, helpers = _SHEET_RULES[sheet.key]
    rule_checks = [
        *(check for field in sheet.fields for check in _field_checks(sheet, field)),
        *_relation_checks(sheet),
        *sheet_rules(),
    ]
    unknown = {check.rule for check in rule_checks} - set(RULES)
    if unknown:
        raise ValueError(f"checks on sheet {sheet.key} name rules the contract lacks: {sorted(unknown)}")
    by_name = {check.name: check for check in rule_checks}
    if len(by_name) != len(rule_checks):
        raise ValueError(f"duplicate check names on sheet {sheet.key}")
    columns: dict[str, pa.Column] = {
        SUBMISSION: pa.Column(description="position of the row's workbook in its batch"),
    }
    if sheet.layout == "table":
        columns[EXCEL_ROW] = pa.Column(description="1-based Excel row number")
    for field in sheet.fields:
        columns[field.key] = pa.Column(
            nullable=True,
            title=field.label,
            description=field.note or field.label,
            checks=[
                check.check() for check in rule_checks if not check.frame_wide and check.field == field.key
            ],
        )
    for helper in helpers:
        columns[helper] = pa.Column(nullable=True, description="what the reference says about the workbook")
    return SheetModel(
        sheet=sheet,
        schema=pa.DataFrameSchema(
            columns,
            checks=[check.check() for check in rule_checks if check.frame_wide],
            name=sheet.key,
            title=sheet.name,
            # strict: a column the contract does not know is a bug in the batch builder, not data.
            strict=True,
            # no coerce: the parser coerced already, and a cell it could not coerce keeps its raw text
            # so the finding can show it.
            coerce=False,
        ),
        checks=by_name,
        helpers=helpers,
    )


MODELS: dict[str, SheetModel] = {sheet.key: build_model(sheet) for sheet in DATA_SHEETS}
