"""The parsed form of one submitted workbook: what the parser returns and the validator reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from schemas.findings import Finding

# Name of the column that carries each data row's 1-based Excel row number in parsed tables.
EXCEL_ROW = "excel_row"


@dataclass(frozen=True)
class KeyCell:
    """One key-value entry of `Thông tin chung` or `_meta`."""

    value: Any  # coerced value (int, datetime.date, str) or the raw text when coercion failed
    raw: str  # the cell as text, as the clerk typed it
    row: int  # 1-based Excel row


@dataclass
class ParsedWorkbook:
    """Values of a workbook, keyed by the contract's English keys.

    `tables[sheet_key]` has one column per contract field found (field keys), plus EXCEL_ROW.
    Cells hold the coerced Python value (int, datetime.date, bool for yes/no, code str for coded
    lists, NFC str for text) or None when blank; when coercion failed the cell keeps the raw text
    so the validator can report it. `raw[sheet_key]` has the same shape with every cell as the
    displayed text ("" for blank). Pre-filled row sheets keep only rows whose label matched a code.
    """

    file_format: str  # "xlsx", "xlsm", "xls", "ods", or "" when unreadable
    general: dict[str, KeyCell] = field(default_factory=dict)
    meta: dict[str, KeyCell] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    raw: dict[str, pd.DataFrame] = field(default_factory=dict)
    # sheet_key -> the sheet's name as found in the file (for the annotated copy)
    sheet_names: dict[str, str] = field(default_factory=dict)
    # sheet_key -> field_key -> 0-based column index as found in the file (for the annotated copy)
    columns: dict[str, dict[str, int]] = field(default_factory=dict)
    # Problems found while reading: unreadable/encrypted/too large, missing sheet/column, extra column.
    findings: list[Finding] = field(default_factory=list)

    @property
    def readable(self) -> bool:
        return bool(self.file_format)

    def general_value(self, key: str) -> Any:
        cell = self.general.get(key)
        return cell.value if cell else None
