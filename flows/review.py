"""Operator flows (SPEC §6): review a held submission; re-validate stored raw files after a rule change.

Both are manual deployments; each is one database task over a plain function of `tasks.operator.status`.
"""

from __future__ import annotations

from typing import Any, Literal

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE

from config.settings import get_settings
from db.engine import make_engine
from flows.collect import RETRIES
from flows.runner import DB_WRITE_TAG, task_runner_from_settings
from schemas.reference import load_reference
from tasks.operator import status


@task(cache_policy=NONE, timeout_seconds=120, tags=[DB_WRITE_TAG], **RETRIES)
def record_review(submission_id: int, decision: Literal["accept", "reject"], note: str | None,
                  actor: str | None) -> dict[str, Any]:
    """Record an operator's decision on a held submission and re-derive the school's states."""
    return status.review_submission(make_engine(), submission_id, decision, note, actor)


@task(cache_policy=NONE, timeout_seconds=3600, tags=[DB_WRITE_TAG], **RETRIES)
def revalidate_stored(cycle: str | None, batch_size: int) -> dict[str, Any]:
    """Re-parse and re-validate the stored raw files of a cycle (or all), keeping earlier decisions."""
    settings = get_settings()
    return status.revalidate(make_engine(), load_reference(settings.reference_dir), cycle,
                             batch_size=batch_size, max_bytes=settings.max_file_bytes)


@flow(name="review-submission", flow_run_name="review-{submission_id}-{decision}", log_prints=False,
      task_runner=task_runner_from_settings())
def review_submission(
    submission_id: int,
    decision: Literal["accept", "reject"],
    note: str | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """Accept or reject one held submission."""
    result = record_review(submission_id, decision, note, actor)
    get_run_logger().info("submission %s: %s -> %s", submission_id, result["previous_state"], result["state"])
    return result


@flow(name="revalidate-submissions", flow_run_name="revalidate-{cycle}", log_prints=False,
      task_runner=task_runner_from_settings())
def revalidate_submissions(cycle: str | None = None, batch_size: int = 50) -> dict[str, Any]:
    """Re-validate stored submissions after a rule or registry change."""
    result = revalidate_stored(cycle, batch_size)
    get_run_logger().info("re-validated %s submissions, %s changed decision; states now %s",
                          result["revalidated"], len(result["changed"]), result["states"])
    return result
