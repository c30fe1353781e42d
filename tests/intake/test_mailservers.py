"""The IMAP and SMTP edges against real servers on loopback (Dovecot, aiosmtpd)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage

import pytest

from config.settings import Settings
from tasks.intake import mailbox
from tasks.intake.mailbox import (
    PROCESSED_FOLDER,
    REJECTED_FOLDER,
    ImapConfig,
    MailboxUnavailable,
    fetch_unseen,
    move_message,
)
from tasks.mail.smtp import MailServerUnavailable, SmtpConfig, send_message
from tests.support.mailservers import DovecotServer, SmtpServer

ICT = timezone(timedelta(hours=7))


def school_mail(subject: str, body: str = "Trường gửi báo cáo.") -> bytes:
    """Return a small raw message with CRLF line ends, as IMAP hands them back."""
    msg = EmailMessage()
    msg["From"] = "Trường MN Họa Mi <hoami@q8.edu.vn>"
    msg["To"] = "office@q8.test"
    msg["Subject"] = subject
    msg["Date"] = "Mon, 01 May 2023 08:00:00 +0700"  # the sender's clock: never the received time
    msg.set_content(body)
    msg.add_attachment(
        b"PK\x03\x04demo", maintype="application", subtype="octet-stream", filename="Báo cáo.xlsx"
    )
    return msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def test_fetch_unseen_peeks_and_keeps_internaldate(imap_mailbox: DovecotServer) -> None:
    first, second = school_mail("Báo cáo 1"), school_mail("Báo cáo 2")
    on_time = datetime(2023, 5, 5, 23, 59, 30, tzinfo=ICT)
    late = datetime(2023, 5, 6, 0, 0, 5, tzinfo=UTC)
    imap_mailbox.append(first, internaldate=on_time)
    imap_mailbox.append(second, internaldate=late)
    imap_mailbox.append(school_mail("đã đọc"), internaldate=on_time, flags=r"\Seen")
    config = imap_mailbox.imap_config()

    items = fetch_unseen(config, limit=10)
    assert [item.raw for item in items] == [first, second]
    assert [item.internaldate for item in items] == [on_time, late]
    # Dovecot answers in its own zone; the edge hands back the SPEC's zone, same instant.
    assert all(item.internaldate.utcoffset() == timedelta(hours=7) for item in items)
    assert int(items[0].uid) < int(items[1].uid)
    assert items[0].uidvalidity is not None

    again = fetch_unseen(config, limit=10)
    assert [(item.uid, item.raw) for item in again] == [(item.uid, item.raw) for item in items]
    assert all(r"\Seen" not in flags for raw, flags in imap_mailbox.messages() if raw in (first, second))
    assert [item.raw for item in fetch_unseen(config, limit=1)] == [first]
    assert fetch_unseen(config, limit=0) == []


def test_move_to_processed_and_rejected(imap_mailbox: DovecotServer) -> None:
    accepted, rejected = school_mail("đúng"), school_mail("sai")
    imap_mailbox.append(accepted, internaldate=datetime(2023, 5, 2, 9, 0, tzinfo=ICT))
    imap_mailbox.append(rejected, internaldate=datetime(2023, 5, 2, 9, 5, tzinfo=ICT))
    config = imap_mailbox.imap_config()
    first, second = fetch_unseen(config, limit=10)
    assert PROCESSED_FOLDER not in imap_mailbox.folders()

    assert move_message(config, first.uid, PROCESSED_FOLDER) is True
    assert move_message(config, second.uid, REJECTED_FOLDER) is True

    assert imap_mailbox.folders() == ["INBOX", PROCESSED_FOLDER, REJECTED_FOLDER]
    assert [raw for raw, _ in imap_mailbox.messages(PROCESSED_FOLDER)] == [accepted]
    assert [raw for raw, _ in imap_mailbox.messages(REJECTED_FOLDER)] == [rejected]
    assert imap_mailbox.messages("INBOX") == []
    assert fetch_unseen(config, limit=10) == []
    # A retried move after the first one went through is a no-op, not an error.
    assert move_message(config, first.uid, PROCESSED_FOLDER) is False


def test_move_without_move_capability_copies_and_expunges_only_that_uid(
    imap_mailbox: DovecotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for subject in ("một", "hai"):
        imap_mailbox.append(school_mail(subject), internaldate=datetime(2023, 5, 2, tzinfo=ICT))
    # Another mail client flagged this one \Deleted without expunging: it must survive our move.
    flagged_by_someone = school_mail("ba")
    imap_mailbox.append(flagged_by_someone, flags=r"\Deleted")
    real = mailbox._capabilities
    monkeypatch.setattr(mailbox, "_capabilities", lambda conn: real(conn) - {"MOVE"})
    config = imap_mailbox.imap_config()
    first, second = fetch_unseen(config, limit=10)

    assert move_message(config, first.uid, PROCESSED_FOLDER) is True

    assert [raw for raw, _ in imap_mailbox.messages(PROCESSED_FOLDER)] == [first.raw]
    remaining = imap_mailbox.messages("INBOX")
    assert [raw for raw, _ in remaining] == [second.raw, flagged_by_someone]
    assert [item.raw for item in fetch_unseen(config, limit=10)] == [second.raw]


def test_move_without_uidplus_leaves_original_flagged_and_never_copies_twice(
    imap_mailbox: DovecotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = school_mail("một")
    imap_mailbox.append(raw, internaldate=datetime(2023, 5, 2, tzinfo=ICT))
    real = mailbox._capabilities
    monkeypatch.setattr(mailbox, "_capabilities", lambda conn: real(conn) - {"MOVE", "UIDPLUS"})
    config = imap_mailbox.imap_config()
    (item,) = fetch_unseen(config, limit=10)

    assert move_message(config, item.uid, PROCESSED_FOLDER) is True
    assert move_message(config, item.uid, PROCESSED_FOLDER) is False

    assert [m for m, _ in imap_mailbox.messages(PROCESSED_FOLDER)] == [raw]
    ((left, flags),) = imap_mailbox.messages("INBOX")
    assert left == raw and {r"\Seen", r"\Deleted"} <= flags
    assert fetch_unseen(config, limit=10) == []


def test_move_rejects_bad_arguments(imap_mailbox: DovecotServer) -> None:
    config = imap_mailbox.imap_config()
    with pytest.raises(ValueError):
        move_message(config, "1:*", PROCESSED_FOLDER)
    with pytest.raises(ValueError):
        move_message(config, "1", "INBOX")


def test_non_ascii_folder_names(imap_mailbox: DovecotServer) -> None:
    imap_mailbox.append(school_mail("x"), internaldate=datetime(2023, 5, 2, tzinfo=ICT))
    config = imap_mailbox.imap_config()
    (item,) = fetch_unseen(config, limit=5)
    assert move_message(config, item.uid, "Báo cáo/Đã xử lý") is True
    assert fetch_unseen(imap_mailbox.imap_config("Báo cáo/Đã xử lý"), limit=5)[0].raw == item.raw


def test_dovecot_stopped_raises_mailbox_unavailable(imap_mailbox: DovecotServer) -> None:
    imap_mailbox.append(school_mail("x"), internaldate=datetime(2023, 5, 2, tzinfo=ICT))
    config = imap_mailbox.imap_config(timeout=5)
    with imap_mailbox.stopped():
        with pytest.raises(MailboxUnavailable, match=re.escape(f"127.0.0.1:{imap_mailbox.port}")):
            fetch_unseen(config, limit=10)
        with pytest.raises(MailboxUnavailable, match=re.escape(f"127.0.0.1:{imap_mailbox.port}")):
            move_message(config, "1", PROCESSED_FOLDER)
    assert len(fetch_unseen(config, limit=10)) == 1  # back after the outage, nothing lost


def test_wrong_password_and_wrong_tls_mode_raise_mailbox_unavailable(imap_mailbox: DovecotServer) -> None:
    good = imap_mailbox.imap_config(timeout=5)
    wrong_password = ImapConfig(good.host, good.port, good.user, "wrong", ssl="plain", timeout=5)
    with pytest.raises(MailboxUnavailable, match=r"log in|AUTHENTICATIONFAILED") as caught:
        fetch_unseen(wrong_password, limit=1)
    assert "wrong" not in str(caught.value)
    tls_to_plain = ImapConfig(good.host, good.port, good.user, good.password, ssl="ssl", timeout=5)
    with pytest.raises(MailboxUnavailable, match=re.escape(f"127.0.0.1:{good.port}")):
        fetch_unseen(tls_to_plain, limit=1)
    missing_folder = imap_mailbox.imap_config("Không có")
    with pytest.raises(MailboxUnavailable, match="Không có"):
        fetch_unseen(missing_folder, limit=1)


def test_imap_config_from_settings(dovecot: DovecotServer) -> None:
    settings = Settings(**{key.removeprefix("GEC_").lower(): value for key, value in dovecot.env.items()})
    config = ImapConfig.from_settings(settings)
    assert (config.host, config.port, config.user, config.folder, config.ssl) == (
        "127.0.0.1",
        dovecot.port,
        "office@q8.test",
        "INBOX",
        "plain",
    )
    assert dovecot.password not in repr(config)
    with pytest.raises(ValueError):
        ImapConfig("h", 1, "u", "p", ssl="tls")


def feedback(to: str = "hoami@q8.edu.vn") -> EmailMessage:
    msg = EmailMessage()
    msg["To"] = to
    msg["Subject"] = "Phản hồi báo cáo BĐG-TE: đã tiếp nhận"
    msg.set_content("Kính gửi Trường MN Họa Mi,\nBáo cáo đã được tiếp nhận.")
    msg.add_attachment(
        b"PK\x03\x04annotated",
        maintype="application",
        subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        filename="Báo cáo - góp ý.xlsx",
    )
    return msg


def test_send_message_reaches_the_server(smtp_server: SmtpServer) -> None:
    send_message(smtp_server.smtp_config(), feedback())

    (captured,) = smtp_server.messages
    assert captured.mail_from == "gec@q8.test"
    assert captured.rcpt_tos == ["hoami@q8.edu.vn"]
    assert captured.login is None
    msg = captured.message
    assert msg["Subject"] == "Phản hồi báo cáo BĐG-TE: đã tiếp nhận"
    assert msg["From"].addresses[0].display_name == "Phòng GD&ĐT Quận 8"
    assert "Báo cáo đã được tiếp nhận." in msg.get_body(("plain",)).get_content()
    (attachment,) = msg.iter_attachments()
    assert attachment.get_filename() == "Báo cáo - góp ý.xlsx"
    assert attachment.get_content() == b"PK\x03\x04annotated"


def test_send_message_logs_in_when_configured(smtp_server: SmtpServer) -> None:
    send_message(smtp_server.smtp_config(login=True), feedback())
    assert [m.login for m in smtp_server.messages] == ["gec@q8.test"]

    config = smtp_server.smtp_config(login=True)
    wrong = SmtpConfig(config.host, config.port, config.user, "wrong", config.from_addr, "plain", 5)
    with pytest.raises(MailServerUnavailable, match=re.escape(f"127.0.0.1:{config.port}")):
        send_message(wrong, feedback())


def test_smtp_stopped_raises_mail_server_unavailable(smtp_server: SmtpServer) -> None:
    config = smtp_server.smtp_config(timeout=5)
    with smtp_server.stopped():
        with pytest.raises(MailServerUnavailable, match=re.escape(f"127.0.0.1:{smtp_server.port}")):
            send_message(config, feedback())
    send_message(config, feedback())  # back after the outage
    assert len(smtp_server.messages) == 1


def test_smtp_tls_mode_against_plain_server_is_unavailable(smtp_server: SmtpServer) -> None:
    plain = smtp_server.smtp_config(timeout=5)
    for mode in ("ssl", "starttls"):
        config = SmtpConfig(plain.host, plain.port, from_addr=plain.from_addr, ssl=mode, timeout=5)
        with pytest.raises(MailServerUnavailable, match=re.escape(f"127.0.0.1:{plain.port}")):
            send_message(config, feedback())
    assert smtp_server.messages == []


def test_smtp_config_from_settings(smtp_server: SmtpServer) -> None:
    settings = Settings(**{key.removeprefix("GEC_").lower(): value for key, value in smtp_server.env.items()})
    config = SmtpConfig.from_settings(settings)
    assert (config.host, config.port, config.ssl, config.from_addr) == (
        "127.0.0.1",
        smtp_server.port,
        "plain",
        "Phòng GD&ĐT Quận 8 <gec@q8.test>",
    )
    send_message(config, feedback())
    assert len(smtp_server.messages) == 1
