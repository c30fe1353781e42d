"""Collect submissions (SPEC §4, §6): one pipeline for the drop folder and the mailbox.

Every batch of either source goes through the same stages, each its own task over one plain function:
store_raw (`tasks.storage.raw`) → check_files (`tasks.check.checking`) → store_submissions
(`tasks.storage.submissions`) → (mailbox) queue_replies (`tasks.mail.replies`) → finish: archive the
files (`tasks.intake.folder`) or file the messages to IMAP folders (`tasks.intake.messages`). Then the
outbox is flushed, the states read back and the run published. Tasks open what they need from settings
(no engine crosses a task boundary).
Submissions are stored batch after batch in arrival order, so their ids follow it. A large drop folder
keeps a few batches in flight: the next ones are parsed and validated in worker processes (or on Dask
workers) while this one is stored; a crash repeats at most those batches' work (never loses a file).
Small runs stay in one process, one batch at a time: parsing in a thread while a batch is stored was
measured slower (the GIL starves the database round trips) and starting workers costs seconds.
Validation failures are data (the run completes and publishes them); a database that cannot be
reached fails the run with DatabaseUnavailable after the task retries.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.events import emit_event
from prefect.futures import PrefectFuture
from prefect.utilities.annotations import quote

from config.settings import get_settings
from db.engine import DatabaseUnavailable, make_engine
from flows.common import check_files, flush_outbox, prepare_database, run_name
from flows.policies import DB_WRITE_TAG, MAILBOX_RETRIES, RETRIES
from flows.runner import runs_tasks_here, task_runner_from_settings
from schemas.reference import Reference, load_reference
from tasks.check import checking
from tasks.check.checking import Checked
from tasks.intake import folder as intake
from tasks.intake import messages as mail_intake
from tasks.intake.mailbox import ImapConfig, MailboxUnavailable, MailItem, fetch_unseen
from tasks.mail import replies
from tasks.operator.summary import CollectSummary
from tasks.storage import queries, raw
from tasks.storage import submissions as store
from tasks.storage.lock import CollectBusy, collect_lock
from tasks.storage.raw import RawRecord
from tasks.storage.submissions import Outcome

Source = Literal["folder", "mailbox", "all"]
SUPPORTED_SOURCES = ("folder", "mailbox", "all")
# Files per drop-folder batch: each batch costs a few Prefect task runs, a pandera call per sheet and
# two transactions, so larger batches are cheaper (bench/ingest.py: 200 vs 50 saves about a quarter).
# A batch is held in memory whole, hence the byte cap; the mailbox reads at most MAIL_BATCH messages.
DEFAULT_BATCH_SIZE = 200
BATCH_BYTES = 64 * 1024 * 1024
MAIL_BATCH = mail_intake.DEFAULT_BATCH
# Drop-folder batches between store_raw and store_submissions at once (see in_flight): with local worker
# processes, one checked while one is stored; on a cluster, enough to keep two or more workers busy.
IN_FLIGHT_LOCAL = 2
IN_FLIGHT_CLUSTER = 4


def check_source(source: str) -> None:
    """Refuse an unknown source, with a message the command line can show as is."""
    if source not in SUPPORTED_SOURCES:
        raise ValueError(f"source {source!r} is unknown: use folder, mailbox or all")


# --------------------------------------------------------------------------------------------------
# Tasks: each a call of one plain function; bytes and parsed workbooks are passed in memory, never
# cached or persisted


@task(cache_policy=NONE)
def list_inbox(inbox_dir: Path, batch_size: int) -> list[list[Path]]:
    """List the inbox's files, oldest first, in batches of at most `batch_size` files and BATCH_BYTES."""
    return intake.batch_paths(intake.list_inbox(inbox_dir), batch_size, BATCH_BYTES)


@task(cache_policy=NONE, timeout_seconds=300, retries=2, retry_delay_seconds=[2, 5])
def read_files(paths: Sequence[Path]) -> list[intake.IncomingFile]:
    """Read a batch of inbox files into memory."""
    return intake.read_inbox_files(paths, get_settings().max_file_bytes)


@task(cache_policy=NONE, timeout_seconds=300, **MAILBOX_RETRIES)
def fetch_mail(batch_size: int) -> list[MailItem]:
    """Read a batch of unseen messages without marking them."""
    return fetch_unseen(ImapConfig.from_settings(), batch_size)


@task(cache_policy=NONE, timeout_seconds=300)
def read_mail(items: Sequence[MailItem], max_bytes: int) -> list[mail_intake.ReadMessage]:
    """Extract the messages' workbooks and tell who sent each."""
    return mail_intake.read_messages(items, max_bytes=max_bytes, office_address=get_settings().smtp_from)


@task(cache_policy=NONE, timeout_seconds=300, tags=[DB_WRITE_TAG], **RETRIES)
def store_raw(files: Sequence[intake.IncomingFile]) -> list[RawRecord]:
    """Store the batch's raw bytes and arrivals, committed before anything parses them."""
    return raw.store_raw(make_engine(), files)


