"""The reminders, overdue notices and operator summaries (SPEC §6), as `tasks.mail.outbox.Mail` values.

Reminders and overdue notices carry the school's pre-filled template; the operator's summaries list
the schools written to, those without an address and the held files. Wording: `schemas.messages`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select

from db import models
from schemas import messages as vi
from schemas.reference import Cycle, School
from tasks.mail.outbox import Mail, MailAttachment
from tasks.mail.wording import Body, Contact, address_of, day, greeting, sign_off, when
from tasks.template.build import build_template, template_file_name

SUBMISSIONS = models.Submission.__table__
RECEIPTS = models.FileReceipt.__table__
SCHOOLS = models.School.__table__


# --------------------------------------------------------------------------------------------------
# Reminders and the operator's summaries


@dataclass(frozen=True)
class DueSchool:
    """A school without an accepted submission for a cycle, and where to write to it."""

    code: str
    name: str
    state: str  # completeness: missing, received_invalid or held
    emails: tuple[str, ...]


@dataclass(frozen=True)
class HeldSubmission:
    """A valid submission waiting for the operator because its sender is not registered."""

    id: int
    school_code: str | None
    school_name: str | None
    file: str
    sender: str | None
    received_at: dt.datetime


def reminder_key(kind: str, cycle_id: str, school_code: str) -> str:
    """Return the dedupe key of one school's reminder or overdue notice for a cycle."""
    return f"{kind}:{cycle_id}:{school_code}"


def compose_reminder(kind: str, school: School, cycle: Cycle, due: DueSchool, *, as_of: dt.datetime,
                     office_address: str) -> Mail:
    """Return one school's reminder (before the deadline) or overdue notice, with its template attached."""
    if kind not in vi.REMINDER_SUBJECTS:
        raise ValueError(f"reminder kind must be reminder or overdue, not {kind!r}")
    name = template_file_name(school, cycle)
    fields = {"school": school.name, "cycle_label": cycle.label_vi, "cycle": cycle.id,
              "deadline": day(cycle.deadline), "as_of": when(as_of), "file": name,
              "office": address_of(office_address) or office_address, "emails": ", ".join(school.emails)}
    body = Body()
    greeting(body, school.name)
    body.para(vi.REMINDER_INTROS[kind].format(**fields), tone="bad" if kind == "overdue" else None)
    note = vi.REMINDER_STATE_NOTES.get(due.state)
    if note:
        body.para(note.format(**fields), tone="note")
    body.para(vi.REMINDER_ATTACHMENT.format(**fields))
    body.para(vi.REMINDER_IGNORE)
    sign_off(body, Contact.from_settings())
    template = build_template(school, cycle, send_to=fields["office"])
    return Mail(
        kind=kind,
        dedupe_key=reminder_key(kind, cycle.id, school.code),
        to=due.emails,
        subject=vi.REMINDER_SUBJECTS[kind].format(**fields),
        text=body.text(),
        html=body.html(),
        attachments=(MailAttachment(name, template),),
    )


def _held_lines(held: Sequence[HeldSubmission]) -> list[str]:
    return [
        vi.OPS_HELD_LINE.format(id=item.id, school=item.school_name or item.school_code or "?",
                                file=item.file, sender=item.sender or "?", received_at=when(item.received_at))
        for item in held
    ]


def compose_ops_reminders(kind: str, cycle: Cycle, due: Sequence[DueSchool], held: Sequence[HeldSubmission],
                          *, as_of: dt.datetime, ops_email: str) -> Mail:
    """Return the operator's summary of a reminder run: schools written to, unreachable, held files."""
    label = vi.OPS_KIND_LABELS[kind]
    body = Body()
    body.para(vi.OPS_REMINDER_INTRO.format(kind_label=label, cycle_label=cycle.label_vi,
                                           deadline=day(cycle.deadline), as_of=when(as_of), count=len(due)))

    def line(item: DueSchool) -> str:
        return vi.OPS_SCHOOL_LINE.format(code=item.code, name=item.name,
                                         state=vi.COMPLETENESS_LABELS.get(item.state, item.state),
                                         emails=", ".join(item.emails) or "-")

    reachable = [item for item in due if item.emails]
    unreachable = [item for item in due if not item.emails]
    body.items(vi.OPS_SENT_HEADING.format(count=len(reachable)), [line(item) for item in reachable])
    body.items(vi.OPS_NO_ADDRESS_HEADING.format(count=len(unreachable)), [line(item) for item in unreachable])
    if held:
        body.items(vi.OPS_HELD_HEADING.format(count=len(held)), _held_lines(held))
        body.para(vi.OPS_HELD_HOWTO)
    else:
        body.para(vi.OPS_NOTHING_HELD)
    return Mail(
        kind="ops",
        dedupe_key=f"ops:{kind}:{cycle.id}",
        to=(ops_email,),
        subject=vi.OPS_REMINDER_SUBJECT.format(kind_label=label, cycle=cycle.id, count=len(due)),
        text=body.text(),
        html=body.html(),
    )


def compose_ops_held(held: Sequence[HeldSubmission], *, ops_email: str) -> Mail | None:
    """Return the operator's notice of newly held submissions (one per set of submissions)."""
    if not held or not ops_email:
        return None
    body = Body()
    body.items(vi.OPS_HELD_HEADING.format(count=len(held)), _held_lines(held))
    body.para(vi.OPS_HELD_HOWTO)
    ids = ",".join(str(item.id) for item in sorted(held, key=lambda item: item.id))
    key = f"ops:held:{ids}"
    if len(key) > 255:
        key = f"ops:held:{held[0].id}-{held[-1].id}:{len(held)}"
    return Mail(
        kind="ops",
        dedupe_key=key,
        to=(ops_email,),
        subject=vi.OPS_HELD_SUBJECT.format(count=len(held)),
        text=body.text(),
        html=body.html(),
        submission_id=held[0].id,
    )


def held_submissions(conn: Connection, ids: Iterable[int] | None = None, cycle_id: str | None = None
                     ) -> list[HeldSubmission]:
    """Return held submissions (these ids, or a cycle's) with school name, file and sender."""
    query = (
        select(SUBMISSIONS.c.id, SUBMISSIONS.c.school_code, SCHOOLS.c.name, SUBMISSIONS.c.received_at,
               RECEIPTS.c.original_name, RECEIPTS.c.sender)
        .outerjoin(SCHOOLS, SCHOOLS.c.code == SUBMISSIONS.c.school_code)
        .outerjoin(RECEIPTS, RECEIPTS.c.id == SUBMISSIONS.c.receipt_id)
        .where(SUBMISSIONS.c.state == "held")
        .order_by(SUBMISSIONS.c.id)
    )
    if ids is not None:
        query = query.where(SUBMISSIONS.c.id.in_(set(ids)))
    if cycle_id is not None:
        query = query.where(SUBMISSIONS.c.cycle_id == cycle_id)
    return [
        HeldSubmission(row.id, row.school_code, row.name, row.original_name or "?", row.sender,
                       row.received_at)
        for row in conn.execute(query)
    ]
