"""Which school and cycle a workbook belongs to (SPEC §4): its own, else the cycle open on arrival."""

from __future__ import annotations

import datetime as dt

from schemas.reference import Reference
from schemas.workbook import ParsedWorkbook
from tasks.check.validate import resolve_identity

# submissions.cycle_source: the cycle the workbook names, or the one open when the file arrived.
WORKBOOK = "workbook"
ARRIVAL = "arrival"


def identify(parsed: ParsedWorkbook, reference: Reference, received_at: dt.datetime) -> tuple[
    str | None, str, str
]:
    """Return (school code, cycle id, cycle source): the workbook's cycle, else the one open on arrival."""
    school_code, cycle_id = resolve_identity(parsed, reference) if parsed.readable else (None, None)
    if cycle_id is not None:
        return school_code, cycle_id, WORKBOOK
    return school_code, reference.calendar.open_at(received_at).id, ARRIVAL