@task(cache_policy=NONE, timeout_seconds=600, tags=[DB_WRITE_TAG], **RETRIES)
def store_submissions(
    records: Sequence[RawRecord], checked: Sequence[Checked], reference: Reference
) -> list[Outcome]:
    """Store the batch's submissions with their findings, rows and states."""
    return store.store_submissions(make_engine(), reference, records, checked)


@task(cache_policy=NONE, timeout_seconds=900, tags=[DB_WRITE_TAG], **RETRIES)
def queue_replies(
    messages: Sequence[mail_intake.ReadMessage], records: Sequence[RawRecord], checked: Sequence[Checked],
    outcomes: Sequence[Outcome], reference: Reference, max_bytes: int,
) -> list[str]:
    """Queue one reply per stored message (committed, deduplicated); return the messages answered now."""
    settings = get_settings()
    return replies.queue_replies(make_engine(), reference, messages, records, checked, outcomes,
                                 max_bytes=max_bytes, ops_email=settings.ops_email,
                                 specialist_email=settings.specialist_email)


@task(cache_policy=NONE, timeout_seconds=300)
def archive_files(outcomes: Sequence[Outcome], archive_dir: Path) -> dict[Path, Path | None]:
    """Move the batch's stored files to the archive; return where each went (None: still in the inbox)."""
    return intake.archive_stored(outcomes, archive_dir)


@task(cache_policy=NONE, timeout_seconds=300, **MAILBOX_RETRIES)
def file_mail(results: Sequence[mail_intake.MessageResult]) -> mail_intake.Filing:
    """Move the stored messages to Processed or Rejected, after the commit."""
    return mail_intake.file_messages(ImapConfig.from_settings(), results)


@task(cache_policy=NONE, timeout_seconds=120, **RETRIES)
def read_states(submission_ids: Sequence[int]) -> dict[int, str]:
    """Read the states the run left its new submissions in."""
    return queries.current_states(make_engine(), submission_ids)


@task(cache_policy=NONE)
def publish_summary(summary: CollectSummary) -> None:
    """Publish the failed validations and any mail not kept (tables), a markdown summary and one
    event per rejected or held file."""
    create_table_artifact(
        key="failed-validations",
        table=summary.problem_rows() or [{"message": "no rejected or held submissions"}],
        description="Submissions rejected or held in this collect run (no confidential values).",
    )
    if summary.not_kept:
        create_table_artifact(
            key="attachments-not-kept",
            table=summary.not_kept_rows(),
            description="Mail attachments refused before storage and messages without a workbook: "
                        "nothing stored, so no submission. Schools were answered in Vietnamese.",
        )
    create_markdown_artifact(key="collect-summary", markdown=summary.to_markdown())
    for problem in summary.problems:
        emit_event(
            event=f"gec.submission.{problem.state}",
            resource={
                "prefect.resource.id": f"gec.submission.{problem.submission_id}",
                "prefect.resource.name": problem.file,
            },
            # The school as a related resource: automations and the event feed can group by it.
            related=[{
                "prefect.resource.id": f"gec.school.{problem.school_code}",
                "prefect.resource.role": "school",
                "prefect.resource.name": problem.school_code,
            }] if problem.school_code else None,
            payload={
                "school_code": problem.school_code,
                "cycle": problem.cycle_id,
                "error_count": problem.error_count,
                "message": problem.message,
            },
        )


# --------------------------------------------------------------------------------------------------
# Flow


def start_batch(files: Sequence[intake.IncomingFile], reference: quote[Reference], max_bytes: int,
                in_processes: bool) -> tuple[quote[list[RawRecord]], PrefectFuture[list[Checked]]]:
    """Store a batch's raw bytes, then submit its check (parsing and validation) without waiting for it."""
    records = quote(store_raw(quote(files)))
    # submit(): parsing and validation run where GEC_TASK_RUNNER says (this process, spread over its
    # worker processes when the batch is large, or a Dask worker). Unquoted: Dask rebuilds tuple-like
    # arguments (quote is a tuple) and breaks them; the walk this costs measured ~35 ms per 50-file
    # batch against ~335 ms of checking.
    return records, check_files.submit(records.unquote(), reference.unquote(), max_bytes, in_processes)


def finish_batch(records: quote[list[RawRecord]], future: PrefectFuture[list[Checked]],
                 reference: quote[Reference]
                 ) -> tuple[quote[list[RawRecord]], quote[list[Checked]], quote[list[Outcome]]]:
    """Wait for a batch's check and store its submissions."""
    checked = quote(future.result())
    return records, checked, quote(store_submissions(records, checked, reference))


def store_batch(files: Sequence[intake.IncomingFile], reference: quote[Reference], max_bytes: int
                ) -> tuple[quote[list[RawRecord]], quote[list[Checked]], quote[list[Outcome]]]:
    """Run one batch of any source through store_raw → check_files → store_submissions."""
    return finish_batch(*start_batch(files, reference, max_bytes, in_processes=runs_tasks_here()), reference)


