"""Orchestration settings the flows share: the task runner GEC_TASK_RUNNER names, the database-write tag.

Kept apart from any one flow so that every flow (collect, review, revalidate, report) fans out the same
way and marks its database writes with the same tag. `scripts/serve.sh apply` creates the tag
concurrency limit (`prefect concurrency-limit create gec-db-write N`: 1 slot on SQLite, 4 on
PostgreSQL, or GEC_DB_WRITE_SLOTS), which throttles those tasks across all runs and workers.
"""

from __future__ import annotations

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from config.settings import Settings, get_settings

# Tag of every task that writes to the application database; a Prefect tag concurrency limit on it
# keeps concurrent runs (a scheduled collect, an operator's review, a re-validation) from piling
# writers onto SQLite's single write lock or PostgreSQL's connection budget.
DB_WRITE_TAG = "gec-db-write"
THREAD_WORKERS = 4


def task_runner_from_settings(settings: Settings | None = None) -> TaskRunner:
    """Return the task runner GEC_TASK_RUNNER names: `threads` (default) or a Dask scheduler address."""
    value = (settings or get_settings()).task_runner.strip()
    if value in ("", "threads"):
        return ThreadPoolTaskRunner(max_workers=THREAD_WORKERS)
    if "://" in value:
        # Imported here: dask and distributed cost a second at import and most runs never need them.
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(address=value)
    raise ValueError(f"GEC_TASK_RUNNER={value!r}: use 'threads' or a Dask scheduler address (tcp://host:8786)")

