"""Validate parsed workbooks (SPEC §3) with pandera: every finding of a whole batch at once.

A batch concatenates each sheet's rows across all its workbooks and makes one lazy pandera call per
sheet (SPEC §9: a call costs about the same for 100 or 10,000 rows). Each failure case maps back to
its workbook and cell through the batch frame's SUBMISSION and EXCEL_ROW columns, and to a rule and
field through the check's name.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
import pandera.pandas as pa
from pandera.config import ValidationDepth, config_context

from schemas.contract import DATA_SHEETS, PRESCHOOL_ONLY_ITEM, Sheet, resolve_cycle
from schemas.findings import Finding, make_finding
from schemas.models import (
    ABSENT,
    CYCLE_KNOWN,
    MODELS,
    PERIOD_END,
    PERIOD_START,
    PRESCHOOL,
    SCHOOL_KNOWN,
    SCHOOL_LEVEL,
    SUBMISSION,
    SheetModel,
    is_blank,
)
from schemas.workbook import EXCEL_ROW, ParsedWorkbook

if TYPE_CHECKING:
    from schemas.reference import Cycle, Reference, School


@dataclass(frozen=True)
class _Identity:
    """What the registry and the calendar say about the school and cycle a workbook names."""

    school: School | None
    cycle: Cycle | None

    def helpers(self) -> dict[str, object]:
        """Return the values of the batch frames' helper columns for this workbook's rows."""
        return {
            SCHOOL_KNOWN: self.school is not None,
            CYCLE_KNOWN: self.cycle is not None,
            SCHOOL_LEVEL: getattr(self.school, "level", None),
            PERIOD_START: getattr(self.cycle, "period_start", None),
            PERIOD_END: getattr(self.cycle, "period_end", None),
        }


def _find_school(reference: Reference, code: object) -> School | None:
    return None if is_blank(code) else reference.school(code)


def _find_cycle(reference: Reference, label: object) -> tuple[str | None, Cycle | None]:
    cycle_id = None if is_blank(label) else resolve_cycle(label)
    return cycle_id, (reference.calendar.get(cycle_id) if cycle_id else None)


def _identify(parsed: ParsedWorkbook, reference: Reference) -> _Identity:
    """Look up the general sheet's school and cycle; `_meta` is not consulted (the sheet wins)."""
    _, cycle = _find_cycle(reference, parsed.general_value("cycle"))
    return _Identity(_find_school(reference, parsed.general_value("school_code")), cycle)


def _meta_value(parsed: ParsedWorkbook, key: str) -> object:
    cell = parsed.meta.get(key)
    return cell.value if cell else None


def resolve_identity(parsed: ParsedWorkbook, reference: Reference) -> tuple[str | None, str | None]:
    """Return (school code if in the registry, cycle id if readable and in the calendar) of a workbook.

    The general sheet wins; the template's hidden `_meta` is used only where the sheet is blank, so a
    rejected workbook with a blanked school code still reaches its school.
    """
    code = parsed.general_value("school_code")
    school = _find_school(reference, _meta_value(parsed, "school_code") if is_blank(code) else code)
    label = parsed.general_value("cycle")
    cycle_id, cycle = _find_cycle(reference, _meta_value(parsed, "cycle") if is_blank(label) else label)
    return (school.code if school else None), (cycle_id if cycle else None)


def has_errors(findings: Iterable[Finding]) -> bool:
    """Return whether any finding rejects the submission."""
    return any(finding.is_error for finding in findings)


# --------------------------------------------------------------------------------------------------
# Batch frames


@dataclass(frozen=True)
class _Member:
    position: int  # in the batch
    parsed: ParsedWorkbook
    identity: _Identity


@dataclass(frozen=True)
class _Batch:
    """One sheet's rows of every workbook of a batch, as one frame for one pandera call."""

    model: SheetModel
    frame: pd.DataFrame  # RangeIndex: a failure case's index is a position in the lists below
    members: dict[int, _Member]  # by batch position
    local_rows: list[int]  # each frame row's position within its own workbook's table

    def cell(self, index: int, field: str) -> tuple[int | None, object]:
        """Return the Excel row of a frame cell and its value as the school typed it."""
        member = self.members[int(self.frame.at[index, SUBMISSION])]
        value = self.frame.at[index, field]
        if value is ABSENT or is_blank(value):
            value = None
        sheet = self.model.sheet
        if sheet.layout == "key_value":
            entry = member.parsed.general.get(field)
            if entry is None:
                return None, value
            return entry.row, entry.raw if entry.raw else value
        excel_row = self.frame.at[index, EXCEL_ROW]
        row = None if is_blank(excel_row) else int(excel_row)
        raw = member.parsed.raw.get(sheet.key)
        if raw is not None and field in raw.columns and self.local_rows[index] < len(raw):
            text = raw[field].iloc[self.local_rows[index]]
            if isinstance(text, str) and text.strip():
                return row, text
        return row, value


