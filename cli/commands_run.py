"""`gec init`, `collect`, `report`, `remind`: the commands that write (SPEC §7).

Each checks what it needs before any flow starts (database reachable, folders there and writable,
mailbox answering), so a wrong setting costs one line and exit 1, not Prefect's start-up and tracebacks.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.common import (
    EXIT_FAULT,
    EXIT_USAGE,
    app,
    console,
    cycle_or_exit,
    fail,
    faults,
    load_reference_or_exit,
    ready_database,
    require_database,
    require_folder,
    require_mailbox,
    require_writable_folder,
)
from config.clock import resolve_as_of
from config.settings import get_settings

if TYPE_CHECKING:
    import datetime as dt


def parse_time(text: str) -> dt.datetime:
    """Return an ISO time typed by the user as an aware moment (naive: Asia/Ho_Chi_Minh); exit 2 if bad."""
    try:
        return resolve_as_of(text)
    except ValueError as exc:
        raise fail(f"not an ISO time: {text!r} (e.g. 2023-05-20T08:00)", EXIT_USAGE) from exc


@app.command()
def init() -> None:
    """Create or upgrade the database and load the reference data into it."""
    from db.engine import describe_database

    reference = load_reference_or_exit()
    settings = get_settings()
    ready_database(reference)
    console.print(
        f"Database ready: {describe_database(settings.effective_database_url)} "
        f"({len(reference.schools)} schools, {len(reference.calendar.listed)} listed cycles)"
    )


@app.command()
def collect(
    source: Annotated[str, typer.Option(help="folder, mailbox or all")] = "folder",
    inbox: Annotated[Path | None, typer.Option(help="Drop folder (default GEC_INBOX_DIR)")] = None,
) -> None:
    """Collect new submissions: store raw, validate, store, archive; print what happened."""
    if source not in ("folder", "mailbox", "all"):
        raise fail("--source must be folder, mailbox or all", EXIT_USAGE)
    load_reference_or_exit()
    if source in ("folder", "all"):
        require_folder(inbox or get_settings().inbox_dir, "inbox folder", given=inbox is not None)
        require_writable_folder(get_settings().archive_dir, "archive folder")
    require_database()
    if source in ("mailbox", "all"):
        require_mailbox()
    print_collect_summary(run_collect(source, inbox))


def run_collect(source: str, inbox: Path | None) -> Any:
    """Run the collect flow; faults become one line and exit 1."""
    from flows.collect import collect_submissions

    with faults():
        try:
            return collect_submissions(source=source, inbox_dir=str(inbox) if inbox else None)
        except ValueError as exc:
            raise fail(str(exc), EXIT_USAGE) from exc


def print_collect_summary(summary: Any) -> None:
    """Print one line: files seen, new submissions by state, duplicates, archived, left behind."""
    states = ", ".join(f"{state} {count}" for state, count in sorted(summary.states.items())) or "none"
    console.print(
        f"Collected {summary.files_seen} file(s): {summary.submissions} new submission(s) ({states}); "
        f"{summary.duplicates} duplicate(s); {summary.archived} archived; "
        f"{len(summary.left_in_inbox)} left in the inbox",
        soft_wrap=True,
    )


@app.command()
def report(
    cycle: Annotated[str | None, typer.Option(help="Cycle id, e.g. 2023-H1")] = None,
    as_of: Annotated[str | None, typer.Option(help="ISO time: only submissions received by then")] = None,
    send: Annotated[bool, typer.Option("--send", help="Final report: mail it to reference/recipients.yaml")]
    = False,
    number: Annotated[
        str | None, typer.Option(help='Word report number before "/BC-GDĐT" (default: GEC_REPORT_NUMBER)')
    ] = None,
    year: Annotated[
        int | None, typer.Option(help="Build the annual view of this year (H1 and H2, change on last year)")
    ] = None,
    pdf: Annotated[bool, typer.Option(help="Also convert the Word report to PDF (needs LibreOffice)")] = True,
) -> None:
    """Build the cycle's HTML, Excel and Word reports (or, with --year, the annual view); print the paths."""
    if (cycle is None) == (year is None):
        raise fail("give either --cycle or --year", EXIT_USAGE)
    reference = load_reference_or_exit()
    if cycle is not None:
        cycle_or_exit(reference, cycle)
    else:
        for half in ("H1", "H2"):
            cycle_or_exit(reference, f"{year}-{half}")
    moment = parse_time(as_of) if as_of else None
    require_writable_folder(get_settings().output_dir, "output folder")
    require_database()
    if year is not None:
        paths = build_annual(year, moment, number)
    else:
        assert cycle is not None
        paths = build_report(cycle, moment, number, pdf, send=send)
    # Plain lines, never wrapped: scripts read these paths.
    sys.stdout.write("".join(f"{path}\n" for path in paths))


def build_report(cycle: str, moment: dt.datetime | None, number: str | None = None, pdf: bool = True,
                 *, send: bool = False) -> list[str]:
    """Run the report flow; faults become one line and exit 1."""
    from flows.report import build_cycle_report

    with faults():
        return list(build_cycle_report(cycle=cycle, as_of=moment, number=number, pdf=pdf, send=send))


def build_annual(year: int, moment: dt.datetime | None, number: str | None = None) -> list[str]:
    """Run the annual report flow; faults become one line and exit 1."""
    from flows.report import build_annual_report

    with faults():
        return list(build_annual_report(year=year, as_of=moment, number=number))


@app.command()
def remind(
    cycle: Annotated[str | None, typer.Option(help="Cycle id, e.g. 2023-H1 (default: next deadline)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the schools; send nothing")] = False,
    kind: Annotated[str, typer.Option(help="auto, reminder (before the deadline) or overdue")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object")] = False,
) -> None:
    """Write to every school without an accepted submission, with its pre-filled template."""
    from tasks.mail.reminders import KINDS, ReminderRun, plan_reminders

    if kind not in KINDS:
        raise fail(f"--kind must be one of {', '.join(KINDS)}", EXIT_USAGE)
    reference = load_reference_or_exit()
    if cycle:
        cycle_or_exit(reference, cycle)
    require_database()
    with faults():
        try:
            if dry_run:
                # A dry run needs no orchestration: the plain functions, no Prefect start-up.
                engine = ready_database(reference, (cycle,) if cycle else ())
                result = ReminderRun(plan_reminders(engine, reference, cycle, kind), dry_run=True).to_dict()
            else:
                from flows.remind import send_reminders

                result = send_reminders(cycle=cycle, kind=kind, dry_run=False)
        except (ValueError, LookupError) as exc:
            raise fail(str(exc), EXIT_USAGE) from exc
    if as_json:
        sys.stdout.write(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    else:
        # Plain lines, one school each: easy to read, grep and paste into a message to the office.
        for school in result["schools"]:
            sent = "  (already sent)" if school["already_sent"] else ""
            typer.echo(f"{school['code']}\t{school['state']}\t{', '.join(school['emails']) or '-'}\t"
                       f"{school['name']}{sent}")
        done = "dry run, nothing sent" if dry_run else f"{result['queued']} queued, {result['sent']} sent"
        typer.echo(f"{result['cycle']} {result['kind']}: {len(result['schools'])} school(s) without an "
                   f"accepted submission ({done})")
    if result.get("smtp_unavailable"):
        raise fail(f"{result['smtp_unavailable']}; the mail stays queued for the next run", EXIT_FAULT)
