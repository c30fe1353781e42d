"""Noticing that something arrived (SPEC §4 intake, issue 15 item 5): IMAP IDLE and drop-folder polling.

Plain logic, no Prefect: `flows.watch` turns "something arrived" into a collect run.

- `MailboxWatcher` keeps one IMAP connection open and answers "did new mail land since I last said
  so?". New mail means the folder's UIDNEXT moved (or its UIDVALIDITY changed): that survives
  reconnects, so mail appended while the server was down, or while a collect was running, is noticed on
  the next look. Between looks it waits in IDLE (RFC 2177), re-issued at least every 25 minutes so the
  server never drops an idle client; a server without IDLE is polled with EXAMINE instead.
- `FolderWatcher` polls the drop folder by name, size and modification time, and reports a change only
  once the folder has stayed the same for one poll, so a file still being copied is not collected half
  written.
- `Backoff`: exponential delays for reconnecting after an outage.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import select
import ssl
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from tasks.intake.folder import is_candidate
from tasks.intake.mailbox import ImapConfig, MailboxUnavailable, _capabilities, _mailbox, _ok, _session

# RFC 2177: clients should re-issue IDLE at least every 29 minutes; 25 leaves room for slow links.
IDLE_MAX_SECONDS = 25 * 60
# How often a blocked wait looks at its stop flag: the bound on how long SIGTERM takes to be obeyed.
STOP_CHECK_SECONDS = 0.5
# Without IDLE the mailbox is looked at this often.
POLL_SECONDS = 10.0

_UIDNEXT = re.compile(rb"\[UIDNEXT (\d+)\]")
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_UNTAGGED_CHANGE = re.compile(rb"^\* (\d+) (EXISTS|RECENT)\b", re.IGNORECASE)
_IDLE_TAG = b"GECW"


# --------------------------------------------------------------------------------------------------
# Backoff


@dataclass
class Backoff:
    """Exponential delays (first, 2×first, … up to `ceiling`); `reset()` after a success."""

    first: float = 1.0
    ceiling: float = 60.0
    _next: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        if self.first <= 0 or self.ceiling < self.first:
            raise ValueError("backoff needs 0 < first <= ceiling")
        self._next = self.first

    def next_delay(self) -> float:
        """Return the delay to wait now, and double the next one (up to the ceiling)."""
        delay = self._next
        self._next = min(self._next * 2, self.ceiling)
        return delay

    def reset(self) -> None:
        """Start again from the first delay."""
        self._next = self.first


# --------------------------------------------------------------------------------------------------
# Mailbox


@dataclass(frozen=True)
class FolderMark:
    """Where the mailbox folder stood: UIDVALIDITY and UIDNEXT (the UID the next message will get)."""

    uidvalidity: int | None
    uidnext: int | None


class MailboxWatcher:
    """One IMAP connection that waits for new mail in the configured folder, reconnecting on demand."""

    def __init__(self, config: ImapConfig) -> None:
        self.config = config
        self.mark: FolderMark | None = None  # None until the first look: nothing to compare with yet
        self._stack: ExitStack | None = None
        self._conn: imaplib.IMAP4 | None = None
        self._idle = False
        self._idle_capable: bool | None = None

    # -- public ---------------------------------------------------------------------------------

    def wait(self, timeout: float, stop: threading.Event | None = None) -> bool:
        """Return True as soon as new mail is in the folder, False after `timeout` s or on `stop`.

        New means: arrived after the previous call that returned True (or after the first look).
        Raise MailboxUnavailable when the server cannot be reached or drops the connection; the next
        call reconnects, and mail that arrived in between is reported then.
        """
        deadline = time.monotonic() + max(timeout, 0.0)
        try:
            while True:
                if self._look():
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (stop is not None and stop.is_set()):
                    return False
                slice_ = min(remaining, IDLE_MAX_SECONDS)
                if self._supports_idle():
                    if not self._idle_until_change(slice_, stop):
                        return False
                elif not _sleep(min(slice_, POLL_SECONDS), stop):
                    return False
        except MailboxUnavailable:
            self.close()
            raise
        except (OSError, imaplib.IMAP4.error) as exc:
            self.close()
            raise MailboxUnavailable(f"IMAP server {self.config.where} unavailable: {exc}") from exc

    def close(self) -> None:
        """Log out (best effort) and forget the connection; the mark is kept for the next connection."""
        stack, self._stack, self._conn, self._idle = self._stack, None, None, False
        self._idle_capable = None
        if stack is not None:
            with contextlib.suppress(Exception):
                stack.close()

    def __enter__(self) -> MailboxWatcher:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------------

    def _connection(self) -> imaplib.IMAP4:
        if self._conn is None:
            stack = ExitStack()
            self._conn = stack.enter_context(_session(self.config))
            self._stack = stack
        return self._conn

    def _supports_idle(self) -> bool:
        if self._idle_capable is None:
            self._idle_capable = "IDLE" in _capabilities(self._connection())
        return self._idle_capable

    def _look(self) -> bool:
        """EXAMINE the folder; return True when it moved since the mark (and move the mark)."""
        conn = self._connection()
        typ, data = conn.select(_mailbox(self.config.folder), readonly=True)
        _ok((typ, data), self.config, f"open folder {self.config.folder!r}")
        current = FolderMark(_response_int(conn, "UIDVALIDITY"), _response_int(conn, "UIDNEXT"))
        previous, self.mark = self.mark, current
        if previous is None:
            return False
        return current != previous

    def _idle_until_change(self, seconds: float, stop: threading.Event | None) -> bool:
        """IDLE up to `seconds`; return True when the server announced a change, False otherwise."""
        conn = self._connection()
        tag = _IDLE_TAG + str(int(time.monotonic() * 1000) % 10**9).encode()
        conn.send(tag + b" IDLE\r\n")
        self._idle = True
        while True:  # untagged updates may come before the continuation
            line = _read_line(conn)
            if line.startswith(b"+"):
                break
            if line.startswith(tag):
                self._idle = False
                raise MailboxUnavailable(
                    f"IMAP server {self.config.where} refused IDLE: {line.decode('utf-8', 'replace').strip()}"
                )
        changed = False
        deadline = time.monotonic() + seconds
        try:
            while not changed:
                if stop is not None and stop.is_set():
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                if not _readable(conn, min(remaining, STOP_CHECK_SECONDS)):
                    continue
                line = _read_line(conn)
                if line.startswith(b"* BYE"):
                    raise MailboxUnavailable(f"IMAP server {self.config.where} closed the connection: "
                                             f"{line.decode('utf-8', 'replace').strip()}")
                changed = bool(_UNTAGGED_CHANGE.match(line))
        except BaseException:
            self._idle = False  # the connection is dropped by the caller; no DONE on a broken link
            raise
        self._idle = False
        conn.send(b"DONE\r\n")
        while not (line := _read_line(conn)).startswith(tag):
            pass  # untagged updates sent before the server saw DONE
        if b" OK" not in line.upper():
            raise MailboxUnavailable(f"IMAP server {self.config.where} ended IDLE with "
                                     f"{line.decode('utf-8', 'replace').strip()}")
        return changed


def wait_for_mail(config: ImapConfig, timeout: float, stop: threading.Event | None = None) -> bool:
    """Connect, note where the folder stands, and return True if mail lands within `timeout` s."""
    with MailboxWatcher(config) as watcher:
        watcher.wait(0)  # the first look only sets the mark
        return watcher.wait(timeout, stop)


def _response_int(conn: imaplib.IMAP4, name: str) -> int | None:
    _, data = conn.response(name)
    try:
        return int(data[-1]) if data and data[-1] is not None else None
    except (TypeError, ValueError):
        return None


def _read_line(conn: imaplib.IMAP4) -> bytes:
    line = conn.readline()
    if not line:
        raise MailboxUnavailable("IMAP server closed the connection (EOF)")
    return line


def _readable(conn: imaplib.IMAP4, seconds: float) -> bool:
    """Return whether a line can be read now, or becomes readable within `seconds`."""
    sock = conn.sock
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    if _buffered(conn):
        return True
    readable, _, _ = select.select([sock], [], [], seconds)
    return bool(readable)


def _buffered(conn: imaplib.IMAP4) -> bool:
    """Return whether imaplib's reader already holds bytes (select() cannot see those)."""
    sock = conn.sock
    previous = sock.gettimeout()
    sock.settimeout(0)  # non-blocking: peek reads only what is already there
    try:
        return bool(conn.file.peek(1))
    except (BlockingIOError, ssl.SSLWantReadError):
        return False
    finally:
        sock.settimeout(previous)


