"""Storage (SPEC §4, §8): checked files become submissions with their decision, findings, rows and states.

`store_submissions` adds the database rules (`tasks.check.history`), decides, writes each submission
with its decision, findings and sheet rows, and re-derives the states of the schools and cycles it
touched. A submission's writes are never split across transactions; a batch shares one, and when a
batch fails on a data problem each submission is retried alone so one bad file never blocks the others.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from email.utils import parseaddr
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError
from sqlalchemy.orm import Session

from db.engine import DatabaseUnavailable
from db.setup import sync_cycle, sync_schools
from schemas.contract import CONTRACT_VERSION
from schemas.findings import Finding, make_finding
from schemas.reference import Reference
from tasks.check.checking import Checked
from tasks.check.history import db_findings, decide, previous_totals
from tasks.storage.findings import finding_rows, first_message
from tasks.storage.raw import RawRecord
from tasks.storage.recompute import recompute_states
from tasks.storage.rows import insert_many, insert_sheet_rows, is_blank, sheet_rows
from tasks.storage.states import Decision
from tasks.storage.tables import CYCLES, DECISIONS, FINDINGS, SCHOOLS, SHEET_TABLES, SUBMISSIONS, now

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


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
    return isinstance(error, ValueError | TypeError | OverflowError)  # OverflowError: SQLite binding an int


@dataclass(frozen=True)
class Judged:
    """A checked file with every finding (database rules included) and the decision they lead to."""

    item: Checked
    findings: list[Finding]
    decision: Decision


def sender_school(reference: Reference, sender: str | None) -> str | None:
    """Return the one school whose registered addresses include the sender's, else None."""
    address = parseaddr(sender or "")[1].strip().casefold()
    if not address:
        return None
    codes = [code for code, school in reference.schools.items()
             if address in {parseaddr(item)[1].strip().casefold() for item in school.emails}]
    return codes[0] if len(codes) == 1 else None


def attribute(item: Checked, reference: Reference) -> Checked:
    """Give a file nobody could read (too large, not a workbook, encrypted) its sender's school.

    Such a file names no school itself; when its sender is registered for exactly one school the
    attempt is that school's, so the school shows as `received_invalid`, not `missing` (issue 11 #7).
    """
    if item.school_code is not None or item.parsed.readable:
        return item
    school_code = sender_school(reference, item.record.file.sender)
    return replace(item, school_code=school_code) if school_code else item


def judge(session: Session, reference: Reference, items: Sequence[Checked]) -> list[Judged]:
    """Add the database rules to checked files and decide each; create missing cycle/school rows."""
    items = [attribute(item, reference) for item in items]
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
            str(version.value)[:32] if version is not None and not is_blank(version.value) else None
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
    recompute_states(conn, {(entry.item.school_code, entry.item.cycle_id) for entry in judged})
    return {
        entry.item.record.received_file_id: _Written(
            submission_id, first_message(entry.findings, entry.decision)
        )
        for submission_id, entry in zip(submission_ids, judged, strict=True)
    }


