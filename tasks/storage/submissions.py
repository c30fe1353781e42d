"""Storage (SPEC §4, §8): the raw store, then validated submissions with their rows and states.

Data flows one way: `store_raw` records every received file (bytes once per sha256, one receipt per
arrival) and commits before anything parses it; `check_files` parses and validates a batch in memory;
`store_submissions` adds the database rules, decides, writes each submission with its decision,
findings and sheet rows, and re-derives the states of the schools and cycles it touched. A
submission's writes are never split across transactions; a batch shares one, and when a batch fails
on a data problem each submission is retried alone so one bad file never blocks the others.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
from pydantic import BaseModel, Field
from sqlalchemy import Connection, Engine, Table, bindparam, delete, insert, select, update
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError
from sqlalchemy.orm import Session

from db import models
from db.engine import DatabaseUnavailable, describe_database
from db.setup import sync_cycle, sync_schools
from schemas.contract import CONTRACT_VERSION, DATA_SHEETS, Kind
from schemas.contract import Field as ContractField
from schemas.findings import Finding
from schemas.reference import Reference
from schemas.workbook import EXCEL_ROW, ParsedWorkbook
from tasks.check.history import (
    GroupTotal,
    decide,
    late_finding,
    total_jump_findings,
    unregistered_sender_finding,
)
from tasks.check.parse import parse_workbook
from tasks.check.validate import resolve_identity, validate_batch
from tasks.intake.folder import IncomingFile, archive_path, safe_name
from tasks.storage.findings import finding_rows, first_message
from tasks.storage.states import Decision, State, SubmissionFacts, derive_states

log = logging.getLogger(__name__)

RECEIVED_FILES = models.ReceivedFile.__table__
RECEIPTS = models.FileReceipt.__table__
SUBMISSIONS = models.Submission.__table__
DECISIONS = models.Decision.__table__
FINDINGS = models.Finding.__table__
CYCLES = models.Cycle.__table__
SCHOOLS = models.School.__table__
# Normalised sheet tables by contract sheet key; incident counts live in their own table (SPEC §8).
SHEET_TABLES = {
    "general": models.GeneralInfo.__table__,
    "reach": models.ReachRow.__table__,
    "activities": models.Activity.__table__,
    "checklist": models.ChecklistAnswer.__table__,
    "incidents": models.IncidentCount.__table__,
}
# submissions.cycle_source: the cycle the workbook names, or the one open when the file arrived.
WORKBOOK = "workbook"
ARRIVAL = "arrival"
MARKDOWN_ROWS = 50  # rejected/held submissions listed in the run's markdown summary


def now() -> dt.datetime:
    """Return the current time, aware, in UTC."""
    return dt.datetime.now(dt.UTC)


# --------------------------------------------------------------------------------------------------
# Raw store


@dataclass(frozen=True)
class RawRecord:
    """One arrival after the raw store: its stored file, its receipt and what is left to do with it."""

    file: IncomingFile
    received_file_id: int
    receipt_id: int
    new_file: bool  # these bytes were not stored before
    new_receipt: bool  # this arrival was not recorded before (False on a re-run after a crash)
    submission_id: int | None  # the submission already read from these bytes, if any
    to_read: bool  # parse and store it: no submission yet, and the first arrival of its bytes here


def store_raw(engine: Engine, files: Sequence[IncomingFile]) -> list[RawRecord]:
    """Record every file's bytes (once per sha256) and arrival (once per source_ref); commit; return them."""
    if not files:
        return []
    order = sorted(range(len(files)), key=lambda index: (files[index].received_at, index))
    with engine.begin() as conn:
        shas = list(dict.fromkeys(item.sha256 for item in files))
        file_ids: dict[str, int] = dict(
            conn.execute(select(RECEIVED_FILES.c.sha256, RECEIVED_FILES.c.id).where(
                RECEIVED_FILES.c.sha256.in_(shas))).all()
        )
        new_shas: dict[str, IncomingFile] = {}
        for index in order:  # the earliest arrival of new bytes describes the stored file
            item = files[index]
            if item.sha256 not in file_ids:
                new_shas.setdefault(item.sha256, item)
        if new_shas:
            rows = [
                {
                    "sha256": item.sha256,
                    "size": item.size,
                    "content": item.content,
                    "source": item.source,
                    "original_name": item.original_name,
                    "safe_name": safe_name(item.original_name),
                    "sender": item.sender,
                    "received_at": item.received_at,
                    "message_id": item.message_id,
                }
                for item in new_shas.values()
            ]
            statement = insert(RECEIVED_FILES).returning(
                RECEIVED_FILES.c.sha256, RECEIVED_FILES.c.id, sort_by_parameter_order=True
            )
            file_ids.update(conn.execute(statement, rows).all())

        refs = list(dict.fromkeys(item.source_ref for item in files))
        receipt_ids: dict[tuple[str, str], int] = {
            (source, ref): receipt_id
            for receipt_id, source, ref in conn.execute(
                select(RECEIPTS.c.id, RECEIPTS.c.source, RECEIPTS.c.source_ref).where(
                    RECEIPTS.c.source_ref.in_(refs))
            )
        }
        known_receipts = set(receipt_ids)
        new_receipts: dict[tuple[str, str], IncomingFile] = {}
        for item in files:
            key = (item.source, item.source_ref)
            if key not in receipt_ids:
                new_receipts.setdefault(key, item)
        if new_receipts:
            rows = [
                {
                    "received_file_id": file_ids[item.sha256],
                    "source": item.source,
                    "original_name": item.original_name,
                    "sender": item.sender,
                    "received_at": item.received_at,
                    "source_ref": item.source_ref,
                }
                for item in new_receipts.values()
            ]
            statement = insert(RECEIPTS).returning(
                RECEIPTS.c.id, RECEIPTS.c.source, RECEIPTS.c.source_ref, sort_by_parameter_order=True
            )
            inserted = conn.execute(statement, rows)
            receipt_ids.update(((source, ref), receipt_id) for receipt_id, source, ref in inserted)

        submitted: dict[int, int] = {
            file_id: submission_id
            for submission_id, file_id in conn.execute(
                select(SUBMISSIONS.c.id, SUBMISSIONS.c.received_file_id).where(
                    SUBMISSIONS.c.received_file_id.in_(set(file_ids.values())))
            )
        }
    reader: dict[int, int] = {}  # received_file_id -> index of the arrival to read
    for index in order:
        file_id = file_ids[files[index].sha256]
        if file_id not in submitted:
            reader.setdefault(file_id, index)
    records = []
    for index, item in enumerate(files):
        file_id = file_ids[item.sha256]
        records.append(
            RawRecord(
                file=item,
                received_file_id=file_id,
                receipt_id=receipt_ids[(item.source, item.source_ref)],
                new_file=item.sha256 in new_shas and new_shas[item.sha256] is item,
                new_receipt=(item.source, item.source_ref) not in known_receipts,
                submission_id=submitted.get(file_id),
                to_read=reader.get(file_id) == index,
            )
        )
    return records


