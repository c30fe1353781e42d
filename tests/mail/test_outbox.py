"""The mail outbox (SPEC §4): queued once per dedupe key, sent once, kept when the server is away.

Against real SMTP servers on loopback (aiosmtpd), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine

from tasks.mail.outbox import MAX_ATTEMPTS, Mail, MailAttachment, flush_outbox, outbox_rows, queue_mail
from tasks.mail.smtp import SmtpConfig
from tests.support.mailservers import HOST, SmtpServer, free_port

NAME = "Báo cáo BĐG-TE_đã đánh dấu.xlsx"


def mail(key: str, to: str = "mn001@truong.q8.test", *, attachment: bytes | None = None) -> Mail:
    files = (MailAttachment(NAME, attachment),) if attachment is not None else ()
    return Mail(kind="feedback", dedupe_key=key, to=(to,), subject=f"Phản hồi {key}",
                text=f"Nội dung {key}", html=f"<p>Nội dung {key}</p>", attachments=files,
                in_reply_to="<abc@truong.q8.test>")


def test_queue_is_idempotent_by_dedupe_key(engine: Engine) -> None:
    first = queue_mail(engine, [mail("feedback:1:1", attachment=b"PK\x03\x04 one"), mail("feedback:1:2")])
    again = queue_mail(engine, [mail("feedback:1:1", attachment=b"other"), mail("feedback:1:3")])
    assert len(first) == 2 and len(again) == 1
    keys = [row["dedupe_key"] for row in outbox_rows(engine)]
    assert keys == ["feedback:1:1", "feedback:1:2", "feedback:1:3"]


def test_mail_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="kind"):
        Mail(kind="spam", dedupe_key="k", to=("a@b",), subject="s", text="t")
    with pytest.raises(ValueError, match="recipient"):
        Mail(kind="ops", dedupe_key="k", to=(), subject="s", text="t")


def test_flush_sends_in_order_once_with_attachments_and_threading(
    engine: Engine, smtp_server: SmtpServer
) -> None:
    queue_mail(engine, [mail("a", attachment=b"PK\x03\x04 workbook"), mail("b", "th005@truong.q8.test")])

    result = flush_outbox(engine, smtp_server.smtp_config())

    assert len(result.sent) == 2 and result.remaining == 0 and result.unavailable is None
    first, second = (captured.message for captured in smtp_server.messages)
    assert first["Subject"] == "Phản hồi a" and second["To"] == "th005@truong.q8.test"
    assert first["In-Reply-To"] == "<abc@truong.q8.test>" and first["Auto-Submitted"] == "auto-replied"
    assert first["From"] == "Phòng GD&ĐT Quận 8 <gec@q8.test>"
    assert first.get_body(("html",)).get_content().strip() == "<p>Nội dung a</p>"
    [attached] = list(first.iter_attachments())
    assert attached.get_filename() == NAME and attached.get_content() == b"PK\x03\x04 workbook"

    assert flush_outbox(engine, smtp_server.smtp_config()).sent == []
    assert len(smtp_server.messages) == 2
    assert all(row["sent_at"] is not None and row["attempts"] == 1 for row in outbox_rows(engine))


def test_server_away_keeps_everything_queued_then_sends_each_once(
    engine: Engine, smtp_server: SmtpServer
) -> None:
    queue_mail(engine, [mail("a"), mail("b"), mail("c")])
    with smtp_server.stopped():
        down = flush_outbox(engine, smtp_server.smtp_config(timeout=2))
        down_again = flush_outbox(engine, smtp_server.smtp_config(timeout=2))
    assert down.sent == [] and down.unavailable and down.remaining == 3 and down_again.remaining == 3
    rows = outbox_rows(engine)
    # An away server never counts against a message: an outage of days must not make it give up.
    assert [row["attempts"] for row in rows] == [0, 0, 0] and rows[0]["last_error"]

    up = flush_outbox(engine, smtp_server.smtp_config())
    assert len(up.sent) == 3 and up.remaining == 0
    flush_outbox(engine, smtp_server.smtp_config())
    assert Counter(captured.message["Subject"] for captured in smtp_server.messages) == Counter(
        {"Phản hồi a": 1, "Phản hồi b": 1, "Phản hồi c": 1})


class _Picky:
    """An SMTP server that refuses one mailbox for good and defers another."""

    def __init__(self, delay: float = 0.0) -> None:
        self.received: list[tuple[str, ...]] = []
        self.delay = delay

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address.startswith("bounce@"):
            return "550 5.1.1 No such user here"
        if address.startswith("later@"):
            return "451 4.3.0 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.received.append(tuple(envelope.rcpt_tos))
        return "250 Message accepted"


@pytest.fixture
def picky() -> Iterator[tuple[_Picky, SmtpConfig]]:
    handler = _Picky()
    port = free_port()
    controller = Controller(handler, hostname=HOST, port=port, ready_timeout=10)
    controller.start()
    try:
        yield handler, SmtpConfig(HOST, port, from_addr="Phòng GD&ĐT Quận 8 <gec@q8.test>", ssl="plain",
                                  timeout=10)
    finally:
        controller.stop()


def test_refused_for_good_is_recorded_and_never_retried_and_blocks_nobody(
    engine: Engine, picky: tuple[_Picky, SmtpConfig]
) -> None:
    handler, config = picky
    queue_mail(engine, [mail("x", "bounce@truong.q8.test"), mail("y", "later@truong.q8.test"),
                        mail("z", "mn001@truong.q8.test")])

    first = flush_outbox(engine, config)
    assert len(first.given_up) == 1 and len(first.deferred) == 1 and len(first.sent) == 1
    assert handler.received == [("mn001@truong.q8.test",)]
    bounce, later, _ = outbox_rows(engine)
    assert bounce["last_error"].startswith("rejected: ") and bounce["sent_at"] is None
    assert later["attempts"] == 1 and "451" in later["last_error"]

    for _ in range(MAX_ATTEMPTS + 2):
        flush_outbox(engine, config)
    bounce, later, _ = outbox_rows(engine)
    assert bounce["attempts"] == MAX_ATTEMPTS and later["attempts"] == MAX_ATTEMPTS
    assert flush_outbox(engine, config).remaining == 0  # both given up, recorded, not tried forever
    assert handler.received == [("mn001@truong.q8.test",)]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_flushes_at_once_send_each_message_once(engine: Engine) -> None:
    handler = _Picky(delay=0.05)
    port = free_port()
    controller = Controller(handler, hostname=HOST, port=port, ready_timeout=10)
    controller.start()
    config = SmtpConfig(HOST, port, from_addr="gec@q8.test", ssl="plain", timeout=10)
    queue_mail(engine, [mail(f"m{index}", f"s{index}@truong.q8.test") for index in range(12)])
    results = []
    try:
        threads = [threading.Thread(target=lambda: results.append(flush_outbox(engine, config)))
                   for _ in range(2)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        controller.stop()
    assert time.monotonic() - started < 60
    assert Counter(address for (address,) in handler.received) == Counter(
        f"s{index}@truong.q8.test" for index in range(12))
    assert sum(len(result.sent) for result in results) == 12
