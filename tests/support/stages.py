"""Pipeline stages in tests: `ingest` runs the intake stages without Prefect, `task_runs` reads back
which stage tasks a flow run ran.

`ingest` calls the same plain functions the collect flow's tasks call, in the flow's order (no
archive, no reply), for tests that need stored submissions quickly.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
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


def task_runs(flow_run_id: uuid.UUID, last: str) -> tuple[str, Counter[str]]:
    """Return a flow run's name and its task runs counted by task, once the server recorded `last`."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + 60
    with get_client(sync_client=True) as client:
        while True:  # the server records task runs from events, a moment after they ran
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            stages = Counter(run.name.rsplit("-", 1)[0] for run in runs)
            if stages[last] or time.monotonic() > deadline:
                return client.read_flow_run(flow_run_id).name, stages
            time.sleep(0.5)
