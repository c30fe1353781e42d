"""Compose the reply to a school's message (SPEC §4), as a `tasks.mail.outbox.Mail`.

Per workbook: its verdict, every error and warning worded from the contract (most important first, a
blank sheet said once), the annotated copy of the workbook and, for an outdated template version,
the current template. Around them: the period in words, the deadline and what a late file means,
and the office's contact person. Layout in `tasks.mail.wording`, figures and changes in
`tasks.mail.changes`, the annotated copy in `tasks.mail.annotate`.

What a reply shows of stored data depends on who asked: only a sender registered for the school sees
the school's CT1/CT2 figures and what changed; a held sender learns the verdict and that the office
will review it, nothing else; findings that compare with stored figures (`total_jump`) go only to a
registered sender. Findings come from the database (the complete list, database rules included),
which keeps no confidential value: a `Vụ việc` finding is worded from the in-memory validation of
the sender's own file, which only this reply shows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from db import models
from schemas import messages as vi
from schemas.contract import DATA_SHEETS, SHEETS, TEMPLATE_VERSION
from schemas.findings import Finding, finding_from_row, make_finding, render_message
from schemas.models import is_blank
from schemas.reference import Cycle, Reference, School
from schemas.workbook import ParsedWorkbook
from tasks.check.parse import parse_workbook
from tasks.check.validate import validate_workbook
from tasks.intake.mail_extract import Skipped, SkipReason
from tasks.mail.annotate import AnnotatedCopy, CopyOmitted, annotate_workbook, cell_address
from tasks.mail.changes import (
    changes,
    indicator_figures,
    indicator_lines,
    load_values,
    may_see_stored,
    previous_version,
)
from tasks.mail.notices import (  # noqa: F401  (re-exported: reminders and intake import them from here)
    DueSchool,
    HeldSubmission,
    compose_ops_held,
    compose_ops_reminders,
    compose_reminder,
    held_submissions,
    reminder_key,
)
from tasks.mail.outbox import Mail, MailAttachment
from tasks.mail.wording import Body, Contact, address_of, greeting, megabytes, sign_off, when
from tasks.template.build import build_template, template_file_name

SUBMISSIONS = models.Submission.__table__
DECISIONS = models.Decision.__table__
FINDINGS = models.Finding.__table__
RECEIPTS = models.FileReceipt.__table__
MAX_LISTED_FINDINGS = 60  # per file and severity; the annotated copy shows them all
MAX_LISTED_CHANGES = 40
VALIDATION_REASONS = ("validation", "revalidate")
# Findings worded from stored figures of the school (its previous cycle): for registered senders only.
STORED_DATA_RULES = frozenset({"total_jump"})
# What to fix first: the file itself, then who and when it is for, then whole sheets and columns.
_RANK = {"unreadable_file": 0, "encrypted_file": 0, "too_large": 0, "unknown_school": 1,
         "unknown_cycle": 1, "missing_sheet": 2, "missing_column": 3}
_SHEET_ORDER = {sheet.key: index for index, sheet in enumerate(DATA_SHEETS)}


# --------------------------------------------------------------------------------------------------
# Stored submissions, as a reply needs them


@dataclass(frozen=True)
class StoredSubmission:
    """A stored submission with its current state and the findings of its latest validation."""

    id: int
    school_code: str | None
    claimed_school_code: str | None
    cycle_id: str
    state: str
    decision: str
    received_at: dt.datetime
    receipt_id: int | None
    sender: str | None
    template_version: str | None
    file_format: str
    findings: tuple[Finding, ...]


def load_submissions(conn: Connection, ids: Iterable[int]) -> dict[int, StoredSubmission]:
    """Read submissions with the findings of each one's latest validation decision."""
    ids = sorted(set(ids))
    if not ids:
        return {}
    latest: dict[int, int] = {}
    for submission_id, decision_id in conn.execute(
        select(DECISIONS.c.submission_id, DECISIONS.c.id)
        .where(DECISIONS.c.submission_id.in_(ids), DECISIONS.c.reason.in_(VALIDATION_REASONS))
        .order_by(DECISIONS.c.id)
    ):
        latest[submission_id] = decision_id
    found: dict[int, list[Finding]] = {}
    if latest:
        for row in conn.execute(
            select(FINDINGS).where(FINDINGS.c.decision_id.in_(set(latest.values()))).order_by(FINDINGS.c.id)
        ):
            found.setdefault(row.submission_id, []).append(finding_from_row(row._mapping))
    query = (
        select(SUBMISSIONS, RECEIPTS.c.sender.label("receipt_sender"))
        .outerjoin(RECEIPTS, RECEIPTS.c.id == SUBMISSIONS.c.receipt_id)
        .where(SUBMISSIONS.c.id.in_(ids))
    )
    return {
        row.id: StoredSubmission(
            id=row.id,
            school_code=row.school_code,
            claimed_school_code=row.claimed_school_code,
            cycle_id=row.cycle_id,
            state=row.state,
            decision=row.decision,
            received_at=row.received_at,
            receipt_id=row.receipt_id,
            sender=row.receipt_sender,
            template_version=row.template_version,
            file_format=row.file_format,
            findings=tuple(found.get(row.id, ())),
        )
        for row in conn.execute(query)
    }