def _general_frame(model: SheetModel, members: Sequence[_Member]) -> _Batch:
    data: dict[str, list[object]] = {name: [] for name in model.schema.columns}
    for member in members:
        data[SUBMISSION].append(member.position)
        for key in model.sheet.field_keys:
            data[key].append(member.parsed.general_value(key))
        helpers = member.identity.helpers()
        for name in model.helpers:
            data[name].append(helpers[name])
    frame = pd.DataFrame(data, dtype=object)
    return _Batch(model, frame, {m.position: m for m in members}, [0] * len(frame))


def _table_frame(model: SheetModel, members: Sequence[_Member]) -> _Batch:
    data: dict[str, list[object]] = {name: [] for name in model.schema.columns}
    local_rows: list[int] = []
    for member in members:
        table = member.parsed.tables[model.sheet.key]
        size = len(table)
        # One conversion per table: selecting columns one by one costs more than the validation.
        cells = table.to_numpy(dtype=object)
        where = {name: index for index, name in enumerate(table.columns)}
        local_rows.extend(range(size))
        data[SUBMISSION].extend([member.position] * size)
        for key in (EXCEL_ROW, *model.sheet.field_keys):
            if key in where:
                data[key].extend(cells[:, where[key]].tolist())
            else:
                # A column the workbook lacks was reported as missing_column; ABSENT keeps rules off it.
                data[key].extend([ABSENT if key != EXCEL_ROW else None] * size)
        helpers = member.identity.helpers()
        for name in model.helpers:
            data[name].extend([helpers[name]] * size)
    frame = pd.DataFrame(data, dtype=object)
    return _Batch(model, frame, {m.position: m for m in members}, local_rows)


def _has_sheet(parsed: ParsedWorkbook, sheet: Sheet) -> bool:
    if any(f.rule == "missing_sheet" and f.sheet_key == sheet.key for f in parsed.findings):
        return False
    return sheet.layout == "key_value" or sheet.key in parsed.tables


# --------------------------------------------------------------------------------------------------
# Findings


def row_code(batch: _Batch, index: int) -> str | None:
    """Return the code of the pre-filled row a frame row is (reach group, checklist item, category)."""
    sheet = batch.model.sheet
    if sheet.rows is None or sheet.row_field is None:
        return None
    code = batch.frame.at[index, sheet.row_field]
    return code if isinstance(code, str) and code in sheet.rows.codes else None


