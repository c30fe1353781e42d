"""A school's answer to our reply, or a question, reaches a person (SPEC §4, issue 13 item 3).

End to end on the real Dovecot and SMTP fixtures, on SQLite and PostgreSQL: a school sends a workbook,
gets our reply, answers it without an attachment; the answer goes to the specialist with the original
attached, the school gets no automatic answer, the message is filed in `Review` and the collect summary
lists it. A plain message without a workbook that neither answers us nor asks anything still gets the
"no readable file" answer.
"""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

import pytest
from sqlalchemy import Engine

from schemas import messages as vi
from schemas.reference import Reference
from tasks.check.checking import check_files
from tasks.intake import messages as mail_intake
from tasks.intake.mail_extract import Extraction
from tasks.intake.mailbox import PROCESSED_FOLDER, REJECTED_FOLDER, fetch_unseen
from tasks.mail.outbox import flush_outbox
from tasks.mail.replies import queue_replies
from tasks.operator.summary import CollectSummary
from tasks.storage.raw import store_raw
from tasks.storage.submissions import store_submissions
from tests.mail import test_mail_intake as intake_tests
from tests.mail.test_mail_intake import (
    ARRIVED,
    MAX_BYTES,
    OFFICE,
    OPS,
    female_above_total,
    outlook,
    plain,
    workbook,
)
from tests.support.mailservers import DovecotServer, SmtpServer

# The mail intake tests' fixtures: the same registry and a freshly initialised database per test.
reference = intake_tests.reference
db = intake_tests.db

SPECIALIST = "chuyenvien@q8.test"
SCHOOL = "mn002@truong.q8.test"
QUESTION = "Em hỏi: ô tổng số nữ em điền theo số liệu tháng 5 có được không ạ?"


def collect(db: Engine, reference: Reference, dovecot: DovecotServer, smtp: SmtpServer
            ) -> tuple[list[mail_intake.MessageResult], CollectSummary]:
    """Run one mailbox batch as the collect flow does, with a specialist set; return results and summary."""
    imap = dovecot.imap_config()
    read = mail_intake.read_messages(fetch_unseen(imap, mail_intake.DEFAULT_BATCH), max_bytes=MAX_BYTES,
                                     office_address=smtp.smtp_config().from_addr)
    records = store_raw(db, mail_intake.message_files(read))
    checked = check_files(records, reference, max_bytes=MAX_BYTES)
    outcomes = store_submissions(db, reference, records, checked)
    replied = queue_replies(db, reference, read, records, checked, outcomes, max_bytes=MAX_BYTES,
                            ops_email=OPS, specialist_email=SPECIALIST)
    results = mail_intake.message_results(read, outcomes, replied)
    mail_intake.file_messages(imap, results)
    flush_outbox(db, smtp.smtp_config())
    summary = CollectSummary()
    summary.add(outcomes, {})
    summary.not_kept += mail_intake.not_kept(results)
    summary.forwarded += mail_intake.forwarded(results)
    return results, summary


def answer(to: EmailMessage, text: str) -> bytes:
    """Return what a clerk's mail client sends on "Reply": Re: subject, In-Reply-To, quoted text."""
    msg = EmailMessage()
    msg["From"] = formataddr(("Cô Lan", SCHOOL))
    msg["To"] = str(to["From"])
    msg["Subject"] = f"Re: {to['Subject']}"
    msg["Message-ID"] = make_msgid(domain="truong.q8.test")
    msg["In-Reply-To"] = str(to["Message-ID"])
    msg["References"] = str(to["Message-ID"])
    quoted = "\n".join(f"> {line}" for line in to.get_body(("plain",)).get_content().splitlines())
    msg.set_content(f"{text}\n\n{quoted}\n")
    return msg.as_bytes()


def folder_subjects(dovecot: DovecotServer, folder: str) -> list[str]:
    import email
    from email import policy

    return [str(email.message_from_bytes(raw, policy=policy.default)["Subject"])
            for raw, _ in dovecot.messages(folder)]


