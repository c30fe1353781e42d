"""The `gec` command line (SPEC §7).

Commands that need no orchestration (template, validate, status) call the plain functions and never
import Prefect, so they start in well under a second. Exit codes: 0 done (rejected submissions are
data), 1 a fault (database, mailbox), 2 bad usage.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.registry import app as registry_app
from config.private_files import use_private_umask
from config.settings import get_settings

# Prefect's ephemeral server would try to phone home; office machines may be offline.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# A first start (fresh PREFECT_HOME) on a busy two-core machine can take longer than the 20 s default.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
use_private_umask()  # what gec writes (SQLite, archive, outputs) is the service account's alone

app = typer.Typer(
    name="gec",
    help="GEC Reports: school gender-equality and children's-work reports for District 8.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(registry_app, name="registry")
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

EXIT_FAULT = 1
EXIT_USAGE = 2


def _fail(message: str, code: int = EXIT_FAULT) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def _reference():
    from schemas.reference import ReferenceDataError, load_reference

    try:
        return load_reference(get_settings().reference_dir)
    except ReferenceDataError as exc:
        raise _fail(str(exc), EXIT_USAGE) from exc


def _cycle(reference, cycle_id: str):
    cycle = reference.calendar.get(cycle_id)
    if cycle is None:
        raise _fail(f"unknown cycle {cycle_id!r}: use YYYY-H1 or YYYY-H2", EXIT_USAGE)
    return cycle


def _office_address() -> str:
    """Return the bare address schools send their reports to (the From of the office's mail)."""
    from email.utils import parseaddr

    sender = get_settings().smtp_from
    return parseaddr(sender)[1] or sender


@app.command()
def template(
    cycle: Annotated[str, typer.Option(help="Cycle id, e.g. 2023-H1")],
    out: Annotated[Path, typer.Option(help="Folder to write the templates into")],
    school: Annotated[str | None, typer.Option(help="One school's code")] = None,
    all_schools: Annotated[bool, typer.Option("--all", help="Every expected school of the cycle")] = False,
) -> None:
    """Write pre-filled Vietnamese workbook templates for one school or all of them."""
    from tasks.template.build import build_template, template_file_name

    if bool(school) == all_schools:
        raise _fail("give exactly one of --school CODE or --all", EXIT_USAGE)
    reference = _reference()
    the_cycle = _cycle(reference, cycle)
    if school:
        found = reference.school(school)
        if found is None:
            raise _fail(f"school {school!r} is not in the registry", EXIT_USAGE)
        schools = [found]
    else:
        schools = reference.expected_schools(cycle)
    out.mkdir(parents=True, exist_ok=True)
    for item in schools:
        path = out / template_file_name(item, the_cycle)
        path.write_bytes(build_template(item, the_cycle, send_to=_office_address()))
    console.print(f"Wrote {len(schools)} template(s) to {out}")


@app.command("demo-data")
def demo_data(
    cycle: Annotated[str, typer.Option(help="Cycle id, e.g. 2023-H1")],
    out: Annotated[Path, typer.Option(help="Folder to write the demo submissions into")],
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files")] = 2023,
) -> None:
    """Generate synthetic school submissions, with realistic mistakes, and their truth file."""
    from demo.data import generate_demo_data

    reference = _reference()
    _cycle(reference, cycle)
    truth = generate_demo_data(reference, cycle, out, seed=seed)
    data = json.loads(truth.read_text(encoding="utf-8"))
    console.print(f"Wrote {len(data['files'])} submission file(s) to {out}; truth file: {truth}")


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Workbooks to check", exists=True, dir_okay=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print findings as JSON")] = False,
) -> None:
    """Print the findings of workbooks without storing anything."""
    from tasks.check.parse import parse_workbook
    from tasks.check.validate import validate_batch

    reference = _reference()
    max_bytes = get_settings().max_file_bytes
    parsed = [(str(path), parse_workbook(path.read_bytes(), max_bytes=max_bytes)) for path in files]
    results = validate_batch(parsed, reference)
    if as_json:
        payload = [
            {
                "file": path,
                "findings": [
                    {
                        "severity": str(f.severity),
                        "rule": f.rule,
                        "sheet": f.sheet,
                        "row": f.row,
                        "column": f.column,
                        "value": f.public_value,
                        "message": f.message,
                    }
                    for f in results[path]
                ],
            }
            for path, _ in parsed
        ]
        sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
        return
    for path, _ in parsed:
        findings = results[path]
        errors = sum(f.is_error for f in findings)
        verdict = "[red]rejected[/red]" if errors else "[green]valid[/green]"
        warnings = len(findings) - errors
        console.print(f"\n[bold]{path}[/bold]: {verdict} ({errors} error(s), {warnings} warning(s))")
        if findings:
            table = Table("severity", "rule", "sheet", "row", "column", "message", show_lines=False)
            for f in findings:
                row = str(f.row or "")
                table.add_row(str(f.severity), f.rule, f.sheet or "", row, f.column or "", f.message)
            console.print(table)


def _engine():
    from db.engine import make_engine

    return make_engine()


