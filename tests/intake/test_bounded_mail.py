"""Bounded mail on the real Dovecot server (issue 11 #7): sizes before bytes, and a refused attachment
or message is still a recorded, answered submission (the school shows `received_invalid`).
"""

from __future__ import annotations

import random

import pytest
from sqlalchemy import Engine, select

from db import models
from schemas.reference import Reference
from tasks.intake import mailbox
from tasks.intake.mailbox import fetch_unseen
from tasks.intake.sniff import stub_size
from tasks.operator.status import cycle_status
from tests.mail.test_mail_intake import (  # noqa: F401  (fixtures are used by name)
    ARRIVED,
    H1,
    collect,
    db,
    outlook,
    reference,
    replies_to,
    reply_for,
    text_of,
    workbook,
)
from tests.support.mailservers import DovecotServer, SmtpServer

MESSAGE_LIMIT = 1024 * 1024


def _state(engine: Engine, reference: Reference, code: str) -> str:  # noqa: F811
    return next(row["state"] for row in cycle_status(engine, reference, H1)["schools"] if row["code"] == code)


def test_a_message_over_the_size_limit_is_never_downloaded_but_recorded_and_answered(
    db: Engine, reference: Reference, imap_mailbox: DovecotServer, smtp_server: SmtpServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(mailbox, "MAX_MESSAGE_BYTES", MESSAGE_LIMIT)
    sender = reference.schools["MN003"].emails[0]
    attached = [("Báo cáo MN003.xlsx", random.randbytes(2 * MESSAGE_LIMIT))]
    huge = outlook(sender, "MN003", "Báo cáo MN003", attached)
    imap_mailbox.append(huge, internaldate=ARRIVED)
    small = reference.schools["MN001"].emails[0]
    imap_mailbox.append(outlook(small, "MN001", "BC", [("MN001.xlsx", workbook(reference, "MN001"))]),
                        internaldate=ARRIVED)

    fetched = fetch_unseen(imap_mailbox.imap_config())
    assert len(fetched) == 2 and len(fetched[0].raw) < 4096 < len(huge)  # headers only, never the body
    assert b"Message-ID" in fetched[0].raw or b"Message-Id" in fetched[0].raw

    run = collect(db, reference, imap_mailbox, smtp_server)
    states = {outcome.school_code: outcome.state for outcome in run.outcomes}
    assert states == {"MN003": "rejected", "MN001": "accepted"}
    assert _state(db, reference, "MN003") == "received_invalid"
    with db.connect() as conn:
        stored = conn.execute(select(models.ReceivedFile.content)
                              .where(models.ReceivedFile.sender.contains("mn003"))).scalar_one()
    assert (stub_size(stored) or 0) > 2 * MESSAGE_LIMIT and len(stored) < 200
    assert replies_to(smtp_server)[sender] == 1
    assert "Tệp quá lớn" in text_of(reply_for(smtp_server, sender))
    assert imap_mailbox.messages("INBOX") == []  # filed: the next run does not meet it again


def test_an_attachment_over_the_file_limit_is_a_too_large_submission(
    db: Engine, reference: Reference, imap_mailbox: DovecotServer, smtp_server: SmtpServer,  # noqa: F811
) -> None:
    sender = reference.schools["MN002"].emails[0]
    imap_mailbox.append(outlook(sender, "MN002", "BC", [("Báo cáo MN002.xlsx", random.randbytes(300_000))]),
                        internaldate=ARRIVED)
    run = collect(db, reference, imap_mailbox, smtp_server)
    [outcome] = run.outcomes
    assert (outcome.school_code, outcome.state) == ("MN002", "rejected")
    assert outcome.message is not None and outcome.message.startswith("Tệp quá lớn")
    assert _state(db, reference, "MN002") == "received_invalid"
    assert "Tệp quá lớn" in text_of(reply_for(smtp_server, sender))