# --------------------------------------------------------------------------------------------------
# Parse and validate (memory only)


@dataclass
class Checked:
    """A file read and validated without the database: its workbook, findings, school and cycle."""

    record: RawRecord
    parsed: ParsedWorkbook
    findings: list[Finding]
    school_code: str | None
    cycle_id: str
    cycle_source: str  # "workbook", or "arrival": the cycle open when it arrived


def identify(parsed: ParsedWorkbook, reference: Reference, received_at: dt.datetime) -> tuple[
    str | None, str, str
]:
    """Return (school code, cycle id, cycle source): the workbook's cycle, else the one open on arrival."""
    school_code, cycle_id = resolve_identity(parsed, reference) if parsed.readable else (None, None)
    if cycle_id is not None:
        return school_code, cycle_id, WORKBOOK
    return school_code, reference.calendar.open_at(received_at).id, ARRIVAL


def check_files(records: Sequence[RawRecord], reference: Reference, *, max_bytes: int) -> list[Checked]:
    """Parse the records still to read and validate them as one batch."""
    todo = [record for record in records if record.to_read]
    parsed = [(record.receipt_id, parse_workbook(record.file.content, max_bytes=max_bytes))
              for record in todo]
    findings = validate_batch(parsed, reference) if parsed else {}
    checked = []
    for record, (key, workbook) in zip(todo, parsed, strict=True):
        school_code, cycle_id, cycle_source = identify(workbook, reference, record.file.received_at)
        checked.append(Checked(record, workbook, findings[key], school_code, cycle_id, cycle_source))
    return checked


# --------------------------------------------------------------------------------------------------
# Sheet rows


