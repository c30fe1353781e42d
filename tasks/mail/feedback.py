"""Compose the e-mails schools and the operator read (SPEC §4, §6), as `tasks.mail.outbox.Mail` values.

Feedback answers one received message: per workbook its verdict, every error and warning in the
school's own words (the findings' messages), the school's CT1/CT2 figures, what changed against the
school's previous version, the annotated copy of the workbook and, for an outdated template version,
the current template. Reminders and overdue notices carry the school's pre-filled template. The
wording lives in `schemas.messages`; this module only chooses, fills and lays it out as plain text
and HTML.

Findings come from the database (the complete list, database rules included), but the database keeps
no confidential value: when a finding of the `Vụ việc` sheet is shown, its wording is taken from the
in-memory validation of the school's own file, which only this school's own reply may show.
"""

from __future__ import annotations

import datetime as dt
import html
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parseaddr
from typing import Any, ClassVar

from sqlalchemy import Connection, and_, or_, select

from config.settings import TIMEZONE
from db import models
from schemas import messages as vi
from schemas.contract import (
    ACTIVITIES,
    ACTIVITY_TYPES,
    AUDIENCE_GROUPS,
    CHECKLIST,
    CHECKLIST_ITEMS,
    GENERAL,
    INCIDENT_CATEGORIES,
    INCIDENTS,
    REACH,
    TEMPLATE_VERSION,
    Severity,
)
from schemas.findings import Finding, make_finding
from schemas.indicators import reach_percent
from schemas.reference import Cycle, Reference, School
from schemas.workbook import ParsedWorkbook
from tasks.check.parse import parse_workbook
from tasks.check.validate import validate_workbook
from tasks.intake.mail_extract import Skipped, SkipReason
from tasks.mail.annotate import AnnotatedCopy, annotate_workbook, cell_address
from tasks.mail.outbox import Mail, MailAttachment
from tasks.template.build import build_template, template_file_name

SUBMISSIONS = models.Submission.__table__
DECISIONS = models.Decision.__table__
FINDINGS = models.Finding.__table__
RECEIPTS = models.FileReceipt.__table__
SCHOOLS = models.School.__table__
SHEET_TABLES = {
    GENERAL.key: models.GeneralInfo.__table__,
    REACH.key: models.ReachRow.__table__,
    ACTIVITIES.key: models.Activity.__table__,
    CHECKLIST.key: models.ChecklistAnswer.__table__,
    INCIDENTS.key: models.IncidentCount.__table__,
}
INDICATOR_CODES = ("CT1", "CT2")
MAX_LISTED_FINDINGS = 60  # per file and severity; the annotated copy shows them all
MAX_LISTED_CHANGES = 40
VALIDATION_REASONS = ("validation", "revalidate")


# --------------------------------------------------------------------------------------------------
# Text and HTML from the same blocks


class Body:
    """An e-mail body built once and rendered twice: plain text and a small, inline-styled HTML."""

    _TONES: ClassVar[dict[str, str]] = {"good": "#1e7b34", "bad": "#b00020", "note": "#7a5b00"}

    def __init__(self) -> None:
        self._blocks: list[tuple[str, Any]] = []

    def heading(self, text: str) -> None:
        """Add a section heading."""
        self._blocks.append(("heading", text))

    def para(self, text: str, tone: str | None = None) -> None:
        """Add a paragraph; `tone` (good, bad, note) colours it in HTML."""
        if text:
            self._blocks.append(("para", (text, tone)))

    def items(self, title: str, lines: Sequence[str]) -> None:
        """Add a titled bullet list (nothing when there are no lines)."""
        if lines:
            self._blocks.append(("items", (title, list(lines))))

    def text(self) -> str:
        """Return the plain-text body."""
        out: list[str] = []
        for kind, value in self._blocks:
            if kind == "heading":
                out += ["", value, "-" * min(len(value), 70)]
            elif kind == "para":
                out += [value[0], ""]
            else:
                title, lines = value
                out.append(title)
                out += [f"  - {line}" for line in lines]
                out.append("")
        return "\n".join(out).strip() + "\n"

    def html(self) -> str:
        """Return the HTML body (every text escaped)."""
        out = ['<div style="font-family: Arial, sans-serif; font-size: 14px; line-height: 1.45;">']
        for kind, value in self._blocks:
            if kind == "heading":
                out.append(f'<h3 style="margin: 18px 0 6px;">{html.escape(value)}</h3>')
            elif kind == "para":
                text, tone = value
                style = f' style="color: {self._TONES[tone]};"' if tone in self._TONES else ""
                out.append(f"<p{style}>{html.escape(text).replace(chr(10), '<br>')}</p>")
            else:
                title, lines = value
                out.append(f"<p><b>{html.escape(title)}</b></p><ul>")
                out += [f"<li>{html.escape(line)}</li>" for line in lines]
                out.append("</ul>")
        out.append("</div>")
        return "\n".join(out) + "\n"


