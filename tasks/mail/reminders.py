"""Reminders and overdue notices (SPEC §4, §6): who has no accepted report yet, and one e-mail each.

The schools to write to are exactly the expected schools whose completeness (`tasks.operator.status`) is not
on_time, late or exempt: missing, received_invalid or held. Each gets its own pre-filled template.
Every notice goes through the outbox under the key `<kind>:<cycle>:<school>`, so a re-run (or a
retried task) never writes twice; the operator (GEC_OPS_EMAIL) gets one summary per cycle and kind,
listing the held submissions that wait for a review.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Engine

from config.settings import TIMEZONE
from schemas.reference import Cycle, Reference
from tasks.mail.feedback import (
    DueSchool,
    HeldSubmission,
    compose_ops_reminders,
    compose_reminder,
    held_submissions,
    reminder_key,
)
from tasks.mail.outbox import FlushResult, Mail, flush_outbox, queue_mail, queued_keys
from tasks.mail.smtp import SmtpConfig
from tasks.operator.status import cycle_status
from tasks.storage.states import Completeness

Kind = Literal["auto", "reminder", "overdue"]
KINDS = ("auto", "reminder", "overdue")
# Completeness states that still need a report from the school.
DUE_STATES = frozenset({Completeness.MISSING.value, Completeness.RECEIVED_INVALID.value,
                        Completeness.HELD.value})


@dataclass(frozen=True)
class ReminderPlan:
    """Who a reminder run writes to: the cycle, the notice kind and the schools without an accepted report."""

    cycle_id: str
    kind: str  # reminder | overdue
    as_of: dt.datetime
    schools: tuple[DueSchool, ...]
    held: tuple[HeldSubmission, ...]
    already: frozenset[str] = field(default_factory=frozenset)  # schools this notice was queued for

    def to_dict(self) -> dict[str, Any]:
        """Return the plan as JSON-ready data (no confidential value is in it)."""
        return {
            "cycle": self.cycle_id,
            "kind": self.kind,
            "as_of": self.as_of.isoformat(),
            "schools": [
                {"code": item.code, "name": item.name, "state": item.state, "emails": list(item.emails),
                 "already_sent": item.code in self.already}
                for item in self.schools
            ],
            "held": [
                {"id": item.id, "school_code": item.school_code, "file": item.file, "sender": item.sender,
                 "received_at": item.received_at.isoformat()}
                for item in self.held
            ],
        }


def resolve_cycle(
    reference: Reference, cycle_id: str | None, kind: str, now: dt.datetime
) -> tuple[Cycle, str]:
    """Return the cycle and the notice kind a run means.

    Without a cycle: the one whose deadline is next, or for `overdue` the one whose deadline passed
    last. `auto` is a reminder before the end of the deadline day and an overdue notice after it.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if cycle_id:
        cycle = reference.calendar.get(cycle_id)
        if cycle is None:
            raise ValueError(f"malformed cycle id {cycle_id!r}; expected YYYY-H1 or YYYY-H2")
    else:
        cycle = reference.calendar.open_at(now)
        if kind == "overdue":
            previous = reference.calendar.get(reference.calendar.previous(cycle.id))
            assert previous is not None  # previous() of a well-formed id is well-formed
            cycle = previous
    if kind == "auto":
        kind = "overdue" if now >= cycle.deadline_end else "reminder"
    return cycle, kind


def plan_reminders(
    engine: Engine,
    reference: Reference,
    cycle_id: str | None = None,
    kind: Kind = "auto",
    now: dt.datetime | None = None,
) -> ReminderPlan:
    """Return the schools without an accepted submission for the cycle, with their registered addresses."""
    now = now or dt.datetime.now(TIMEZONE)
    cycle, resolved = resolve_cycle(reference, cycle_id, kind, now)
    status = cycle_status(engine, reference, cycle.id)
    due = []
    for row in status["schools"]:
        if row["state"] not in DUE_STATES:
            continue
        school = reference.schools.get(row["code"])
        emails = school.emails if school is not None else ()
        due.append(DueSchool(row["code"], row["name"], row["state"], tuple(emails)))
    with engine.connect() as conn:
        held = held_submissions(conn, cycle_id=cycle.id)
    keys = {reminder_key(resolved, cycle.id, item.code): item.code for item in due}
    already = frozenset(keys[key] for key in queued_keys(engine, list(keys)))
    return ReminderPlan(cycle.id, resolved, now, tuple(due), tuple(held), already)


def reminder_mails(plan: ReminderPlan, reference: Reference, *, office_address: str, ops_email: str = ""
                   ) -> list[Mail]:
    """Return one notice per due school with an address (template attached), and the operator's summary."""
    cycle = reference.calendar.get(plan.cycle_id)
    assert cycle is not None
    mails = []
    for due in plan.schools:
        school = reference.schools.get(due.code)
        if school is None or not due.emails or due.code in plan.already:
            continue  # no address is listed in the operator's summary; already sent stays sent
        mails.append(compose_reminder(plan.kind, school, cycle, due, as_of=plan.as_of,
                                      office_address=office_address))
    if ops_email:
        mails.append(compose_ops_reminders(plan.kind, cycle, plan.schools, plan.held, as_of=plan.as_of,
                                           ops_email=ops_email))
    return mails


def queue_reminders(engine: Engine, plan: ReminderPlan, reference: Reference, *, office_address: str,
                    ops_email: str = "") -> list[int]:
    """Queue the plan's notices; return the outbox ids added (none for schools already written to)."""
    return queue_mail(engine, reminder_mails(plan, reference, office_address=office_address,
                                             ops_email=ops_email))


@dataclass
class ReminderRun:
    """A reminder run: its plan, what it queued and what the flush sent."""

    plan: ReminderPlan
    dry_run: bool
    queued: list[int] = field(default_factory=list)
    flush: FlushResult | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the run as JSON-ready data."""
        data = self.plan.to_dict()
        data.update(
            dry_run=self.dry_run,
            queued=len(self.queued),
            sent=len(self.flush.sent) if self.flush else 0,
            still_queued=self.flush.remaining if self.flush else None,
            smtp_unavailable=self.flush.unavailable if self.flush else None,
        )
        return data


def send_reminders(
    engine: Engine,
    reference: Reference,
    smtp: SmtpConfig,
    *,
    cycle_id: str | None = None,
    kind: Kind = "auto",
    dry_run: bool = False,
    ops_email: str = "",
    now: dt.datetime | None = None,
) -> ReminderRun:
    """Plan, queue and send a reminder run without Prefect; a dry run only plans."""
    plan = plan_reminders(engine, reference, cycle_id, kind, now)
    run = ReminderRun(plan, dry_run)
    if dry_run:
        return run
    run.queued = queue_reminders(engine, plan, reference, office_address=smtp.from_addr, ops_email=ops_email)
    run.flush = flush_outbox(engine, smtp)
    return run
