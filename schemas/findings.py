"""Findings: one problem in one cell, kept as keys; the Vietnamese words are rendered at the edge.

A `Finding` holds the rule code, the contract's sheet and field keys, the Excel row, the offending
value as text (flagged confidential on the `Vụ việc` sheet) and the few parameters its message needs.
`render_message` turns it into the sentence a clerk reads, from the contract's rule messages and
labels. Every reader (the school's reply, the annotated copy, `gec validate`, the database, the
Prefect artifacts) renders through it; only the school's own reply passes `reveal=True`, so a
confidential value is never rendered anywhere else.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from schemas.contract import RULES, SHEETS, Severity

REDACTED = "***"
# A finding about a whole sheet or a missing row has no row number: drop "dòng {row}" from its message.
_NO_ROW = re.compile(r",? ?dòng \{row\}")
# Parameters taken from the workbook's cells: masked with the value outside the school's own reply.
CELL_PARAMS = frozenset({"other_value"})
# Parameters a message may omit, with the words around them.
_OPTIONAL = {"other_value": " ({other_value})"}


@dataclass(frozen=True)
class Finding:
    """A validation result by keys: rule, contract sheet and field, Excel row, raw value, parameters.

    `params` holds what a message needs beyond the cell: `other` (the field compared against),
    `other_value` (its number), `detail` (words the check computed), `row_code` (the pre-filled row's
    code, which names the row by its label).
    """

    severity: Severity
    rule: str
    sheet_key: str | None  # contract sheet key, None for whole-file findings
    row: int | None  # 1-based Excel row
    field_key: str | None  # contract field key (column of a table, key of a key-value sheet)
    value: str | None  # the offending value as text; only the school's own reply shows a confidential one
    confidential: bool = False  # True on the incidents sheet
    column_label: str | None = None  # a header the contract does not know (a dropped extra column)
    params: tuple[tuple[str, str], ...] = ()

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    @property
    def param(self) -> dict[str, str]:
        """Return the message parameters as a mapping."""
        return dict(self.params)

    @property
    def sheet(self) -> str | None:
        """Return the Vietnamese sheet name as the template shows it."""
        return SHEETS[self.sheet_key].name if self.sheet_key in SHEETS else None

    @property
    def column(self) -> str | None:
        """Return the Vietnamese column label (or key label on key-value sheets)."""
        if self.column_label is not None:
            return self.column_label
        sheet = SHEETS.get(self.sheet_key or "")
        if sheet is None or not self.field_key or self.field_key not in sheet.field_keys:
            return None
        return sheet.field(self.field_key).label

    @property
    def row_label(self) -> str | None:
        """Return the label of the pre-filled row the finding is on (`Cha mẹ học sinh`), if any."""
        code = self.param.get("row_code")
        sheet = SHEETS.get(self.sheet_key or "")
        if not code or sheet is None or sheet.rows is None or code not in sheet.rows.codes:
            return None
        choice = next(item for item in sheet.rows.choices if item.code == code)
        return choice.short_label or choice.label

    @property
    def public_value(self) -> str | None:
        """The value as operators, logs and artifacts may see it."""
        return REDACTED if self.confidential and self.value is not None else self.value

    @property
    def message(self) -> str:
        """The Vietnamese message anyone may read (confidential values masked)."""
        return render_message(self, reveal=False)

    def public_label(self) -> str:
        """Return where the finding is, in words anyone may read: sheet, row, column."""
        parts = [f"Trang \u201c{self.sheet}\u201d" if self.sheet else "Tệp"]
        if self.row is not None:
            parts.append(f"dòng \u201c{self.row_label}\u201d" if self.row_label else f"dòng {self.row}")
        if self.column:
            parts.append(f"cột \u201c{self.column}\u201d")
        return ", ".join(parts)

    def to_public_dict(self) -> dict[str, Any]:
        """The finding without confidential values, for JSON, logs and the database."""
        return {
            "severity": str(self.severity),
            "rule": self.rule,
            "sheet": self.sheet,
            "row": self.row,
            "column": self.column,
            "value": self.public_value,
            "message": self.message,
            "confidential": self.confidential,
        }

    def storable_params(self) -> dict[str, str]:
        """Return the parameters the database may keep: no cell value of a confidential sheet."""
        return {k: v for k, v in self.params if not (self.confidential and k in CELL_PARAMS)}


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def format_value(value: object) -> str | None:
    """Show a cell value the way a Vietnamese clerk typed or reads it."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        value = value.date() if value.time() == dt.time() else value
    if isinstance(value, dt.datetime):
        return value.strftime("%d/%m/%Y %H:%M")
    if isinstance(value, dt.date):
        return value.strftime("%d/%m/%Y")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def render_message(finding: Finding, *, reveal: bool = False) -> str:
    """Return the Vietnamese message of a finding from the contract's wording.

    `reveal=True` is for the school's own reply only: it shows a confidential value and the numbers
    it is compared with; everywhere else they read `***`.
    """
    spec = RULES[finding.rule]
    masked = finding.confidential and not reveal
    params = finding.param
    value = REDACTED if masked else finding.value
    column = finding.column
    row_label = finding.row_label
    fields: dict[str, Any] = {
        "sheet": finding.sheet or "",
        "row": f"\u201c{row_label}\u201d" if row_label else ("" if finding.row is None else finding.row),
        "column": column or "",
        "value": value if value is not None else "",
    }
    sheet = SHEETS.get(finding.sheet_key or "")
    for key, item in params.items():
        if key == "other" and sheet is not None and item in sheet.field_keys:
            item = sheet.field(item).label
        if key in CELL_PARAMS and masked:
            item = REDACTED
        fields[key] = item
    if finding.rule == "missing_value" and not fields.get("detail"):
        fields["detail"] = "số liệu" if column is None else f"\u201c{column}\u201d"
    template = spec.message
    if finding.row is None:
        template = _NO_ROW.sub("", template)
    for key, words in _OPTIONAL.items():
        if not fields.get(key):
            template = template.replace(words, "")
    return template.format_map(_Blank(fields))