def _blank(value: object) -> bool:
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
            return value if value >= 0 else None
        return blank if _blank(value) else None

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
        return None if _blank(value) else str(value)

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
            row["excel_row"] = None if _blank(excel_row) else int(excel_row)  # type: ignore[arg-type]
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


def reach_totals(parsed: ParsedWorkbook) -> list[GroupTotal]:
    """Return the reach sheet's group totals with their Excel rows, for `total_jump`."""
    frame = parsed.tables.get("reach")
    if frame is None or "group" not in frame.columns or "total" not in frame.columns:
        return []
    excel_rows = frame[EXCEL_ROW] if EXCEL_ROW in frame.columns else [None] * len(frame)
    return [
        GroupTotal(group, total, None if _blank(row) else int(row))
        for group, total, row in zip(frame["group"], frame["total"], excel_rows, strict=True)
        if isinstance(group, str)
    ]


# --------------------------------------------------------------------------------------------------
# Database-dependent rules and decisions


def ensure_reference_rows(session: Session, reference: Reference, cycle_ids: Iterable[str],
                          school_codes: Iterable[str | None]) -> None:
    """Make sure the cycles and schools submissions point at exist (intake may meet new ones)."""
    conn = session.connection()
    codes = {code for code in school_codes if code}
    if codes:
        stored = set(conn.execute(select(SCHOOLS.c.code).where(SCHOOLS.c.code.in_(codes))).scalars())
        if codes - stored:
            sync_schools(session, reference)
    wanted = set(cycle_ids)
    stored_cycles = set(conn.execute(select(CYCLES.c.id).where(CYCLES.c.id.in_(wanted))).scalars())
    if not stored_cycles and wanted and not conn.execute(select(SCHOOLS.c.code).limit(1)).first():
        sync_schools(session, reference)  # a database never initialised: the registry first
    for cycle_id in sorted(wanted - stored_cycles):
        sync_cycle(session, reference, cycle_id)


def previous_totals(
    conn: Connection, reference: Reference, pairs: Iterable[tuple[str | None, str]]
) -> dict[tuple[str, str], dict[str, object]]:
    """Return per (school, cycle) the group totals of the school's current accepted previous-cycle report."""
    wanted = {
        (school, reference.calendar.previous(cycle_id)): (school, cycle_id)
        for school, cycle_id in pairs
        if school
    }
    if not wanted:
        return {}
    reach = SHEET_TABLES["reach"]
    query = (
        select(SUBMISSIONS.c.school_code, SUBMISSIONS.c.cycle_id, reach.c.group, reach.c.total)
        .join(reach, reach.c.submission_id == SUBMISSIONS.c.id)
        .where(
            SUBMISSIONS.c.state == State.ACCEPTED.value,
            SUBMISSIONS.c.school_code.in_({school for school, _ in wanted}),
            SUBMISSIONS.c.cycle_id.in_({cycle for _, cycle in wanted}),
        )
    )
    found: dict[tuple[str, str], dict[str, object]] = {}
    for school, cycle_id, group, total in conn.execute(query):
        target = wanted.get((school, cycle_id))
        if target is not None:
            found.setdefault(target, {})[group] = total  # type: ignore[index]
    return found


def db_findings(
    item: Checked, reference: Reference, previous: Mapping[str, object] | None, sender: str | None
) -> list[Finding]:
    """Return the database-dependent findings of a checked file: late, total_jump, unregistered_sender."""
    found: list[Finding] = []
    cycle = reference.calendar.get(item.cycle_id)
    if cycle is not None:
        late = late_finding(item.record.file.received_at, cycle.deadline_end)
        if late is not None:
            found.append(late)
    school = reference.schools.get(item.school_code) if item.school_code else None
    if school is not None:
        held = unregistered_sender_finding(sender, school.emails)
        if held is not None:
            found.append(held)
    if previous:
        found.extend(total_jump_findings(reach_totals(item.parsed), previous))
    return found


# --------------------------------------------------------------------------------------------------
# States