def test_an_answer_to_our_reply_goes_to_the_specialist_not_back_to_the_school(
    db: Engine, reference: Reference, imap_mailbox: DovecotServer, smtp_server: SmtpServer
) -> None:
    imap_mailbox.append(outlook(SCHOOL, "Cô Lan", "Báo cáo BĐG-TE HK1",
                                [("MN002.xlsx", workbook(reference, "MN002", female_above_total))]),
                        internaldate=ARRIVED)
    collect(db, reference, imap_mailbox, smtp_server)
    [ours] = [item.message for item in smtp_server.messages if SCHOOL in item.rcpt_tos]
    assert "cần sửa" in str(ours["Subject"])

    later = ARRIVED + dt.timedelta(days=1)
    imap_mailbox.append(answer(ours, QUESTION), internaldate=later)
    # Neither an answer to us nor a question: a school that forgot its file gets today's answer.
    imap_mailbox.append(plain("mn003@truong.q8.test", "Báo cáo của trường", "Trường gửi Phòng báo cáo."),
                        internaldate=later)
    # Not an answer to us, but a question: a person answers it too.
    imap_mailbox.append(plain("th004@truong.q8.test", "Biểu mẫu",
                              "Xin hướng dẫn cách điền trang Truyền thông"),
                        internaldate=later)
    before = len(smtp_server.messages)
    results, summary = collect(db, reference, imap_mailbox, smtp_server)
    sent = smtp_server.messages[before:]

    by_sender = {result.sender.split("<")[-1].rstrip(">"): result for result in results if result.sender}
    assert by_sender[SCHOOL].human_reply == "reply" and by_sender[SCHOOL].folder == mail_intake.REVIEW_FOLDER
    assert by_sender["th004@truong.q8.test"].human_reply == "question"
    assert by_sender["mn003@truong.q8.test"].human_reply is None
    assert by_sender["mn003@truong.q8.test"].folder == REJECTED_FOLDER

    # The school that asked gets nothing automatic; the one that forgot its file is told what to attach.
    assert not [item for item in sent if SCHOOL in item.rcpt_tos or "th004@truong.q8.test" in item.rcpt_tos]
    [no_file] = [item.message for item in sent if "mn003@truong.q8.test" in item.rcpt_tos]
    assert str(no_file["Subject"]) == vi.NO_WORKBOOK_SUBJECT

    forwards = [item.message for item in sent if SPECIALIST in item.rcpt_tos]
    assert len(forwards) == 2 and all(OPS not in item.rcpt_tos for item in sent)
    forward = next(item for item in forwards if str(ours["Subject"]) in str(item["Subject"]))
    note = " ".join(forward.get_body(("plain",)).get_content().split())
    assert SCHOOL in note and "không trả lời tự động" in note and "trả lời trực tiếp" in note
    [attached] = list(forward.iter_attachments())
    assert attached.get_content_type() == "message/rfc822"
    original = attached.get_content()
    assert str(original["From"]) == f"Cô Lan <{SCHOOL}>"
    assert QUESTION in original.get_body(("plain",)).get_content()

    # Filed for review, not as rejected; the summary says who wrote, never what.
    assert folder_subjects(imap_mailbox, mail_intake.REVIEW_FOLDER) == [f"Re: {ours['Subject']}", "Biểu mẫu"]
    assert folder_subjects(imap_mailbox, REJECTED_FOLDER) == ["Báo cáo của trường"]
    assert len(imap_mailbox.messages(PROCESSED_FOLDER)) == 1 and imap_mailbox.messages() == []
    assert [(item.sender, item.reason) for item in summary.forwarded] == [
        (SCHOOL, "reply"), ("th004@truong.q8.test", "question")]
    assert [item.sender for item in summary.not_kept] == ["mn003@truong.q8.test"]
    markdown = summary.to_markdown()
    assert "Forwarded to the specialist (no automatic answer): 2" in markdown and SCHOOL in markdown
    assert "Em hỏi" not in markdown and "Truyền thông" not in markdown
    assert "Em hỏi" not in summary.model_dump_json()

    # A second run forwards nothing again: the messages were filed.
    before = len(smtp_server.messages)
    results, _ = collect(db, reference, imap_mailbox, smtp_server)
    assert results == [] and len(smtp_server.messages) == before


@pytest.mark.parametrize(("subject", "text", "expected"), [
    ("Re: " + vi.NO_WORKBOOK_SUBJECT, "Dạ vâng.", "reply"),
    ("Trả lời: Báo cáo BĐG-TE 6 tháng đầu năm 2023 cần sửa - Trường Mầm non Hoa Đào", "Dạ.", "reply"),
    ("TL: Nhắc nộp báo cáo BĐG-TE 6 tháng đầu năm 2023 (hạn 05/05/2023) - Trường Mầm non Hoa Đào", "Dạ",
     "reply"),
    ("Re: Báo cáo HK1", "Dạ trường đã nhận.", None),  # a reply, but not to one of ours
    ("Báo cáo", "Xin gửi Phòng báo cáo của trường.", None),  # forgot the file: "xin" alone asks nothing
    ("Báo cáo", "Nhờ Phòng kiểm tra giúp trường.", "question"),
    ("Thắc mắc về biểu mẫu", "", "question"),
    ("Báo cáo", "Trường đã nộp chưa ạ?", "question"),
])
def test_what_counts_as_a_human_reply(subject: str, text: str, expected: str | None) -> None:
    raw = plain("mn001@truong.q8.test", subject, text)
    extraction = Extraction("mn001@truong.q8.test", subject, None)
    assert mail_intake.is_human_reply(mail_intake.PERSON, extraction, raw, OFFICE) == expected
    # A robot's message is never one, whatever it says: answering or forwarding robots makes loops.
    assert mail_intake.is_human_reply(mail_intake.AUTOMATIC, extraction, raw, OFFICE) is None


def test_only_our_own_message_ids_make_a_reply() -> None:
    ours = b"In-Reply-To: <gec.12.0123456789abcdef@q8.test>\r\nSubject: x\r\n\r\nok\r\n"
    other = b"References: <gec.12.0123456789abcdef@elsewhere.test>\r\nSubject: x\r\n\r\nok\r\n"
    assert mail_intake.answers_our_mail(ours, "x", f"Phòng <{OFFICE}>")
    assert not mail_intake.answers_our_mail(other, "x", f"Phòng <{OFFICE}>")