# --------------------------------------------------------------------------------------------------
# The message being answered


@dataclass(frozen=True)
class ReceivedMessage:
    """The e-mail being answered."""

    reply_key: str  # stable per message: the reply is queued once (e.g. "<uidvalidity>:<uid>")
    sender: str | None
    subject: str
    message_id: str | None
    received_at: dt.datetime


@dataclass(frozen=True)
class ReceivedWorkbook:
    """One workbook of the message as it was stored: its arrival, submission and bytes.

    `parsed` and `findings` are this run's in-memory reading when it read the file now; otherwise the
    file is read again from `content` (e.g. after a crash between the commit and the reply).
    """

    name: str
    receipt_id: int
    submission_id: int
    content: bytes = field(repr=False)
    parsed: ParsedWorkbook | None = field(default=None, repr=False)
    findings: tuple[Finding, ...] = field(default=(), repr=False)


def _finding_key(finding: Finding) -> tuple[object, ...]:
    return finding.rule, finding.sheet_key, finding.row, finding.field_key, finding.column


def school_findings(stored: Sequence[Finding], in_memory: Sequence[Finding]) -> list[Finding]:
    """Return the stored findings with confidential values taken from the sender's own file."""
    by_key: dict[tuple[object, ...], list[Finding]] = {}
    for item in in_memory:
        by_key.setdefault(_finding_key(item), []).append(item)
    shown = []
    for item in stored:
        if item.confidential and by_key.get(_finding_key(item)):
            item = by_key[_finding_key(item)].pop(0)
        shown.append(item)
    return shown


def importance(finding: Finding) -> tuple[int, int]:
    """Sort key: file-level problems, identity, missing sheets and columns, then by sheet order."""
    sheet = -1 if finding.sheet_key is None else _SHEET_ORDER.get(finding.sheet_key, len(_SHEET_ORDER))
    return _RANK.get(finding.rule, 4), sheet


@dataclass(frozen=True)
class _FileReply:
    workbook: ReceivedWorkbook
    submission: StoredSubmission
    parsed: ParsedWorkbook
    findings: list[Finding]
    annotated: AnnotatedCopy | CopyOmitted | None
    template: MailAttachment | None
    school: School | None
    cycle: Cycle | None
    trusted: bool  # the sender is registered for the school: stored data may be shown


def _read(workbook: ReceivedWorkbook, submission: StoredSubmission, reference: Reference, max_bytes: int
          ) -> tuple[ParsedWorkbook, list[Finding]]:
    """Return the workbook as read, and the findings the sender is shown (its own values kept)."""
    parsed, in_memory = workbook.parsed, list(workbook.findings)
    if parsed is None:
        parsed = parse_workbook(workbook.content, max_bytes=max_bytes)
        if any(item.confidential for item in submission.findings):
            in_memory = validate_workbook(parsed, reference)
    return parsed, school_findings(submission.findings, in_memory)