def recompute_states(conn: Connection, pairs: Iterable[tuple[str | None, str]]) -> int:
    """Re-derive state, superseded_by_id and is_on_time of every submission of these schools and cycles.

    Return how many submissions changed. Submissions without a school keep their decision as state.
    """
    wanted = {(school, cycle) for school, cycle in pairs if school}
    if not wanted:
        return 0
    query = (
        select(
            SUBMISSIONS.c.id,
            SUBMISSIONS.c.school_code,
            SUBMISSIONS.c.cycle_id,
            SUBMISSIONS.c.received_at,
            SUBMISSIONS.c.decision,
            SUBMISSIONS.c.state,
            SUBMISSIONS.c.superseded_by_id,
            SUBMISSIONS.c.is_on_time,
            CYCLES.c.deadline_end,
        )
        .join(CYCLES, CYCLES.c.id == SUBMISSIONS.c.cycle_id)
        .where(
            SUBMISSIONS.c.school_code.in_({school for school, _ in wanted}),
            SUBMISSIONS.c.cycle_id.in_({cycle for _, cycle in wanted}),
        )
    )
    groups: dict[tuple[str, str], list[Any]] = {}
    for row in conn.execute(query):
        if (row.school_code, row.cycle_id) in wanted:
            groups.setdefault((row.school_code, row.cycle_id), []).append(row)
    changes = []
    for rows in groups.values():
        facts = [
            SubmissionFacts(row.id, row.school_code, row.received_at, Decision(row.decision)) for row in rows
        ]
        states = derive_states(facts)
        current = next((row.id for row in rows if states[row.id] is State.ACCEPTED), None)
        for row in rows:
            state = states[row.id].value
            superseded_by = current if state == State.SUPERSEDED.value else None
            on_time = row.received_at < row.deadline_end
            if (state, superseded_by, on_time) != (row.state, row.superseded_by_id, row.is_on_time):
                changes.append(
                    {"b_id": row.id, "b_state": state, "b_by": superseded_by, "b_on_time": on_time}
                )
    if changes:
        statement = (
            update(SUBMISSIONS)
            .where(SUBMISSIONS.c.id == bindparam("b_id"))
            .values(state=bindparam("b_state"), superseded_by_id=bindparam("b_by"),
                    is_on_time=bindparam("b_on_time"))
        )
        conn.execute(statement, changes)
    return len(changes)


# --------------------------------------------------------------------------------------------------
# Storing submissions


@dataclass(frozen=True)
class Outcome:
    """What became of one arrival: its submission (new or earlier) and that submission's state now."""

    original_name: str
    path: Path | None
    sha256: str
    source_ref: str  # the arrival, so the mailbox intake can file each message after the commit
    received_file_id: int
    new_file: bool
    new_receipt: bool
    submission_id: int | None  # None when the submission could not be stored (stays in the inbox)
    created: bool  # the submission was made from this arrival by this call
    school_code: str | None = None
    cycle_id: str | None = None
    state: str | None = None
    error_count: int = 0
    warning_count: int = 0
    message: str | None = None  # public wording of why it was rejected or held (new submissions)


@dataclass
class _Written:
    submission_id: int
    message: str | None


def is_data_problem(error: BaseException) -> bool:
    """Return whether a write failed on the data (retry alone) rather than on the infrastructure."""
    if isinstance(error, DatabaseUnavailable):
        return False
    if isinstance(error, IntegrityError | DataError):
        return True
    if isinstance(error, StatementError) and not isinstance(error, DBAPIError):
        return True  # a value the column type refused while binding
    return isinstance(error, ValueError | TypeError)


@dataclass(frozen=True)
class Judged:
    """A checked file with every finding (database rules included) and the decision they lead to."""

    item: Checked
    findings: list[Finding]
    decision: Decision


def judge(session: Session, reference: Reference, items: Sequence[Checked]) -> list[Judged]:
    """Add the database rules to checked files and decide each; create missing cycle/school rows."""
    ensure_reference_rows(session, reference, {item.cycle_id for item in items},
                          {item.school_code for item in items})
    previous = previous_totals(
        session.connection(), reference, {(item.school_code, item.cycle_id) for item in items}
    )
    judged = []
    for item in items:
        before = previous.get((item.school_code, item.cycle_id)) if item.school_code else None
        findings = [*item.findings, *db_findings(item, reference, before, item.record.file.sender)]
        judged.append(Judged(item, findings, decide(findings)))
    return judged