def _greeting(body: Body, recipient: str | None) -> None:
    body.para(vi.GREETING.format(recipient=recipient or vi.DEFAULT_RECIPIENT))


def _sign_off(body: Body) -> None:
    body.para("\n".join(vi.SIGN_OFF))
    body.para(vi.AUTOMATIC_NOTE)


def when(moment: dt.datetime) -> str:
    """Show a moment as a Vietnamese clerk reads it: dd/mm/yyyy HH:MM, Asia/Ho_Chi_Minh."""
    return moment.astimezone(TIMEZONE).strftime("%d/%m/%Y %H:%M")


def day(value: dt.date) -> str:
    """Show a date as dd/mm/yyyy."""
    return value.strftime("%d/%m/%Y")


def address_of(sender: str | None) -> str:
    """Return the bare address of a sender such as `Cô Lan <lan@truong.vn>`."""
    return parseaddr(sender or "")[1].strip()


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

    @property
    def errors(self) -> list[Finding]:
        return [item for item in self.findings if item.is_error]

    @property
    def warnings(self) -> list[Finding]:
        return [item for item in self.findings if not item.is_error]


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
            found.setdefault(row.submission_id, []).append(
                Finding(Severity(row.severity), row.rule, row.sheet, row.row, row.column, row.value,
                        row.message, row.confidential)
            )
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


def previous_version(conn: Connection, submission: StoredSubmission) -> tuple[int, dt.datetime] | None:
    """Return (id, received_at) of the school's submission for the cycle received just before this one."""
    if submission.school_code is None:
        return None
    earlier = or_(
        SUBMISSIONS.c.received_at < submission.received_at,
        and_(SUBMISSIONS.c.received_at == submission.received_at, SUBMISSIONS.c.id < submission.id),
    )
    row = conn.execute(
        select(SUBMISSIONS.c.id, SUBMISSIONS.c.received_at)
        .where(
            SUBMISSIONS.c.school_code == submission.school_code,
            SUBMISSIONS.c.cycle_id == submission.cycle_id,
            SUBMISSIONS.c.id != submission.id,
            SUBMISSIONS.c.file_format != "",  # an unreadable file has no values to compare with
            earlier,
        )
        .order_by(SUBMISSIONS.c.received_at.desc(), SUBMISSIONS.c.id.desc())
        .limit(1)
    ).first()
    return (row.id, row.received_at) if row is not None else None


@dataclass
class SheetValues:
    """A submission's stored sheet values, keyed by contract codes (rows read on purpose, confidential
    incident counts included: they only ever reach the school's own reply)."""

    general: dict[str, object] = field(default_factory=dict)
    reach: dict[str, dict[str, object]] = field(default_factory=dict)
    checklist: dict[str, dict[str, object]] = field(default_factory=dict)
    incidents: dict[str, dict[str, object]] = field(default_factory=dict)
    activities: list[dict[str, object]] = field(default_factory=list)