def _file_reply(reference: Reference, message: ReceivedMessage, workbook: ReceivedWorkbook,
                submission: StoredSubmission, max_bytes: int) -> _FileReply:
    school = reference.schools.get(submission.school_code) if submission.school_code else None
    cycle = reference.calendar.get(submission.cycle_id)
    trusted = may_see_stored(message.sender, school)
    if submission.state == "held" and not trusted:
        # Nothing of the file or the school is shown: the verdict and that the office will review it.
        return _FileReply(workbook, submission, ParsedWorkbook(file_format=""), [], None, None, school, cycle,
                          trusted)
    parsed, findings = _read(workbook, submission, reference, max_bytes)
    if not trusted:
        findings = [item for item in findings if item.rule not in STORED_DATA_RULES]
    findings = sorted(findings, key=importance)
    annotated = annotate_workbook(workbook.content, parsed, findings, file_name=workbook.name)
    template = None
    outdated = submission.template_version not in (None, TEMPLATE_VERSION)
    if outdated and school is not None and cycle is not None:
        template = MailAttachment(template_file_name(school, cycle), build_template(school, cycle))
    return _FileReply(workbook, submission, parsed, findings, annotated, template, school, cycle, trusted)


# --------------------------------------------------------------------------------------------------
# Findings as lines


def finding_line(finding: Finding, parsed: ParsedWorkbook | None) -> str:
    """Return a finding as the sender reads it: its message, then its cell (and column if unsaid)."""
    cell = cell_address(finding, parsed) if parsed is not None else None
    message = render_message(finding, reveal=True)  # the sender's own file: its own values
    if cell is None:
        return message
    if finding.column and finding.column not in message:
        return message + vi.FINDING_CELL_COLUMN.format(cell=cell, column=finding.column)
    return message + vi.FINDING_CELL.format(cell=cell)


def empty_sheets(parsed: ParsedWorkbook | None) -> set[str]:
    """Return the keys of the pre-filled table sheets whose cells were all left blank."""
    if parsed is None:
        return set()
    empty = set()
    for key, table in parsed.tables.items():
        sheet = SHEETS[key]
        if sheet.rows is None:
            continue  # an activities sheet without rows is a school without activities
        columns = [name for name in sheet.field_keys if name != sheet.row_field and name in table.columns]
        if columns and all(is_blank(value) for value in table[columns].to_numpy().ravel()):
            empty.add(key)
    return empty


def finding_lines(findings: Sequence[Finding], parsed: ParsedWorkbook | None) -> list[str]:
    """Return the lines listing findings: a blank sheet said once, at most MAX_LISTED_FINDINGS."""
    blank = empty_sheets(parsed)
    lines: list[str] = []
    grouped: set[str] = set()
    for item in findings:
        if item.rule == "missing_value" and item.sheet_key in blank:
            if item.sheet_key not in grouped:
                grouped.add(item.sheet_key)
                count = sum(f.rule == "missing_value" and f.sheet_key == item.sheet_key for f in findings)
                lines.append(vi.SHEET_EMPTY.format(sheet=item.sheet, count=count))
            continue
        lines.append(finding_line(item, parsed))
    if len(lines) > MAX_LISTED_FINDINGS:
        more = vi.MORE_FINDINGS.format(count=len(lines) - MAX_LISTED_FINDINGS)
        lines = [*lines[:MAX_LISTED_FINDINGS], more]
    return lines


# --------------------------------------------------------------------------------------------------
# The reply


def _school_label(reply: _FileReply) -> str:
    if reply.school is not None:
        return f"{reply.school.name} ({reply.school.code})"
    claimed = reply.submission.claimed_school_code
    return f"{vi.UNKNOWN_SCHOOL} ({claimed})" if claimed else vi.UNKNOWN_SCHOOL


def _cycle_label(reply: _FileReply) -> str:
    return reply.cycle.label_vi if reply.cycle is not None else reply.submission.cycle_id


