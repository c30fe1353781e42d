"""The IMAP edge of intake (SPEC §4): read unseen messages without marking them, file them after commit.

Plain `imaplib` on purpose: intake needs exactly UID SEARCH, UID FETCH with INTERNALDATE (the received
time the SPEC asks for) and BODY.PEEK[] (so a crashed run leaves messages unseen), and UID MOVE.
Nothing here ever deletes a message except the expunge that completes a move on servers without MOVE.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import imaplib
import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from typing import TYPE_CHECKING

from imap_tools.imap_utf7 import utf7_encode

from config.settings import TIMEZONE
from tasks.intake.sniff import oversize_stub

if TYPE_CHECKING:
    from config.settings import Settings

SSL_MODES = ("ssl", "starttls", "plain")
PROCESSED_FOLDER = "Processed"
REJECTED_FOLDER = "Rejected"

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1
    )
}
_INTERNALDATE = re.compile(
    rb'INTERNALDATE "\s*(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})"'
)
_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
# The largest message fetched whole (issue 11 #7): what one message may store (40 MB of workbooks,
# `mail_extract.MAX_MESSAGE_KEPT_BYTES`) in base64, plus room for the text. A larger message is
# never downloaded: its headers are, and it is answered and recorded as one too-large file.
MAX_MESSAGE_BYTES = 56 * 1024 * 1024
OVERSIZE_NAME = "(thư quá lớn).xlsx"
# Headers carried over to the stand-in of a message too large to fetch (who, what, which thread).
_KEPT_HEADERS = ("From", "Sender", "Reply-To", "To", "Cc", "Subject", "Date", "Message-ID", "In-Reply-To",
                 "References")


class MailboxUnavailable(RuntimeError):
    """The IMAP server could not be reached, refused the login or failed a command."""


@dataclass(frozen=True)
class ImapConfig:
    """Where the shared mailbox is and how to log in."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    folder: str = "INBOX"
    ssl: str = "ssl"  # ssl | starttls | plain (plain only for loopback tests)
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.ssl not in SSL_MODES:
            raise ValueError(f"IMAP ssl mode must be one of {', '.join(SSL_MODES)}, not {self.ssl!r}")

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> ImapConfig:
        """Build the config from GEC_IMAP_* settings."""
        if settings is None:
            from config.settings import get_settings

            settings = get_settings()
        return cls(
            host=settings.imap_host,
            port=settings.imap_port,
            user=settings.imap_user,
            password=settings.imap_password.get_secret_value(),
            folder=settings.imap_folder,
            ssl=settings.imap_ssl.strip().lower(),
        )

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class MailItem:
    """One fetched message: its UID in the configured folder, raw bytes and server receipt time."""

    uid: str
    raw: bytes = field(repr=False)
    internaldate: datetime  # when the server received it (SPEC: received time), in Asia/Ho_Chi_Minh
    uidvalidity: int | None = None  # with uid, identifies the message across sessions


def fetch_unseen(config: ImapConfig, limit: int = 50) -> list[MailItem]:
    """Return up to `limit` unseen, undeleted messages, oldest first, without marking them seen."""
    if limit <= 0:
        return []
    with _session(config) as conn:
        # EXAMINE (read-only) as well as BODY.PEEK: a fetch must never change the mailbox.
        _ok(conn.select(_mailbox(config.folder), readonly=True), config, f"open folder {config.folder!r}")
        uidvalidity = _uidvalidity(conn)
        # UNDELETED: a message another client flagged \Deleted is on its way out; leave it alone.
        typ, data = conn.uid("SEARCH", None, "UNSEEN", "UNDELETED")
        _ok((typ, data), config, "search unseen messages")
        uids = sorted({int(uid) for uid in (data[0] or b"").split() if uid.isdigit()})[:limit]
        sizes = _sizes(conn, config, uids)
        items = []
        for uid in uids:
            size = sizes.get(str(uid), 0)
            # Sizes first: a message over the limit is never downloaded, only its headers.
            part = "BODY.PEEK[HEADER]" if size > MAX_MESSAGE_BYTES else "BODY.PEEK[]"
            typ, data = conn.uid("FETCH", str(uid), f"(UID INTERNALDATE {part})")
            _ok((typ, data), config, f"fetch message {uid}")
            fetched = _parse_fetch(data, str(uid), "BODY[HEADER]" if size > MAX_MESSAGE_BYTES else "BODY[]")
            if fetched is None:
                continue  # expunged by another client since the search
            raw, internaldate = fetched
            if size > MAX_MESSAGE_BYTES:
                raw = oversize_message(raw, size, f"{uidvalidity}:{uid}")
            if internaldate is None:
                # Never guess the received time: it decides whether a school was on time.
                raise MailboxUnavailable(
                    f"IMAP server {config.where} sent no readable INTERNALDATE for {uid}"
                )
            items.append(MailItem(str(uid), raw, internaldate.astimezone(TIMEZONE), uidvalidity))
        return items


