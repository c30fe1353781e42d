"""Run what the cycle calendar says is due today (SPEC §6): reminders, the report, overdue notices.

One daily deployment (`gec-daily`) replaces fixed-date crons, so moving a deadline in
`reference/cycles.yaml` moves every run that depends on it without touching `prefect.yaml`:
a reminder `REMINDER_DAYS` before the deadline, and on the day after it the report of the cycle that
just closed, then the overdue notices. `due_jobs` is the plain decision; the flow only runs it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from prefect import flow, get_run_logger

from config.settings import TIMEZONE, get_settings
from schemas.reference import Cycle, CycleCalendar, load_reference

JobKind = Literal["reminder", "report", "overdue"]
REMINDER_DAYS = 7  # about a week before the deadline (SPEC §4)
# Order within a day: the report first, then the overdue notices that follow it.
_ORDER: dict[str, int] = {"reminder": 0, "report": 1, "overdue": 2}


@dataclass(frozen=True)
class DueJob:
    """One run the calendar asks for today."""

    kind: JobKind
    cycle_id: str


def _cycles_near(calendar: CycleCalendar, today: dt.date) -> list[Cycle]:
    """Return the cycles whose deadline could fall near `today`: listed ones and the rule's nearby years."""
    found = {cycle.id: cycle for cycle in calendar.listed}
    for year in (today.year - 1, today.year, today.year + 1):
        for half in (1, 2):
            cycle = calendar.get(f"{year}-H{half}")
            if cycle is not None:
                found[cycle.id] = cycle
    return list(found.values())


def due_jobs(calendar: CycleCalendar, today: dt.date, reminder_days: int = REMINDER_DAYS) -> list[DueJob]:
    """Return the jobs due on `today` (local date), in the order they should run."""
    jobs: list[DueJob] = []
    for cycle in _cycles_near(calendar, today):
        if today == cycle.deadline - dt.timedelta(days=reminder_days):
            jobs.append(DueJob("reminder", cycle.id))
        if today == cycle.deadline + dt.timedelta(days=1):
            jobs += [DueJob("report", cycle.id), DueJob("overdue", cycle.id)]
    return sorted(jobs, key=lambda job: (_ORDER[job.kind], job.cycle_id))


@flow(name="gec-daily", log_prints=False)
def gec_daily(today: dt.date | None = None, dry_run: bool = False) -> list[str]:
    """Run the reminder, report and overdue jobs the calendar says are due today; return what ran."""
    from flows.remind import send_reminders
    from flows.report import build_cycle_report

    today = today or dt.datetime.now(TIMEZONE).date()
    calendar = load_reference(get_settings().reference_dir).calendar
    jobs = due_jobs(calendar, today)
    logger = get_run_logger()
    if not jobs:
        logger.info("Nothing is due on %s", today.isoformat())
    done: list[str] = []
    for job in jobs:
        logger.info("%s %s is due on %s%s", job.kind, job.cycle_id, today.isoformat(),
                    " (dry run)" if dry_run else "")
        if job.kind == "report":
            if not dry_run:
                build_cycle_report(cycle=job.cycle_id, send=True)  # the final report goes out
        else:
            send_reminders(cycle=job.cycle_id, kind=job.kind, dry_run=dry_run)
        done.append(f"{job.kind} {job.cycle_id}")
    return done
