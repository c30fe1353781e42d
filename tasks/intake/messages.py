"""The mailbox source of intake (SPEC §4): unseen messages → raw store → submissions → replies → folders.

One run, per batch of messages:
1. `fetch_unseen` reads messages without marking them (a crashed run leaves them unseen).
2. `extract_workbooks` pulls the workbooks out (attachments, .zip members, forwarded messages); each
   becomes an `IncomingFile` with source `mailbox`, the `From` address as sender, the server's
   INTERNALDATE as received time and `source_ref` `<uidvalidity>:<uid>:<n>`.
3. `tasks.storage.submissions` stores them raw (committed), parses, validates and stores the submissions
   (committed); a sender not registered for the school makes a submission `held`.
4. One reply per message is queued in the outbox (committed, deduplicated by the message). Robots
   get no "attach your workbook" reply, our own address no reply at all, and delivery reports
   (which carry our own annotated copies back) are never read as submissions: no mail loops.
5. Only then is the message moved to `Processed`, or to `Rejected` when nothing usable was in it.
   Nothing is ever deleted.

A crash or an outage at any step is repaired by the next run: the message is still unseen in the
folder, its arrivals are found by `source_ref` (no second submission), its reply by its dedupe key
(no second reply), and it is moved then. A message whose files could not all be stored stays in the
folder for the next run and gets no reply yet.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesHeaderParser
from email.utils import parseaddr

from sqlalchemy import Engine

from schemas.reference import Reference
from tasks.intake.folder import MAILBOX, IncomingFile, incoming_file
from tasks.intake.mail_extract import Extraction, Skipped, SkipReason, extract_workbooks
from tasks.intake.mailbox import (
    PROCESSED_FOLDER,
    REJECTED_FOLDER,
    ImapConfig,
    MailboxUnavailable,
    MailItem,
    fetch_unseen,
    move_message,
)
from tasks.mail.feedback import (
    ReceivedMessage,
    ReceivedWorkbook,
    compose_feedback,
    compose_no_workbook,
    compose_ops_held,
    feedback_key,
    held_submissions,
)
from tasks.mail.outbox import FlushResult, Mail, flush_outbox, queue_mail, queued_keys
from tasks.mail.smtp import SmtpConfig
from tasks.storage.states import State
from tasks.storage.submissions import (
    Checked,
    NotKept,
    Outcome,
    RawRecord,
    check_files,
    store_raw,
    store_submissions,
)

log = logging.getLogger(__name__)

PERSON, AUTOMATIC, OWN, BOUNCE = "person", "automatic", "own", "bounce"  # who sent a message
DEFAULT_BATCH = 50
MAX_BATCHES = 20  # per run; whatever is left waits for the next run
# Senders that are robots: never answer a message of theirs that carries no workbook (mail loops).
_ROBOT_LOCAL_PARTS = frozenset({"no-reply", "noreply", "do-not-reply", "donotreply"})
_BOUNCE_LOCAL_PARTS = frozenset({"mailer-daemon", "postmaster"})
_ROBOT_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})


def message_ref(item: MailItem) -> str:
    """Name one message across runs: `<uidvalidity>:<uid>` of the configured folder."""
    return f"{item.uidvalidity if item.uidvalidity is not None else 0}:{item.uid}"


def incoming_files(item: MailItem, extraction: Extraction) -> list[IncomingFile]:
    """Turn a message's workbooks into arrivals for the raw store, numbered from 1 within the message."""
    ref = message_ref(item)
    return [
        incoming_file(
            attachment.data,
            source=MAILBOX,
            original_name=attachment.original_name,
            received_at=item.internaldate,
            source_ref=f"{ref}:{index}",
            sender=extraction.sender,
            message_id=extraction.message_id,
        )
        for index, attachment in enumerate(extraction.attachments, start=1)
    ]


def sender_kind(raw: bytes, sender: str | None, own_addresses: Sequence[str] = ()) -> str:
    """Tell who sent a message: a person, a robot (RFC 3834 auto-reply, list), our own address, a bounce.

    Bounces (delivery reports) carry our own feedback, annotated workbook included, back to us: they
    are never read as submissions. Our own address may forward a file a school sent by Zalo: it is
    read (held for review, as any unregistered sender) but never answered.
    """
    address = parseaddr(sender or "")[1].casefold()
    if address.partition("@")[0] in _BOUNCE_LOCAL_PARTS:
        return BOUNCE
    try:
        headers = BytesHeaderParser(policy=policy.compat32).parsebytes(raw)
    except Exception:  # headers we cannot read: a person is more likely than a robot
        headers = None
    if headers is not None and headers.get_content_type() == "multipart/report":
        return BOUNCE
    if address and address in {parseaddr(item)[1].casefold() for item in own_addresses if item}:
        return OWN
    if not address or address.partition("@")[0] in _ROBOT_LOCAL_PARTS:
        return AUTOMATIC
    if headers is None:
        return PERSON
    auto = str(headers.get("Auto-Submitted", "no")).strip().lower()
    if (auto and auto != "no") or headers.get("X-Autoreply") or headers.get("X-Autorespond"):
        return AUTOMATIC
    if str(headers.get("Precedence", "")).strip().lower() in _ROBOT_PRECEDENCE:
        return AUTOMATIC
    return PERSON