_STATEMENT_TABLE = re.compile(r"\b(?:INTO|COPY|UPDATE|FROM)\s+\"?([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)
_COPY_LINE = re.compile(r"\bline (\d+)\b")


def describe_fault(error: BaseException) -> str:
    """Describe a write failure without its values: the error class, the table, the row of a COPY.

    A database's error text quotes the offending value (PostgreSQL: `COPY incident_counts, line 1,
    column cases: "3000000007"`), and incident counts never reach a log (SPEC §9): only the class,
    the table named by the statement and a COPY's line number are kept.
    """
    parts = [type(getattr(error, "orig", None) or error).__name__]
    statement = getattr(error, "statement", None)
    found = _STATEMENT_TABLE.search(statement) if isinstance(statement, str) else None
    if found:
        parts.append(f"table {found.group(1)}")
    line = _COPY_LINE.search(str(getattr(error, "orig", None) or ""))
    if line and found:
        parts.append(f"row {line.group(1)} of the batch")
    return ", ".join(parts)


def write_batch(
    engine: Engine,
    items: Sequence[T],
    write: Callable[[Session, Sequence[T]], R],
    describe: Callable[[T], str],
    record_failure: Callable[[Session, T, str], R] | None = None,
) -> tuple[list[R], list[T]]:
    """Write items in one transaction, else (on a data problem) each in its own; return results and failures.

    A batch shares one transaction for speed; when it fails on its data, each item is retried alone so
    one bad file never blocks the others, and an item that still fails is handed to `record_failure`
    (with the fault's description) in a transaction of its own. Infrastructure faults are raised for
    the task to retry. Logs name the fault's class, table and row, never the database's text.
    """
    try:
        with Session(engine) as session, session.begin():
            return [write(session, items)], []
    except Exception as error:
        if not is_data_problem(error):
            raise
        log.warning("a batch of %d failed on its data (%s); writing them one by one",
                    len(items), describe_fault(error))
    done: list[R] = []
    failed: list[T] = []
    for item in items:
        try:
            with Session(engine) as session, session.begin():
                done.append(write(session, [item]))
            continue
        except Exception as error:
            if not is_data_problem(error):
                raise
            fault = describe_fault(error)
            log.error("cannot write %s: %s", describe(item), fault)
        if record_failure is not None:
            try:
                with Session(engine) as session, session.begin():
                    done.append(record_failure(session, item, fault))
                continue
            except Exception as error:
                if not is_data_problem(error):
                    raise
                log.error("cannot record the failure of %s either: %s", describe(item), describe_fault(error))
        failed.append(item)
    return done, failed


def _write_failed(session: Session, reference: Reference, item: Checked, fault: str) -> dict[int, _Written]:
    """Record a file whose rows could not be stored: rejected with `storage_error`, raw bytes kept.

    The submission keeps its identity (school, cycle, format) and no sheet rows; its one finding
    tells the school the office will look at it and tells the operator the fault's class (in the
    finding's `detail` and the decision's note), never a value. The file leaves the inbox like any
    other verdict, so the next run does not trip on it again; the operator re-validates it after a fix.
    """
    item = attribute(item, reference)
    ensure_reference_rows(session, reference, [item.cycle_id], [item.school_code])
    conn = session.connection()
    decided_at = now()
    finding = make_finding("storage_error", detail=fault)
    entry = Judged(item, [finding], Decision.REJECTED)
    values = submission_values(entry, reference, decided_at)
    values.update(
        received_file_id=item.record.received_file_id,
        receipt_id=item.record.receipt_id,
        received_at=item.record.file.received_at,
        state=Decision.REJECTED.value,
    )
    statement = insert(SUBMISSIONS).returning(SUBMISSIONS.c.id)
    submission_id = conn.execute(statement, values).scalar_one()
    [decision_id] = insert_decisions(conn, [(submission_id, Decision.REJECTED, "validation")], decided_at,
                                     note=f"storage failed: {fault}")
    insert_many(conn, FINDINGS, finding_rows(submission_id, decision_id, [finding]))
    recompute_states(conn, {(item.school_code, item.cycle_id)})
    message = first_message([finding], Decision.REJECTED)
    return {item.record.received_file_id: _Written(submission_id, message)}


def write_submissions(engine: Engine, reference: Reference, items: Sequence[Checked]) -> dict[int, _Written]:
    """Write checked files as submissions: one transaction for the batch, else one per submission."""
    if not items:
        return {}
    # A file whose rows cannot be stored is recorded as rejected (`storage_error`), its raw bytes kept;
    # only when even that record fails does it stay in the inbox for the next run.
    done, _failed = write_batch(engine, items, lambda session, batch: _write(session, reference, batch),
                                lambda item: item.record.file.original_name,
                                lambda session, item, fault: _write_failed(session, reference, item, fault))
    return {key: value for written in done for key, value in written.items()}


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
