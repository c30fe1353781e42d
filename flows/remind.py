"""Send reminders (SPEC §4, §6): schools without an accepted report get a notice with their template.

Scheduled about a week before each deadline (kind `reminder`) and after it (`overdue`); `auto` picks by
the clock. The flow only wires tasks over `tasks.mail.reminders` and `tasks.mail.outbox`; each task
opens what it
needs from settings. Notices are queued before anything is sent, so a retried or re-run flow never
writes to a school twice; a dry run lists the schools and sends nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE

from config.settings import TIMEZONE, get_settings
from db.engine import make_engine
from flows.common import flush_outbox, prepare_database
from flows.policies import DATABASE_RETRIES, DB_WRITE_TAG
from flows.runner import task_runner_from_settings
from schemas.messages import COMPLETENESS_LABELS
from schemas.reference import Reference, load_reference
from tasks.mail import reminders
from tasks.mail.reminders import Kind, ReminderPlan, ReminderRun


@task(cache_policy=NONE, timeout_seconds=300, **DATABASE_RETRIES)
def plan_reminders(reference: Reference, cycle: str | None, kind: Kind, now: dt.datetime) -> ReminderPlan:
    """List the schools without an accepted submission for the cycle."""
    return reminders.plan_reminders(make_engine(), reference, cycle, kind, now)


@task(cache_policy=NONE, timeout_seconds=600, tags=[DB_WRITE_TAG], **DATABASE_RETRIES)
def queue_reminders(plan: ReminderPlan, reference: Reference) -> list[int]:
    """Queue one notice per school (with its template) and the operator's summary."""
    settings = get_settings()
    return reminders.queue_reminders(make_engine(), plan, reference, office_address=settings.smtp_from,
                                     ops_email=settings.ops_email)


@task(cache_policy=NONE)
def publish_plan(run: ReminderRun) -> None:
    """Publish the schools written to (table) and a markdown summary."""
    plan = run.plan
    rows = [
        {"code": item.code, "name": item.name, "state": item.state, "emails": ", ".join(item.emails),
         "already_sent": item.code in plan.already}
        for item in plan.schools
    ]
    create_table_artifact(key="reminder-schools", table=rows or [{"message": "every school has reported"}],
                          description=f"Schools without an accepted {plan.cycle_id} report ({plan.kind}).")
    lines = [f"# {plan.kind.title()} {plan.cycle_id}{' (dry run)' if run.dry_run else ''}", "",
             f"{len(plan.schools)} school(s) without an accepted report as of {plan.as_of.isoformat()}:"]
    lines += [f"- `{item.code}` {item.name}: {COMPLETENESS_LABELS.get(item.state, item.state)}"
              for item in plan.schools]
    if run.flush is not None:
        lines += ["", f"Outbox: {run.flush.one_line()}"]
    create_markdown_artifact(key="reminder-summary", markdown="\n".join(lines) + "\n")


@flow(name="send-reminders", flow_run_name="remind-{kind}", log_prints=False,
      task_runner=task_runner_from_settings())
def send_reminders(cycle: str | None = None, kind: Kind = "auto", dry_run: bool = False) -> dict[str, Any]:
    """Write to every school without an accepted submission for the cycle; the operator gets a summary."""
    settings = get_settings()
    reference = load_reference(settings.reference_dir)
    prepare_database(reference, cycle)
    plan = plan_reminders(reference, cycle, kind, dt.datetime.now(TIMEZONE))
    run = ReminderRun(plan, dry_run)
    if not dry_run:
        run.queued = queue_reminders(plan, reference)
        run.flush = flush_outbox()
    publish_plan(run)
    logger = get_run_logger()
    logger.info("%s %s: %d school(s) due, %d notice(s) queued%s", plan.kind, plan.cycle_id,
                len(plan.schools), len(run.queued), f"; outbox: {run.flush.one_line()}" if run.flush else "")
    if run.flush is not None and run.flush.unavailable:
        logger.warning("SMTP unavailable: the notices stay queued and go out on the next run")
    return run.to_dict()
