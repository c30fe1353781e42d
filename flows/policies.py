"""Retry rules, fault predicates and the database-write tag every flow's tasks use.

A task retries only when the infrastructure failed (the database, the file system, the IMAP server),
never on a bug. `scripts/serve.sh apply` creates the tag concurrency limit (`prefect
concurrency-limit create gec-db-write N`: 1 slot on SQLite, 4 on PostgreSQL, or GEC_DB_WRITE_SLOTS),
which throttles the tagged tasks across all runs and workers.
"""

from __future__ import annotations

from typing import Any

from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from sqlalchemy.exc import IntegrityError, OperationalError

from db.engine import DatabaseUnavailable
from tasks.intake.mailbox import MailboxUnavailable

# Tag of every task that writes to the application database; a Prefect tag concurrency limit on it
# keeps concurrent runs (a scheduled collect, an operator's review, a re-validation) from piling
# writers onto SQLite's single write lock or PostgreSQL's connection budget.
DB_WRITE_TAG = "gec-db-write"


def infrastructure_fault(_task: Any, _run: TaskRun, state: State) -> bool:
    """Retry a failed task only when the database or the file system failed, never on a bug."""
    error = state.data
    # IntegrityError: another collect run stored the same bytes at the same moment; a retry sees them.
    return isinstance(error, DatabaseUnavailable | OperationalError | IntegrityError | OSError | TimeoutError)


def database_fault(_task: Any, _run: TaskRun, state: State) -> bool:
    """Retry a failed task only when the database failed, never on a bug."""
    return isinstance(state.data, DatabaseUnavailable | OperationalError | TimeoutError)


def mailbox_fault(_task: Any, _run: TaskRun, state: State) -> bool:
    """Retry an IMAP task only when the server was away, never on a bug."""
    return isinstance(state.data, MailboxUnavailable | TimeoutError)


RETRIES: dict[str, Any] = {
    "retries": 2,
    "retry_delay_seconds": [2, 5],
    "retry_condition_fn": infrastructure_fault,
}
DATABASE_RETRIES: dict[str, Any] = {
    "retries": 2,
    "retry_delay_seconds": [2, 5],
    "retry_condition_fn": database_fault,
}
MAILBOX_RETRIES: dict[str, Any] = {
    "retries": 2,
    "retry_delay_seconds": [5, 15],
    "retry_condition_fn": mailbox_fault,
}
