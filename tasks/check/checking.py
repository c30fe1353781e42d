"""The check every source and re-validation share (SPEC §3): parse and validate a batch in memory.

A large batch can be spread over a pool of worker processes (`process_pool`): parsing and pandera
validation are CPU-bound Python, so threads gain nothing (the GIL) while processes use every core.
Findings do not depend on which other workbooks share a validation call, so the split changes no result.
"""

from __future__ import annotations

import atexit
import datetime as dt
import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass

from schemas.findings import Finding
from schemas.reference import Reference
from schemas.workbook import ParsedWorkbook
from tasks.check.identity import identify
from tasks.check.parse import parse_workbook
from tasks.check.validate import validate_batch
from tasks.storage.raw import RawRecord

# Below this many files to read, a batch is checked in the calling process: shipping bytes to the
# workers and parsed workbooks back costs more than it saves (and a one-file run starts no pool).
PROCESS_MIN_FILES = 40
# Workers of the pool: one per core (the calling process mostly waits on the database meanwhile).
PROCESS_WORKERS = max(1, min(8, os.cpu_count() or 1))

_pool: ProcessPoolExecutor | None = None
_pool_warming: list[Future[int]] = []
_pool_lock = threading.Lock()


@dataclass
class Checked:
    """A file read and validated without the database: its workbook, findings, school and cycle."""

    record: RawRecord
    parsed: ParsedWorkbook
    findings: list[Finding]
    school_code: str | None
    cycle_id: str
    cycle_source: str  # "workbook", or "arrival": the cycle open when it arrived


# What a worker process needs of one file, and what it sends back (the record stays in the caller).
_Job = tuple[bytes, dt.datetime]
_Result = tuple[ParsedWorkbook, list[Finding], str | None, str, str]


def _check_contents(jobs: Sequence[_Job], reference: Reference, max_bytes: int) -> list[_Result]:
    """Parse and validate files' bytes as one batch; return each file's workbook, findings and identity."""
    # Keyed by position: re-validated submissions may share a receipt id (older rows have none).
    parsed = [(index, parse_workbook(content, max_bytes=max_bytes))
              for index, (content, _received) in enumerate(jobs)]
    findings = validate_batch(parsed, reference) if parsed else {}
    return [(workbook, findings[key], *identify(workbook, reference, received_at))
            for (_content, received_at), (key, workbook) in zip(jobs, parsed, strict=True)]


def _check_chunk(jobs: Sequence[_Job], reference: Reference, max_bytes: int) -> list[_Result]:
    """Check a chunk in a worker process (a module-level function, so the pool can pickle it)."""
    return _check_contents(jobs, reference, max_bytes)


def _warm() -> int:
    """Do nothing in a worker: submitted at start-up so the workers exist before the first batch."""
    return os.getpid()


def process_pool() -> ProcessPoolExecutor:
    """Return this process's checking pool, started on first use with its workers' imports done.

    One pool per process, reused by every later run (the watcher runs many collects): a 'forkserver'
    whose server imports this module once (pandas, pandera, calamine: ~2 s), so each worker forks ready.
    Not 'fork': the flow-run process has threads (Prefect's) that a forked child would inherit mid-lock.
    """
    global _pool
    with _pool_lock:
        if _pool is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__])
            _pool = ProcessPoolExecutor(PROCESS_WORKERS, mp_context=context)
            # Workers start on demand, one per submitted job: start them all now.
            _pool_warming[:] = [_pool.submit(_warm) for _ in range(PROCESS_WORKERS)]
            atexit.register(_pool.shutdown, wait=False, cancel_futures=True)
        return _pool


def pool_ready() -> bool:
    """Return whether the pool's workers have started (imports done) and can take a batch now."""
    return _pool is not None and all(future.done() for future in _pool_warming)


def check_files(records: Sequence[RawRecord], reference: Reference, *, max_bytes: int,
                pool: Executor | None = None) -> list[Checked]:
    """Parse the records still to read and validate them as one batch (spread over `pool` when large)."""
    todo = [record for record in records if record.to_read]
    jobs = [(record.file.content, record.file.received_at) for record in todo]
    if pool is None or len(jobs) < PROCESS_MIN_FILES:
        results = _check_contents(jobs, reference, max_bytes)
    else:
        # Contiguous chunks, one per worker, gathered in order: the same results in the same order.
        size = -(-len(jobs) // PROCESS_WORKERS)
        chunks = [jobs[start:start + size] for start in range(0, len(jobs), size)]
        futures = [pool.submit(_check_chunk, chunk, reference, max_bytes) for chunk in chunks]
        results = [result for future in futures for result in future.result()]
    return [Checked(record, *result) for record, result in zip(todo, results, strict=True)]
