"""Build a cycle's consolidated report (SPEC §5): load as of a moment, render, write, record provenance."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE

from config.clock import resolve_as_of
from config.settings import get_settings
from db.engine import make_engine, reporting_engine
from db.setup import init_database
from flows.common import flush_outbox
from flows.policies import DB_WRITE_TAG
from schemas.reference import load_reference
from tasks.report.cycle_data import CycleData
from tasks.report.files import ReportFiles, record_report_run, write_report_files
from tasks.report.inputs import load_cycle_data


def default_cycle(moment: dt.datetime) -> str:
    """Return the cycle whose deadline passed most recently at `moment` (the one a 6 May run reports)."""
    calendar = load_reference(get_settings().reference_dir).calendar
    return calendar.previous(calendar.open_at(moment).id)


@task(cache_policy=NONE, retries=2, retry_delay_seconds=[2, 5], timeout_seconds=600, tags=[DB_WRITE_TAG])
def load_report_data(cycle: str, as_of: dt.datetime) -> CycleData:
    """Read the cycle's submissions and sheet rows as they stood at `as_of`."""
    reference = load_reference(get_settings().reference_dir)
    engine = make_engine()
    init_database(None, reference, cycle_ids=(cycle,))
    return load_cycle_data(engine, reference, cycle, as_of, public_engine=reporting_engine())


@task(cache_policy=NONE, timeout_seconds=600)
def write_report(data: CycleData) -> ReportFiles:
    """Render the HTML and Excel files and the manifest into the dated output folder."""
    return write_report_files(data, get_settings().output_dir)


@task(cache_policy=NONE, retries=2, retry_delay_seconds=[2, 5], timeout_seconds=120, tags=[DB_WRITE_TAG])
def record_run(data: CycleData, files: ReportFiles, started_at: dt.datetime) -> int:
    """Record the run and the exact submission versions it used."""
    return record_report_run(make_engine(), data, files, started_at)


@task(cache_policy=NONE, retries=2, retry_delay_seconds=[2, 5], timeout_seconds=300, tags=[DB_WRITE_TAG])
def distribute(cycle: str, files: ReportFiles, as_of: dt.datetime) -> str:
    """Queue the report files for reference/recipients.yaml, once per report version; return a summary."""
    from schemas.recipients import load_recipients
    from tasks.mail.distribution import distribute_report

    settings = get_settings()
    the_cycle = load_reference(settings.reference_dir).calendar.get(cycle)
    if the_cycle is None:
        raise ValueError(f"unknown cycle {cycle!r}")
    recipients = load_recipients(settings.reference_dir)
    office = settings.smtp_from.partition("<")[0].strip() or "Phòng Giáo dục và Đào tạo"
    return distribute_report(make_engine(), files.directory, files.manifest, the_cycle, as_of, recipients,
                             office=office).one_line()


@flow(name="build-cycle-report", log_prints=False)
def build_cycle_report(
    cycle: str | None = None, as_of: dt.datetime | None = None, send: bool = False
) -> list[str]:
    """Build the cycle's HTML and Excel rollups as of a moment (default: now); return the paths written.

    Without `cycle`, the cycle whose deadline passed most recently: the scheduled 6 May and 6 November
    runs report the half-year that just closed. With `send` (the scheduled run after the deadline, or
    a manual final run) the files go to reference/recipients.yaml through the outbox, once per version.
    """
    started_at = dt.datetime.now(dt.UTC)
    moment = resolve_as_of(as_of)
    cycle = cycle or default_cycle(moment)
    data = load_report_data(cycle, moment)
    files = write_report(data)
    run_id = record_run(data, files, started_at)
    paths = [str(path) for path in files.paths()]
    if send:
        get_run_logger().info("Distribution: %s", distribute(cycle, files, moment))
        get_run_logger().info("Outbox: %s", flush_outbox().one_line())
    get_run_logger().info(
        "Report %s for %s as of %s written to %s (%d submissions)",
        run_id, cycle, moment.isoformat(), files.directory, len(files.submissions),
    )
    create_markdown_artifact(
        key="cycle-report",
        markdown="\n".join(
            [f"## Báo cáo tổng hợp {cycle}", f"Số liệu tính đến {moment.isoformat()}", ""]
            + [f"- `{Path(path)}`" for path in paths]
        ),
        description=f"Cycle report {cycle}",
    )
    return paths
