"""The SMTP edge of feedback and reminders (SPEC §4): hand one message to the office's mail server.

A message that cannot be handed over because the server is away raises `MailServerUnavailable`
(the caller keeps it queued for a later run); one the server refuses for good raises
`MessageRejected` (retrying will not help, so the caller should not keep trying).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import parseaddr
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from config.settings import Settings

SSL_MODES = ("ssl", "starttls", "plain")

log = logging.getLogger(__name__)


class MailServerUnavailable(RuntimeError):
    """The SMTP server could not be reached, refused the login or failed for now (4xx)."""


class MessageRejected(RuntimeError):
    """The SMTP server refused this message or all its recipients for good (5xx)."""


@dataclass(frozen=True)
class SmtpConfig:
    """Where the office's outgoing mail server is and how to log in."""

    host: str
    port: int
    user: str = ""
    password: str = field(default="", repr=False)
    from_addr: str = ""
    ssl: str = "ssl"  # ssl | starttls | plain (plain only for loopback tests)
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.ssl not in SSL_MODES:
            raise ValueError(f"SMTP ssl mode must be one of {', '.join(SSL_MODES)}, not {self.ssl!r}")

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> SmtpConfig:
        """Build the config from GEC_SMTP_* settings."""
        if settings is None:
            from config.settings import get_settings

            settings = get_settings()
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            user=settings.smtp_user,
            password=settings.smtp_password.get_secret_value(),
            from_addr=settings.smtp_from,
            ssl=settings.smtp_ssl.strip().lower(),
        )

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def send_message(config: SmtpConfig, msg: EmailMessage) -> None:
    """Send one message; fill in From from the config when the message has none."""
    if msg["From"] is None and config.from_addr:
        msg["From"] = config.from_addr
    # Bounces go to the office address even when From is a display alias.
    envelope_from = parseaddr(config.from_addr)[1] or None
    try:
        with _connect(config) as smtp:
            if config.user:
                smtp.login(config.user, config.password)
            refused = smtp.send_message(msg, from_addr=envelope_from)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        if codes and all(code >= 500 for code in codes):
            raise MessageRejected(
                f"SMTP server {config.where} refused every recipient: {exc.recipients}"
            ) from exc
        raise MailServerUnavailable(
            f"SMTP server {config.where} deferred the recipients: {exc.recipients}"
        ) from exc
    except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
        if exc.smtp_code >= 500:
            raise MessageRejected(
                f"SMTP server {config.where} refused the message: {_describe(exc)}"
            ) from exc
        raise MailServerUnavailable(
            f"SMTP server {config.where} deferred the message: {_describe(exc)}"
        ) from exc
    except (smtplib.SMTPException, OSError) as exc:  # refused connection, TLS, timeout, auth, drop
        raise MailServerUnavailable(f"SMTP server {config.where} unavailable: {_describe(exc)}") from exc
    if refused:
        # Delivered to the others; raising now would make a retry send it to them twice.
        log.warning("SMTP server %s refused some recipients: %s", config.where, sorted(refused))


def _connect(config: SmtpConfig) -> smtplib.SMTP:
    if config.ssl == "ssl":
        return smtplib.SMTP_SSL(
            config.host, config.port, timeout=config.timeout, context=ssl.create_default_context()
        )
    smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
    if config.ssl == "starttls":
        try:
            smtp.starttls(context=ssl.create_default_context())
        except BaseException:
            smtp.close()
            raise
    return smtp


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        detail = (
            exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
        )
        return f"{exc.smtp_code} {detail}"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
