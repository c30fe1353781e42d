"""What more than one flow uses: the tasks shared by several flows and the run names.

Convention (every flow module): `tasks/` holds no Prefect code; each `@task` is declared once, in the
flow module that uses it (here when two flows do), and its body is a call of one plain function.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from prefect import task
from prefect.cache_policies import NONE
from prefect.runtime import flow_run

from config.settings import TIMEZONE
from db.engine import make_engine
from db.setup import init_database
from flows.policies import DB_WRITE_TAG, RETRIES
from schemas.reference import Reference
from tasks.check import checking
from tasks.check.checking import Checked
from tasks.mail import outbox
from tasks.mail.smtp import SmtpConfig
from tasks.storage.raw import RawRecord


def run_name(template: str, **defaults: Any) -> Callable[[], str]:
    """Return a flow_run_name callable: `template` filled with the run's parameters and its local start time.

    `{time}` is the time in Asia/Ho_Chi_Minh (YYYYMMDD-HHMMSS), so runs of the same flow are told apart.
    """

    def name() -> str:
        values = {**defaults, **(flow_run.parameters or {})}
        return template.format(**values, time=dt.datetime.now(TIMEZONE).strftime("%Y%m%d-%H%M%S"))

    return name


@task(cache_policy=NONE, timeout_seconds=600, tags=[DB_WRITE_TAG], **RETRIES)
def prepare_database(reference: Reference, cycle: str | None = None) -> None:
    """Create or upgrade the database and load the registry (and the cycle, if named) into it."""
    init_database(None, reference, cycle_ids=(cycle,) if cycle else ())


@task(cache_policy=NONE)
def check_files(records: Sequence[RawRecord], reference: Reference, max_bytes: int,
                in_processes: bool = False) -> list[Checked]:
    """Parse and validate a batch's files in memory (new arrivals, or stored files re-validated).

    `in_processes`: spread a large batch over this process's worker pool (a flow running its tasks in
    threads sets it; on a Dask worker the task is already in a process of its own). While the pool is
    still starting (its imports take seconds), a batch is checked here rather than wait for it.
    """
    pool = None
    if in_processes and len(records) >= checking.PROCESS_MIN_FILES:
        pool = checking.process_pool()
        pool = pool if checking.pool_ready() else None
    return checking.check_files(records, reference, max_bytes=max_bytes, pool=pool)


@task(cache_policy=NONE, timeout_seconds=1800, tags=[DB_WRITE_TAG], **RETRIES)
def flush_outbox() -> outbox.FlushResult:
    """Send the queued mail, oldest first; what cannot go now stays queued for the next run."""
    return outbox.flush_outbox(make_engine(), SmtpConfig.from_settings())