def submission_values(entry: Judged, reference: Reference, decided_at: dt.datetime) -> dict[str, Any]:
    """Return the submissions-table values a judged file sets (identity, decision, counts)."""
    item = entry.item
    cycle = reference.calendar.get(item.cycle_id)
    if cycle is None:
        raise ValueError(f"malformed cycle id {item.cycle_id!r}")
    received_at = item.record.file.received_at
    claimed = item.parsed.general.get("school_code")
    version = item.parsed.meta.get("template_version")
    return {
        "school_code": item.school_code,
        "claimed_school_code": (claimed.raw or None) if claimed is not None else None,
        "cycle_id": item.cycle_id,
        "cycle_source": item.cycle_source,
        "decision": entry.decision.value,
        "decided_at": decided_at,
        "template_version": (
            str(version.value)[:32] if version is not None and not _blank(version.value) else None
        ),
        "error_count": sum(finding.is_error for finding in entry.findings),
        "warning_count": sum(not finding.is_error for finding in entry.findings),
        "file_format": item.parsed.file_format,
        "is_on_time": received_at < cycle.deadline_end,
    }


def insert_decisions(
    conn: Connection,
    entries: Sequence[tuple[int, Decision, str]],
    decided_at: dt.datetime,
    *,
    note: str | None = None,
    actor: str | None = None,
) -> list[int]:
    """Insert one decisions row per (submission id, decision, reason); return their ids in order."""
    rows = [
        {
            "submission_id": submission_id,
            "state": decision.value,
            "reason": reason,
            "note": note,
            "actor": actor,
            "decided_at": decided_at,
            "contract_version": CONTRACT_VERSION,
        }
        for submission_id, decision, reason in entries
    ]
    statement = insert(DECISIONS).returning(DECISIONS.c.id, sort_by_parameter_order=True)
    return list(conn.execute(statement, rows).scalars())


def insert_results(conn: Connection, entries: Sequence[tuple[int, int, Judged]]) -> None:
    """Insert the findings and normalised sheet rows of (submission id, decision id, judged) entries."""
    finding_table_rows: list[dict[str, Any]] = []
    rows: dict[str, list[dict[str, Any]]] = {key: [] for key in SHEET_TABLES}
    for submission_id, decision_id, entry in entries:
        finding_table_rows.extend(finding_rows(submission_id, decision_id, entry.findings))
        for key, sheet in sheet_rows(submission_id, entry.item.parsed).items():
            rows[key].extend(sheet)
    insert_many(conn, FINDINGS, finding_table_rows)
    insert_sheet_rows(conn, rows)


def _write(session: Session, reference: Reference, items: Sequence[Checked]) -> dict[int, _Written]:
    """Write whole submissions in the session's transaction; return them by received_file_id."""
    judged = judge(session, reference, items)
    conn = session.connection()
    decided_at = now()
    submission_rows = []
    for entry in judged:
        values = submission_values(entry, reference, decided_at)
        values.update(
            received_file_id=entry.item.record.received_file_id,
            receipt_id=entry.item.record.receipt_id,
            received_at=entry.item.record.file.received_at,
            state=entry.decision.value,  # supersession is derived below, with the school's others
        )
        submission_rows.append(values)
    statement = insert(SUBMISSIONS).returning(SUBMISSIONS.c.id, sort_by_parameter_order=True)
    submission_ids = list(conn.execute(statement, submission_rows).scalars())
    decision_ids = insert_decisions(
        conn,
        [(submission_id, entry.decision, "validation") for submission_id, entry in zip(
            submission_ids, judged, strict=True)],
        decided_at,
    )
    insert_results(conn, list(zip(submission_ids, decision_ids, judged, strict=True)))
    recompute_states(conn, {(item.school_code, item.cycle_id) for item in items})
    return {
        entry.item.record.received_file_id: _Written(
            submission_id, first_message(entry.findings, entry.decision)
        )
        for submission_id, entry in zip(submission_ids, judged, strict=True)
    }


def write_submissions(engine: Engine, reference: Reference, items: Sequence[Checked]) -> dict[int, _Written]:
    """Write checked files as submissions: one transaction for the batch, else one per submission."""
    if not items:
        return {}
    try:
        with Session(engine) as session, session.begin():
            return _write(session, reference, items)
    except Exception as error:
        if not is_data_problem(error):
            raise
        log.warning("a batch of %d submissions failed on its data (%s: %s); storing them one by one",
                    len(items), type(error).__name__, error)
    written: dict[int, _Written] = {}
    for item in items:
        try:
            with Session(engine) as session, session.begin():
                written.update(_write(session, reference, [item]))
        except Exception as error:
            if not is_data_problem(error):
                raise
            # Its raw bytes are stored; the file stays in the inbox and the next run tries again.
            log.error("cannot store %s: %s: %s", item.record.file.original_name, type(error).__name__, error)
    return written