def load_values(conn: Connection, submission_id: int) -> SheetValues:
    """Read one submission's normalised sheet rows."""
    values = SheetValues()
    general = SHEET_TABLES[GENERAL.key]
    row = conn.execute(select(general).where(general.c.submission_id == submission_id)).first()
    if row is not None:
        values.general = {item.key: row._mapping[item.key] for item in GENERAL.fields}
    for sheet, target, key in (
        (REACH, values.reach, "group"),
        (CHECKLIST, values.checklist, "item"),
        (INCIDENTS, values.incidents, "category"),
    ):
        table = SHEET_TABLES[sheet.key]
        for found in conn.execute(select(table).where(table.c.submission_id == submission_id)):
            target[found._mapping[key]] = {item.key: found._mapping[item.key] for item in sheet.fields}
    table = SHEET_TABLES[ACTIVITIES.key]
    values.activities = [
        {item.key: found._mapping[item.key] for item in ACTIVITIES.fields}
        for found in conn.execute(
            select(table)
            .where(table.c.submission_id == submission_id)
            .order_by(table.c.excel_row, table.c.id)
        )
    ]
    return values


# --------------------------------------------------------------------------------------------------
# Indicators and changes


@dataclass(frozen=True)
class IndicatorFigure:
    """One school-level indicator: Σreached / Σtotal over its groups, in %, against its target."""

    code: str
    value: float | None
    target: float | None
    direction: str
    met: bool | None


def indicator_figures(
    reference: Reference, reach: Mapping[str, Mapping[str, object]]
) -> list[IndicatorFigure]:
    """Return CT1 and CT2 of one school from its reach rows (catalog groups and targets)."""
    figures = []
    for code in INDICATOR_CODES:
        indicator = reference.indicator(code)
        if indicator is None or indicator.manual:
            continue
        value = reach_percent(indicator.groups, reach)
        figures.append(IndicatorFigure(code, value, indicator.target, indicator.direction,
                                       indicator.is_met(value)))
    return figures


def _percent(value: float) -> str:
    return f"{value:.1f}".replace(".", ",") + "%"


def indicator_lines(figures: Sequence[IndicatorFigure]) -> list[str]:
    """Return one Vietnamese line per indicator figure."""
    lines = []
    for figure in figures:
        sign = "≥" if figure.direction == ">=" else "≤"
        target = f"{sign} {figure.target:g}%" if figure.target is not None else "-"
        verdict = vi.INDICATOR_VERDICTS[figure.met] if figure.met is not None else vi.INDICATOR_NO_DATA
        value = _percent(figure.value) if figure.value is not None else vi.INDICATOR_NO_DATA
        lines.append(vi.INDICATOR_LINE.format(code=figure.code, value=value, target=target, verdict=verdict))
    return lines


def _shown(value: object, codes: Any = None) -> str:
    """Show a stored value as the school typed it: labels for codes, Có/Không, dd/mm/yyyy, (trống)."""
    if value is None or value == "":
        return vi.BLANK
    if isinstance(value, bool):
        return vi.YES if value else vi.NO
    if codes is not None and isinstance(value, str) and value in codes.codes:
        return codes.label(value)
    if isinstance(value, dt.date):
        return day(value)
    return str(value)


def _row_changes(sheet: Any, rows: Any, before: Mapping[str, Mapping[str, object]],
                 after: Mapping[str, Mapping[str, object]], zero_blank: bool) -> list[str]:
    lines = []
    for choice in rows.choices:
        old, new = before.get(choice.code, {}), after.get(choice.code, {})
        if not old and not new:
            continue
        for item in sheet.fields:
            if item.key == sheet.row_field:
                continue
            was, now = old.get(item.key), new.get(item.key)
            if zero_blank:
                was, now = was or 0, now or 0
            if was != now:
                lines.append(vi.CHANGE_CELL.format(
                    sheet=sheet.name, row=vi.CHANGE_ROW.format(label=choice.short_label or choice.label),
                    column=item.label, before=_shown(was, item.codes), after=_shown(now, item.codes)))
    return lines


def _activity(row: Mapping[str, object]) -> tuple[object, ...]:
    return tuple(row.get(item.key) for item in ACTIVITIES.fields if item.key != "seq")


def _describe_activity(row: Mapping[str, object]) -> str:
    content = str(row.get("content") or vi.BLANK)
    content = content if len(content) <= 80 else content[:79] + "…"
    parts = [_shown(row.get("start_date")), _shown(row.get("activity_type"), ACTIVITY_TYPES), content]
    return " - ".join(parts)


