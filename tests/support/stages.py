"""The intake stages run in a row without Prefect, for tests that need stored submissions quickly.

The same plain functions the collect flow's tasks call, in the flow's order (no archive, no reply).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine

from schemas.reference import Reference
from tasks.check.checking import check_files
from tasks.intake.folder import IncomingFile
from tasks.storage.raw import store_raw
from tasks.storage.submissions import Outcome, store_submissions


def ingest(engine: Engine, reference: Reference, files: Sequence[IncomingFile], *, max_bytes: int
           ) -> list[Outcome]:
    """Store files raw, check them and store their submissions; return every arrival's outcome."""
    records = store_raw(engine, files)
    return store_submissions(engine, reference, records, check_files(records, reference, max_bytes=max_bytes))
