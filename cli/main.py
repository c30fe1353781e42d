"""The `gec` command line (SPEC §7): the typer app and its commands.

Commands that need no orchestration (template, validate, status, review, revalidate, remind --dry-run)
call the plain functions and never import Prefect, so they start in well under a second. Exit codes:
0 done (rejected submissions are data), 1 a fault (database, mailbox, a folder), 2 bad usage. The
commands live by theme in cli/commands_*.py; importing this module registers them all.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.common import (
    EXIT_FAULT,
    EXIT_USAGE,
    app,
    console,
    err_console,
    fail,
    faults,
    office_address,
)
from cli.common import cycle_or_exit as _cycle
from cli.common import load_reference_or_exit as _reference
from config.settings import get_settings

__all__ = ["EXIT_FAULT", "EXIT_USAGE", "app", "err_console", "main"]
_fail = fail


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
    with faults():
        out.mkdir(parents=True, exist_ok=True)
        for item in schools:
            path = out / template_file_name(item, the_cycle)
            path.write_bytes(build_template(item, the_cycle, send_to=office_address()))
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
    with faults():
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


# Importing the command modules registers their commands on `app` (after the three above).
from cli import commands_demo, commands_operator, commands_run, watch  # noqa: E402, F401
from cli.indicators import app as indicators_app  # noqa: E402
from cli.registry import app as registry_app  # noqa: E402

app.add_typer(registry_app, name="registry")
app.add_typer(indicators_app, name="indicators")


def main() -> None:  # pragma: no cover - console-script entry
    app()