def changes(before: SheetValues, after: SheetValues) -> list[str]:
    """Return what changed between two versions of a school's report, in the order of the workbook."""
    lines = []
    for item in GENERAL.fields:
        was, now = before.general.get(item.key), after.general.get(item.key)
        if was != now:
            lines.append(vi.CHANGE_FIELD.format(sheet=GENERAL.name, column=item.label, before=_shown(was),
                                                after=_shown(now)))
    lines += _row_changes(REACH, AUDIENCE_GROUPS, before.reach, after.reach, zero_blank=False)
    if len(before.activities) != len(after.activities):
        lines.append(vi.ACTIVITY_COUNT.format(sheet=ACTIVITIES.name, before=len(before.activities),
                                              after=len(after.activities)))
    # Activities have no key: compare them as a multiset, so an inserted row is one addition.
    unmatched = Counter(_activity(row) for row in before.activities)
    for row in after.activities:
        key = _activity(row)
        if unmatched[key] > 0:
            unmatched[key] -= 1
        else:
            lines.append(vi.ACTIVITY_ADDED.format(sheet=ACTIVITIES.name, activity=_describe_activity(row)))
    for row in before.activities:
        key = _activity(row)
        if unmatched[key] > 0:
            unmatched[key] -= 1
            lines.append(vi.ACTIVITY_REMOVED.format(sheet=ACTIVITIES.name, activity=_describe_activity(row)))
    lines += _row_changes(CHECKLIST, CHECKLIST_ITEMS, before.checklist, after.checklist, zero_blank=False)
    lines += _row_changes(INCIDENTS, INCIDENT_CATEGORIES, before.incidents, after.incidents, zero_blank=True)
    return lines


# --------------------------------------------------------------------------------------------------
# Feedback on one received message


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
    return finding.rule, finding.sheet, finding.row, finding.column


def school_findings(stored: Sequence[Finding], in_memory: Sequence[Finding]) -> list[Finding]:
    """Return the stored findings with confidential wording restored from the school's own file."""
    by_key: dict[tuple[object, ...], list[Finding]] = {}
    for item in in_memory:
        by_key.setdefault(_finding_key(item), []).append(item)
    shown = []
    for item in stored:
        if item.confidential and by_key.get(_finding_key(item)):
            item = by_key[_finding_key(item)].pop(0)
        shown.append(item)
    return shown


@dataclass(frozen=True)
class _FileReply:
    workbook: ReceivedWorkbook
    submission: StoredSubmission
    parsed: ParsedWorkbook
    findings: list[Finding]
    annotated: AnnotatedCopy | None
    template: MailAttachment | None
    school: School | None
    cycle: Cycle | None


def _read(workbook: ReceivedWorkbook, submission: StoredSubmission, reference: Reference, max_bytes: int
          ) -> tuple[ParsedWorkbook, list[Finding]]:
    """Return the workbook as read, and the findings the school is shown (confidential wording kept)."""
    parsed, in_memory = workbook.parsed, list(workbook.findings)
    if parsed is None:
        parsed = parse_workbook(workbook.content, max_bytes=max_bytes)
        if any(item.confidential for item in submission.findings):
            in_memory = validate_workbook(parsed, reference)
    return parsed, school_findings(submission.findings, in_memory)


def _file_reply(conn: Connection, reference: Reference, workbook: ReceivedWorkbook,
                submission: StoredSubmission, max_bytes: int) -> _FileReply:
    parsed, findings = _read(workbook, submission, reference, max_bytes)
    annotated = annotate_workbook(workbook.content, parsed, findings, file_name=workbook.name)
    school = reference.schools.get(submission.school_code) if submission.school_code else None
    cycle = reference.calendar.get(submission.cycle_id)
    template = None
    outdated = submission.template_version not in (None, TEMPLATE_VERSION)
    if outdated and school is not None and cycle is not None:
        template = MailAttachment(template_file_name(school, cycle), build_template(school, cycle))
    return _FileReply(workbook, submission, parsed, findings, annotated, template, school, cycle)


