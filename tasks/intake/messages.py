"""The mailbox source of intake (SPEC §4): unseen messages → arrivals for the raw store; filing afterwards.

One batch of messages goes through the same pipeline as a drop-folder batch (`flows.collect`):
1. `fetch_unseen` (`tasks.intake.mailbox`) reads messages without marking them (a crashed run leaves
   them unseen).
2. `read_messages` pulls the workbooks out (attachments, .zip members, forwarded messages) and tells
   who sent each message; each workbook becomes an `IncomingFile` with source `mailbox`, the `From`
   address as sender, the server's INTERNALDATE as received time and `source_ref`
   `<uidvalidity>:<uid>:<n>`. Delivery reports (which carry our own annotated copies back) are never
   read as submissions.
3. The raw store, the check and the submissions store are the drop folder's (`tasks.storage`,
   `tasks.check.checking`); a sender not registered for the school makes a submission `held`.
4. `tasks.mail.replies.queue_replies` queues one reply per message (committed, deduplicated by the
   message). Robots get no "attach your workbook" reply, our own address no reply at all: no mail loops.
5. Only then `file_messages` moves each message to `Processed`, to `Review` when it is a person's
   words for a person (`human_reply`: an answer to our mail or a question, with no workbook; it was
   forwarded to the specialist, not answered), or to `Rejected` when nothing usable was in it.
   Nothing is ever deleted.

A crash or an outage at any step is repaired by the next run: the message is still unseen in the
folder, its arrivals are found by `source_ref` (no second submission), its reply by its dedupe key
(no second reply), and it is moved then. A message whose files could not all be stored stays in the
folder for the next run and gets no reply yet.
"""

from __future__ import annotations

import datetime as dt
import email
import html
import logging
import re
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesHeaderParser
from email.utils import parseaddr
from typing import TypeVar

from schemas import messages as vi
from tasks.intake.folder import MAILBOX, IncomingFile, incoming_file
from tasks.intake.mail_extract import Extraction, Skipped, SkipReason, extract_workbooks
from tasks.intake.mailbox import (
    PROCESSED_FOLDER,
    REJECTED_FOLDER,
    ImapConfig,
    MailboxUnavailable,
    MailItem,
    move_message,
)
from tasks.operator.summary import Forwarded, NotKept
from tasks.storage.submissions import Outcome

log = logging.getLogger(__name__)
T = TypeVar("T")

