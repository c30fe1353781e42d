"""What every `gec` command shares: the typer app, consoles, exit codes and one-line fault handling.

A fault (database, mailbox, a folder that cannot be read or written) prints ONE line on stderr and exits
1; bad usage exits 2 (SPEC §7). Checks that need no orchestration run before a flow starts, so a
wrong path fails in a fraction of a second instead of after Prefect's start-up and its tracebacks.
Nothing here imports Prefect.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from config.private_files import use_private_umask
from config.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from schemas.reference import Cycle, Reference

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
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

EXIT_FAULT = 1
EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_FAULT) -> typer.Exit:
    """Print `message` as one error line on stderr; return the Exit to raise."""
    # soft_wrap: never break the line at the terminal width; escape: paths may hold [brackets].
    err_console.print(f"[red]error:[/red] {escape(_one_line(message))}", soft_wrap=True)
    return typer.Exit(code)


def _one_line(message: str) -> str:
    # A multi-line message (e.g. every broken reference file) stays one line: parts joined by "; ".
    parts = (" ".join(line.split()) for line in message.splitlines())
    return "; ".join(part for part in parts if part)


def load_reference_or_exit() -> Reference:
    """Load the office's reference data; a broken file is bad usage (exit 2)."""
    from schemas.reference import ReferenceDataError, load_reference

    try:
        return load_reference(get_settings().reference_dir)
    except ReferenceDataError as exc:
        raise fail(str(exc), EXIT_USAGE) from exc


def cycle_or_exit(reference: Reference, cycle_id: str) -> Cycle:
    """Return the calendar's cycle `cycle_id`; an unknown one is bad usage (exit 2)."""
    cycle = reference.calendar.get(cycle_id)
    if cycle is None:
        raise fail(f"unknown cycle {cycle_id!r}: use YYYY-H1 or YYYY-H2", EXIT_USAGE)
    return cycle


@contextlib.contextmanager
def faults() -> Iterator[None]:
    """Turn infrastructure faults raised in the block into one error line and exit code 1."""
    from db.engine import DatabaseUnavailable
    from tasks.intake.mailbox import MailboxUnavailable

    try:
        yield
    except (DatabaseUnavailable, MailboxUnavailable) as exc:
        raise fail(str(exc)) from exc
    except OSError as exc:  # a folder or file the run needs: missing, unreadable, unwritable, disk full
        raise fail(_describe_os_error(exc)) from exc


def _describe_os_error(exc: OSError) -> str:
    where = f": {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or exc}{where}" if exc.strerror else str(exc)


def engine() -> Engine:
    """Return the configured database's engine."""
    from db.engine import make_engine

    return make_engine()


def ready_database(reference: Reference, cycle_ids: tuple[str, ...] = ()) -> Engine:
    """Create or upgrade the database and load the reference data (safe on every run); return it.

    Every command may be the first one run on a new database: none of them fails on a missing table.
    """
    from db.setup import init_database

    with faults():
        init_database(None, reference, cycle_ids=cycle_ids)
    return engine()


def require_database() -> None:
    """Connect once to the configured database; exit 1 with one line when it cannot be reached."""
    from db.engine import check_connection

    with faults():
        check_connection(engine())


def require_folder(path: Path, what: str, *, given: bool) -> None:
    """Exit when `path` is not a readable folder: 2 if the user typed it, 1 if a setting names it."""
    code = EXIT_USAGE if given else EXIT_FAULT
    hint = "" if given else f" (set {_setting_for(what)})"
    if not path.exists():
        raise fail(f"{what} {path} does not exist{hint}", code)
    if not path.is_dir():
        raise fail(f"{what} {path} is not a folder{hint}", code)
    if not os.access(path, os.R_OK | os.X_OK):
        raise fail(f"{what} {path} cannot be read{hint}", code)


def require_writable_folder(path: Path, what: str) -> None:
    """Exit 1 when `path` cannot be created or written to (tried for real: root ignores mode bits)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise fail(f"{what} {path} cannot be written: {reason} (set {_setting_for(what)})") from exc


def require_mailbox() -> None:
    """Log in to the configured mailbox once; exit 1 with one line when that fails."""
    from tasks.intake.mailbox import ImapConfig, check_mailbox

    try:
        config = ImapConfig.from_settings()
    except ValueError as exc:
        raise fail(str(exc), EXIT_USAGE) from exc
    with faults():
        check_mailbox(config)


def _setting_for(what: str) -> str:
    return {
        "inbox folder": "GEC_INBOX_DIR or --inbox",
        "output folder": "GEC_OUTPUT_DIR",
        "archive folder": "GEC_ARCHIVE_DIR",
    }.get(what, "the matching GEC_ setting")


def office_address() -> str:
    """Return the bare address schools send their reports to (the From of the office's mail)."""
    from email.utils import parseaddr

    sender = get_settings().smtp_from
    return parseaddr(sender)[1] or sender
