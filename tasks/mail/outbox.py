"""The mail outbox (SPEC §4): queue e-mails in the database, send them later, each at most once.

Every e-mail (feedback, reminders, the operator's summaries) is first a row of `outbox`, committed
with a unique `dedupe_key`, so queueing the same reply again is a no-op. `flush_outbox` sends unsent
rows in id order; each row is marked sent in its own transaction right after the SMTP server accepted
it, so a run that stops half-way leaves every row either sent or still queued. On PostgreSQL the row is
locked (`FOR UPDATE SKIP LOCKED`) while it is sent: two runs flushing at once never send it twice.

Failures: a server that cannot be reached stops the flush (the rest wait for the next run) and does
not count against the message; a message the server defers (4xx) counts one attempt and is given up
after MAX_ATTEMPTS; one the server refuses for good (5xx, `MessageRejected`) is recorded and never
retried. `attempts` therefore counts deliveries the server saw.
"""

from __future__ import annotations

import email
import hashlib
import logging
import smtplib
from collections.abc import Sequence
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any

from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload, undefer

from config.settings import TIMEZONE
from db.models import OutboxAttachment, OutboxMessage, utcnow
from tasks.mail.smtp import MailServerUnavailable, MessageRejected, SmtpConfig, send_message

log = logging.getLogger(__name__)

OUTBOX = OutboxMessage.__table__
ATTACHMENTS = OutboxAttachment.__table__
KINDS = ("feedback", "reminder", "overdue", "ops", "report")
# Deferrals (4xx) of one message before it is given up; an unreachable server never counts.
MAX_ATTEMPTS = 5
REJECTED_PREFIX = "rejected: "
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# SMTP errors that concern one message, not the server: the next message may still go through.
_MESSAGE_ERRORS = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError)


@dataclass(frozen=True)
class MailAttachment:
    """A file to attach: name as the recipient sees it, bytes and MIME type."""

    filename: str
    content: bytes = field(repr=False)
    mime_type: str = XLSX_TYPE


@dataclass(frozen=True)
class Mail:
    """An e-mail ready to queue: recipients, subject, plain text and HTML bodies, attachments."""

    kind: str  # feedback | reminder | overdue | ops
    dedupe_key: str  # the same key is queued (and so sent) once
    to: tuple[str, ...]
    subject: str
    text: str
    html: str | None = None
    attachments: tuple[MailAttachment, ...] = ()
    in_reply_to: str | None = None  # the Message-ID this answers, so clients thread the reply
    submission_id: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown mail kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        if not self.to:
            raise ValueError(f"mail {self.dedupe_key!r} has no recipient")
        if len(self.dedupe_key) > 255:
            raise ValueError(f"dedupe key longer than 255 characters: {self.dedupe_key[:60]!r}…")


@dataclass
class FlushResult:
    """What one flush did: ids sent, given up, still queued; why it stopped early, if it did."""

    sent: list[int] = field(default_factory=list)
    deferred: list[int] = field(default_factory=list)  # the server said "later" (4xx): retried next run
    given_up: list[int] = field(default_factory=list)  # refused for good, or deferred too often
    unavailable: str | None = None  # the server could not be reached: the rest stay queued
    remaining: int = 0  # rows still queued after this flush

    def one_line(self) -> str:
        """Return the flush in one log line."""
        line = (
            f"{len(self.sent)} sent, {len(self.deferred)} deferred, {len(self.given_up)} given up, "
            f"{self.remaining} still queued"
        )
        return f"{line} (SMTP unavailable: {self.unavailable})" if self.unavailable else line


# --------------------------------------------------------------------------------------------------
# Queue


def _insert(conn: Connection) -> Any:
    """Return the dialect's INSERT that can skip rows whose dedupe key is queued already."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(OUTBOX)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(OUTBOX)
    raise NotImplementedError(f"outbox queueing is not implemented for {conn.dialect.name}")


def queue(conn: Connection, mails: Sequence[Mail]) -> list[int]:
    """Queue mails in the connection's transaction; skip dedupe keys already queued; return new ids."""
    fresh: dict[str, Mail] = {}
    for mail in mails:
        fresh.setdefault(mail.dedupe_key, mail)
    if not fresh:
        return []
    known = set(conn.execute(select(OUTBOX.c.dedupe_key).where(OUTBOX.c.dedupe_key.in_(fresh))).scalars())
    rows = [
        {
            "kind": mail.kind,
            "dedupe_key": key,
            "submission_id": mail.submission_id,
            "to_address": ", ".join(mail.to),
            "subject": mail.subject,
            "body_text": mail.text,
            "body_html": mail.html,
            "in_reply_to": mail.in_reply_to,
            "created_at": utcnow(),
            "attempts": 0,
        }
        for key, mail in fresh.items()
        if key not in known
    ]
    if not rows:
        return []
    # ON CONFLICT DO NOTHING: a concurrent run may queue the same key between the SELECT and here.
    statement = (
        _insert(conn)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(OUTBOX.c.id, OUTBOX.c.dedupe_key)
    )
    inserted: dict[str, int] = {}
    # One statement per row: a run queues a handful, and RETURNING after an upsert in executemany is
    # not portable across drivers.
    for row in rows:
        found = conn.execute(statement, row).first()
        if found is not None:
            inserted[found.dedupe_key] = found.id
    attachment_rows = [
        {
            "message_id": inserted[key],
            "position": position,
            "filename": item.filename,
            "mime_type": item.mime_type,
            "content": item.content,
        }
        for key, mail in fresh.items()
        if key in inserted
        for position, item in enumerate(mail.attachments)
    ]
    if attachment_rows:
        conn.execute(insert(ATTACHMENTS), attachment_rows)
    return sorted(inserted.values())


