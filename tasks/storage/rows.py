"""Sheet rows (SPEC §8): a parsed workbook's cells as the normalised table rows, and their bulk writes."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd
import psycopg
from sqlalchemy import Connection, Table, delete, insert
from sqlalchemy.exc import DBAPIError

from db.engine import DatabaseUnavailable, describe_database
from schemas.contract import DATA_SHEETS, MAX_COUNT, Kind
from schemas.contract import Field as ContractField
from schemas.workbook import EXCEL_ROW, ParsedWorkbook
from tasks.storage.tables import SHEET_TABLES


def is_blank(value: object) -> bool:
    """Return whether a parsed cell value is empty (None, NaN, NaT or NA)."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return type(value).__name__ in ("NaTType", "NAType")


def _converter(item: ContractField, blank_is_zero: bool) -> Callable[[object], object]:
    """Return how a parsed cell of a field is stored; a value that failed coercion stores as NULL."""
    blank = 0 if blank_is_zero and item.kind is Kind.INT else None

    def convert_int(value: object) -> object:
        if type(value) is int:  # not bool, which is an int too
            # Above the contract's bound (count_too_large) it would overflow an INTEGER column.
            return value if 0 <= value <= MAX_COUNT else None
        return blank if is_blank(value) else None

    def convert_date(value: object) -> object:
        if isinstance(value, dt.datetime):
            return value.date()
        return value if isinstance(value, dt.date) else None

    codes = frozenset(item.codes.codes) if item.codes is not None else frozenset()

    def convert_code(value: object) -> object:
        return value if isinstance(value, str) and value in codes else None

    def convert_yes_no(value: object) -> object:
        return value if isinstance(value, bool) else None

    def convert_text(value: object) -> object:
        if isinstance(value, str):
            return value
        return None if is_blank(value) else str(value)

    return {
        Kind.INT: convert_int,
        Kind.DATE: convert_date,
        Kind.CODE: convert_code,
        Kind.YES_NO: convert_yes_no,
    }.get(item.kind, convert_text)


# Per sheet: (field key, converter), built once from the contract.
_CONVERTERS: dict[str, list[tuple[str, Callable[[object], object]]]] = {
    sheet.key: [(item.key, _converter(item, sheet.blank_count_is_zero)) for item in sheet.fields]
    for sheet in DATA_SHEETS
}


def _records(frame: pd.DataFrame) -> list[dict[str, object]]:
    """Return a frame's rows as dicts of plain Python values (DataFrame.to_dict is ~50x slower here)."""
    columns = [str(name) for name in frame.columns]
    return [dict(zip(columns, row, strict=True)) for row in frame.to_numpy(dtype=object).tolist()]


def sheet_rows(submission_id: int, parsed: ParsedWorkbook) -> dict[str, list[dict[str, Any]]]:
    """Return the normalised rows of a readable workbook, by sheet key (incidents included)."""
    rows: dict[str, list[dict[str, Any]]] = {key: [] for key in SHEET_TABLES}
    if not parsed.readable:
        return rows
    if parsed.general:
        general = {"submission_id": submission_id}
        for key, convert in _CONVERTERS["general"]:
            cell = parsed.general.get(key)
            general[key] = convert(cell.value) if cell is not None else None
        rows["general"].append(general)
    for sheet in DATA_SHEETS:
        if sheet.layout != "table" or sheet.key not in parsed.tables:
            continue
        converters = _CONVERTERS[sheet.key]
        seen: set[object] = set()
        for record in _records(parsed.tables[sheet.key]):
            row: dict[str, Any] = {"submission_id": submission_id}
            excel_row = record.get(EXCEL_ROW)
            row["excel_row"] = None if is_blank(excel_row) else int(excel_row)  # type: ignore[arg-type]
            for key, convert in converters:
                row[key] = convert(record.get(key))
            if sheet.row_field:
                key = row[sheet.row_field]
                # Pre-filled rows are one per code: a duplicated row (copy-paste) keeps its first copy.
                if key is None or key in seen:
                    continue
                seen.add(key)
            rows[sheet.key].append(row)
    return rows


def insert_many(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows in the connection's transaction: COPY on PostgreSQL, one executemany elsewhere.

    Rows that need their generated ids back use insert().returning instead. On PostgreSQL, psycopg's
    executemany sends one INSERT per row (≈ 8k rows/s measured here) and multi-row VALUES spends its
    time re-parsing long statements; COPY on the same connection measured ≈ 4x faster than either.
    """
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(insert(table), list(rows))
        return
    columns = [column.name for column in table.columns if column.name in rows[0]]
    # Bind through the column types first, as executemany would (e.g. aware datetimes to UTC).
    processors = [table.c[name].type.bind_processor(conn.dialect) for name in columns]
    quoted = ", ".join(conn.dialect.identifier_preparer.quote(name) for name in columns)
    statement = f"COPY {table.name} ({quoted}) FROM STDIN"
    driver = conn.connection.driver_connection
    cursor = driver.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row([
                    process(row[name]) if process is not None else row[name]
                    for name, process in zip(columns, processors, strict=True)
                ])
    except psycopg.Error as error:
        # Raw driver errors bypass SQLAlchemy's translation: do it here, as the engine would.
        if getattr(driver, "broken", False) or isinstance(error, psycopg.InterfaceError):
            detail = (str(error).strip().splitlines() or [type(error).__name__])[0]
            where = describe_database(conn.engine.url)
            raise DatabaseUnavailable(f"Cannot reach the {where}: {detail}") from error
        raise DBAPIError.instance(statement, None, error, psycopg.Error) from error
    finally:
        cursor.close()


def insert_sheet_rows(conn: Connection, rows: Mapping[str, Sequence[dict[str, Any]]]) -> None:
    """Insert normalised rows with one executemany per table."""
    for key, table in SHEET_TABLES.items():
        insert_many(conn, table, rows.get(key, ()))


def delete_sheet_rows(conn: Connection, submission_ids: Sequence[int]) -> None:
    """Delete the normalised rows of submissions (before revalidation writes new ones)."""
    for table in SHEET_TABLES.values():
        conn.execute(delete(table).where(table.c.submission_id.in_(submission_ids)))
