"""Operator flows (SPEC §6): review a held submission or correct its received time; re-validate stored
raw files after a rule change.

Both are manual deployments. Re-validation runs stored files through the check every source uses
(`flows.common.check_files`) batch by batch, then rewrites their decisions (`tasks.operator.revalidate`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.utilities.annotations import quote

from config.settings import TIMEZONE, get_settings
from db.engine import make_engine
from flows.common import check_files, run_name
from flows.policies import DB_WRITE_TAG, RETRIES
from flows.runner import task_runner_from_settings
from schemas.reference import Reference, load_reference
from tasks.check.checking import Checked
from tasks.operator import revalidate, review

# The review form's choice for "only correct the received time": a required drop-down stays one.
TIME_ONLY = "received-at-only"


@task(cache_policy=NONE, timeout_seconds=120, tags=[DB_WRITE_TAG], **RETRIES)
def record_review(submission_id: int, decision: Literal["accept", "reject"], note: str | None,
                  actor: str | None) -> dict[str, Any]:
    """Record an operator's decision on a held submission and re-derive the school's states."""
    return review.review_submission(make_engine(), submission_id, decision, note, actor)


@task(cache_policy=NONE, timeout_seconds=120, tags=[DB_WRITE_TAG], **RETRIES)
def record_received_at(submission_id: int, received_at: dt.datetime, note: str, actor: str | None
                       ) -> dict[str, Any]:
    """Correct when a submission was received, record who/when/why and re-derive the school's states."""
    return review.correct_received_at(make_engine(), submission_id, received_at, note, actor)


@task(cache_policy=NONE, timeout_seconds=120, **RETRIES)
def revalidation_targets(reference: Reference, cycle: str | None) -> revalidate.Targets:
    """List the stored submissions of the cycle (or all) to re-validate."""
    return revalidate.revalidation_targets(make_engine(), reference, cycle)


@task(cache_policy=NONE, timeout_seconds=600, **RETRIES)
def load_stored(ids: Sequence[int]) -> list[revalidate.Stored]:
    """Read a batch of stored submissions' raw files back."""
    return revalidate.load_stored(make_engine(), ids)


@task(cache_policy=NONE, timeout_seconds=1800, tags=[DB_WRITE_TAG], **RETRIES)
def rewrite_decisions(stored: Sequence[revalidate.Stored], checked: Sequence[Checked], reference: Reference
                      ) -> revalidate.Rewritten:
    """Record the batch's new decisions with fresh findings and rows; an operator's review survives."""
    return revalidate.rewrite_decisions(make_engine(), reference, stored, checked)


@task(cache_policy=NONE, timeout_seconds=120, **RETRIES)
def summarize(cycle: str | None, rewritten: Sequence[revalidate.Rewritten]) -> dict[str, Any]:
    """Count what changed and the states now."""
    return revalidate.revalidation_summary(make_engine(), cycle, rewritten)


@flow(name="review-submission",
      flow_run_name=run_name("review-{submission_id}-{decision}-{time}"), log_prints=False,
      task_runner=task_runner_from_settings())
def review_submission(
    submission_id: int,
    decision: Literal["accept", "reject", "received-at-only"],
    note: str | None = None,
    actor: str | None = None,
    received_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """Accept or reject one held submission, and/or correct when it was received (`received_at`, naive
    is Asia/Ho_Chi_Minh time; a note is required): `received-at-only` keeps the decision as it is."""
    if decision == TIME_ONLY and received_at is None:
        raise ValueError("decision received-at-only needs received_at")
    result: dict[str, Any] = {}
    if received_at is not None:
        moment = received_at if received_at.tzinfo else received_at.replace(tzinfo=TIMEZONE)
        result = record_received_at(submission_id, moment, note or "", actor)
        get_run_logger().info("submission %s: received at %s (was %s); %s -> %s", submission_id,
                              result["received_at"], result["previous_received_at"], result["previous_state"],
                              result["state"])
    if decision != TIME_ONLY:
        result = {**result, **record_review(submission_id, decision, note, actor)}
        get_run_logger().info("submission %s: %s -> %s", submission_id, result["previous_state"],
                              result["state"])
    return result


@flow(name="revalidate-submissions", flow_run_name=run_name("revalidate-{cycle}-{time}", cycle=None),
      log_prints=False, task_runner=task_runner_from_settings())
def revalidate_submissions(cycle: str | None = None, batch_size: int = 50) -> dict[str, Any]:
    """Re-validate stored submissions after a rule or registry change."""
    settings = get_settings()
    reference = quote(load_reference(settings.reference_dir))
    targets = revalidation_targets(reference, cycle)
    rewritten = []
    for ids in revalidate.batches(targets.ids, batch_size):
        stored = quote(load_stored(ids))
        records = [item.record for item in stored.unquote()]
        checked = quote(check_files.submit(records, reference.unquote(), settings.max_file_bytes).result())
        rewritten.append(rewrite_decisions(stored, checked, reference))
    result = summarize(targets.cycle_id, rewritten)
    get_run_logger().info("re-validated %s submissions, %s changed decision; states now %s",
                          result["revalidated"], len(result["changed"]), result["states"])
    return result