def _failures(batch: _Batch) -> Iterator[tuple[int, Finding]]:
    """Validate a batch frame with one lazy pandera call; yield (batch position, finding) per failure."""
    try:
        # PANDERA_VALIDATION_ENABLED/DEPTH in the environment must not silently accept every file.
        with config_context(validation_enabled=True, validation_depth=ValidationDepth.SCHEMA_AND_DATA):
            batch.model.schema.validate(batch.frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
    else:
        return
    checks = batch.model.checks
    unmapped = cases[~cases["check"].isin(list(checks)) | cases["index"].isna()]
    if len(unmapped):
        # A failure no rule check names is a fault (a check that raised, a column the builder missed).
        raise RuntimeError(f"unmapped pandera failures on {batch.model.sheet.key}:\n{unmapped.to_string()}")
    sheet_key = batch.model.sheet.key
    # Frame-wide checks report each failing row once per column: one finding per check and row.
    for name, index in cases[["check", "index"]].drop_duplicates().itertuples(index=False):
        check = checks[name]
        index = int(index)
        row, value = batch.cell(index, check.field)
        extra: dict[str, Any] = {}
        if check.other:
            extra["other"] = check.other
            other_value = batch.cell(index, check.other)[1]
            if other_value is None and batch.model.sheet.blank_count_is_zero:
                other_value = 0  # a blank incident count is 0, and was compared as 0
            extra["other_value"] = other_value
        code = row_code(batch, index)
        if code is not None:
            extra["row_code"] = code
        if check.detail:
            extra["detail"] = check.detail(batch.frame, index)
        position = int(batch.frame.at[index, SUBMISSION])
        yield position, make_finding(check.rule, sheet_key, row, check.field, value, **extra)


def _absent_rows(batch: _Batch) -> Iterator[tuple[int, Finding]]:
    """Report pre-filled rows missing entirely where their cells are required (reach, checklist)."""
    sheet = batch.model.sheet
    if sheet.rows is None or sheet.row_field is None or sheet.blank_count_is_zero:
        return  # blank incident rows mean 0, so a missing one does too
    present: dict[int, set[object]] = {position: set() for position in batch.members}
    for position, code in zip(
        batch.frame[SUBMISSION].tolist(), batch.frame[sheet.row_field].tolist(), strict=True
    ):
        present[position].add(code)
    for position, member in batch.members.items():
        if sheet.row_field not in member.parsed.tables[sheet.key].columns:
            continue  # rows cannot be told apart; missing_column says so
        preschool = getattr(member.identity.school, "level", None) == PRESCHOOL
        for choice in sheet.rows.choices:
            if choice.code in present[position] or (choice.code == PRESCHOOL_ONLY_ITEM and not preschool):
                continue
            detail = (
                f"dòng \u201c{choice.label}\u201d (dòng này bị thiếu, vui lòng thêm lại đúng như biểu mẫu)"
            )
            yield (
                position,
                make_finding("missing_value", sheet.key, None, sheet.row_field, choice.label, detail=detail,
                             row_code=choice.code),
            )


_SHEET_ORDER = {sheet.key: index for index, sheet in enumerate(DATA_SHEETS)}
_COLUMN_ORDER = {
    (sheet.key, field.key): index for sheet in DATA_SHEETS for index, field in enumerate(sheet.fields)
}
_LABEL_ORDER = {
    (sheet.key, field.label): index for sheet in DATA_SHEETS for index, field in enumerate(sheet.fields)
}


def _sort_key(finding: Finding) -> tuple[int, int, int, str, str]:
    """Order findings as the school reads its workbook: sheet, row, column; whole-file ones first."""
    sheet = -1 if finding.sheet_key is None else _SHEET_ORDER.get(finding.sheet_key, len(_SHEET_ORDER))
    row = -1 if finding.row is None else finding.row
    column = -1
    if finding.column is not None:
        # A dropped column named like a contract column sorts where that column is.
        if finding.field_key:
            column = _COLUMN_ORDER.get((finding.sheet_key, finding.field_key), 1000)
        else:
            column = _LABEL_ORDER.get((finding.sheet_key, finding.column), 1000)
    return sheet, row, column, finding.column or "", finding.rule


def validate_batch(
    items: Sequence[tuple[Hashable, ParsedWorkbook]], reference: Reference
) -> dict[Hashable, list[Finding]]:
    """Validate workbooks together, one pandera call per sheet; return each key's sorted findings.

    The parser's own findings (missing sheet or column, dropped column, unreadable file) pass through;
    a missing sheet or column is not validated further.
    """
    keys = [key for key, _ in items]
    if len(set(keys)) != len(keys):
        raise ValueError("validate_batch needs a distinct key per workbook")
    found: list[list[Finding]] = [list(parsed.findings) for _, parsed in items]
    members = [
        _Member(position, parsed, _identify(parsed, reference))
        for position, (_, parsed) in enumerate(items)
        if parsed.readable
    ]
    for sheet in DATA_SHEETS:
        model = MODELS[sheet.key]
        with_sheet = [member for member in members if _has_sheet(member.parsed, sheet)]
        if not with_sheet:
            continue
        batch = (_general_frame if sheet.layout == "key_value" else _table_frame)(model, with_sheet)
        for position, finding in (*_failures(batch), *_absent_rows(batch)):
            found[position].append(finding)
    return {key: sorted(findings, key=_sort_key) for key, findings in zip(keys, found, strict=True)}


def validate_workbook(parsed: ParsedWorkbook, reference: Reference) -> list[Finding]:
    """Validate one workbook; return its findings sorted by sheet, row and column."""
    return validate_batch([(0, parsed)], reference)[0]