def _sleep(seconds: float, stop: threading.Event | None) -> bool:
    """Sleep `seconds`; return False if `stop` was set meanwhile."""
    if stop is None:
        time.sleep(seconds)
        return True
    return not stop.wait(seconds)


# --------------------------------------------------------------------------------------------------
# Drop folder

Snapshot = dict[str, tuple[int, int]]  # file name -> (size, mtime_ns)


def folder_snapshot(inbox_dir: Path) -> Snapshot:
    """Return name -> (size, mtime_ns) of the files a collect would pick up (empty if no folder)."""
    found: Snapshot = {}
    try:
        entries = list(Path(inbox_dir).iterdir())
    except OSError:
        return found
    for entry in entries:
        if not is_candidate(entry):
            continue
        try:
            info = entry.stat()
        except OSError:
            continue  # moved away since iterdir
        found[entry.name] = (info.st_size, info.st_mtime_ns)
    return found


def arrived(before: Snapshot, now: Snapshot) -> list[str]:
    """Return the files that are new or changed (size or time) in `now`; removals are not arrivals."""
    return sorted(name for name, stat in now.items() if before.get(name) != stat)


@dataclass
class FolderWatcher:
    """Polls the drop folder; reports arrivals once the folder has been still for one poll."""

    inbox_dir: Path
    interval: float = 2.0
    _seen: Snapshot | None = field(default=None, init=False)

    def wait(self, timeout: float, stop: threading.Event | None = None) -> list[str]:
        """Return the files that arrived since the last report, waiting up to `timeout` s for any."""
        deadline = time.monotonic() + max(timeout, 0.0)
        if self._seen is None:
            self._seen = folder_snapshot(self.inbox_dir)
        while True:
            current = folder_snapshot(self.inbox_dir)
            new = arrived(self._seen, current)
            if new:
                # Still being written? Wait one interval and report only a still folder.
                if not _sleep(self.interval, stop):
                    return []
                settled = folder_snapshot(self.inbox_dir)
                if settled == current:
                    self._seen = settled
                    return new
                continue
            self._seen = current  # removals (archived by a collect) just move the baseline
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not _sleep(min(self.interval, remaining), stop):
                return []
