"""Replies to a batch of mailbox messages (SPEC §6): one per message, queued after its files are stored.

Composed with `tasks.mail.feedback` and queued in the outbox (one transaction, deduplicated by the
message, so a re-run after a crash queues nothing twice). A message whose files could not all be
stored gets no reply yet; robots get no "attach your workbook" reply, our own address none at all.
Held submissions answered now are also announced to the operator.

A person's message without a workbook that answers our mail or asks something
(`tasks.intake.messages.is_human_reply`) gets no automatic answer: it is forwarded to the specialist
(GEC_SPECIALIST_EMAIL, else GEC_OPS_EMAIL) as a new mail with the original attached, so a person
answers it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from email.utils import parseaddr

from sqlalchemy import Engine

from schemas.reference import Reference
from tasks.check.checking import Checked
from tasks.intake.messages import AUTOMATIC, PERSON, QUESTION, ReadMessage, filing_folder, per_message
from tasks.mail.feedback import (
    ReceivedMessage,
    ReceivedWorkbook,
    compose_feedback,
    compose_no_workbook,
    compose_ops_held,
    feedback_key,
    held_submissions,
)
from tasks.mail.outbox import Mail, MailAttachment, queue_mail, queued_keys
from tasks.mail.wording import Body, when
from tasks.storage.raw import RawRecord
from tasks.storage.states import State
from tasks.storage.submissions import Outcome

log = logging.getLogger(__name__)

RFC822 = "message/rfc822"
FORWARD_SUBJECT = "[BĐG-TE] Thư của trường cần chuyên viên trả lời: {subject}"
FORWARD_WHY = {
    "reply": "trả lời thư tự động của Phòng",
    QUESTION: "có câu hỏi hoặc đề nghị",
}
FORWARD_LINES = (
    "Thư của {sender} nhận lúc {received_at} không kèm tệp báo cáo và {why}, nên hệ thống không trả lời "
    "tự động.",
    "Thư gốc được đính kèm. Vui lòng đọc và trả lời trực tiếp cho người gửi ({address}): mở thư gốc rồi "
    "bấm Trả lời, hoặc viết thư mới. Bấm Trả lời ngay thư này sẽ gửi về hộp thư tiếp nhận, không đến trường.",
    "Thư đã được chuyển vào thư mục \u201cReview\u201d của hộp thư tiếp nhận.",
)
NO_SUBJECT = "không có tiêu đề"


def forward_key(reply_key: str) -> str:
    """Return the outbox dedupe key of the forward of one received message to the specialist."""
    return f"forward:{reply_key}"


def compose_forward(message: ReadMessage, specialist: str) -> Mail:
    """Return the forward of a person's message to the specialist: a short Vietnamese note, the
    original attached whole (message/rfc822)."""
    extraction = message.extraction
    address = parseaddr(extraction.sender or "")[1] or "?"
    fields = {"sender": extraction.sender or address, "address": address,
              "received_at": when(message.item.internaldate),
              "why": FORWARD_WHY.get(message.human_reply or QUESTION, FORWARD_WHY[QUESTION])}
    body = Body()
    for line in FORWARD_LINES:
        body.para(line.format(**fields))
    return Mail(
        kind="ops",
        dedupe_key=forward_key(message.ref),
        to=(specialist,),
        subject=FORWARD_SUBJECT.format(subject=extraction.subject or NO_SUBJECT),
        text=body.text(),
        html=body.html(),
        attachments=(MailAttachment("thu-cua-truong.eml", message.item.raw, RFC822),),
    )


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


def queue_replies(
    engine: Engine,
    reference: Reference,
    messages: Sequence[ReadMessage],
    records: Sequence[RawRecord],
    checked: Sequence[Checked],
    outcomes: Sequence[Outcome],
    *,
    max_bytes: int,
    ops_email: str = "",
    specialist_email: str = "",
) -> list[str]:
    """Queue one reply per stored message that is due one; return the refs of the messages answered now.

    A human reply (`ReadMessage.human_reply`) is forwarded to `specialist_email` (else `ops_email`)
    instead of answered; with neither set it is only filed for review.
    """
    read = {item.record.received_file_id: item for item in checked}
    pairs = per_message(messages, list(zip(records, outcomes, strict=True)))
    already = queued_keys(engine, [key(message.ref) for message in messages for key in (feedback_key,
                                                                                         forward_key)])
    specialist = specialist_email.strip() or ops_email.strip()
    mails: list[Mail] = []
    replied: list[str] = []
    held: list[int] = []  # held submissions whose message is answered now: the operator is told too
    with engine.connect() as conn:
        for message, its in zip(messages, pairs, strict=True):
            stored = filing_folder([outcome for _, outcome in its]) is not None
            if not stored or feedback_key(message.ref) in already or message.kind not in (PERSON, AUTOMATIC):
                continue
            extraction = message.extraction
            received = ReceivedMessage(message.ref, extraction.sender, extraction.subject,
                                       extraction.message_id, message.item.internaldate)
            if message.human_reply and not its:
                if forward_key(message.ref) not in already:
                    if specialist:
                        mails.append(compose_forward(message, specialist))
                    else:
                        log.warning("message %s needs a person but no GEC_SPECIALIST_EMAIL or GEC_OPS_EMAIL "
                                    "is set: filed for review only", message.ref)
                continue
            mail = None
            if its:
                # Auto-responders attach no workbook: whoever attached these gets an answer.
                mail = compose_feedback(conn, reference, received, _workbooks(its, read), extraction.skipped,
                                        max_bytes=max_bytes)
            elif message.kind == PERSON:
                mail = compose_no_workbook(received, extraction.skipped, max_bytes=max_bytes)
            if mail is None:
                continue
            mails.append(mail)
            replied.append(message.ref)
            held += [outcome.submission_id for _, outcome in its
                     if outcome.state == State.HELD.value and outcome.submission_id]
        if held and ops_email:
            notice = compose_ops_held(held_submissions(conn, held), ops_email=ops_email)
            if notice is not None:
                mails.append(notice)
    queued = set(queue_mail(engine, mails)) if mails else set()
    log.info("mailbox: %d messages, %d files, %d replies queued", len(messages), len(records), len(queued))
    return replied
