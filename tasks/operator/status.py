"""A cycle's status (SPEC §7 `gec status --json`) from the typed cycle rows the report reads too.

`cycle_status` reads `tasks.storage.cycle_rows.read_cycle_rows`, which re-derives states with
`tasks.storage.states`, so the same code answers "now" and "as of a past moment".
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import Engine

from schemas.reference import Reference
from tasks.storage.cycle_rows import read_cycle_rows

log = logging.getLogger(__name__)



def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


# --------------------------------------------------------------------------------------------------
# Status


def cycle_status(
    engine: Engine, reference: Reference, cycle_id: str, as_of: dt.datetime | None = None
) -> dict[str, Any]:
    """Return the SPEC §7 status of a cycle: schools' completeness, submissions, totals per state.

    With `as_of`, only submissions received by then count, each with the decision it had then.
    """
    rows = read_cycle_rows(engine, reference, cycle_id, as_of)
    return {
        "cycle": rows.cycle_id,
        "schools": [
            {
                "code": school.code,
                "name": school.name,
                "level": school.level,
                "ward": school.ward,
                "state": school.state,
                "on_time": school.on_time,
                "received_at": _iso(school.received_at),
                "submission_id": school.submission_id,
            }
            for school in rows.schools
        ],
        "submissions": [
            {
                "id": item.id,
                "school_code": item.school_code,
                "file": item.file,
                "sha256": item.sha256,
                "source": item.source,
                "sender": item.sender,
                "received_at": _iso(item.received_at),
                "state": item.state,
                "findings": [
                    {"severity": one.severity, "rule": one.rule, "sheet": one.sheet, "row": one.row,
                     "column": one.column}
                    for one in item.findings
                ],
            }
            for item in rows.submissions
        ],
        "totals": rows.totals,
    }
