"""Real mail servers on loopback for tests: a private Dovecot (IMAP) and an aiosmtpd sink (SMTP).

A pytest plugin: `pytest_plugins = ["tests.support.mailservers"]` (or `-p tests.support.mailservers`).
Fixtures: `dovecot` (session), `imap_mailbox` (per test, emptied), `smtp_server` (per test).
Each pytest-xdist worker is its own session, so each gets its own servers, ports and mail store.
Dovecot is a hard requirement (scripts/install-system-deps.sh installs it): missing means fail, not skip.
"""

from __future__ import annotations

import atexit
import contextlib
import imaplib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tasks.intake.mailbox import ImapConfig
from tasks.mail.smtp import SmtpConfig

HOST = "127.0.0.1"
IMAP_USER = "office@q8.test"
IMAP_PASSWORD = "secret"
SMTP_USER = "gec@q8.test"
SMTP_PASSWORD = "secret"
MAIL_UID = 65534  # nobody: Dovecot refuses to run mail processes as root
INSTALL_HINT = (
    "Dovecot is not installed: the IMAP tests drive a real server. Install Debian's dovecot-imapd "
    "(`make system-deps`, i.e. scripts/install-system-deps.sh, or `apt-get install -y dovecot-imapd`)."
)

_DOVECOT_CONF = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = {host}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:{root}/mail/%u
default_login_user = nobody
default_internal_user = root
default_internal_group = root
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={uid} home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
# No brute-force penalty: after a wrong-password test every later login would wait 4-15 s.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
"""


class MailServerStartError(RuntimeError):
    """A test mail server did not come up."""


def find_dovecot() -> str | None:
    """Return the dovecot binary; /usr/sbin is often not on a non-root PATH."""
    found = shutil.which("dovecot")
    if found:
        return found
    for candidate in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def free_port() -> int:
    """Return a loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
        return True
    return False