def _describe_file(conn: Connection, body: Body, reply: _FileReply, reference: Reference) -> None:
    submission = reply.submission
    body.heading(vi.FILE_HEADING.format(file=reply.workbook.name))
    body.para(vi.FILE_IDENTITY.format(school=_school_label(reply), cycle=_cycle_label(reply)))
    own = submission.receipt_id == reply.workbook.receipt_id
    if not own and reply.trusted:
        body.para(vi.DUPLICATE.format(received_at=when(submission.received_at),
                                      state=vi.STATE_LABELS.get(submission.state, submission.state)),
                  tone="note")
    errors = [item for item in reply.findings if item.is_error]
    warnings = [item for item in reply.findings if not item.is_error]
    tone = {"accepted": "good", "rejected": "bad", "held": "note"}.get(submission.state)
    verdict = vi.VERDICTS.get(submission.state, "")
    body.para(verdict.format(errors=len(errors), sender=address_of(submission.sender) or "?"), tone=tone)
    if submission.state == "held" and not reply.trusted:
        body.para(vi.HELD_NOTE)
        return
    body.items(vi.ERRORS_HEADING.format(count=len(errors)), finding_lines(errors, reply.parsed))
    body.items(vi.WARNINGS_HEADING.format(count=len(warnings)), finding_lines(warnings, reply.parsed))
    if reply.trusted and submission.file_format:
        _stored_data(conn, body, reply, reference, own)
    if isinstance(reply.annotated, AnnotatedCopy):
        body.para(vi.ANNOTATED_NOTE.format(file=reply.annotated.filename, summary=vi.SUMMARY_SHEET))
    elif isinstance(reply.annotated, CopyOmitted):
        body.para(vi.ANNOTATED_OMITTED)
    if reply.template is not None:
        body.para(vi.OUTDATED_TEMPLATE.format(old=submission.template_version, new=TEMPLATE_VERSION,
                                              file=reply.template.filename), tone="note")


def _stored_data(conn: Connection, body: Body, reply: _FileReply, reference: Reference, own: bool) -> None:
    """Add the school's figures and what changed: for a sender registered for the school only."""
    submission, school = reply.submission, reply.school
    values = load_values(conn, submission.id)
    if submission.state != "rejected" and values.reach:
        body.items(vi.INDICATORS_HEADING.format(sheet=SHEETS["reach"].name),
                   indicator_lines(indicator_figures(reference, values.reach)))
    if not own or school is None:
        return
    before = previous_version(conn, submission.id, school, submission.cycle_id, submission.received_at)
    if before is None:
        return
    found = changes(load_values(conn, before[0]), values)
    if not found:
        body.para(vi.NO_CHANGES.format(received_at=when(before[1])))
        return
    shown = found[:MAX_LISTED_CHANGES]
    if len(found) > MAX_LISTED_CHANGES:
        shown.append(vi.MORE_CHANGES.format(count=len(found) - MAX_LISTED_CHANGES))
    body.items(vi.CHANGES_HEADING.format(received_at=when(before[1])), shown)


def _deadline(body: Body, replies: Sequence[_FileReply], received_at: dt.datetime) -> None:
    """Say the deadline of each cycle the files are for, and what a file after it means."""
    cycles = {reply.cycle.id: reply.cycle for reply in replies if reply.cycle is not None}
    for cycle in sorted(cycles.values(), key=lambda item: item.id):
        wording = vi.DEADLINE_PASSED if received_at >= cycle.deadline_end else vi.DEADLINE_AHEAD
        body.para(wording.format(cycle=cycle.label_vi, deadline=cycle.deadline.strftime("%d/%m/%Y")))


