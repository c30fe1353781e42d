"""`gec registry …`: bring the office's own school list into the registry, and fix a cycle's snapshot."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from config.settings import get_settings

app = typer.Typer(help="The school registry: import the office's list, snapshot a cycle.",
                  no_args_is_help=True)
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

EXIT_FAULT = 1
EXIT_USAGE = 2


def _fail(message: str, code: int = EXIT_FAULT) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}", markup=True)
    return typer.Exit(code)


def _reference():
    from schemas.reference import ReferenceDataError, load_reference

    try:
        return load_reference(get_settings().reference_dir)
    except ReferenceDataError as exc:
        raise _fail(str(exc), EXIT_USAGE) from exc


@app.command("import")
def import_list(
    file: Annotated[Path, typer.Argument(help="The office's school list (.xlsx, .xls, .ods or .csv)",
                                         exists=True, dir_okay=False)],
    apply: Annotated[bool, typer.Option("--apply", help="Write reference/schools.csv (default: show only)")]
    = False,
) -> None:
    """Show what importing the office's school list would add, remove and change; write it with --apply."""
    from schemas.reference import SCHOOLS_FILE
    from tasks.operator.registry_import import (
        RegistryImportError,
        diff_registry,
        read_school_list,
        write_registry,
    )

    reference = _reference()
    try:
        imported = read_school_list(file, reference)
    except RegistryImportError as exc:
        raise _fail(str(exc), EXIT_USAGE) from exc
    if imported.ignored_columns:
        ignored = ", ".join(repr(column) for column in imported.ignored_columns)
        console.print(f"Ignored column(s): {ignored}", markup=False)
    for problem in imported.problems:
        err_console.print(f"{file.name} {problem}", markup=False)
    diff = diff_registry(reference.schools, imported.schools)
    for school in diff.added:
        console.print(f"+ {school.code}  {school.name}  ({school.level}, {school.ownership}, {school.ward})",
                      markup=False)
    for school in diff.removed:
        console.print(f"- {school.code}  {school.name}", markup=False)
    for code, delta in diff.changed:
        parts = [f"{column}: {old!r} -> {new!r}" for column, (old, new) in delta.items()]
        console.print(f"~ {code}  " + "; ".join(parts), markup=False)
    console.print(f"{len(diff.added)} to add, {len(diff.removed)} to remove, {len(diff.changed)} to change, "
                  f"{len(imported.schools) - len(diff.added) - len(diff.changed)} unchanged", markup=False)
    if imported.problems:
        raise _fail(f"{len(imported.problems)} row(s) cannot be used; fix the list and import again "
                    "(nothing written)", EXIT_USAGE)
    if not apply:
        console.print("Nothing written; run again with --apply to write the registry.", markup=False)
        return
    if diff.empty:
        console.print("The registry already matches the list.", markup=False)
        return
    target = get_settings().reference_dir / SCHOOLS_FILE
    write_registry(target, imported.schools)
    console.print(f"Wrote {len(imported.schools)} school(s) to {target}. Run `gec init` to load them.",
                  markup=False)


@app.command()
def snapshot(
    cycle: Annotated[str, typer.Option(help="Cycle id, e.g. 2023-H1")],
    refresh: Annotated[bool, typer.Option("--refresh", help="Retake it from the registry file as it is now")]
    = False,
) -> None:
    """Show how a cycle's registry snapshot differs from the registry file; retake it with --refresh.

    A cycle's snapshot (who is expected, exempt, and each school's name, level, ownership and ward) is
    fixed once its period has started, so editing the registry never changes a past cycle's report.
    """
    from sqlalchemy.orm import Session

    from db.engine import DatabaseUnavailable, make_engine
    from db.setup import snapshot_drift, sync_cycle, sync_schools, upgrade_database

    reference = _reference()
    the_cycle = reference.calendar.get(cycle)
    if the_cycle is None:
        raise _fail(f"unknown cycle {cycle!r}: use YYYY-H1 or YYYY-H2 within the calendar", EXIT_USAGE)
    try:
        upgrade_database(None)
        with Session(make_engine()) as session, session.begin():
            sync_schools(session, reference)
            drift = snapshot_drift(session, reference, the_cycle.id)
            if refresh and drift:
                sync_cycle(session, reference, the_cycle.id, refresh=True)
    except DatabaseUnavailable as exc:
        raise _fail(str(exc)) from exc
    for code, changes in drift.items():
        parts = [f"{name}: {old!r} -> {new!r}" for name, (old, new) in changes.items()]
        console.print(f"{code}  " + "; ".join(parts), markup=False)
    if not drift:
        console.print(f"The {the_cycle.id} snapshot matches the registry file.", markup=False)
    elif refresh:
        console.print(f"Retook the {the_cycle.id} snapshot: {len(drift)} school(s) changed.", markup=False)
    else:
        console.print(f"{len(drift)} school(s) differ; the {the_cycle.id} snapshot is unchanged. Run again "
                      "with --refresh to retake it (this changes the cycle's reports).", markup=False)