class OutageDrills:
    """Restart and outage drills for a loopback server that has `start()` and `stop()`."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def restart(self) -> None:
        """Stop and start again on the same port with the same mail."""
        self.stop()
        self.start()

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        """Drill an outage: the server is down inside the block and back up after it."""
        self.stop()
        try:
            yield
        finally:
            self.start()


@dataclass
class DovecotServer(OutageDrills):
    """A private Dovecot instance with one user, a throwaway mail store and outage controls."""

    binary: str
    root: Path
    port: int
    host: str = HOST
    user: str = IMAP_USER
    password: str = IMAP_PASSWORD
    startup_seconds: float = 0.0
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @classmethod
    def create(cls, binary: str) -> DovecotServer:
        """Lay out the config, user file and mail store in a fresh short temp dir."""
        # Short path on purpose: Dovecot's unix sockets live under base_dir (108-byte limit).
        root = Path(tempfile.mkdtemp(prefix="gec-dovecot-"))
        root.chmod(0o755)  # mkdtemp makes 0700; the mail uid must traverse it
        for sub in ("run", "state"):
            (root / sub).mkdir()
        mail = root / "mail"
        mail.mkdir(mode=0o755)
        os.chown(mail, MAIL_UID, MAIL_UID)
        (root / "users").write_text(f"{IMAP_USER}:{{PLAIN}}{IMAP_PASSWORD}\n")
        return cls(binary=binary, root=root, port=free_port())

    @property
    def config_path(self) -> Path:
        return self.root / "dovecot.conf"

    def _write_config(self) -> None:
        self.config_path.write_text(
            _DOVECOT_CONF.format(root=self.root, host=self.host, port=self.port, uid=MAIL_UID)
        )

    def start(self, timeout: float = 20.0) -> None:
        """Start Dovecot in the foreground as our child and wait for the IMAP greeting."""
        if self.is_running():
            return
        self._write_config()
        started = time.monotonic()
        log = (self.root / "master.out").open("ab")
        self._process = subprocess.Popen(
            [self.binary, "-F", "-c", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise MailServerStartError(
                    f"dovecot exited with {self._process.returncode}:\n{self.log_tail()}"
                )
            if self._greets():
                # Make sure the greeting was ours, not another xdist worker's server on a reused port.
                time.sleep(0.05)
                if self._process.poll() is not None:
                    break
                self.startup_seconds = time.monotonic() - started
                return
            time.sleep(0.05)
        self.stop()
        raise MailServerStartError(f"dovecot did not answer on {self.host}:{self.port}:\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop Dovecot and wait until its port is closed."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        deadline = time.monotonic() + timeout
        while _port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def cleanup(self) -> None:
        """Stop the server and remove its files."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        text = ""
        for name in ("dovecot.log", "master.out"):
            path = self.root / name
            if path.exists():
                text += path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def _greets(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as sock:
                return sock.recv(64).startswith(b"* OK")
        except OSError:
            return False

    # --- client-side helpers for tests ---------------------------------------------------------

    def imap_config(self, folder: str = "INBOX", *, timeout: float = 10.0) -> ImapConfig:
        """Return the config tasks.intake.mailbox needs to reach this server."""
        return ImapConfig(self.host, self.port, self.user, self.password, folder, "plain", timeout)

    @property
    def env(self) -> dict[str, str]:
        """GEC_IMAP_* variables pointing at this server (for monkeypatch.setenv)."""
        return {
            "GEC_IMAP_HOST": self.host,
            "GEC_IMAP_PORT": str(self.port),
            "GEC_IMAP_USER": self.user,
            "GEC_IMAP_PASSWORD": self.password,
            "GEC_IMAP_FOLDER": "INBOX",
            "GEC_IMAP_SSL": "plain",
        }

    @contextlib.contextmanager
    def client(self) -> Iterator[imaplib.IMAP4]:
        """Yield a logged-in imaplib connection."""
        conn = imaplib.IMAP4(self.host, self.port, timeout=10)
        try:
            conn.login(self.user, self.password)
            yield conn
        finally:
            with contextlib.suppress(Exception):
                conn.logout()

    def append(
        self,
        raw: bytes,
        folder: str = "INBOX",
        internaldate: datetime | None = None,
        flags: str = "",
    ) -> None:
        """Deliver a raw message into a folder, with the given INTERNALDATE (server receipt time)."""
        date = imaplib.Time2Internaldate(internaldate) if internaldate is not None else None
        with self.client() as conn:
            if folder != "INBOX":
                conn.create(_quote(folder))  # NO when it exists already: fine
            typ, data = conn.append(_quote(folder), f"({flags})" if flags else None, date, raw)
            assert typ == "OK", (typ, data)

    def folders(self) -> list[str]:
        """Return every folder name."""
        with self.client() as conn:
            typ, data = conn.list()
            assert typ == "OK", data
        names = []
        for line in data:
            if isinstance(line, bytes):
                # (\HasNoChildren) "/" "Processed"  or  ... "/" INBOX
                names.append(line.rsplit(b' "/" ', 1)[-1].strip().strip(b'"').decode())
        return sorted(names)

    def messages(self, folder: str = "INBOX") -> list[tuple[bytes, set[str]]]:
        """Return (raw bytes, flags) of every message in a folder, in UID order, without marking seen."""
        with self.client() as conn:
            typ, data = conn.select(_quote(folder), readonly=True)
            if typ != "OK":
                return []
            if int(data[0] or 0) == 0:
                return []
            typ, data = conn.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
            assert typ == "OK", data
        found = []
        for element in data:
            if isinstance(element, tuple):
                head = element[0].decode("ascii", "replace")
                flags = head.split("FLAGS (", 1)[1].split(")", 1)[0].split() if "FLAGS (" in head else []
                found.append((bytes(element[1]), set(flags)))
            elif isinstance(element, bytes) and b"FLAGS (" in element and found:
                # Some servers send FLAGS after the literal.
                tail = element.decode("ascii", "replace").split("FLAGS (", 1)[1].split(")", 1)[0]
                found[-1] = (found[-1][0], found[-1][1] | set(tail.split()))
        return found

    def reset(self) -> None:
        """Empty INBOX and delete every other folder (Processed, Rejected, ...)."""
        with self.client() as conn:
            typ, data = conn.select("INBOX")
            assert typ == "OK", data
            if int(data[0] or 0):
                conn.store("1:*", "+FLAGS.SILENT", r"(\Deleted)")
                conn.expunge()
            conn.close()
        for name in self.folders():
            if name != "INBOX":
                with self.client() as conn:
                    conn.unsubscribe(_quote(name))
                    conn.delete(_quote(name))


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class CapturedMessage:
    """One message the SMTP sink accepted."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    message: EmailMessage
    login: str | None


class _Sink:
    """aiosmtpd handler that keeps every message."""

    def __init__(self, messages: list[CapturedMessage]) -> None:
        self.messages = messages

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        login = session.auth_data.decode() if isinstance(session.auth_data, bytes) else session.auth_data
        self.messages.append(
            CapturedMessage(
                mail_from=envelope.mail_from,
                rcpt_tos=list(envelope.rcpt_tos),
                data=data,
                message=BytesParser(policy=policy.default).parsebytes(data),  # type: ignore[arg-type]
                login=login,
            )
        )
        return "250 Message accepted for delivery"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    """Accept only SMTP_USER / SMTP_PASSWORD, so a wrong login is testable."""
    if isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        SMTP_USER.encode(),
        SMTP_PASSWORD.encode(),
    ):
        return AuthResult(success=True, auth_data=auth_data.login)
    return AuthResult(success=False, handled=False)


@dataclass
class SmtpServer(OutageDrills):
    """An aiosmtpd server in a thread that keeps what it receives, with outage controls."""

    port: int
    host: str = HOST
    messages: list[CapturedMessage] = field(default_factory=list)
    startup_seconds: float = 0.0
    _controller: Controller | None = field(default=None, repr=False)

    def start(self) -> None:
        """Start listening (a fresh Controller each time: a stopped one cannot be reused)."""
        if self._controller is not None:
            return
        started = time.monotonic()
        controller = Controller(
            _Sink(self.messages),
            hostname=self.host,
            port=self.port,
            authenticator=_authenticate,
            auth_require_tls=False,  # loopback only; lets tests exercise login without certificates
            ready_timeout=10,
        )
        controller.start()
        self._controller = controller
        self.startup_seconds = time.monotonic() - started

    def stop(self) -> None:
        """Stop listening; later connections are refused."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def is_running(self) -> bool:
        return self._controller is not None

    def smtp_config(self, *, login: bool = False, timeout: float = 10.0) -> SmtpConfig:
        """Return the config tasks.mail.smtp needs to reach this server."""
        return SmtpConfig(
            host=self.host,
            port=self.port,
            user=SMTP_USER if login else "",
            password=SMTP_PASSWORD if login else "",
            from_addr="Phòng GD&ĐT Quận 8 <gec@q8.test>",
            ssl="plain",
            timeout=timeout,
        )

    @property
    def env(self) -> dict[str, str]:
        """GEC_SMTP_* variables pointing at this server (for monkeypatch.setenv)."""
        return {
            "GEC_SMTP_HOST": self.host,
            "GEC_SMTP_PORT": str(self.port),
            "GEC_SMTP_USER": "",
            "GEC_SMTP_PASSWORD": "",
            "GEC_SMTP_FROM": "Phòng GD&ĐT Quận 8 <gec@q8.test>",
            "GEC_SMTP_SSL": "plain",
        }


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """Start a private Dovecot for this session (this xdist worker); fail loudly if it cannot."""
    binary = find_dovecot()
    if binary is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    if os.geteuid() != 0:
        # This layout (TESTING-NOTES) needs root: Dovecot chroots its login processes and runs
        # mail as uid 65534. The CI container and `make test` run as root.
        pytest.fail(
            "the dovecot fixture must run as root (it starts Dovecot as in TESTING-NOTES)", pytrace=False
        )
    server = None
    error: Exception | None = None
    for _ in range(3):  # another worker may grab the free port between our probe and Dovecot's bind
        server = DovecotServer.create(binary)
        try:
            server.start()
            break
        except MailServerStartError as exc:
            error = exc
            server.cleanup()
            server = None
    if server is None:
        pytest.fail(f"could not start dovecot: {error}", pytrace=False)
    atexit.register(server.cleanup)  # a crashed session must not leave a daemon behind
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def imap_mailbox(dovecot: DovecotServer) -> Iterator[DovecotServer]:
    """Give a test the Dovecot server running, with INBOX empty and no Processed/Rejected folder."""
    dovecot.start()  # an earlier outage drill may have left it down
    dovecot.reset()
    yield dovecot
    dovecot.start()
    dovecot.reset()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """Start an SMTP sink on a free loopback port for one test."""
    server = SmtpServer(port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