@dataclass(frozen=True)
class MessageResult:
    """What became of one message in this run."""

    uid: str
    ref: str
    sender: str | None
    subject: str
    received_at: dt.datetime
    outcomes: tuple[Outcome, ...]
    skipped: tuple[Skipped, ...]
    folder: str | None  # Processed or Rejected; None: stays in the folder for the next run
    reply_queued: bool  # this run queued its reply (False: queued earlier, or none is due)
    sender_kind: str  # person | automatic | own | bounce
    problem: str | None = None


def not_kept(results: Sequence[MessageResult]) -> list[NotKept]:
    """Return what the operator should know was not stored: refused attachments, and messages from a
    person with no attachment at all. Non-workbook files beside a stored workbook (logos, signatures)
    are noise and left out, and so is everything in auto-replies and bounces: nobody sent a report."""
    found: list[NotKept] = []
    for result in results:
        if result.sender_kind not in (PERSON, OWN):
            continue
        for skipped in result.skipped:
            if skipped.reason == SkipReason.NOT_A_WORKBOOK and result.outcomes:
                continue
            found.append(NotKept(message=result.ref, sender=result.sender, file=skipped.name,
                                 reason=str(skipped.reason)))
        if not result.outcomes and not result.skipped and result.sender_kind == PERSON:
            found.append(NotKept(message=result.ref, sender=result.sender, file=None, reason="no_workbook"))
    return found


def _workbooks(
    pairs: Sequence[tuple[RawRecord, Outcome]], read: dict[int, Checked]
) -> list[ReceivedWorkbook]:
    workbooks = []
    for record, outcome in pairs:
        checked = read.get(record.received_file_id)
        workbooks.append(
            ReceivedWorkbook(
                name=record.file.original_name,
                receipt_id=record.receipt_id,
                submission_id=outcome.submission_id or 0,
                content=record.file.content,
                parsed=checked.parsed if checked is not None else None,
                findings=tuple(checked.findings) if checked is not None else (),
            )
        )
    return workbooks


def ingest_messages(
    engine: Engine,
    reference: Reference,
    items: Sequence[MailItem],
    *,
    max_bytes: int,
    office_address: str = "",
    ops_email: str = "",
) -> list[MessageResult]:
    """Store the workbooks of fetched messages, queue one reply per message; return where each goes."""
    if not items:
        return []
    extracted = [extract_workbooks(item.raw, max_bytes=max_bytes) for item in items]
    kinds = [sender_kind(item.raw, found.sender, (office_address,)) for item, found in zip(
        items, extracted, strict=True)]
    extractions = [
        # A delivery report is our own mail coming back: nothing in it is a school's submission.
        Extraction(found.sender, found.subject, found.message_id) if kind == BOUNCE else found
        for found, kind in zip(extracted, kinds, strict=True)
    ]
    per_message = [
        incoming_files(item, extraction) for item, extraction in zip(items, extractions, strict=True)
    ]
    files = [file for group in per_message for file in group]
    records = store_raw(engine, files)  # committed before anything parses the bytes
    checked = check_files(records, reference, max_bytes=max_bytes)
    outcomes = store_submissions(engine, reference, records, checked)
    read = {item.record.received_file_id: item for item in checked}

    pairs = list(zip(records, outcomes, strict=True))
    grouped: list[list[tuple[RawRecord, Outcome]]] = []
    start = 0
    for group in per_message:
        grouped.append(pairs[start:start + len(group)])
        start += len(group)

    already = queued_keys(engine, [feedback_key(message_ref(item)) for item in items])
    mails: list[Mail] = []
    results: list[MessageResult] = []
    held: list[int] = []  # held submissions whose message is answered now: the operator is told too
    with engine.connect() as conn:
        for item, extraction, its, kind in zip(items, extractions, grouped, kinds, strict=True):
            ref = message_ref(item)
            message = ReceivedMessage(ref, extraction.sender, extraction.subject, extraction.message_id,
                                      item.internaldate)
            stored = all(outcome.submission_id is not None for _, outcome in its)
            folder = (PROCESSED_FOLDER if its else REJECTED_FOLDER) if stored else None
            mail = None
            if folder is None:
                log.warning("message %s: %d of its files could not be stored; it stays for the next run",
                            ref, sum(outcome.submission_id is None for _, outcome in its))
            elif feedback_key(ref) not in already and kind in (PERSON, AUTOMATIC):
                if its:
                    # Auto-responders attach no workbook: whoever attached these gets an answer.
                    mail = compose_feedback(conn, reference, message, _workbooks(its, read),
                                            extraction.skipped, max_bytes=max_bytes)
                elif kind == PERSON:
                    mail = compose_no_workbook(message, extraction.skipped, max_bytes=max_bytes)
            if mail is not None:
                mails.append(mail)
                held += [outcome.submission_id for _, outcome in its
                         if outcome.state == State.HELD.value and outcome.submission_id]
            results.append(
                MessageResult(
                    uid=item.uid,
                    ref=ref,
                    sender=extraction.sender,
                    subject=extraction.subject,
                    received_at=item.internaldate,
                    outcomes=tuple(outcome for _, outcome in its),
                    skipped=tuple(extraction.skipped),
                    folder=folder,
                    reply_queued=mail is not None,
                    sender_kind=kind,
                    problem=extraction.problem,
                )
            )
        if held and ops_email:
            notice = compose_ops_held(held_submissions(conn, held), ops_email=ops_email)
            if notice is not None:
                mails.append(notice)
    queued = set(queue_mail(engine, mails)) if mails else set()
    log.info("mailbox: %d messages, %d files, %d replies queued", len(items), len(files), len(queued))
    return results