PERSON, AUTOMATIC, OWN, BOUNCE = "person", "automatic", "own", "bounce"  # who sent a message
DEFAULT_BATCH = 50
MAX_BATCHES = 20  # per run; whatever is left waits for the next run
# Senders that are robots: never answer a message of theirs that carries no workbook (mail loops).
_ROBOT_LOCAL_PARTS = frozenset({"no-reply", "noreply", "do-not-reply", "donotreply"})
_BOUNCE_LOCAL_PARTS = frozenset({"mailer-daemon", "postmaster"})
_ROBOT_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
# A message a person wrote for a person is filed here for the specialist, not answered automatically.
REVIEW_FOLDER = "Review"
REPLY, QUESTION = "reply", "question"  # why a message is a human reply
# The Message-ID `tasks.mail.outbox.build_message` gives every mail we send: <gec.<row>.<digest>@domain>.
_OUR_MESSAGE_ID = re.compile(r"<gec\.\d+\.[0-9a-f]{16}@([^<>\s]+)>", re.IGNORECASE)
# "Re:", "Trả lời:", "TL:" (and "AW:", "SV:") as mail clients prefix an answer, stacked or numbered.
_REPLY_PREFIX = re.compile(r"^\s*((re|tl|trả lời|tra loi|aw|sv)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
# Words of a question or a request. A bare "xin" is not one: "Xin gửi báo cáo" is a school that forgot
# its attachment and needs the "no readable file" answer, so only "xin" asking for something counts.
_QUESTION_WORDS = re.compile(
    r"\?|(?<!\w)(hỏi|thắc mắc|giúp|nhờ"
    r"|xin (hỏi|hướng dẫn|cho biết|ý kiến|phép hỏi|được hỏi|giải thích))(?!\w)",
    re.IGNORECASE,
)
MAX_TEXT_CHARS = 20_000  # of a body read for question words: the first screens are enough


def _subject_pattern(template: str) -> str:
    """Turn one of our subject templates into a regex: the fields match any text."""
    parts = re.split(r"\{[a-z_]+\}", template)
    return ".+".join(re.escape(part.casefold()) for part in parts)


_OUR_SUBJECTS = re.compile(
    "^(" + "|".join(_subject_pattern(item) for item in (
        *vi.FEEDBACK_SUBJECTS.values(), vi.NO_WORKBOOK_SUBJECT, *vi.REMINDER_SUBJECTS.values())) + ")$"
)


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
    human_reply: str | None = None  # reply | question: forwarded to the specialist, filed for review


def not_kept(results: Sequence[MessageResult]) -> list[NotKept]:
    """Return what the operator should know was not stored: refused attachments, and messages from a
    person with no attachment at all. Non-workbook files beside a stored workbook (logos, signatures)
    are noise and left out, and so is everything in auto-replies and bounces: nobody sent a report."""
    found: list[NotKept] = []
    for result in results:
        if result.sender_kind not in (PERSON, OWN) or result.human_reply:
            continue  # a human reply is listed as forwarded (its screenshots are no refused report)
        for skipped in result.skipped:
            if skipped.reason == SkipReason.NOT_A_WORKBOOK and result.outcomes:
                continue
            found.append(NotKept(message=result.ref, sender=result.sender, file=skipped.name,
                                 reason=str(skipped.reason)))
        if not result.outcomes and not result.skipped and result.sender_kind == PERSON:
            found.append(NotKept(message=result.ref, sender=result.sender, file=None, reason="no_workbook"))
    return found


def forwarded(results: Sequence[MessageResult]) -> list[Forwarded]:
    """Return the messages forwarded to the specialist: who wrote and when, never what they wrote."""
    return [Forwarded(message=result.ref, sender=result.sender, received_at=result.received_at,
                      reason=result.human_reply)
            for result in results if result.human_reply and result.folder is not None]


@dataclass(frozen=True)
class ReadMessage:
    """One fetched message as intake read it: who sent it and the workbooks it carries."""

    item: MailItem
    ref: str
    extraction: Extraction
    kind: str  # person | automatic | own | bounce
    files: tuple[IncomingFile, ...]
    human_reply: str | None = None  # reply | question (see is_human_reply); None: answered as usual


def _domain(address: str) -> str:
    return parseaddr(address)[1].rpartition("@")[2].strip().casefold()


def answers_our_mail(raw: bytes, subject: str, office_address: str = "") -> bool:
    """Tell whether a message answers one of ours: it names a Message-ID we sent (In-Reply-To or
    References) or its subject is "Re:"/"Trả lời:"/"TL:" before one of our subjects."""
    try:
        headers = BytesHeaderParser(policy=policy.compat32).parsebytes(raw)
        named = " ".join(str(headers.get(name, "")) for name in ("In-Reply-To", "References"))
    except Exception:  # unreadable headers name nothing
        named = ""
    ours = _domain(office_address)
    if any(not ours or found.casefold() == ours for found in _OUR_MESSAGE_ID.findall(named)):
        return True
    text = unicodedata.normalize("NFC", subject or "")
    prefix = _REPLY_PREFIX.match(text)
    return bool(prefix) and bool(_OUR_SUBJECTS.match(text[prefix.end():].strip().casefold()))


def message_text(raw: bytes) -> str:
    """Return what the sender wrote (plain text, else the HTML's text), quoted lines left out, NFC."""
    try:
        msg = email.message_from_bytes(raw, policy=policy.default)
        part = msg.get_body(("plain", "html"))  # type: ignore[attr-defined]
        text = part.get_content() if part is not None else ""
        if part is not None and part.get_content_type() == "text/html":
            text = html.unescape(re.sub(r"<[^>]*>", " ", re.sub(r"(?is)<(style|script).*?</\1>", " ", text)))
    except Exception:  # a body we cannot decode has no words to read
        return ""
    lines = [line for line in str(text)[:MAX_TEXT_CHARS].splitlines() if not line.lstrip().startswith(">")]
    return unicodedata.normalize("NFC", "\n".join(lines))


def looks_like_question(subject: str, text: str) -> bool:
    """Tell whether a subject or body asks something: a "?" or words such as "hỏi", "thắc mắc", "giúp"."""
    return bool(_QUESTION_WORDS.search(unicodedata.normalize("NFC", f"{subject}\n{text}")))


def is_human_reply(kind: str, extraction: Extraction, raw: bytes, office_address: str = "") -> str | None:
    """Return why a message is a person's words for a person (reply | question), or None.

    Only a person's message that carries no workbook at all qualifies: a refused workbook (too large,
    a broken zip) still gets the answer that says what to send instead.
    """
    if kind != PERSON or extraction.attachments:
        return None
    if any(item.reason != SkipReason.NOT_A_WORKBOOK for item in extraction.skipped):
        return None
    if answers_our_mail(raw, extraction.subject, office_address):
        return REPLY
    if looks_like_question(extraction.subject, message_text(raw)):
        return QUESTION
    return None


def read_messages(items: Sequence[MailItem], *, max_bytes: int, office_address: str = ""
                  ) -> list[ReadMessage]:
    """Extract the workbooks of fetched messages and tell who sent each (a bounce carries nothing)."""
    messages = []
    for item in items:
        found = extract_workbooks(item.raw, max_bytes=max_bytes)
        kind = sender_kind(item.raw, found.sender, (office_address,))
        # A delivery report is our own mail coming back: nothing in it is a school's submission.
        extraction = Extraction(found.sender, found.subject, found.message_id) if kind == BOUNCE else found
        messages.append(ReadMessage(item, message_ref(item), extraction, kind,
                                    tuple(incoming_files(item, extraction)),
                                    is_human_reply(kind, extraction, item.raw, office_address)))
    return messages


def message_files(messages: Sequence[ReadMessage]) -> list[IncomingFile]:
    """Return the batch's arrivals for the raw store, message after message."""
    return [file for message in messages for file in message.files]


def per_message(messages: Sequence[ReadMessage], values: Sequence[T]) -> list[list[T]]:
    """Split values given per arrival (records, outcomes) back into one list per message."""
    grouped: list[list[T]] = []
    start = 0
    for message in messages:
        grouped.append(list(values[start:start + len(message.files)]))
        start += len(message.files)
    return grouped


def filing_folder(outcomes: Sequence[Outcome]) -> str | None:
    """Return where a message goes once stored: Processed, Rejected (no workbook), None (wait: not stored)."""
    if any(outcome.submission_id is None for outcome in outcomes):
        return None
    return PROCESSED_FOLDER if outcomes else REJECTED_FOLDER


def message_results(
    messages: Sequence[ReadMessage], outcomes: Sequence[Outcome], replied: Collection[str]
) -> list[MessageResult]:
    """Return what became of each message: its outcomes, its folder, whether this run queued its reply."""
    results = []
    for message, its in zip(messages, per_message(messages, outcomes), strict=True):
        folder = filing_folder(its)
        if folder == REJECTED_FOLDER and message.human_reply:
            folder = REVIEW_FOLDER  # a person's words for the specialist: nothing was rejected
        if folder is None:
            log.warning("message %s: %d of its files could not be stored; it stays for the next run",
                        message.ref, sum(outcome.submission_id is None for outcome in its))
        results.append(
            MessageResult(
                uid=message.item.uid,
                ref=message.ref,
                sender=message.extraction.sender,
                subject=message.extraction.subject,
                received_at=message.item.internaldate,
                outcomes=tuple(its),
                skipped=tuple(message.extraction.skipped),
                folder=folder,
                reply_queued=message.ref in replied,
                sender_kind=message.kind,
                problem=message.extraction.problem,
                human_reply=message.human_reply,
            )
        )
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
