"""`gec indicators …`: the template the office fills with its own indicators, and reading it back."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import EXIT_USAGE, console, err_console, fail, faults
from cli.common import cycle_or_exit as _cycle
from cli.common import load_reference_or_exit as _reference
from config.settings import get_settings

app = typer.Typer(help="Indicators the office enters: write the template, import the filled one.",
                  no_args_is_help=True)


def _shown(value: float | None) -> str:
    return "(trống)" if value is None else f"{value:g}"


@app.command()
def template(
    cycle: Annotated[str, typer.Option(help="Cycle id, e.g. 2023-H1")],
    out: Annotated[Path, typer.Option(help="The .xlsx file to write")],
) -> None:
    """Write the Excel workbook listing the catalog's manual indicators, with a column to fill."""
    from tasks.operator.indicators import build_indicator_template, manual_indicators

    reference = _reference()
    the_cycle = _cycle(reference, cycle)
    with faults():
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(build_indicator_template(reference, the_cycle))
    console.print(f"Wrote {len(manual_indicators(reference))} indicator(s) for {the_cycle.id} to {out}",
                  markup=False)


@app.command("import")
def import_values(
    file: Annotated[Path, typer.Argument(help="The filled template (.xlsx, .xls or .ods)",
                                         exists=True, dir_okay=False)],
    apply: Annotated[bool, typer.Option("--apply", help="Write reference/indicators.yaml (else show only)")]
    = False,
) -> None:
    """Check a filled template; with --apply, store its values for the cycle in indicators.yaml."""
    from tasks.operator.indicators import IndicatorImportError, read_indicator_values, write_indicator_values

    settings = get_settings()
    reference = _reference()
    with faults():
        data = file.read_bytes()
    try:
        imported = read_indicator_values(data, reference, max_bytes=settings.max_file_bytes)
    except IndicatorImportError as exc:
        raise fail(str(exc), EXIT_USAGE) from exc
    if imported.problems:
        for problem in imported.problems:
            err_console.print(problem, markup=False, soft_wrap=True)
        raise fail(f"{len(imported.problems)} problem(s); nothing written", EXIT_USAGE)
    for value in imported.values:
        mark = "" if value.old == value.new else "  (đổi)"
        console.print(f"{value.code}: {_shown(value.old)} → {_shown(value.new)}{mark}", markup=False,
                      soft_wrap=True)
    if imported.blank:
        console.print(f"Chưa nhập / not entered: {', '.join(imported.blank)}", markup=False)
    if not apply:
        console.print(f"{len(imported.changes)} change(s) for {imported.cycle_id}; add --apply to write them",
                      markup=False)
        return
    with faults():
        path = write_indicator_values(settings.reference_dir, imported)
    console.print(f"Wrote {len(imported.values)} value(s) for {imported.cycle_id} to {path}", markup=False)
