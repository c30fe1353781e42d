"""`gec status`, `review`, `revalidate`: the operator's view and decisions, without orchestration.

None of these imports Prefect. Each may be the first command run on a new database, so each creates
or upgrades it first (as `gec init` does) instead of failing on a missing table.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from cli.commands_run import parse_time
from cli.common import (
    EXIT_USAGE,
    app,
    console,
    cycle_or_exit,
    fail,
    faults,
    load_reference_or_exit,
    ready_database,
    require_database,
)
from cli.status_view import LANGUAGES, print_status
from config.settings import get_settings


@app.command()
def status(
    cycle: Annotated[str, typer.Option(help="Cycle id, e.g. 2023-H1")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as one JSON object")] = False,
    as_of: Annotated[str | None, typer.Option(help="ISO time: the status as it stood then")] = None,
    lang: Annotated[str, typer.Option(help="vi (the office's, default) or en; --json keeps codes")] = "vi",
) -> None:
    """Show each expected school's completeness and the cycle's submissions."""
    from tasks.operator.status import cycle_status

    if lang not in LANGUAGES:
        raise fail(f"--lang must be one of {', '.join(LANGUAGES)}", EXIT_USAGE)
    reference = load_reference_or_exit()
    cycle_or_exit(reference, cycle)
    moment = parse_time(as_of) if as_of else None
    require_database()
    engine = ready_database(reference, (cycle,))
    with faults():
        result = cycle_status(engine, reference, cycle, as_of=moment)
    if as_json:
        sys.stdout.write(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
        return
    print_status(console, result, lang)


@app.command()
def review(
    submission_id: Annotated[int, typer.Argument(help="Submission id (from gec status)")],
    accept: Annotated[bool, typer.Option("--accept", help="Accept the held submission")] = False,
    reject: Annotated[bool, typer.Option("--reject", help="Reject the held submission")] = False,
    note: Annotated[str | None, typer.Option(help="Why (kept with the decision)")] = None,
) -> None:
    """Accept or reject a held submission (one from an unregistered sender)."""
    from tasks.operator.review import ReviewRefused, review_submission

    if accept == reject:
        raise fail("give exactly one of --accept or --reject", EXIT_USAGE)
    reference = load_reference_or_exit()
    require_database()
    engine = ready_database(reference)
    with faults():
        try:
            result = review_submission(engine, submission_id, "accept" if accept else "reject", note, "cli")
        except ReviewRefused as exc:
            raise fail(str(exc), EXIT_USAGE) from exc
    console.print(f"Submission {submission_id}: {result.get('state', 'recorded')}")


@app.command()
def revalidate(
    cycle: Annotated[str | None, typer.Option(help="Only this cycle (default: all)")] = None,
) -> None:
    """Re-validate stored raw files after a rule change, keeping every earlier decision."""
    from tasks.operator.revalidate import revalidate as revalidate_stored

    reference = load_reference_or_exit()
    if cycle:
        cycle_or_exit(reference, cycle)
    require_database()
    engine = ready_database(reference, (cycle,) if cycle else ())
    with faults():
        result = revalidate_stored(engine, reference, cycle, max_bytes=get_settings().max_file_bytes)
    console.print(json.dumps(result, ensure_ascii=False, default=str), soft_wrap=True)