def _database_fault(exc: Exception) -> typer.Exit:
    return _fail(str(exc), EXIT_FAULT)


@app.command()
def init() -> None:
    """Create or upgrade the database and load the reference data into it."""
    from db.engine import DatabaseUnavailable, describe_database
    from db.setup import init_database

    reference = _reference()
    settings = get_settings()
    try:
        init_database(None, reference)
    except DatabaseUnavailable as exc:
        raise _database_fault(exc) from exc
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
        raise _fail("--source must be folder, mailbox or all", EXIT_USAGE)
    summary = _run_collect(source, inbox)
    _print_collect_summary(summary)


def _run_collect(source: str, inbox: Path | None):
    from db.engine import DatabaseUnavailable
    from flows.collect import collect_submissions
    from tasks.intake.mailbox import MailboxUnavailable

    try:
        return collect_submissions(source=source, inbox_dir=str(inbox) if inbox else None)
    except (DatabaseUnavailable, MailboxUnavailable) as exc:
        raise _database_fault(exc) from exc
    except ValueError as exc:
        raise _fail(str(exc), EXIT_USAGE) from exc


def _print_collect_summary(summary) -> None:
    states = ", ".join(f"{state} {count}" for state, count in sorted(summary.states.items())) or "none"
    console.print(
        f"Collected {summary.files_seen} file(s): {summary.submissions} new submission(s) ({states}); "
        f"{summary.duplicates} duplicate(s); {summary.archived} archived; "
        f"{len(summary.left_in_inbox)} left in the inbox"
    )


