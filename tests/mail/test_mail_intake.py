"""Mailbox intake against a real Dovecot and a real SMTP server (SPEC §4), on SQLite and PostgreSQL.

Messages are appended in the shapes real clients produce, built with Python's `email` package, and
carry real workbooks (the office template filled with plausible values, mistakes injected through
SubmissionValues). Each test checks where every message ends (state, IMAP folder) and that exactly
one reply per message reached the SMTP server.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import email
import io
import random
import re
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email import encoders, policy
from email.message import EmailMessage
from email.mime.base import MIMEBase
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from sqlalchemy import Engine, func, select

from config.settings import get_settings
from db import models
from db.engine import make_engine
from db.setup import init_database
from schemas.reference import Reference, School, load_reference
from tasks.check.checking import check_files
from tasks.check.parse import parse_workbook
from tasks.intake import messages as mail_intake
from tasks.intake.mailbox import PROCESSED_FOLDER, REJECTED_FOLDER, MailboxUnavailable, fetch_unseen
from tasks.intake.messages import sender_kind
from tasks.mail.outbox import FlushResult, flush_outbox, outbox_rows
from tasks.mail.replies import queue_replies
from tasks.operator.review import review_submission
from tasks.operator.status import cycle_status
from tasks.storage.raw import store_raw
from tasks.storage.submissions import Outcome, store_submissions
from tasks.template.build import SubmissionValues, build_template
from tests.support.mailservers import DovecotServer, SmtpServer
from tests.support.stages import task_runs

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
H1 = "2023-H1"
OFFICE = "gec@q8.test"
OPS = "it@q8.test"
XLSX = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
MAX_BYTES = 120 * 1024  # GEC_MAX_FILE_MB for these tests: real workbooks are ~17 KB
ARRIVED = dt.datetime(2023, 5, 2, 9, 30, tzinfo=HCM)
CLUSTER = "cum4@truong.q8.test"  # one principal sends for a preschool and a primary school
PAIR = "cum6@truong.q8.test"


def _school(code: str, *emails: str) -> School:
    level = "mam_non" if code.startswith("MN") else "tieu_hoc"
    return School(code, f"Trường {'Mầm non' if level == 'mam_non' else 'Tiểu học'} {code}", level,
                  "cong_lap", "Phường 4", (f"{code.lower()}@truong.q8.test", *emails), True, None, None,
                  frozenset())


@pytest.fixture(scope="module")
def reference() -> Reference:
    real = load_reference(get_settings().reference_dir)
    schools = [
        _school("MN001"), _school("MN002"), _school("MN003", "hieutruong.mn003@gmail.test"),
        _school("MN004", CLUSTER), _school("TH004", CLUSTER), _school("TH005"),
        _school("MN006", PAIR), _school("TH006", PAIR), _school("MN007"),
    ]
    return Reference({school.code: school for school in schools}, real.calendar, real.indicators)


@pytest.fixture
def db(engine: Engine, database_url: str, reference: Reference) -> Engine:
    init_database(database_url, reference)
    return engine


def workbook(
    reference: Reference, code: str, change: Callable[[SubmissionValues], None] | None = None
) -> bytes:
    """Return a school's real workbook for 2023-H1, optionally with a clerk's mistake."""
    from demo.data import school_values

    cycle = reference.calendar.get(H1)
    assert cycle is not None
    values = copy.deepcopy(school_values(reference.schools[code], cycle, 7))
    if change is not None:
        change(values)
    return build_template(reference.schools[code], cycle, values)


def reach_row(values: SubmissionValues, group: str) -> dict:
    return next(row for row in values.rows["reach"] if row["group"] == group)


def female_above_total(values: SubmissionValues) -> None:
    """Teachers: more women than people (Excel C5 of `Truyền thông`)."""
    row = reach_row(values, "giao_vien")
    row["female"] = row["total"] + 4


def big_activities(values: SubmissionValues) -> None:
    """Hundreds of long activity rows: a workbook over the size limit."""
    rng = random.Random(5)
    template = values.rows["activities"][0]
    values.rows["activities"] = [
        {**template, "content": "".join(rng.choice("abcdefghij klmnop") for _ in range(480))}
        for _ in range(700)
    ]


# --------------------------------------------------------------------------------------------------
# Messages as clients write them


def outlook(sender: str, name: str, subject: str, attachments: list[tuple[str, bytes]]) -> bytes:
    """Outlook: multipart/alternative body, base64 attachments, non-ASCII names in RFC 2231."""
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = formataddr((name, sender))
    msg["To"] = f"Phòng GD&ĐT Quận 8 <{OFFICE}>"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(ARRIVED - dt.timedelta(days=3))  # the sender's clock is not the receipt
    msg["Message-ID"] = make_msgid(domain="truong.q8.test")
    msg["X-Mailer"] = "Microsoft Outlook 16.0"
    msg["Thread-Index"] = "AdmB3k5v1fO0yQ8ZRkqQ3n8d7d4W9g=="
    msg["Content-Language"] = "vi-VN"
    msg.set_content("Kính gửi Phòng GD&ĐT Quận 8,\nTrường gửi báo cáo đính kèm.\nTrân trọng.")
    msg.add_alternative("<p>Kính gửi Phòng GD&amp;ĐT Quận 8,</p><p>Trường gửi báo cáo đính kèm.</p>",
                        subtype="html")
    for filename, data in attachments:
        maintype, subtype = ("application", "zip") if filename.endswith(".zip") else XLSX
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def gmail(sender: str, subject: str, filename: str, data: bytes, name: str = "Cô Lan") -> bytes:
    """Gmail: the attachment name as one RFC 2047 encoded word inside quotes."""
    outer = MIMEMultipart("mixed")
    outer["From"] = formataddr((name, sender))
    outer["To"] = OFFICE
    outer["Subject"] = subject
    outer["Date"] = format_datetime(ARRIVED)
    outer["Message-ID"] = make_msgid(domain="mail.gmail.test")
    body = MIMEMultipart("alternative")
    body.attach(MIMEText("Trường gửi báo cáo ạ.", "plain", "utf-8"))
    body.attach(MIMEText('<div dir="ltr">Trường gửi báo cáo ạ.</div>', "html", "utf-8"))
    outer.attach(body)
    word = "=?UTF-8?B?" + base64.b64encode(filename.encode("utf-8")).decode() + "?="
    part = MIMEBase(*XLSX, name=word)
    part.set_payload(data)
    encoders.encode_base64(part)
    part.add_header("Content-Disposition", "attachment", filename=word)
    part["X-Attachment-Id"] = "f_lh4k2x0"
    part["Content-ID"] = "<f_lh4k2x0>"
    outer.attach(part)
    return outer.as_bytes()


def forwarded(sender: str, inner: bytes) -> bytes:
    """A forward as an attachment: the original message inside a message/rfc822 part."""
    outer = MIMEMultipart("mixed")
    outer["From"] = sender
    outer["To"] = OFFICE
    outer["Subject"] = "Fwd: Báo cáo BĐG-TE"
    outer["Message-ID"] = make_msgid(domain="gmail.test")
    outer.attach(MIMEText("---------- Forwarded message ---------\nNhờ Phòng nhận giúp.", "plain", "utf-8"))
    outer.attach(MIMEMessage(email.message_from_bytes(inner)))
    return outer.as_bytes()


def plain(sender: str, subject: str, text: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = OFFICE
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="truong.q8.test")
    msg.set_content(text)
    return msg.as_bytes()


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------------
# Reading the results back


def submissions(engine: Engine) -> dict[str, tuple[str, str | None]]:
    """Return original file name -> (state, sender) of every submission."""
    query = (
        select(models.FileReceipt.original_name, models.Submission.state, models.FileReceipt.sender)
        .join(models.Submission, models.Submission.receipt_id == models.FileReceipt.id)
    )
    with engine.connect() as conn:
        return {name: (state, sender) for name, state, sender in conn.execute(query)}


def count(engine: Engine, model: type) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar_one()


def replies_to(smtp: SmtpServer) -> Counter[str]:
    return Counter(address for captured in smtp.messages for address in captured.rcpt_tos)


def reply_for(smtp: SmtpServer, address: str) -> EmailMessage:
    found = [captured.message for captured in smtp.messages if address in captured.rcpt_tos]
    assert len(found) == 1, f"{len(found)} replies to {address}"
    return found[0]


def attachments(message: EmailMessage) -> dict[str, bytes]:
    return {part.get_filename(): part.get_content() for part in message.iter_attachments()}


def text_of(message: EmailMessage) -> str:
    """Return the plain-text part as one line: assertions read sentences, not the phone-width wrapping."""
    body = message.get_body(("plain",))
    assert body is not None
    return " ".join(body.get_content().split())


@dataclass
class MailBatch:
    """What one batch of the mailbox pipeline did, message by message, and the outbox flush after it."""

    messages: list[mail_intake.MessageResult] = field(default_factory=list)
    moved: dict[str, str] = field(default_factory=dict)
    flush: FlushResult | None = None

    @property
    def outcomes(self) -> list[Outcome]:
        return [outcome for message in self.messages for outcome in message.outcomes]


def collect(db: Engine, reference: Reference, dovecot: DovecotServer, smtp: SmtpServer) -> MailBatch:
    """Run one mailbox batch through the plain stage functions the collect flow's tasks call, in its order.

    The flow itself (source "all") is tested at the end of this module; these tests run on both databases.
    """
    run = MailBatch()
    imap = dovecot.imap_config()
    try:
        read = mail_intake.read_messages(fetch_unseen(imap, mail_intake.DEFAULT_BATCH), max_bytes=MAX_BYTES,
                                         office_address=smtp.smtp_config().from_addr)
        records = store_raw(db, mail_intake.message_files(read))
        checked = check_files(records, reference, max_bytes=MAX_BYTES)
        outcomes = store_submissions(db, reference, records, checked)
        replied = queue_replies(db, reference, read, records, checked, outcomes, max_bytes=MAX_BYTES,
                                ops_email=OPS)
        run.messages = mail_intake.message_results(read, outcomes, replied)
        run.moved = mail_intake.file_messages(imap, run.messages).moved
    finally:  # as the flow: replies already queued go out even after an IMAP outage
        run.flush = flush_outbox(db, smtp.smtp_config())
    return run


# --------------------------------------------------------------------------------------------------
# Tests


def test_real_client_shapes_end_in_the_right_state_folder_and_reply(
    db: Engine, reference: Reference, imap_mailbox: DovecotServer, smtp_server: SmtpServer
) -> None:
    outlook_name = "Báo cáo BĐG-TE 6 tháng đầu năm 2023 - MN Hoa Đào.xlsx"
    gmail_name = "Báo cáo BĐG-TE HK1 trường MN002 (đã sửa).xlsx"
    messages = {
        "outlook": outlook("mn001@truong.q8.test", "Trường Mầm non MN001", "Báo cáo BĐG-TE HK1",
                           [(outlook_name, workbook(reference, "MN001"))]),
        "gmail": gmail("mn002@truong.q8.test", "bao cao", gmail_name,
                       workbook(reference, "MN002", female_above_total)),
        "forwarded": forwarded(
            "hieutruong.mn003@gmail.test",
            outlook("vanthu.mn003@yahoo.test", "Văn thư", "Báo cáo", [("BC MN003.xlsx",
                                                                      workbook(reference, "MN003"))])),
        "zip": outlook(CLUSTER, "Cụm 4", "Báo cáo hai trường", [("Báo cáo cụm 4.zip", zip_of({
            "Báo cáo MN004.xlsx": workbook(reference, "MN004"),
            "Báo cáo TH004.xlsx": workbook(reference, "TH004"),
        }))]),
        "two": outlook(PAIR, "Cụm 6", "Hai báo cáo", [
            ("MN006.xlsx", workbook(reference, "MN006")),
            ("TH006.xlsx", workbook(reference, "TH006", female_above_total)),
        ]),
        "none": plain("mn007@truong.q8.test", "Báo cáo", "Kính gửi Phòng, trường gửi báo cáo ạ."),
        "large": outlook("th005@truong.q8.test", "TH005", "Báo cáo TH005",
                         [("BC TH005.xlsx", workbook(reference, "TH005", big_activities))]),
    }
    assert b"filename*0*=utf-8''B%C3%A1o" in messages["outlook"]  # RFC 2231, continued, as Outlook
    assert b'filename="=?UTF-8?B?' in messages["gmail"]  # RFC 2047 in quotes, as Gmail writes it
    assert b"message/rfc822" in messages["forwarded"]
    assert len(messages["large"]) > MAX_BYTES
    received = {}
    for minute, (key, raw) in enumerate(messages.items()):
        received[key] = ARRIVED + dt.timedelta(minutes=minute)
        imap_mailbox.append(raw, internaldate=received[key])

    run = collect(db, reference, imap_mailbox, smtp_server)

    assert submissions(db) == {
        outlook_name: ("accepted", "mn001@truong.q8.test"),
        gmail_name: ("rejected", "mn002@truong.q8.test"),
        "BC MN003.xlsx": ("accepted", "hieutruong.mn003@gmail.test"),  # the forwarder is the sender
        "Báo cáo MN004.xlsx": ("accepted", CLUSTER),
        "Báo cáo TH004.xlsx": ("accepted", CLUSTER),
        "MN006.xlsx": ("accepted", PAIR),
        "TH006.xlsx": ("rejected", PAIR),
        # Over the size limit: recorded as a too_large submission (an oversize stub), issue 11 #7.
        "BC TH005.xlsx": ("rejected", "th005@truong.q8.test"),
    }
    with db.connect() as conn:
        received_at = dict(conn.execute(select(models.FileReceipt.original_name,
                                               models.FileReceipt.received_at)).all())
        refs = set(conn.execute(select(models.FileReceipt.source_ref)).scalars())
    assert received_at[outlook_name] == received["outlook"]  # INTERNALDATE, not the Date header
    assert received_at["BC MN003.xlsx"] == received["forwarded"]
    assert all(ref.count(":") == 2 for ref in refs)

    assert imap_mailbox.messages("INBOX") == []
    assert len(imap_mailbox.messages(PROCESSED_FOLDER)) == 6  # the too-large file is a submission too
    assert len(imap_mailbox.messages(REJECTED_FOLDER)) == 1
    assert run.moved and len(run.moved) == 7

    senders = ["mn001@truong.q8.test", "mn002@truong.q8.test", "hieutruong.mn003@gmail.test", CLUSTER, PAIR,
               "mn007@truong.q8.test", "th005@truong.q8.test"]
    assert replies_to(smtp_server) == Counter(senders)

    accepted = reply_for(smtp_server, "mn001@truong.q8.test")
    assert "Đã ghi nhận" in accepted["Subject"]
    assert accepted["In-Reply-To"] and accepted["Auto-Submitted"] == "auto-replied"
    text = text_of(accepted)
    assert outlook_name in text and "CT1:" in text and "CT2:" in text and "đạt" in text
    assert attachments(accepted) == {}  # nothing to fix, nothing attached

    rejected = reply_for(smtp_server, "mn002@truong.q8.test")
    assert "cần sửa" in rejected["Subject"]
    assert "Trang \"Truyền thông\", dòng “Giáo viên”: số nữ ở cột \"Trong đó nữ\"" in text_of(rejected)
    assert "Vui lòng kiểm tra lại. (ô C5)" in text_of(rejected)
    files = attachments(rejected)
    assert list(files) == ["Báo cáo BĐG-TE HK1 trường MN002 (đã sửa)_danh-dau.xlsx"]
    annotated = openpyxl.load_workbook(io.BytesIO(next(iter(files.values()))))
    cell = annotated["Truyền thông"]["C5"]
    assert cell.fill.fgColor.rgb.endswith("FFC7CE") and "số nữ" in cell.comment.text
    assert parse_workbook(next(iter(files.values())), max_bytes=MAX_BYTES).readable

    both = text_of(reply_for(smtp_server, CLUSTER))
    assert "Báo cáo MN004.xlsx" in both and "Báo cáo TH004.xlsx" in both
    pair = reply_for(smtp_server, PAIR)
    assert list(attachments(pair)) == ["TH006_danh-dau.xlsx"]
    assert "MN006.xlsx" in text_of(pair)

    nothing = reply_for(smtp_server, "mn007@truong.q8.test")
    assert nothing["Subject"] == "Chưa nhận được tệp báo cáo BĐG-TE"
    assert ".xlsx" in text_of(nothing)
    large = text_of(reply_for(smtp_server, "th005@truong.q8.test"))
    assert "BC TH005.xlsx" in large and "Tệp quá lớn" in large and "0,1171875 MB" not in large

    # A second run finds nothing new and sends nothing again.
    again = collect(db, reference, imap_mailbox, smtp_server)
    assert again.messages == [] and len(smtp_server.messages) == 7
    assert count(db, models.Submission) == 8


def test_unregistered_sender_is_held_and_the_operator_told(
    db: Engine, reference: Reference, imap_mailbox: DovecotServer, smtp_server: SmtpServer
) -> None:
    imap_mailbox.append(outlook("lan.nguyen@gmail.test", "Nguyễn Thị Lan", "Báo cáo MN001",
                                [("MN001.xlsx", workbook(reference, "MN001"))]), internaldate=ARRIVED)

    collect(db, reference, imap_mailbox, smtp_server)

    assert submissions(db) == {"MN001.xlsx": ("held", "lan.nguyen@gmail.test")}
    assert len(imap_mailbox.messages(PROCESSED_FOLDER)) == 1
    assert replies_to(smtp_server) == Counter(["lan.nguyen@gmail.test", OPS])
    assert "chờ xem xét" in reply_for(smtp_server, "lan.nguyen@gmail.test")["Subject"]
    notice = text_of(reply_for(smtp_server, OPS))
    assert "MN001.xlsx" in notice and "lan.nguyen@gmail.test" in notice and "gec review" in notice
    with db.connect() as conn:
        held_id = conn.execute(select(models.Submission.id)).scalar_one()
    assert review_submission(db, held_id, "accept", "gọi điện xác nhận", "ops")["state"] == "accepted"


def test_imap_stopped_in_the_middle_loses_nothing_and_processes_nothing_twice(
    db: Engine, reference: Reference, imap_mailbox: DovecotServer, smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for minute, code in enumerate(("MN001", "MN002", "TH005")):
        imap_mailbox.append(outlook(f"{code.lower()}@truong.q8.test", code, f"BC {code}",
                                    [(f"{code}.xlsx", workbook(reference, code))]),
                            internaldate=ARRIVED + dt.timedelta(minutes=minute))
    real_move = mail_intake.move_message
    moves = []

    def move_then_crash(config, uid, folder):  # type: ignore[no-untyped-def]
        moves.append(uid)
        if len(moves) == 2:
            imap_mailbox.stop()  # the server goes away after one message was filed
        return real_move(config, uid, folder)

    monkeypatch.setattr(mail_intake, "move_message", move_then_crash)
    with pytest.raises(MailboxUnavailable):
        collect(db, reference, imap_mailbox, smtp_server)
    assert count(db, models.Submission) == 3  # committed before the moves
    assert len(smtp_server.messages) == 3  # replies queued before the moves went out

    imap_mailbox.start()
    assert len(imap_mailbox.messages("INBOX")) == 2
    monkeypatch.setattr(mail_intake, "move_message", real_move)
    run = collect(db, reference, imap_mailbox, smtp_server)

    assert len(run.messages) == 2 and not any(message.reply_queued for message in run.messages)
    assert all(not outcome.created for outcome in run.outcomes)
    assert count(db, models.Submission) == 3 and count(db, models.FileReceipt) == 3
    assert len(imap_mailbox.messages(PROCESSED_FOLDER)) == 3 and imap_mailbox.messages("INBOX") == []
    assert replies_to(smtp_server) == Counter(f"{code}@truong.q8.test" for code in ("mn001", "mn002",
                                                                                    "th005"))


def test_imap_down_at_the_start_fails_the_run_and_stores_nothing(
    db: Engine, reference: Reference, imap_mailbox: DovecotServer, smtp_server: SmtpServer
) -> None:
    imap_mailbox.append(plain("mn001@truong.q8.test", "x", "y"), internaldate=ARRIVED)
    with imap_mailbox.stopped(), pytest.raises(MailboxUnavailable):
        collect(db, reference, imap_mailbox, smtp_server)
    assert count(db, models.ReceivedFile) == 0 and smtp_server.messages == []


def test_smtp_down_keeps_replies_queued_and_sends_each_once_later(
    db: Engine, reference: Reference, imap_mailbox: DovecotServer, smtp_server: SmtpServer
) -> None:
    first = outlook("mn001@truong.q8.test", "MN001", "BC", [("a.xlsx", workbook(reference, "MN001"))])
    imap_mailbox.append(first, internaldate=ARRIVED)
    imap_mailbox.append(plain("mn007@truong.q8.test", "Báo cáo", "quên đính kèm"), internaldate=ARRIVED)

    with smtp_server.stopped():
        run = collect(db, reference, imap_mailbox, smtp_server)
    assert run.flush is not None and run.flush.unavailable and run.flush.remaining == 2
    assert len(imap_mailbox.messages(PROCESSED_FOLDER)) == 1
    assert len(imap_mailbox.messages(REJECTED_FOLDER)) == 1
    assert [row["sent_at"] for row in outbox_rows(db)] == [None, None]
    assert smtp_server.messages == []

    later = collect(db, reference, imap_mailbox, smtp_server)
    assert later.messages == [] and later.flush is not None and len(later.flush.sent) == 2
    assert replies_to(smtp_server) == Counter(["mn001@truong.q8.test", "mn007@truong.q8.test"])
    collect(db, reference, imap_mailbox, smtp_server)
    assert len(smtp_server.messages) == 2
    assert all(row["sent_at"] is not None and row["attempts"] == 1 for row in outbox_rows(db))


def test_resubmission_reply_lists_what_changed(
    db: Engine, reference: Reference, imap_mailbox: DovecotServer, smtp_server: SmtpServer
) -> None:
    sender = "mn002@truong.q8.test"
    imap_mailbox.append(gmail(sender, "BC", "lan 1.xlsx", workbook(reference, "MN002", female_above_total)),
                        internaldate=ARRIVED)
    collect(db, reference, imap_mailbox, smtp_server)

    def fixed(values: SubmissionValues) -> None:
        row = reach_row(values, "giao_vien")
        row["female"] = row["total"] - 1

    imap_mailbox.append(gmail(sender, "Re: BC", "lan 2.xlsx", workbook(reference, "MN002", fixed)),
                        internaldate=ARRIVED + dt.timedelta(hours=2))
    collect(db, reference, imap_mailbox, smtp_server)

    assert submissions(db) == {"lan 1.xlsx": ("rejected", sender), "lan 2.xlsx": ("accepted", sender)}
    second = smtp_server.messages[-1].message
    text = text_of(second)
    assert "Thay đổi so với bản gửi trước" in text
    assert "Trang “Truyền thông”, dòng “Giáo viên”, cột “Trong đó nữ”" in text
    assert attachments(second) == {}


def test_outdated_template_gets_the_current_one(
    db: Engine, reference: Reference, imap_mailbox: DovecotServer, smtp_server: SmtpServer
) -> None:
    def old(values: SubmissionValues) -> None:
        values.meta["template_version"] = "2022.2"

    raw = outlook("mn001@truong.q8.test", "MN001", "BC", [("cu.xlsx", workbook(reference, "MN001", old))])
    imap_mailbox.append(raw, internaldate=ARRIVED)
    collect(db, reference, imap_mailbox, smtp_server)

    reply = reply_for(smtp_server, "mn001@truong.q8.test")
    files = attachments(reply)
    assert list(files) == ["Bao-cao-BDG-TE_2023-H1_MN001.xlsx"]
    current = parse_workbook(files["Bao-cao-BDG-TE_2023-H1_MN001.xlsx"], max_bytes=MAX_BYTES)
    assert current.meta["template_version"].value == "2023.1"
    assert current.general_value("school_code") == "MN001"
    assert "phiên bản 2022.2" in text_of(reply)


def _auto_reply() -> bytes:
    return plain("mn001@truong.q8.test", "Trả lời tự động: Báo cáo", "Tôi đang nghỉ phép.").replace(
        b"Subject:", b"Auto-Submitted: auto-replied\nSubject:", 1)


def test_operator_sees_refused_attachments_but_not_logos() -> None:
    from tasks.intake.mail_extract import Skipped, SkipReason
    from tasks.intake.messages import AUTOMATIC, PERSON, MessageResult, not_kept
    stored = Outcome("Báo cáo.xlsx", None, "0" * 64, "7:1:1", 1, True, True, 1, True, "MN001", H1, "accepted")

    def message(uid: str, outcomes: tuple[Outcome, ...], skipped: tuple[Skipped, ...],
                kind: str = PERSON) -> MessageResult:
        return MessageResult(uid, f"7:{uid}", f"{uid}@truong.q8.test", "BC", ARRIVED, outcomes, skipped,
                             REJECTED_FOLDER, True, kind)

    results = [
        message("logo", (stored,), (Skipped("image001.png", SkipReason.NOT_A_WORKBOOK),)),
        message("pdf", (), (Skipped("Báo cáo.pdf", SkipReason.NOT_A_WORKBOOK),)),
        message("tnef", (stored,), (Skipped("winmail.dat", SkipReason.TNEF_UNSUPPORTED),)),
        message("empty", (), ()),
        # An out-of-office reply with its signature logo: nobody sent a report, nothing to chase.
        message("away", (), (Skipped("logo.png", SkipReason.NOT_A_WORKBOOK),), kind=AUTOMATIC),
    ]
    assert [(item.message, item.file, item.reason) for item in not_kept(results)] == [
        ("7:pdf", "Báo cáo.pdf", "not_a_workbook"),
        ("7:tnef", "winmail.dat", "tnef_unsupported"),
        ("7:empty", None, "no_workbook"),
    ]


def test_senders_are_told_apart() -> None:
    assert sender_kind(_auto_reply(), "mn001@truong.q8.test") == "automatic"
    assert sender_kind(plain("x@y", "s", "t"), "MAILER-DAEMON@mx.q8.test") == "bounce"
    assert sender_kind(plain("x@y", "s", "t"), OFFICE, (f"Phòng <{OFFICE}>",)) == "own"
    assert sender_kind(plain("x@y", "s", "t"), "no-reply@zalo.test") == "automatic"
    assert sender_kind(plain("mn001@truong.q8.test", "s", "t"), "mn001@truong.q8.test", (OFFICE,)) == "person"


def test_auto_reply_without_workbook_is_filed_without_answer(
    db: Engine, reference: Reference, imap_mailbox: DovecotServer, smtp_server: SmtpServer
) -> None:
    imap_mailbox.append(_auto_reply(), internaldate=ARRIVED)
    run = collect(db, reference, imap_mailbox, smtp_server)
    assert run.messages[0].sender_kind == "automatic" and run.messages[0].folder == REJECTED_FOLDER
    assert len(imap_mailbox.messages(REJECTED_FOLDER)) == 1 and smtp_server.messages == []


def test_bounce_of_our_own_feedback_is_not_read_as_a_submission(
    db: Engine, reference: Reference, imap_mailbox: DovecotServer, smtp_server: SmtpServer
) -> None:
    """A delivery report carries our reply back, annotated workbook included: never a submission."""
    ours = outlook(OFFICE, "Phòng GD&ĐT Quận 8", "Báo cáo cần sửa",
                   [("MN002_danh-dau.xlsx", workbook(reference, "MN002", female_above_total))])
    # As Postfix writes it: text, machine-readable status, then the returned message in full.
    report = (
        "From: Mail Delivery System <MAILER-DAEMON@mx.q8.test>\r\n"
        f"To: {OFFICE}\r\nSubject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B0UND"\r\n\r\n'
        "--B0UND\r\nContent-Type: text/plain\r\n\r\nThe message could not be delivered.\r\n"
        "--B0UND\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.q8.test\r\n\r\n"
        "Final-Recipient: rfc822; sai@truong.q8.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        "--B0UND\r\nContent-Type: message/rfc822\r\n\r\n"
    ).encode() + ours + b"\r\n--B0UND--\r\n"
    assert b"MN002_danh-dau.xlsx" in report
    imap_mailbox.append(report, internaldate=ARRIVED)

    run = collect(db, reference, imap_mailbox, smtp_server)

    assert run.messages[0].sender_kind == "bounce" and run.messages[0].folder == REJECTED_FOLDER
    assert count(db, models.ReceivedFile) == 0 and smtp_server.messages == []
    assert len(imap_mailbox.messages(REJECTED_FOLDER)) == 1


def test_file_forwarded_from_the_office_address_is_read_but_not_answered(
    db: Engine, reference: Reference, imap_mailbox: DovecotServer, smtp_server: SmtpServer
) -> None:
    """The specialist mails in a file a school sent by Zalo: held for review, no reply to ourselves."""
    imap_mailbox.append(outlook(OFFICE, "Chuyên viên", "File Zalo MN001", [("MN001 zalo.xlsx",
                                                                          workbook(reference, "MN001"))]),
                        internaldate=ARRIVED)
    run = collect(db, reference, imap_mailbox, smtp_server)
    assert run.messages[0].sender_kind == "own" and run.messages[0].folder == PROCESSED_FOLDER
    assert submissions(db) == {"MN001 zalo.xlsx": ("held", OFFICE)}
    assert smtp_server.messages == []


# --------------------------------------------------------------------------------------------------
# The collect flow with source "all" (drop folder and mailbox in one run)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_collect_flow_reads_folder_and_mailbox(
    prefect_harness: str, configured_database: str, imap_mailbox: DovecotServer, smtp_server: SmtpServer,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flows.collect import collect_submissions

    real = load_reference(get_settings().reference_dir)  # the flow reads the registry from settings
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for key, value in {**imap_mailbox.env, **smtp_server.env, "GEC_INBOX_DIR": str(inbox),
                       "GEC_ARCHIVE_DIR": str(tmp_path / "archive"), "GEC_OPS_EMAIL": OPS,
                       "GEC_SPECIALIST_EMAIL": "chuyenvien@q8.test", "GEC_MAX_FILE_MB": "0.5"}.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    (inbox / "MN002.xlsx").write_bytes(workbook(real, "MN002"))
    sender = real.schools["MN001"].emails[0]
    imap_mailbox.append(outlook(sender, "MN001", "BC", [("Báo cáo MN001.xlsx", workbook(real, "MN001"))]),
                        internaldate=ARRIVED)
    imap_mailbox.append(plain("mn007@truong.q8.test", "Báo cáo", "quên đính kèm"), internaldate=ARRIVED)
    # A question: forwarded to the specialist, not answered, filed for review, listed in the summary.
    imap_mailbox.append(plain("mn005@truong.q8.test", "Hỏi về biểu mẫu", "Trang Vụ việc ghi thế nào ạ?"),
                        internaldate=ARRIVED)
    large = real.schools["MN003"].emails[0]
    imap_mailbox.append(outlook(large, "MN003", "BC", [("Báo cáo MN003.xlsx", random.randbytes(600_000))]),
                        internaldate=ARRIVED)

    started = dt.datetime.now(HCM)
    state = collect_submissions(source="all", return_state=True)
    summary = state.result()

    # Both sources ran through the same stage tasks, one task run per stage per batch; the run's name
    # says its source and local start time, so two runs are told apart in the UI.
    name, stages = task_runs(state.state_details.flow_run_id, "file_mail")
    match = re.fullmatch(r"collect-all-(\d{8}-\d{6})", name)
    assert match, name
    named_at = dt.datetime.strptime(match.group(1), "%Y%m%d-%H%M%S").replace(tzinfo=HCM)
    assert abs(named_at - started) < dt.timedelta(minutes=2)
    assert {stage: stages[stage] for stage in ("store_raw", "check_files", "store_submissions")} == {
        "store_raw": 2, "check_files": 2, "store_submissions": 2}
    assert (stages["archive_files"], stages["queue_replies"], stages["file_mail"]) == (1, 1, 1)

    # The attachment over the size limit is a recorded submission with its verdict (issue 11 #7): only
    # its size and hash are stored, and its registered sender's school has sent something invalid.
    assert (summary.files_seen, summary.submissions, summary.archived) == (3, 3, 1)
    assert summary.states == {"accepted": 2, "rejected": 1}
    assert [(problem.school_code, problem.file) for problem in summary.problems] == [
        ("MN003", "Báo cáo MN003.xlsx")]
    assert summary.problems[0].message is not None and summary.problems[0].message.startswith("Tệp quá lớn")
    schools = {row["code"]: row["state"] for row in cycle_status(make_engine(), real, "2023-H1")["schools"]}
    assert schools["MN003"] == "received_invalid"
    assert len(imap_mailbox.messages(PROCESSED_FOLDER)) == 2
    assert len(imap_mailbox.messages(REJECTED_FOLDER)) == 1
    assert len(imap_mailbox.messages(mail_intake.REVIEW_FOLDER)) == 1
    assert replies_to(smtp_server) == Counter([sender, "mn007@truong.q8.test", large, "chuyenvien@q8.test"])
    assert [(item.sender, item.reason) for item in summary.forwarded] == [
        ("mn005@truong.q8.test", "question")]
    assert "Forwarded to the specialist (no automatic answer): 1" in summary.to_markdown()
    # Nothing was stored from one message: the operator sees it, with why.
    assert [(item.sender, item.file, item.reason) for item in summary.not_kept] == [
        ("mn007@truong.q8.test", None, "no_workbook"),
    ]
    assert "Báo cáo MN003.xlsx" in summary.to_markdown()

    again = collect_submissions(source="mailbox")
    assert (again.files_seen, again.submissions) == (0, 0) and len(smtp_server.messages) == 4
    assert len(imap_mailbox.messages(PROCESSED_FOLDER)) + len(imap_mailbox.messages(REJECTED_FOLDER)) == 3
    assert again.not_kept == []
    get_settings.cache_clear()


def blank_reach(values: SubmissionValues) -> None:
    """`Truyền thông` left as the template sent it; one activity with more women than staff."""
    values.rows["reach"] = [{"group": row["group"]} for row in values.rows["reach"]]
    activity = values.rows["activities"][0]
    activity.update(staff=18, staff_female=19)


def without_checklist(content: bytes) -> bytes:
    book = openpyxl.load_workbook(io.BytesIO(content))
    del book["Tự đánh giá"]
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_the_reply_helps_a_clerk_on_a_phone(
    db: Engine, reference: Reference, imap_mailbox: DovecotServer, smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GEC_CONTACT_NAME", "Chị Trần Thị Mai")
    monkeypatch.setenv("GEC_CONTACT_PHONE", "028 3850 1234")
    monkeypatch.setenv("GEC_CONTACT_EMAIL", "mai.tran@q8.test")
    get_settings.cache_clear()
    try:
        broken = without_checklist(workbook(reference, "MN001", blank_reach))
        imap_mailbox.append(outlook("mn001@truong.q8.test", "MN001", "Báo cáo", [("MN001.xlsx", broken)]),
                            internaldate=ARRIVED)
        late = dt.datetime(2023, 5, 8, 10, 0, tzinfo=HCM)
        imap_mailbox.append(outlook("mn002@truong.q8.test", "MN002", "Báo cáo",
                                    [("MN002.xlsx", workbook(reference, "MN002"))]), internaldate=late)
        collect(db, reference, imap_mailbox, smtp_server)
    finally:
        get_settings.cache_clear()

    rejected = reply_for(smtp_server, "mn001@truong.q8.test")
    raw = rejected.get_body(("plain",)).get_content()
    text = text_of(rejected)
    # The period in words, in the subject and the body; the deadline and what a late file means.
    assert "6 tháng đầu năm 2023" in rejected["Subject"] and "2023-H1" not in rejected["Subject"]
    assert "Kỳ báo cáo: 6 tháng đầu năm 2023" in text and "2023-H1" not in text
    assert "hết ngày 05/05/2023" in text and "vẫn được tiếp nhận" in text and "trễ hạn" in text
    # A person to call, not "reply to this mail".
    assert "Chị Trần Thị Mai, điện thoại 028 3850 1234, email mai.tran@q8.test" in text
    assert "trả lời thư này" not in text
    # The blank sheet said once; the comparison with both numbers; most important first.
    assert "Trang \"Truyền thông\" chưa điền (24 ô bắt buộc còn trống)" in text
    assert "còn trống. Vui lòng điền" not in text
    assert "(19) lớn hơn tổng số ở cột \"CB-GV-NV tham dự\" (18)" in text
    missing = text.index("Không tìm thấy trang tính \"Tự đánh giá\"")
    assert missing < text.index("Trang \"Truyền thông\" chưa điền") < text.index("(19) lớn hơn")
    # Readable on a phone: short plain-text lines, and an HTML part.
    assert max(len(line) for line in raw.splitlines()) <= 72
    assert rejected.get_body(("html",)) is not None
    # The annotated copy opens where the first fix is, and lists every finding without hovering.
    [copy_] = attachments(rejected).values()
    book = openpyxl.load_workbook(io.BytesIO(copy_))
    assert book.active.title == "Truyền thông" and book.sheetnames[-1] == "Danh sách lỗi"
    listed = [[cell.value for cell in row] for row in book["Danh sách lỗi"].iter_rows(min_row=2)]
    assert listed[0][:2] == ["Tự đánh giá", None]  # a missing sheet has no cell, and is listed first
    assert listed[1][:4] == ["Truyền thông", "B4", "Cán bộ quản lý", "Lỗi"]
    assert any(row[0] == "Hoạt động" and "(19)" in row[4] for row in listed)

    late_reply = text_of(reply_for(smtp_server, "mn002@truong.q8.test"))
    assert "Đã ghi nhận" in reply_for(smtp_server, "mn002@truong.q8.test")["Subject"]
    assert "đã hết vào ngày 05/05/2023" in late_reply and "nộp trễ hạn" in late_reply


def test_a_stranger_mailing_for_a_school_learns_nothing_stored(
    db: Engine, reference: Reference, imap_mailbox: DovecotServer, smtp_server: SmtpServer
) -> None:
    def school_file(values: SubmissionValues) -> None:
        row = next(item for item in values.rows["incidents"] if item["category"] == "bao_luc")
        row.update(cases=4099, children=4111, children_female=4091, reported=1, supported=1)
        values.general.update(reporter="Phạm Thị Bí Mật", phone="0909 765 431")

    def stranger_file(values: SubmissionValues) -> None:
        row = next(item for item in values.rows["incidents"] if item["category"] == "bao_luc")
        row.update(cases=2, children=2, children_female=1, reported=0, supported=0)
        values.general.update(reporter="Người Lạ", phone="0123 456 789")

    own = workbook(reference, "MN001", school_file)
    imap_mailbox.append(outlook("mn001@truong.q8.test", "MN001", "Báo cáo", [("MN001.xlsx", own)]),
                        internaldate=ARRIVED)
    imap_mailbox.append(outlook("lan.nguyen@gmail.test", "Lan", "Báo cáo MN001",
                                [("MN001 ban sua.xlsx", workbook(reference, "MN001", stranger_file))]),
                        internaldate=ARRIVED + dt.timedelta(hours=1))
    collect(db, reference, imap_mailbox, smtp_server)

    assert submissions(db)["MN001 ban sua.xlsx"] == ("held", "lan.nguyen@gmail.test")
    reply = reply_for(smtp_server, "lan.nguyen@gmail.test")
    shown = text_of(reply) + reply.get_body(("html",)).get_content()
    secrets = ("4099", "4111", "4091", "Phạm Thị Bí Mật", "0909 765 431")
    assert not [secret for secret in secrets if secret in shown]
    assert "Thay đổi so với bản gửi trước" not in shown and "CT1:" not in shown
    assert "chờ xem xét" in reply["Subject"] and "xem xét" in text_of(reply) and attachments(reply) == {}
