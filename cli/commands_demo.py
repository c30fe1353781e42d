"""`gec demo`: the whole job on demo data, in its own database and folders (SPEC §7)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.commands_run import build_report, print_collect_summary, run_collect
from cli.common import app, console, cycle_or_exit, engine, load_reference_or_exit, office_address
from cli.status_view import print_status
from config.settings import PROJECT_ROOT, Settings, get_settings, use_settings


def demo_settings(demo_dir: Path) -> Settings:
    """Return the settings in force with the demo's own SQLite file, inbox and archive."""
    # The demo keeps to its own database and folders, so it never touches real data.
    return get_settings().model_copy(update={
        "database_url": f"sqlite:///{demo_dir / 'gec-demo.sqlite3'}",
        "inbox_dir": demo_dir / "inbox",
        "archive_dir": demo_dir / "archive",
    })


@app.command()
def demo(
    cycle: Annotated[str, typer.Option(help="Cycle to simulate")] = "2023-H1",
    seed: Annotated[int, typer.Option(help="Random seed of the demo submissions")] = 2023,
) -> None:
    """Run the whole job on demo data: templates, submissions, collect, status, report."""
    demo_dir = PROJECT_ROOT / "data" / "demo"
    shutil.rmtree(demo_dir, ignore_errors=True)
    with use_settings(demo_settings(demo_dir)):
        run_demo(cycle, seed, demo_dir)


def run_demo(cycle: str, seed: int, demo_dir: Path) -> None:
    """Write templates and submissions, collect them, print the status, build the report."""
    from demo.data import generate_demo_data
    from tasks.operator.status import cycle_status
    from tasks.template.build import build_template, template_file_name

    reference = load_reference_or_exit()
    the_cycle = cycle_or_exit(reference, cycle)
    inbox = get_settings().inbox_dir

    with console.status("Writing the pre-filled templates…"):
        templates = demo_dir / "templates"
        templates.mkdir(parents=True)
        expected = reference.expected_schools(cycle)
        for school in expected:
            (templates / template_file_name(school, the_cycle)).write_bytes(
                build_template(school, the_cycle, send_to=office_address()))
    console.print(f"1. {len(expected)} templates for {cycle} in {templates}")

    with console.status("Simulating the schools' submissions…"):
        truth = generate_demo_data(reference, cycle, inbox, seed=seed)  # answers beside the inbox
    files = sorted(path for path in inbox.iterdir() if path.is_file())
    console.print(f"2. {len(files)} demo submissions in {inbox} (answers in {truth})")

    with console.status("Collecting (Prefect flow collect-submissions)…"):
        summary = run_collect("folder", inbox)
    console.print("3. ", end="")
    print_collect_summary(summary)

    result = cycle_status(engine(), reference, cycle)
    console.print("4. Status:")
    print_status(console, result)

    with console.status("Building the cycle report (Prefect flow build-cycle-report)…"):
        paths = build_report(cycle, None)
    html = next(path for path in paths if path.endswith(".html"))
    console.print("5. Report files:")
    sys.stdout.write("".join(f"   {path}\n" for path in paths))
    console.print("\n[bold green]Open the report:[/bold green]", end=" ")
    sys.stdout.flush()
    sys.stdout.write(f"{html}\n")