def queue_mail(engine: Engine, mails: Sequence[Mail]) -> list[int]:
    """Queue mails in one transaction of their own; return the ids of the rows added."""
    with engine.begin() as conn:
        return queue(conn, mails)


def queued_keys(engine: Engine, keys: Sequence[str]) -> set[str]:
    """Return which of these dedupe keys are queued already (sent or not)."""
    if not keys:
        return set()
    with engine.connect() as conn:
        return set(conn.execute(select(OUTBOX.c.dedupe_key).where(OUTBOX.c.dedupe_key.in_(keys))).scalars())


# --------------------------------------------------------------------------------------------------
# Send


def _domain(address: str) -> str:
    return (parseaddr(address)[1].rpartition("@")[2] or "gec.invalid").strip() or "gec.invalid"


def build_message(row: OutboxMessage, from_addr: str) -> EmailMessage:
    """Return the EmailMessage a queued row stands for (plain text, HTML alternative, attachments)."""
    msg = EmailMessage()
    if from_addr:
        msg["From"] = from_addr
    msg["To"] = row.to_address
    msg["Subject"] = row.subject
    # The moment it is handed over: a reply that waited out an outage must not look days old.
    msg["Date"] = format_datetime(utcnow().astimezone(TIMEZONE))
    # Stable per row: if a crash makes a later run send it again, clients can tell it is the same mail.
    digest = hashlib.sha256(row.dedupe_key.encode("utf-8")).hexdigest()[:16]
    msg["Message-ID"] = f"<gec.{row.id}.{digest}@{_domain(from_addr)}>"
    if row.in_reply_to:
        msg["In-Reply-To"] = row.in_reply_to
        msg["References"] = row.in_reply_to
    # RFC 3834: auto-responders (a school's "out of office") must not answer, or mail would loop.
    msg["Auto-Submitted"] = "auto-replied" if row.kind == "feedback" else "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(row.body_text)
    if row.body_html:
        msg.add_alternative(row.body_html, subtype="html")
    for item in row.attachments:
        content = item.content if item.content is not None else item.received_file.content
        if item.mime_type == "message/rfc822":
            # RFC 2046: an attached message keeps its own encodings (never base64 around it).
            msg.add_attachment(email.message_from_bytes(content, policy=policy.SMTP), filename=item.filename)
            continue
        maintype, _, subtype = item.mime_type.partition("/")
        msg.add_attachment(
            content, maintype=maintype or "application", subtype=subtype or "octet-stream",
            filename=item.filename,
        )
    return msg


def _claim(session: Session, message_id: int) -> OutboxMessage | None:
    """Load an unsent row with its attachments, locking it on PostgreSQL (skipped if another run has it)."""
    query = (
        select(OutboxMessage)
        .where(
            OutboxMessage.id == message_id,
            OutboxMessage.sent_at.is_(None),
            OutboxMessage.attempts < MAX_ATTEMPTS,
        )
        .options(selectinload(OutboxMessage.attachments).options(undefer(OutboxAttachment.content)))
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=OutboxMessage)
    return session.scalars(query).first()


def _is_message_error(error: MailServerUnavailable) -> bool:
    """Tell a deferral of this message (4xx after MAIL/RCPT/DATA) from a server that is away."""
    return isinstance(error.__cause__, _MESSAGE_ERRORS)


def pending_ids(engine: Engine, limit: int | None = None) -> list[int]:
    """Return the ids of queued rows still to send, oldest first."""
    query = (
        select(OUTBOX.c.id)
        .where(OUTBOX.c.sent_at.is_(None), OUTBOX.c.attempts < MAX_ATTEMPTS)
        .order_by(OUTBOX.c.id)
    )
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        return list(conn.execute(query).scalars())


def flush_outbox(engine: Engine, smtp: SmtpConfig, *, limit: int | None = None) -> FlushResult:
    """Send queued mail in id order, marking each row sent right after the server accepted it."""
    result = FlushResult()
    for message_id in pending_ids(engine, limit):
        with Session(engine, expire_on_commit=False) as session, session.begin():
            row = _claim(session, message_id)
            if row is None:
                continue  # sent or being sent by another run since the listing
            try:
                send_message(smtp, build_message(row, smtp.from_addr))
            except MessageRejected as error:
                row.attempts = MAX_ATTEMPTS
                row.last_error = f"{REJECTED_PREFIX}{error}"
                result.given_up.append(row.id)
                log.error("outbox %d (%s to %s) refused for good: %s",
                          row.id, row.kind, row.to_address, error)
                continue
            except MailServerUnavailable as error:
                row.last_error = str(error)
                if not _is_message_error(error):
                    result.unavailable = str(error)
                    log.warning("SMTP unavailable; queued mail waits for the next run: %s", error)
                    break
                row.attempts += 1
                (result.given_up if row.attempts >= MAX_ATTEMPTS else result.deferred).append(row.id)
                log.warning("outbox %d deferred by the server (attempt %d): %s", row.id, row.attempts, error)
                continue
            row.sent_at = utcnow()
            row.attempts += 1
            row.last_error = None
            result.sent.append(row.id)
    result.remaining = len(pending_ids(engine))
    return result


def outbox_rows(engine: Engine) -> list[dict[str, Any]]:
    """Return every outbox row without bodies or attachments (operators' views, tests)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(OUTBOX.c.id, OUTBOX.c.kind, OUTBOX.c.dedupe_key, OUTBOX.c.submission_id,
                   OUTBOX.c.to_address, OUTBOX.c.subject, OUTBOX.c.sent_at, OUTBOX.c.attempts,
                   OUTBOX.c.last_error).order_by(OUTBOX.c.id)
        )
        return [dict(row._mapping) for row in rows]