def make_finding(
    rule: str,
    sheet_key: str | None = None,
    row: int | None = None,
    column_key: str | None = None,
    value: object = None,
    *,
    column_label: str | None = None,
    **extra: object,
) -> Finding:
    """Build a finding from the contract's rule and keys; nothing is worded here.

    `column_key` is a field key of the sheet; `column_label` names a column the contract does not know
    (an extra column's own header). `extra` fills message parameters such as `other` (a field key),
    `other_value`, `detail` or `row_code`.
    """
    spec = RULES[rule]
    sheet = SHEETS[sheet_key] if sheet_key else None
    params = tuple(
        (key, item if isinstance(item, str) else (format_value(item) or ""))
        for key, item in extra.items()
        if item is not None
    )
    return Finding(
        severity=spec.severity,
        rule=rule,
        sheet_key=sheet.key if sheet else None,
        row=row,
        field_key=column_key if column_label is None else None,
        value=format_value(value),
        confidential=bool(sheet and sheet.confidential),
        column_label=column_label,
        params=params,
    )


def finding_from_row(row: Mapping[str, Any]) -> Finding:
    """Rebuild a finding from a stored `findings` row (keys, public value, kept parameters)."""
    sheet_key = row.get("sheet_key")
    if sheet_key is None and row.get("sheet"):
        sheet_key = next((key for key, sheet in SHEETS.items() if sheet.name == row["sheet"]), None)
    field_key = row.get("field_key")
    column_label = None
    if field_key is None and row.get("column"):
        sheet = SHEETS.get(sheet_key or "")
        field_key = next((f.key for f in sheet.fields if f.label == row["column"]), None) if sheet else None
        column_label = None if field_key else row["column"]
    params = row.get("params") or {}
    if isinstance(params, str):
        params = json.loads(params)
    return Finding(
        severity=Severity(row["severity"]),
        rule=row["rule"],
        sheet_key=sheet_key,
        row=row.get("row"),
        field_key=field_key,
        value=row.get("value"),
        confidential=bool(row.get("confidential")),
        column_label=column_label,
        params=tuple((str(k), str(v)) for k, v in params.items()),
    )