def finding_line(finding: Finding, parsed: ParsedWorkbook | None) -> str:
    """Return a finding as the school reads it: its message, then its cell (and column if unsaid)."""
    cell = cell_address(finding, parsed) if parsed is not None else None
    if cell is None:
        return finding.message
    if finding.column and finding.column not in finding.message:
        return finding.message + vi.FINDING_CELL_COLUMN.format(cell=cell, column=finding.column)
    return finding.message + vi.FINDING_CELL.format(cell=cell)


def _finding_lines(findings: Sequence[Finding], parsed: ParsedWorkbook | None) -> list[str]:
    lines = [finding_line(item, parsed) for item in findings[:MAX_LISTED_FINDINGS]]
    if len(findings) > MAX_LISTED_FINDINGS:
        lines.append(vi.MORE_FINDINGS.format(count=len(findings) - MAX_LISTED_FINDINGS))
    return lines


def _school_label(reply: _FileReply) -> str:
    if reply.school is not None:
        return f"{reply.school.name} ({reply.school.code})"
    claimed = reply.submission.claimed_school_code
    return f"{vi.UNKNOWN_SCHOOL} ({claimed})" if claimed else vi.UNKNOWN_SCHOOL


def _cycle_label(reply: _FileReply) -> str:
    cycle = reply.cycle
    return f"{cycle.label_vi} ({cycle.id})" if cycle is not None else reply.submission.cycle_id


def _describe_file(conn: Connection, body: Body, reply: _FileReply, reference: Reference) -> None:
    submission = reply.submission
    body.heading(vi.FILE_HEADING.format(file=reply.workbook.name))
    body.para(vi.FILE_IDENTITY.format(school=_school_label(reply), cycle=_cycle_label(reply)))
    own = submission.receipt_id == reply.workbook.receipt_id
    if not own:
        body.para(vi.DUPLICATE.format(received_at=when(submission.received_at),
                                      state=vi.STATE_LABELS.get(submission.state, submission.state)),
                  tone="note")
    errors = [item for item in reply.findings if item.is_error]
    warnings = [item for item in reply.findings if not item.is_error]
    tone = {"accepted": "good", "rejected": "bad", "held": "note"}.get(submission.state)
    verdict = vi.VERDICTS.get(submission.state, "")
    body.para(verdict.format(errors=len(errors), sender=address_of(submission.sender) or "?"), tone=tone)
    body.items(vi.ERRORS_HEADING.format(count=len(errors)), _finding_lines(errors, reply.parsed))
    body.items(vi.WARNINGS_HEADING.format(count=len(warnings)), _finding_lines(warnings, reply.parsed))
    values = load_values(conn, submission.id) if submission.file_format else SheetValues()
    if submission.state != "rejected" and values.reach:
        body.items(vi.INDICATORS_HEADING.format(sheet=REACH.name),
                   indicator_lines(indicator_figures(reference, values.reach)))
    if own and submission.file_format:
        before = previous_version(conn, submission)
        if before is not None:
            found = changes(load_values(conn, before[0]), values)
            if found:
                shown = found[:MAX_LISTED_CHANGES]
                if len(found) > MAX_LISTED_CHANGES:
                    shown.append(vi.MORE_CHANGES.format(count=len(found) - MAX_LISTED_CHANGES))
                body.items(vi.CHANGES_HEADING.format(received_at=when(before[1])), shown)
            else:
                body.para(vi.NO_CHANGES.format(received_at=when(before[1])))
    if reply.annotated is not None:
        body.para(vi.ANNOTATED_NOTE.format(file=reply.annotated.filename))
    if reply.template is not None:
        body.para(vi.OUTDATED_TEMPLATE.format(old=submission.template_version, new=TEMPLATE_VERSION,
                                              file=reply.template.filename), tone="note")


def skipped_lines(skipped: Sequence[Skipped], max_bytes: int) -> list[str]:
    """Return why each attachment that was not kept was left out, in Vietnamese."""
    lines = []
    for item in skipped:
        if item.reason is SkipReason.TOO_LARGE:
            detail = vi.TOO_LARGE_DETAIL.format(max_mb=_megabytes(max_bytes))
            reason = make_finding("too_large", detail=detail).message
        else:
            reason = vi.SKIPPED_REASONS.get(str(item.reason), vi.SKIPPED_REASONS["not_a_workbook"])
        lines.append(vi.SKIPPED_LINE.format(name=item.name, reason=reason))
    return lines