def skipped_lines(skipped: Sequence[Skipped], max_bytes: int) -> list[str]:
    """Return why each attachment that was not kept was left out, in Vietnamese."""
    lines = []
    for item in skipped:
        if item.reason is SkipReason.TOO_LARGE:
            detail = vi.TOO_LARGE_DETAIL.format(max_mb=megabytes(max_bytes))
            reason = make_finding("too_large", detail=detail).message
        else:
            reason = vi.SKIPPED_REASONS.get(str(item.reason), vi.SKIPPED_REASONS["not_a_workbook"])
        lines.append(vi.SKIPPED_LINE.format(name=item.name, reason=reason))
    return lines


def feedback_key(reply_key: str) -> str:
    """Return the outbox dedupe key of the reply to one received message."""
    return f"feedback:{reply_key}"


def _subject(replies: Sequence[_FileReply]) -> str:
    if len(replies) != 1:
        return vi.FEEDBACK_SUBJECTS["several"].format(count=len(replies))
    reply = replies[0]
    return vi.FEEDBACK_SUBJECTS.get(reply.submission.state, vi.FEEDBACK_SUBJECTS["several"]).format(
        cycle=_cycle_label(reply), school=reply.school.name if reply.school else _school_label(reply),
        count=1)


def compose_feedback(
    conn: Connection,
    reference: Reference,
    message: ReceivedMessage,
    workbooks: Sequence[ReceivedWorkbook],
    skipped: Sequence[Skipped] = (),
    *,
    max_bytes: int,
    contact: Contact | None = None,
) -> Mail | None:
    """Return the reply to a message whose workbooks are stored; None when there is no one to answer."""
    to = address_of(message.sender)
    if not to or not workbooks:
        return None
    contact = contact or Contact.from_settings()
    stored = load_submissions(conn, [item.submission_id for item in workbooks])
    replies = [
        _file_reply(reference, message, item, stored[item.submission_id], max_bytes) for item in workbooks
    ]
    body = Body()
    schools = {reply.school for reply in replies}
    only = next(iter(schools)) if len(schools) == 1 else None
    greeting(body, only.name if only is not None else None)
    body.para(vi.FEEDBACK_INTRO.format(received_at=when(message.received_at), count=len(workbooks),
                                       program=vi.PROGRAM))
    for reply in replies:
        _describe_file(conn, body, reply, reference)
    if skipped:
        body.items(vi.SKIPPED_HEADING, skipped_lines(skipped, max_bytes))
    _deadline(body, replies, message.received_at)
    sign_off(body, contact)
    attachments: list[MailAttachment] = []
    for reply in replies:
        if isinstance(reply.annotated, AnnotatedCopy):
            attachments.append(MailAttachment(reply.annotated.filename, reply.annotated.content,
                                              reply.annotated.mime_type))
    templates = {item.template.filename: item.template for item in replies if item.template is not None}
    attachments += templates.values()
    return Mail(
        kind="feedback",
        dedupe_key=feedback_key(message.reply_key),
        to=(to,),
        subject=_subject(replies),
        text=body.text(),
        html=body.html(),
        attachments=tuple(attachments),
        in_reply_to=message.message_id,
        submission_id=replies[0].submission.id,
    )


def compose_no_workbook(message: ReceivedMessage, skipped: Sequence[Skipped] = (), *, max_bytes: int,
                        contact: Contact | None = None) -> Mail | None:
    """Return the polite reply to a message that carried no usable workbook (what to attach)."""
    to = address_of(message.sender)
    if not to:
        return None
    body = Body()
    greeting(body, None)
    fields = {"received_at": when(message.received_at), "subject": message.subject or vi.NO_SUBJECT,
              "max_mb": megabytes(max_bytes)}
    lines = [line.format(**fields) for line in vi.NO_WORKBOOK_LINES]
    body.para(lines[0])
    if skipped:
        body.items(vi.SKIPPED_HEADING, skipped_lines(skipped, max_bytes))
    for line in lines[1:]:
        body.para(line)
    sign_off(body, contact or Contact.from_settings())
    return Mail(
        kind="feedback",
        dedupe_key=feedback_key(message.reply_key),
        to=(to,),
        subject=vi.NO_WORKBOOK_SUBJECT,
        text=body.text(),
        html=body.html(),
        in_reply_to=message.message_id,
    )
