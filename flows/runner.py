"""The task runner GEC_TASK_RUNNER names, shared by every flow.

Kept apart from any one flow so that every flow (collect, review, revalidate, report) fans out the same
way. Retry rules and the database-write tag live in `flows.policies`.
"""

from __future__ import annotations

from prefect.context import FlowRunContext
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from config.settings import Settings, get_settings

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


def runs_tasks_here() -> bool:
    """Return whether the current flow run's tasks run in this process (threads), not on a cluster.

    Then CPU-bound stages fan out over local worker processes themselves; on Dask the cluster does it.
    """
    context = FlowRunContext.get()
    return context is not None and isinstance(context.task_runner, ThreadPoolTaskRunner)