def store_submissions(
    engine: Engine, reference: Reference, records: Sequence[RawRecord], checked: Sequence[Checked]
) -> list[Outcome]:
    """Store the checked files as submissions, then report every record's submission and state."""
    written = write_submissions(engine, reference, checked)
    file_ids = {record.received_file_id for record in records}
    current: dict[int, Any] = {}
    if file_ids:
        with engine.connect() as conn:
            query = select(
                SUBMISSIONS.c.id,
                SUBMISSIONS.c.received_file_id,
                SUBMISSIONS.c.school_code,
                SUBMISSIONS.c.cycle_id,
                SUBMISSIONS.c.state,
                SUBMISSIONS.c.error_count,
                SUBMISSIONS.c.warning_count,
            ).where(SUBMISSIONS.c.received_file_id.in_(file_ids))
            current = {row.received_file_id: row for row in conn.execute(query)}
    outcomes = []
    for record in records:
        row = current.get(record.received_file_id)
        mine = written.get(record.received_file_id)
        created = mine is not None and record.to_read
        outcomes.append(
            Outcome(
                original_name=record.file.original_name,
                path=record.file.path,
                sha256=record.file.sha256,
                source_ref=record.file.source_ref,
                received_file_id=record.received_file_id,
                new_file=record.new_file,
                new_receipt=record.new_receipt,
                submission_id=row.id if row is not None else None,
                created=created,
                school_code=row.school_code if row is not None else None,
                cycle_id=row.cycle_id if row is not None else None,
                state=row.state if row is not None else None,
                error_count=row.error_count if row is not None else 0,
                warning_count=row.warning_count if row is not None else 0,
                message=mine.message if created and mine is not None else None,
            )
        )
    return outcomes


def current_states(engine: Engine, submission_ids: Sequence[int]) -> dict[int, str]:
    """Return the current state of submissions by id."""
    found: dict[int, str] = {}
    with engine.connect() as conn:
        for start in range(0, len(submission_ids), 500):  # SQLite caps bound parameters
            chunk = submission_ids[start:start + 500]
            query = select(SUBMISSIONS.c.id, SUBMISSIONS.c.state).where(SUBMISSIONS.c.id.in_(chunk))
            found.update((row.id, row.state) for row in conn.execute(query))
    return found


def ingest(
    engine: Engine, reference: Reference, files: Sequence[IncomingFile], *, max_bytes: int
) -> list[Outcome]:
    """Run one batch through raw store, parse, validate and store (no archive), without Prefect."""
    records = store_raw(engine, files)
    return store_submissions(engine, reference, records, check_files(records, reference, max_bytes=max_bytes))


# --------------------------------------------------------------------------------------------------
# After the commit: archive targets and the run's summary


def archive_targets(outcomes: Sequence[Outcome], archive_dir: Path) -> list[tuple[Path, Path]]:
    """Return (inbox file, archive path) for every outcome with a path and a stored submission."""
    return [
        (item.path,
         archive_path(archive_dir, item.cycle_id, item.state, item.submission_id, item.original_name))
        for item in outcomes
        if item.path is not None and item.submission_id is not None and item.cycle_id and item.state
    ]


class Problem(BaseModel):
    """A new submission that was rejected or held; never carries a confidential value."""

    submission_id: int
    school_code: str | None
    cycle_id: str | None
    file: str
    state: str
    error_count: int
    message: str | None


class NotKept(BaseModel):
    """A mailbox attachment that was not stored, or a message with no workbook: nothing to validate,
    so no submission, but the sender was answered and the operator should see it too."""

    message: str  # the message's reference (Message-ID, else mailbox UID)
    sender: str | None
    file: str | None  # None: the message itself had no workbook
    reason: str  # a mail_extract.SkipReason code, or "no_workbook"


