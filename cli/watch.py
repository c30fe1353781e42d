"""`gec watch`: collect as soon as mail or a file lands, until Ctrl-C or SIGTERM (docs/operations.md).

Registered on the `gec` app by one import at the end of cli/main.py.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from cli.common import EXIT_USAGE, app, console
from cli.common import fail as _fail


@app.command()
def watch(
    source: Annotated[str, typer.Option(help="What to watch: all, mailbox or folder")] = "all",
    inbox: Annotated[Path | None, typer.Option(help="Drop folder (default GEC_INBOX_DIR)")] = None,
    quiet: Annotated[float, typer.Option(help="Seconds without a new arrival before a run starts")] = 2.0,
) -> None:
    """Watch the mailbox (IMAP IDLE) and the drop folder; collect whenever something lands."""
    from config.settings import get_settings
    from flows.watch import WATCHED, run_watch

    if source not in WATCHED:
        raise _fail("--source must be all, mailbox or folder", EXIT_USAGE)
    if quiet < 0:
        raise _fail("--quiet must be 0 or more seconds", EXIT_USAGE)
    folder = inbox or get_settings().inbox_dir
    if "folder" in WATCHED[source] and not folder.is_dir():
        raise _fail(f"inbox folder {folder} does not exist (set GEC_INBOX_DIR or --inbox)", EXIT_USAGE)
    # Prefect has configured the root logger already (WARNING): give the watcher's own lines a handler.
    log = logging.getLogger("gec.watch")
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s | %(levelname)-7s | %(name)s - %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    stats = run_watch(source, inbox_dir=inbox, quiet_seconds=quiet)
    console.print(f"Stopped: {stats.runs} collect run(s), {stats.failed_runs} failed, "
                  f"{stats.mailbox_outages} mailbox outage(s)")