def move_message(config: ImapConfig, uid: str | int, folder: str) -> bool:
    """Move one message out of the configured folder into `folder` (created if missing).

    Returns False when the UID is no longer there (already moved by an earlier, interrupted run).
    """
    uid = str(uid)
    if not uid.isdigit():
        raise ValueError(f"not an IMAP UID: {uid!r}")
    if folder == config.folder:
        raise ValueError(f"cannot move a message into its own folder {folder!r}")
    target = _mailbox(folder)
    with _session(config) as conn:
        capabilities = _capabilities(conn)
        _ensure_folder(conn, config, folder)
        _ok(conn.select(_mailbox(config.folder)), config, f"open folder {config.folder!r}")
        # UNDELETED: without UIDPLUS an earlier move leaves the original flagged; do not copy it twice.
        typ, data = conn.uid("SEARCH", None, "UID", uid, "UNDELETED")
        _ok((typ, data), config, f"look up message {uid}")
        if uid.encode() not in (data[0] or b"").split():
            return False
        if "MOVE" in capabilities:
            _ok(conn.uid("MOVE", uid, target), config, f"move message {uid} to {folder!r}")
            return True
        _ok(conn.uid("COPY", uid, target), config, f"copy message {uid} to {folder!r}")
        _ok(conn.uid("STORE", uid, "+FLAGS.SILENT", r"(\Seen \Deleted)"), config, f"flag message {uid}")
        if "UIDPLUS" in capabilities:
            # UID EXPUNGE removes only this message; a plain EXPUNGE would also remove whatever
            # another client had flagged \Deleted, which we must never do.
            _ok(conn.uid("EXPUNGE", uid), config, f"expunge message {uid}")
        return True


def check_mailbox(config: ImapConfig) -> None:
    """Log in and open the folder once; raise MailboxUnavailable when either fails."""
    with _session(config) as conn:
        _ok(conn.select(_mailbox(config.folder), readonly=True), config, f"open folder {config.folder!r}")


@contextmanager
def _session(config: ImapConfig) -> Iterator[imaplib.IMAP4]:
    """Connect and log in; turn every socket, TLS or protocol failure into MailboxUnavailable."""
    conn: imaplib.IMAP4 | None = None
    try:
        if config.ssl == "ssl":
            conn = imaplib.IMAP4_SSL(
                config.host, config.port, ssl_context=ssl.create_default_context(), timeout=config.timeout
            )
        else:
            conn = imaplib.IMAP4(config.host, config.port, timeout=config.timeout)
            if config.ssl == "starttls":
                conn.starttls(ssl.create_default_context())
        try:
            typ, data = conn.login(config.user, config.password)
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:  # a NO to LOGIN: wrong user or password, not an outage
            detail = exc.args[0] if exc.args else b""
            if isinstance(detail, bytes):
                detail = detail.decode("utf-8", "replace")
            raise MailboxUnavailable(
                f"IMAP server {config.where} refused the login of {config.user!r}: {detail}"
            ) from exc
        _ok((typ, data), config, "log in")
        yield conn
    except MailboxUnavailable:
        raise
    except (OSError, imaplib.IMAP4.error) as exc:  # IMAP4.abort and readonly are IMAP4.error too
        raise MailboxUnavailable(f"IMAP server {config.where} unavailable: {_describe(exc)}") from exc
    finally:
        if conn is not None:
            try:
                conn.logout()
            except Exception:  # the connection may already be gone; nothing left to release
                pass


def _ok(response: tuple[str, list], config: ImapConfig, action: str) -> None:
    typ, data = response
    if typ != "OK":
        detail = b" ".join(item for item in data if isinstance(item, bytes)).decode("utf-8", "replace")
        raise MailboxUnavailable(f"IMAP server {config.where} could not {action}: {typ} {detail}".strip())


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _mailbox(name: str) -> bytes:
    """Return a folder name as an IMAP quoted string in modified UTF-7 (imaplib quotes nothing)."""
    encoded = utf7_encode(name)
    return b'"' + encoded.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def _capabilities(conn: imaplib.IMAP4) -> set[str]:
    """Ask again after login: servers such as Dovecot list MOVE and UIDPLUS only then."""
    typ, data = conn.capability()
    if typ != "OK" or not data or not isinstance(data[0], bytes):
        return {cap.upper() for cap in conn.capabilities}
    return {cap.upper() for cap in data[0].decode("ascii", "replace").split()}