def in_flight(batches: int) -> int:
    """Return how many batches the drop folder keeps between store_raw and store_submissions at once.

    One when the run is a single batch or the check runs in a thread of this process (the GIL would
    starve the database round trips of the batch being stored: measured slower); otherwise the next
    batches are checked (in worker processes, or on Dask workers) while this one is stored.
    """
    if batches < 2:
        return 1
    return IN_FLIGHT_LOCAL if runs_tasks_here() else IN_FLIGHT_CLUSTER


def collect_folder(inbox_dir: Path, reference: quote[Reference], batch_size: int, summary: CollectSummary
                   ) -> None:
    """Collect the drop folder batch by batch into `summary`; stored files are archived.

    Several batches are in flight, but submissions are stored strictly in batch order, so their ids
    follow arrival order; a crash repeats at most the batches in flight (their raw bytes are stored).
    """
    settings = get_settings()
    batches = list_inbox(inbox_dir, batch_size)
    depth = in_flight(len(batches))
    in_processes = runs_tasks_here() and sum(map(len, batches)) >= checking.PROCESS_MIN_FILES
    if in_processes:
        checking.process_pool()  # workers start while the first batch is read and its bytes stored
    pending: deque[tuple[quote[list[RawRecord]], PrefectFuture[list[Checked]]]] = deque()

    def finish_oldest() -> None:
        _records, _checked, outcomes = finish_batch(*pending.popleft(), reference)
        summary.add(outcomes.unquote(), archive_files(outcomes, settings.archive_dir))

    for batch in batches:
        pending.append(start_batch(read_files(batch), reference, settings.max_file_bytes, in_processes))
        if len(pending) >= depth:
            finish_oldest()
    while pending:
        finish_oldest()


def collect_mail(reference: quote[Reference], batch_size: int, max_bytes: int, summary: CollectSummary
                 ) -> None:
    """Collect the mailbox batch by batch into `summary`; stored messages are answered, then filed."""
    for _ in range(mail_intake.MAX_BATCHES):
        items = fetch_mail(batch_size)
        if not items:
            break
        messages = quote(read_mail(quote(items), max_bytes))
        records, checked, outcomes = store_batch(mail_intake.message_files(messages.unquote()), reference,
                                                 max_bytes)
        replied = queue_replies(messages, records, checked, outcomes, reference, max_bytes)
        results = mail_intake.message_results(messages.unquote(), outcomes.unquote(), set(replied))
        summary.add(outcomes.unquote(), {})
        summary.not_kept += mail_intake.not_kept(results)
        summary.forwarded += mail_intake.forwarded(results)
        file_mail(quote(results))
        if len(items) < batch_size or any(item.folder is None for item in results):
            break  # done, or a message that must wait would come back first in every batch


@flow(name="collect-submissions", flow_run_name=run_name("collect-{source}-{time}", source="folder"),
      log_prints=False, task_runner=task_runner_from_settings())
def collect_submissions(
    source: Source = "folder", inbox_dir: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE
) -> CollectSummary:
    """Collect new files from the drop folder and/or the mailbox into the database."""
    check_source(source)
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    settings = get_settings()
    # quote(): Prefect walks every task argument looking for futures; over a batch's bytes, parsed
    # workbooks and findings that walk measured 2x the work itself. These are plain values: skip it.
    reference = quote(load_reference(settings.reference_dir))
    summary = CollectSummary()
    # One collect at a time (a second waits, bounded): its inbox listing and summary are then true.
    with collect_lock(make_engine()):
        prepare_database(reference)
        if source in ("folder", "all"):
            inbox = Path(inbox_dir) if inbox_dir else settings.inbox_dir
            collect_folder(inbox, reference, batch_size, summary)
        if source in ("mailbox", "all"):
            try:
                collect_mail(reference, min(batch_size, MAIL_BATCH), settings.max_file_bytes, summary)
            finally:  # replies already queued go out even after an IMAP outage
                get_run_logger().info("outbox: %s", flush_outbox().one_line())
        summary.refresh(read_states(summary.submission_ids))
    publish_summary(quote(summary))
    get_run_logger().info("collect: %s", summary.one_line())
    return summary


# --------------------------------------------------------------------------------------------------
# `python -m flows.collect`: the same run without the gec command line (ops scripts, crash tests)


def main(argv: Sequence[str] | None = None) -> int:
    """Run collect_submissions once; print the summary as JSON; exit 1 on a fault, 2 on bad usage."""
    parser = argparse.ArgumentParser(prog="python -m flows.collect", description="Collect the drop folder.")
    parser.add_argument("--source", default="folder", choices=("folder", "mailbox", "all"))
    parser.add_argument("--inbox", default=None, help="drop folder (default: GEC_INBOX_DIR)")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    args = parser.parse_args(argv)
    try:
        check_source(args.source)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        summary = collect_submissions(source=args.source, inbox_dir=args.inbox, batch_size=args.batch_size)
    except (DatabaseUnavailable, MailboxUnavailable, CollectBusy) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(summary.model_dump(mode="json"), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