@app.command()
def status(
    cycle: Annotated[str, typer.Option(help="Cycle id, e.g. 2023-H1")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as one JSON object")] = False,
    as_of: Annotated[str | None, typer.Option(help="ISO time: the status as it stood then")] = None,
) -> None:
    """Show each expected school's completeness and the cycle's submissions."""
    from db.engine import DatabaseUnavailable
    from tasks.operator.status import cycle_status

    reference = _reference()
    _cycle(reference, cycle)
    moment = _parse_time(as_of) if as_of else None
    try:
        result = cycle_status(_engine(), reference, cycle, as_of=moment)
    except DatabaseUnavailable as exc:
        raise _database_fault(exc) from exc
    if as_json:
        sys.stdout.write(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
        return
    _print_status(result)


def _print_status(result: dict) -> None:
    from rich.markup import escape

    from schemas.text import printable

    table = Table("state", "schools", title=f"Cycle {result['cycle']}: completeness")
    for state, count in result["totals"].items():
        table.add_row(state, str(count))
    console.print(table)
    problems = [s for s in result["submissions"] if s["state"] in ("rejected", "held")]
    if problems:
        listing = Table("id", "school", "file", "state", "errors", title="Submissions needing attention")
        for item in problems:
            errors = str(sum(f["severity"] == "error" for f in item["findings"]))
            # A file name is a stranger's text: no escape sequence or rich markup reaches the terminal.
            listing.add_row(str(item["id"]), item["school_code"] or "?", escape(printable(item["file"])),
                            item["state"], errors)
        console.print(listing)


def _parse_time(text: str):
    from flows.report import resolve_as_of

    try:
        return resolve_as_of(text)
    except ValueError as exc:
        raise _fail(f"not an ISO time: {text!r}", EXIT_USAGE) from exc


@app.command()
def review(
    submission_id: Annotated[int, typer.Argument(help="Submission id (from gec status)")],
    accept: Annotated[bool, typer.Option("--accept", help="Accept the held submission")] = False,
    reject: Annotated[bool, typer.Option("--reject", help="Reject the held submission")] = False,
    note: Annotated[str | None, typer.Option(help="Why (kept with the decision)")] = None,
) -> None:
    """Accept or reject a held submission (one from an unregistered sender)."""
    from db.engine import DatabaseUnavailable
    from tasks.operator.review import ReviewRefused, review_submission

    if accept == reject:
        raise _fail("give exactly one of --accept or --reject", EXIT_USAGE)
    try:
        result = review_submission(_engine(), submission_id, "accept" if accept else "reject", note, "cli")
    except ReviewRefused as exc:
        raise _fail(str(exc), EXIT_USAGE) from exc
    except DatabaseUnavailable as exc:
        raise _database_fault(exc) from exc
    console.print(f"Submission {submission_id}: {result.get('state', 'recorded')}")


@app.command()
def revalidate(
    cycle: Annotated[str | None, typer.Option(help="Only this cycle (default: all)")] = None,
) -> None:
    """Re-validate stored raw files after a rule change, keeping every earlier decision."""
    from db.engine import DatabaseUnavailable
    from tasks.operator.revalidate import revalidate as revalidate_stored

    reference = _reference()
    if cycle:
        _cycle(reference, cycle)
    try:
        result = revalidate_stored(_engine(), reference, cycle, max_bytes=get_settings().max_file_bytes)
    except DatabaseUnavailable as exc:
        raise _database_fault(exc) from exc
    console.print(json.dumps(result, ensure_ascii=False, default=str))


@app.command()
def report(
    cycle: Annotated[str, typer.Option(help="Cycle id, e.g. 2023-H1")],
    as_of: Annotated[str | None, typer.Option(help="ISO time: only submissions received by then")] = None,
) -> None:
    """Build the cycle's HTML and Excel rollups and print the paths written."""
    from db.engine import DatabaseUnavailable
    from flows.report import build_cycle_report

    reference = _reference()
    _cycle(reference, cycle)
    moment = _parse_time(as_of) if as_of else None
    try:
        paths = build_cycle_report(cycle=cycle, as_of=moment)
    except DatabaseUnavailable as exc:
        raise _database_fault(exc) from exc
    # Plain lines, never wrapped: scripts read these paths.
    sys.stdout.write("".join(f"{path}\n" for path in paths))


@app.command()
def demo(
    cycle: Annotated[str, typer.Option(help="Cycle to simulate")] = "2023-H1",
    seed: Annotated[int, typer.Option(help="Random seed of the demo submissions")] = 2023,
) -> None:
    """Run the whole job on demo data: templates, submissions, collect, status, report."""
    import shutil

    from config.settings import PROJECT_ROOT

    # The demo keeps to its own SQLite file and folders, so it never touches real data.
    demo_dir = PROJECT_ROOT / "data" / "demo"
    shutil.rmtree(demo_dir, ignore_errors=True)
    inbox = demo_dir / "inbox"
    os.environ.update(
        GEC_DATABASE_URL=f"sqlite:///{demo_dir / 'gec-demo.sqlite3'}",
        GEC_INBOX_DIR=str(inbox),
        GEC_ARCHIVE_DIR=str(demo_dir / "archive"),
    )
    get_settings.cache_clear()
    reference = _reference()
    the_cycle = _cycle(reference, cycle)

    from demo.data import generate_demo_data
    from tasks.template.build import build_template, template_file_name

    with console.status("Writing the pre-filled templates…"):
        templates = demo_dir / "templates"
        templates.mkdir(parents=True)
        expected = reference.expected_schools(cycle)
        for school in expected:
            (templates / template_file_name(school, the_cycle)).write_bytes(
                build_template(school, the_cycle, send_to=_office_address()))
    console.print(f"1. {len(expected)} templates for {cycle} in {templates}")

    with console.status("Simulating the schools' submissions…"):
        truth = generate_demo_data(reference, cycle, inbox, seed=seed)  # answers beside the inbox
    files = sorted(path for path in inbox.iterdir() if path.is_file())
    console.print(f"2. {len(files)} demo submissions in {inbox} (answers in {truth})")

    with console.status("Collecting (Prefect flow collect-submissions)…"):
        summary = _run_collect("folder", inbox)
    console.print("3. ", end="")
    _print_collect_summary(summary)

    from tasks.operator.status import cycle_status

    result = cycle_status(_engine(), reference, cycle)
    console.print("4. Status:")
    _print_status(result)

    from flows.report import build_cycle_report

    with console.status("Building the cycle report (Prefect flow build-cycle-report)…"):
        paths = build_cycle_report(cycle=cycle)
    html = next(path for path in paths if path.endswith(".html"))
    console.print("5. Report files:")
    sys.stdout.write("".join(f"   {path}\n" for path in paths))
    console.print("\n[bold green]Open the report:[/bold green]", end=" ")
    sys.stdout.flush()
    sys.stdout.write(f"{html}\n")


def main() -> None:  # pragma: no cover - console-script entry
    app()


@app.command()
def remind(
    cycle: Annotated[str | None, typer.Option(help="Cycle id, e.g. 2023-H1 (default: next deadline)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the schools; send nothing")] = False,
    kind: Annotated[str, typer.Option(help="auto, reminder (before the deadline) or overdue")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object")] = False,
) -> None:
    """Write to every school without an accepted submission, with its pre-filled template."""
    from db.engine import DatabaseUnavailable
    from db.setup import init_database
    from tasks.mail.reminders import KINDS, ReminderRun, plan_reminders

    if kind not in KINDS:
        raise _fail(f"--kind must be one of {', '.join(KINDS)}", EXIT_USAGE)
    reference = _reference()
    if cycle:
        _cycle(reference, cycle)
    try:
        if dry_run:
            # A dry run needs no orchestration: the plain functions, no Prefect start-up.
            init_database(None, reference, cycle_ids=(cycle,) if cycle else ())
            result = ReminderRun(plan_reminders(_engine(), reference, cycle, kind), dry_run=True).to_dict()
        else:
            from flows.remind import send_reminders

            result = send_reminders(cycle=cycle, kind=kind, dry_run=False)
    except DatabaseUnavailable as exc:
        raise _database_fault(exc) from exc
    except (ValueError, LookupError) as exc:
        raise _fail(str(exc), EXIT_USAGE) from exc
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
        raise _fail(f"{result['smtp_unavailable']}; the mail stays queued for the next run", EXIT_FAULT)
import cli.watch  # noqa: E402,F401  (registers `gec watch` on app)