def _uidvalidity(conn: imaplib.IMAP4) -> int | None:
    _, data = conn.response("UIDVALIDITY")
    try:
        return int(data[0]) if data and data[0] is not None else None
    except (TypeError, ValueError):
        return None


def _ensure_folder(conn: imaplib.IMAP4, config: ImapConfig, folder: str) -> None:
    target = _mailbox(folder)
    typ, data = conn.list(b'""', target)
    _ok((typ, data), config, "list folders")
    if any(isinstance(item, bytes) and item.strip() for item in data):
        return
    typ, data = conn.create(target)
    # Two runs may race to create it; the loser's NO [ALREADYEXISTS] is fine.
    if typ != "OK" and b"ALREADYEXISTS" not in b" ".join(d for d in data if isinstance(d, bytes)).upper():
        _ok((typ, data), config, f"create folder {folder!r}")
    conn.subscribe(target)  # so mail clients show the folder; failure here changes nothing


def _sizes(conn: imaplib.IMAP4, config: ImapConfig, uids: list[int]) -> dict[str, int]:
    """Return RFC822.SIZE by UID for the messages about to be fetched (one command for all)."""
    if not uids:
        return {}
    typ, data = conn.uid("FETCH", ",".join(map(str, uids)), "(UID RFC822.SIZE)")
    _ok((typ, data), config, "fetch message sizes")
    sizes = {}
    for element in data:
        meta = element[0] if isinstance(element, tuple) else element
        if not isinstance(meta, bytes):
            continue
        uid, size = _UID.search(meta), _SIZE.search(meta)
        if uid and size:
            sizes[uid.group(1).decode()] = int(size.group(1))
    return sizes


def oversize_message(header: bytes, size: int, key: str) -> bytes:
    """Return a stand-in for a message too large to fetch: its headers and one oversize stub.

    The stub becomes a `too_large` submission (the school shows `received_invalid`) and the sender
    is answered like for any too-large file; the sha256 names the message (mailbox, UID, size).
    """
    original = email.message_from_bytes(header, policy=email.policy.default)
    stand_in = EmailMessage()
    for name in _KEPT_HEADERS:
        value = original.get(name)
        if value is not None:
            try:
                stand_in[name] = str(value)
            except (ValueError, TypeError):  # a header the writer refuses: the others still go
                continue
    stand_in.set_content("")
    digest = hashlib.sha256(f"{key}:{size}:".encode() + header).hexdigest()
    stand_in.add_attachment(oversize_stub(size, digest), maintype="application", subtype="octet-stream",
                            filename=OVERSIZE_NAME)
    return stand_in.as_bytes(policy=email.policy.SMTP)


def _parse_fetch(data: list, uid: str, item: str = "BODY[]") -> tuple[bytes, datetime | None] | None:
    """Find the BODY[] (or BODY[HEADER]) literal and INTERNALDATE of `uid` in an imaplib FETCH response."""
    for index, element in enumerate(data):
        if not isinstance(element, tuple) or len(element) != 2:
            continue
        head, body = element
        # Servers may put INTERNALDATE after the literal; imaplib leaves that in the next element.
        tail = data[index + 1] if index + 1 < len(data) and isinstance(data[index + 1], bytes) else b""
        meta = head + b" " + tail
        found_uid = _UID.search(meta)
        if found_uid and found_uid.group(1).decode() != uid:
            continue
        if item.encode() not in head.upper():
            continue
        return bytes(body), _internaldate(meta)
    return None


def _internaldate(meta: bytes) -> datetime | None:
    """Parse `INTERNALDATE "17-Jul-1996 02:44:25 -0700"` into an aware datetime."""
    match = _INTERNALDATE.search(meta)
    if match is None:
        return None
    day, month, year, hour, minute, second, sign, off_h, off_m = (g.decode() for g in match.groups())
    if month.title() not in _MONTHS:
        return None
    offset = timedelta(hours=int(off_h), minutes=int(off_m)) * (-1 if sign == "-" else 1)
    try:
        return datetime(
            int(year),
            _MONTHS[month.title()],
            int(day),
            int(hour),
            int(minute),
            int(second),
            tzinfo=timezone(offset),
        )
    except ValueError:  # day 31 of February, offset beyond 24 h...
        return None
