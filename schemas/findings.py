"""Findings: one problem in one cell, worded for the school from the contract's rule messages."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass
from typing import Any

from schemas.contract import RULES, SHEETS, Severity

REDACTED = "***"
# A finding about a whole sheet or a missing row has no row number: drop "dòng {row}" from its message.
_NO_ROW = re.compile(r",? ?dòng \{row\}")


@dataclass(frozen=True)
class Finding:
    """A validation result as the school sees it: Excel row number and the column label."""

    severity: Severity
    rule: str
    sheet: str | None  # Vietnamese sheet name as in the template, None for whole-file findings
    row: int | None  # 1-based Excel row
    column: str | None  # Vietnamese column label (or key label on key-value sheets)
    value: str | None  # the offending value as text; never shown outside the school's own feedback
    message: str  # Vietnamese, tells the clerk what to fix
    confidential: bool = False  # True on the incidents sheet

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    @property
    def public_value(self) -> str | None:
        """The value as operators, logs and artifacts may see it."""
        return REDACTED if self.confidential and self.value is not None else self.value

    def to_public_dict(self) -> dict[str, Any]:
        """The finding without confidential values, for JSON, logs and the database."""
        data = asdict(self)
        data["severity"] = str(self.severity)
        data["value"] = self.public_value
        return data


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
    """Build a finding from the contract: severity, Vietnamese sheet/column names and message.

    `column_key` is a field key of the sheet; `column_label` overrides it (e.g. an extra column's own
    header). `extra` fills message fields such as `other` (a field key, shown by its label) or `detail`.
    """
    spec = RULES[rule]
    sheet = SHEETS[sheet_key] if sheet_key else None
    column = column_label
    if column is None and sheet is not None and column_key:
        column = sheet.field(column_key).label
    shown_value = format_value(value)
    fields: dict[str, Any] = {
        "sheet": sheet.name if sheet else "",
        "row": row if row is not None else "",
        "column": column or "",
        "value": shown_value if shown_value is not None else "",
    }
    for key, item in extra.items():
        if key == "other" and sheet is not None and isinstance(item, str) and item in sheet.field_keys:
            item = sheet.field(item).label
        fields[key] = format_value(item) if not isinstance(item, str) else item
    if rule == "missing_value" and not fields.get("detail"):
        fields["detail"] = "số liệu" if column is None else f"\u201c{column}\u201d"
    template = spec.message if row is not None else _NO_ROW.sub("", spec.message)
    return Finding(
        severity=spec.severity,
        rule=rule,
        sheet=sheet.name if sheet else None,
        row=row,
        column=column,
        value=shown_value,
        message=template.format_map(_Blank(fields)),
        confidential=bool(sheet and sheet.confidential),
    )
