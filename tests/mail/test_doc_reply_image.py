"""The picture of a reply e-mail in docs/huong-dan-truong.md: a real reply, rendered in Chromium.

A demo school mails a workbook with a mistake; the reply the mailbox pipeline queues (its HTML part,
composed by `tasks.mail.feedback`) is shown as a phone-width mail client would and saved as
docs/img/thu-phan-hoi.png. Only when asked to (GEC_WRITE_DOC_IMAGES=1), like the template's pictures.
"""

from __future__ import annotations

import copy
import datetime as dt
import html
import os
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from config.settings import PROJECT_ROOT, TIMEZONE, get_settings
from db import models
from db.setup import init_database
from demo.data import school_values
from schemas.reference import load_reference
from tasks.check.checking import check_files
from tasks.intake import messages as mail_intake
from tasks.intake.mailbox import MailItem
from tasks.mail.replies import queue_replies
from tasks.storage.raw import store_raw
from tasks.storage.submissions import store_submissions
from tasks.template.build import build_template
from tests.report.test_render import run_chromium

DOC_IMAGE = PROJECT_ROOT / "docs" / "img" / "thu-phan-hoi.png"
MAX_BYTES = 20 * 1024 * 1024
OFFICE = "Phòng GD&ĐT Quận 8 <gec@q8.test>"


def _mail(sender: str, content: bytes, filename: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = OFFICE
    msg["Subject"] = "Báo cáo BĐG-TE 6 tháng đầu năm 2023"
    msg["Message-ID"] = make_msgid(domain="truong.q8.test")
    msg.set_content("Kính gửi Phòng,\nTrường gửi báo cáo đính kèm.")
    msg.add_attachment(content, maintype="application",
                       subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet", filename=filename)
    return msg.as_bytes()


def _page(row: models.OutboxMessage) -> str:
    """Wrap the reply's HTML part as a mail client shows it: subject, sender, recipient, then the body."""
    head = (f'<div style="font-family: Arial, sans-serif; border-bottom: 1px solid #ccc; '
            f'padding-bottom: 8px; margin-bottom: 8px;"><div style="font-size: 18px; font-weight: bold;">'
            f'{html.escape(row.subject)}'
            f'</div><div style="color: #555; font-size: 13px;">Từ: {html.escape(OFFICE)}<br>Đến: '
            f'{html.escape(row.to_address)}</div></div>')
    attachments = "".join(f'<div style="font-family: Arial, sans-serif; font-size: 13px; border: 1px solid '
                          f'#ccc; border-radius: 4px; padding: 6px; margin-top: 8px;">Tệp đính kèm: '
                          f'{html.escape(item.filename)}</div>' for item in row.attachments)
    return (f'<!DOCTYPE html><html lang="vi"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width"></head><body style="margin: 12px;">{head}{row.body_html}'
            f'{attachments}</body></html>')


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_write_reply_doc_image(engine: Engine, database_url: str, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Render a real reply to a workbook with a mistake as PNG for docs/huong-dan-truong.md."""
    if os.environ.get("GEC_WRITE_DOC_IMAGES") != "1":
        pytest.skip("set GEC_WRITE_DOC_IMAGES=1 to regenerate docs/img")
    monkeypatch.setenv("GEC_CONTACT_NAME", "Chị Trần Thị Mai")
    monkeypatch.setenv("GEC_CONTACT_PHONE", "028 3850 1234")
    monkeypatch.setenv("GEC_CONTACT_EMAIL", "mai.tran@q8.test")
    get_settings.cache_clear()
    try:
        reference = load_reference(PROJECT_ROOT / "reference")
        init_database(database_url, reference)
        school = reference.schools["MN001"]
        cycle = reference.calendar.get("2023-H1")
        assert cycle is not None
        values = copy.deepcopy(school_values(school, cycle, 7))
        teachers = next(row for row in values.rows["reach"] if row["group"] == "giao_vien")
        teachers["female"] = teachers["total"] + 4  # more women than teachers: the clerk's slip
        raw = _mail(formataddr(("Cô Lan", school.emails[0])), build_template(school, cycle, values),
                    "Bao-cao-MN001.xlsx")
        item = MailItem("1", raw, dt.datetime(2023, 5, 3, 9, 30, tzinfo=TIMEZONE), 1)
        read = mail_intake.read_messages([item], max_bytes=MAX_BYTES, office_address=OFFICE)
        records = store_raw(engine, mail_intake.message_files(read))
        checked = check_files(records, reference, max_bytes=MAX_BYTES)
        outcomes = store_submissions(engine, reference, records, checked)
        assert [outcome.state for outcome in outcomes] == ["rejected"]
        assert queue_replies(engine, reference, read, records, checked, outcomes, max_bytes=MAX_BYTES)
    finally:
        get_settings.cache_clear()
    from sqlalchemy.orm import Session, selectinload

    with Session(engine) as session:
        row = session.scalars(select(models.OutboxMessage).where(models.OutboxMessage.kind == "feedback")
                              .options(selectinload(models.OutboxMessage.attachments))).one()
        page = tmp_path / "thu.html"
        page.write_text(_page(row), encoding="utf-8")
        assert "cần sửa" in row.subject and "Chị Trần Thị Mai" in (row.body_html or "")

    png = tmp_path / "thu.png"
    shot = run_chromium(tmp_path, page.as_uri(), f"--screenshot={png}", "--window-size=480,900",
                        "--hide-scrollbars")
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 30_000
    DOC_IMAGE.parent.mkdir(parents=True, exist_ok=True)
    DOC_IMAGE.write_bytes(png.read_bytes())
