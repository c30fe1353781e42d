"""The check every source and re-validation share (SPEC §3): parse and validate a batch in memory."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from schemas.findings import Finding
from schemas.reference import Reference
from schemas.workbook import ParsedWorkbook
from tasks.check.identity import identify
from tasks.check.parse import parse_workbook
from tasks.check.validate import validate_batch
from tasks.storage.raw import RawRecord


@dataclass
class Checked:
    """A file read and validated without the database: its workbook, findings, school and cycle."""

    record: RawRecord
    parsed: ParsedWorkbook
    findings: list[Finding]
    school_code: str | None
    cycle_id: str
    cycle_source: str  # "workbook", or "arrival": the cycle open when it arrived


def check_files(records: Sequence[RawRecord], reference: Reference, *, max_bytes: int) -> list[Checked]:
    """Parse the records still to read and validate them as one batch."""
    todo = [record for record in records if record.to_read]
    # Keyed by position: re-validated submissions may share a receipt id (older rows have none).
    parsed = [(index, parse_workbook(record.file.content, max_bytes=max_bytes))
              for index, record in enumerate(todo)]
    findings = validate_batch(parsed, reference) if parsed else {}
    checked = []
    for record, (key, workbook) in zip(todo, parsed, strict=True):
        school_code, cycle_id, cycle_source = identify(workbook, reference, record.file.received_at)
        checked.append(Checked(record, workbook, findings[key], school_code, cycle_id, cycle_source))
    return checked