def _megabytes(max_bytes: int) -> str:
    return f"{max_bytes / (1024 * 1024):g}".replace(".", ",")


def feedback_key(reply_key: str) -> str:
    """Return the outbox dedupe key of the reply to one received message."""
    return f"feedback:{reply_key}"


def compose_feedback(
    conn: Connection,
    reference: Reference,
    message: ReceivedMessage,
    workbooks: Sequence[ReceivedWorkbook],
    skipped: Sequence[Skipped] = (),
    *,
    max_bytes: int,
) -> Mail | None:
    """Return the reply to a message whose workbooks are stored; None when there is no one to answer."""
    to = address_of(message.sender)
    if not to or not workbooks:
        return None
    stored = load_submissions(conn, [item.submission_id for item in workbooks])
    replies = [
        _file_reply(conn, reference, item, stored[item.submission_id], max_bytes) for item in workbooks
    ]
    body = Body()
    schools = {reply.school for reply in replies}
    only = next(iter(schools)) if len(schools) == 1 else None
    recipient = only.name if only is not None else None
    _greeting(body, recipient)
    body.para(vi.FEEDBACK_INTRO.format(received_at=when(message.received_at), count=len(workbooks),
                                       program=vi.PROGRAM))
    for reply in replies:
        _describe_file(conn, body, reply, reference)
    if skipped:
        body.items(vi.SKIPPED_HEADING, skipped_lines(skipped, max_bytes))
    _sign_off(body)
    attachments: list[MailAttachment] = []
    for reply in replies:
        if reply.annotated is not None:
            attachments.append(MailAttachment(reply.annotated.filename, reply.annotated.content,
                                              reply.annotated.mime_type))
    templates = {item.template.filename: item.template for item in replies if item.template is not None}
    attachments += templates.values()
    if len(replies) == 1:
        reply = replies[0]
        subject = vi.FEEDBACK_SUBJECTS.get(reply.submission.state, vi.FEEDBACK_SUBJECTS["several"]).format(
            cycle=reply.cycle.id if reply.cycle else reply.submission.cycle_id,
            school=reply.school.name if reply.school else _school_label(reply), count=1)
    else:
        subject = vi.FEEDBACK_SUBJECTS["several"].format(count=len(replies))
    return Mail(
        kind="feedback",
        dedupe_key=feedback_key(message.reply_key),
        to=(to,),
        subject=subject,
        text=body.text(),
        html=body.html(),
        attachments=tuple(attachments),
        in_reply_to=message.message_id,
        submission_id=replies[0].submission.id,
    )


def compose_no_workbook(message: ReceivedMessage, skipped: Sequence[Skipped] = (), *, max_bytes: int
                        ) -> Mail | None:
    """Return the polite reply to a message that carried no usable workbook (what to attach)."""
    to = address_of(message.sender)
    if not to:
        return None
    body = Body()
    _greeting(body, None)
    fields = {"received_at": when(message.received_at), "subject": message.subject or vi.NO_SUBJECT,
              "max_mb": _megabytes(max_bytes)}
    lines = [line.format(**fields) for line in vi.NO_WORKBOOK_LINES]
    body.para(lines[0])
    if skipped:
        body.items(vi.SKIPPED_HEADING, skipped_lines(skipped, max_bytes))
    for line in lines[1:]:
        body.para(line)
    _sign_off(body)
    return Mail(
        kind="feedback",
        dedupe_key=feedback_key(message.reply_key),
        to=(to,),
        subject=vi.NO_WORKBOOK_SUBJECT,
        text=body.text(),
        html=body.html(),
        in_reply_to=message.message_id,
    )


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
    _greeting(body, school.name)
    body.para(vi.REMINDER_INTROS[kind].format(**fields), tone="bad" if kind == "overdue" else None)
    note = vi.REMINDER_STATE_NOTES.get(due.state)
    if note:
        body.para(note.format(**fields), tone="note")
    body.para(vi.REMINDER_ATTACHMENT.format(**fields))
    body.para(vi.REMINDER_IGNORE)
    _sign_off(body)
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
