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
from tasks.report.annual_files import AnnualInputs, load_annual_inputs, write_annual_files
from tasks.report.cycle_data import CycleData
from tasks.report.docx_render import convert_to_pdf
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
def write_report(data: CycleData, number: str | None = None) -> ReportFiles:
    """Render the HTML, Excel and Word files and the manifest into the dated output folder."""
    return write_report_files(data, get_settings().output_dir, number)


@task(cache_policy=NONE, timeout_seconds=300)
def make_pdf(docx: Path) -> Path | None:
    """Convert the Word report to PDF where LibreOffice is installed (best effort: None otherwise)."""
    pdf = convert_to_pdf(docx)
    if pdf is None:
        get_run_logger().info("No PDF of %s: LibreOffice missing or the conversion failed", docx.name)
    return pdf


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
    cycle: str | None = None, as_of: dt.datetime | None = None, number: str | None = None, pdf: bool = True,
    send: bool = False,
) -> list[str]:
    """Build the cycle's HTML, Excel and Word reports as of a moment (default: now); return the paths written.

    Without `cycle`, the cycle whose deadline passed most recently: the scheduled 6 May and 6 November
    runs report the half-year that just closed. `number` goes before "/BC-GDĐT" in the Word file
    (default: the GEC_REPORT_NUMBER setting); `pdf` also converts it to PDF where LibreOffice is installed.
    With `send` (the scheduled run after the deadline, or a manual final run) the files go to
    reference/recipients.yaml through the outbox, once per version.
    """
    started_at = dt.datetime.now(dt.UTC)
    moment = resolve_as_of(as_of)
    cycle = cycle or default_cycle(moment)
    data = load_report_data(cycle, moment)
    files = write_report(data, number)
    run_id = record_run(data, files, started_at)
    written = files.paths()
    made = make_pdf(files.docx) if pdf else None
    if made is not None:
        # Beside the Word file; not in the manifest: a PDF carries its own creation time.
        written.insert(written.index(files.docx) + 1, made)
    paths = [str(path) for path in written]
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


@task(cache_policy=NONE, retries=2, retry_delay_seconds=[2, 5], timeout_seconds=900, tags=[DB_WRITE_TAG])
def load_annual_data(year: int, as_of: dt.datetime) -> AnnualInputs:
    """Read both halves of the year and of the previous year as they stood at `as_of`."""
    reference = load_reference(get_settings().reference_dir)
    cycles = tuple(
        cycle for cycle in (f"{y}-{half}" for y in (year - 1, year) for half in ("H1", "H2"))
        if reference.calendar.get(cycle) is not None
    )
    init_database(None, reference, cycle_ids=cycles)
    return load_annual_inputs(make_engine(), reference, year, as_of, public_engine=reporting_engine())


@task(cache_policy=NONE, timeout_seconds=600)
def write_annual(
    inputs: AnnualInputs, year: int, as_of: dt.datetime, number: str | None = None
) -> list[Path]:
    """Render the annual HTML, Excel and Word files into outputs/<year>/<date>/."""
    settings = get_settings()
    return write_annual_files(inputs, year, as_of, settings.output_dir,
                              settings.report_number if number is None else number)


@flow(name="build-annual-report", log_prints=False)
def build_annual_report(year: int, as_of: dt.datetime | None = None, number: str | None = None) -> list[str]:
    """Build the year's view (H1 and H2 side by side, change against last year) as of a moment."""
    moment = resolve_as_of(as_of)
    inputs = load_annual_data(year, moment)
    paths = [str(path) for path in write_annual(inputs, year, moment, number)]
    get_run_logger().info("Annual report %d as of %s written to %s", year, moment.isoformat(),
                          Path(paths[0]).parent)
    create_markdown_artifact(
        key="annual-report",
        markdown="\n".join([f"## Báo cáo tổng hợp năm {year}", f"Số liệu tính đến {moment.isoformat()}", ""]
                           + [f"- `{path}`" for path in paths]),
        description=f"Annual report {year}",
    )
    return paths