@dataclass
class Filing:
    """Where this run moved messages; `unavailable` says why it stopped early."""

    moved: dict[str, str] = field(default_factory=dict)  # message ref -> folder
    gone: list[str] = field(default_factory=list)  # already moved by an earlier, interrupted run
    unavailable: str | None = None


def file_messages(imap: ImapConfig, results: Sequence[MessageResult]) -> Filing:
    """Move each handled message to its folder (after the commit); raise MailboxUnavailable on an outage."""
    filing = Filing()
    for result in results:
        if result.folder is None:
            continue
        try:
            moved = move_message(imap, result.uid, result.folder)
        except MailboxUnavailable as error:
            filing.unavailable = str(error)
            # The rest stay unseen in the folder; the next run finds them stored and only moves them.
            raise MailboxUnavailable(
                f"{error} ({len(filing.moved)} message(s) filed before the outage)"
            ) from error
        if moved:
            filing.moved[result.ref] = result.folder
        else:
            filing.gone.append(result.ref)
    return filing


@dataclass
class MailboxRun:
    """What one mailbox collect did, message by message, and the outbox flush after it."""

    messages: list[MessageResult] = field(default_factory=list)
    moved: dict[str, str] = field(default_factory=dict)
    flush: FlushResult | None = None
    mailbox_error: str | None = None

    @property
    def outcomes(self) -> list[Outcome]:
        """Return every stored arrival's outcome (for `tasks.storage.submissions.CollectSummary`)."""
        return [outcome for message in self.messages for outcome in message.outcomes]

    def one_line(self) -> str:
        """Return the run in one log line."""
        folders = [self.moved.get(message.ref) for message in self.messages]
        line = (
            f"{len(self.messages)} messages: {folders.count(PROCESSED_FOLDER)} to {PROCESSED_FOLDER}, "
            f"{folders.count(REJECTED_FOLDER)} to {REJECTED_FOLDER}, {folders.count(None)} left; "
            f"{sum(message.reply_queued for message in self.messages)} replies queued"
        )
        if self.flush is not None:
            line += f"; outbox: {self.flush.one_line()}"
        return line


def collect_mailbox(
    engine: Engine,
    reference: Reference,
    imap: ImapConfig,
    smtp: SmtpConfig | None = None,
    *,
    max_bytes: int,
    ops_email: str = "",
    batch_size: int = DEFAULT_BATCH,
    max_batches: int = MAX_BATCHES,
) -> MailboxRun:
    """Collect the mailbox without Prefect: batches of fetch → store → queue replies → file; then flush.

    An IMAP outage raises MailboxUnavailable after the outbox is flushed (replies already queued still
    go out); everything committed before it stays, and the next run completes the rest.
    """
    run = MailboxRun()
    error: MailboxUnavailable | None = None
    office = smtp.from_addr if smtp is not None else ""
    try:
        for _ in range(max_batches):
            items = fetch_unseen(imap, batch_size)
            if not items:
                break
            results = ingest_messages(engine, reference, items, max_bytes=max_bytes, office_address=office,
                                      ops_email=ops_email)
            run.messages += results
            filing = file_messages(imap, results)
            run.moved.update(filing.moved)
            if len(items) < batch_size or any(result.folder is None for result in results):
                break  # done, or a message that must wait would come back first in every batch
    except MailboxUnavailable as exc:
        error = exc
        run.mailbox_error = str(exc)
    if smtp is not None:
        run.flush = flush_outbox(engine, smtp)
    if error is not None:
        raise error
    return run