class CollectSummary(BaseModel):
    """What one collect run did; safe to log and publish (no incident values)."""

    files_seen: int = 0
    new_files: int = 0  # bytes stored for the first time
    duplicates: int = 0  # new arrivals of bytes stored before (same file sent again)
    already_recorded: int = 0  # arrivals an earlier (interrupted) run recorded
    submissions: int = 0  # submissions created
    # States of the submissions created: as each batch left them, then as the run left them (refresh).
    states: dict[str, int] = Field(default_factory=dict)
    submission_ids: list[int] = Field(default_factory=list)  # created, in arrival order
    archived: int = 0
    left_in_inbox: list[str] = Field(default_factory=list)
    problems: list[Problem] = Field(default_factory=list)
    not_kept: list[NotKept] = Field(default_factory=list)

    def add(self, outcomes: Sequence[Outcome], destinations: Mapping[Path, Path | None]) -> None:
        """Add one batch's outcomes and where its files were moved."""
        self.files_seen += len(outcomes)
        counts = Counter(self.states)
        for item in outcomes:
            self.new_files += item.new_file
            self.duplicates += item.new_receipt and not item.new_file and not item.created
            self.already_recorded += not item.new_receipt
            if item.created and item.state and item.submission_id is not None:
                self.submissions += 1
                self.submission_ids.append(item.submission_id)
                counts[item.state] += 1
                if item.state in (State.REJECTED.value, State.HELD.value):
                    self.problems.append(
                        Problem(
                            submission_id=item.submission_id or 0,
                            school_code=item.school_code,
                            cycle_id=item.cycle_id,
                            file=item.original_name,
                            state=item.state,
                            error_count=item.error_count,
                            message=item.message,
                        )
                    )
            moved = destinations.get(item.path) if item.path is not None else None
            if moved is not None:
                self.archived += 1
            elif item.path is not None:
                self.left_in_inbox.append(item.original_name)
        self.states = dict(sorted(counts.items()))

    def refresh(self, states: Mapping[int, str]) -> None:
        """Count the created submissions by their state now (a later batch may have superseded some)."""
        counts = Counter(states[item] for item in self.submission_ids if item in states)
        self.states = dict(sorted(counts.items()))
        for problem in self.problems:
            problem.state = states.get(problem.submission_id, problem.state)

    def one_line(self) -> str:
        """Return the run in one log line."""
        states = ", ".join(f"{state} {count}" for state, count in self.states.items()) or "none"
        return (
            f"{self.files_seen} files seen, {self.new_files} new, {self.duplicates} duplicates, "
            f"{self.already_recorded} already recorded; {self.submissions} submissions ({states}); "
            f"{self.archived} archived, {len(self.left_in_inbox)} left in the inbox"
        )

    def problem_rows(self) -> list[dict[str, Any]]:
        """Return the rejected and held submissions as table rows (kebab-case artifact friendly)."""
        return [problem.model_dump() for problem in self.problems]

    def to_markdown(self) -> str:
        """Return the run as a short markdown report for the Prefect UI."""
        lines = [
            "# Collect run",
            "",
            "| files seen | new | duplicates | already recorded | submissions | archived | left in inbox |",
            "|---:|---:|---:|---:|---:|---:|---:|",
            f"| {self.files_seen} | {self.new_files} | {self.duplicates} | {self.already_recorded} | "
            f"{self.submissions} | {self.archived} | {len(self.left_in_inbox)} |",
            "",
            "States of the new submissions: "
            + (", ".join(f"**{state}** {count}" for state, count in self.states.items()) or "none"),
        ]
        if self.problems:
            lines += ["", "| submission | school | file | state | errors | first message |",
                      "|---:|---|---|---|---:|---|"]
            for problem in self.problems[:MARKDOWN_ROWS]:
                cells = [str(problem.submission_id), problem.school_code or "?", problem.file, problem.state,
                         str(problem.error_count), problem.message or ""]
                lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
            if len(self.problems) > MARKDOWN_ROWS:
                lines.append(f"\n… and {len(self.problems) - MARKDOWN_ROWS} more (see failed-validations).")
        if self.not_kept:
            lines += ["", "Mail with nothing stored (the sender was answered):", "",
                      "| message | sender | attachment | reason |", "|---|---|---|---|"]
            for item in self.not_kept[:MARKDOWN_ROWS]:
                cells = [item.message, item.sender or "?", item.file or "(no workbook)", item.reason]
                lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
            if len(self.not_kept) > MARKDOWN_ROWS:
                lines.append(f"\n… and {len(self.not_kept) - MARKDOWN_ROWS} more (see attachments-not-kept).")
        return "\n".join(lines) + "\n"
