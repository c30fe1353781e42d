"""How every e-mail to a school or the office is laid out: one body, plain text and HTML, phone-sized.

The words are in `schemas.messages`; this module shapes them. The plain-text part keeps short lines
(a phone shows 60-75 characters without scrolling sideways) and the HTML part is a single narrow
column that reflows on any screen.
"""

from __future__ import annotations

import datetime as dt
import html
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any, ClassVar

from config.settings import TIMEZONE, Settings, get_settings
from schemas import messages as vi

LINE_WIDTH = 72


def _wrap(text: str, first: str = "", rest: str = "") -> list[str]:
    """Wrap one paragraph (its own line breaks kept) to LINE_WIDTH, with the given indents."""
    lines: list[str] = []
    for number, part in enumerate(text.split("\n")):
        lead = first if number == 0 else rest
        lines += textwrap.wrap(part, LINE_WIDTH, initial_indent=lead, subsequent_indent=rest,
                               break_long_words=False, break_on_hyphens=False) or [lead.rstrip()]
    return lines


class Body:
    """An e-mail body built once and rendered twice: plain text and a small, inline-styled HTML."""

    _TONES: ClassVar[dict[str, str]] = {"good": "#1e7b34", "bad": "#b00020", "note": "#7a5b00"}

    def __init__(self) -> None:
        self._blocks: list[tuple[str, Any]] = []

    def heading(self, text: str) -> None:
        """Add a section heading."""
        self._blocks.append(("heading", text))

    def para(self, text: str, tone: str | None = None) -> None:
        """Add a paragraph; `tone` (good, bad, note) colours it in HTML."""
        if text:
            self._blocks.append(("para", (text, tone)))

    def items(self, title: str, lines: Sequence[str]) -> None:
        """Add a titled bullet list (nothing when there are no lines)."""
        if lines:
            self._blocks.append(("items", (title, list(lines))))

    def text(self) -> str:
        """Return the plain-text body, wrapped to short lines."""
        out: list[str] = []
        for kind, value in self._blocks:
            if kind == "heading":
                wrapped = _wrap(value)
                out += ["", *wrapped, "-" * min(max(len(line) for line in wrapped), LINE_WIDTH)]
            elif kind == "para":
                out += [*_wrap(value[0]), ""]
            else:
                title, lines = value
                out += _wrap(title)
                for line in lines:
                    out += _wrap(line, "  - ", "    ")
                out.append("")
        return "\n".join(out).strip() + "\n"

    def html(self) -> str:
        """Return the HTML body (every text escaped), one column that fits a phone."""
        out = ['<div style="font-family: Arial, sans-serif; font-size: 15px; line-height: 1.5; '
               'max-width: 640px; word-wrap: break-word;">']
        for kind, value in self._blocks:
            if kind == "heading":
                out.append(f'<h3 style="margin: 18px 0 6px; font-size: 16px;">{html.escape(value)}</h3>')
            elif kind == "para":
                text, tone = value
                style = f' style="color: {self._TONES[tone]};"' if tone in self._TONES else ""
                out.append(f"<p{style}>{html.escape(text).replace(chr(10), '<br>')}</p>")
            else:
                title, lines = value
                out.append(f'<p><b>{html.escape(title)}</b></p><ul style="padding-left: 20px;">')
                out += [f'<li style="margin-bottom: 6px;">{html.escape(line)}</li>' for line in lines]
                out.append("</ul>")
        out.append("</div>")
        return "\n".join(out) + "\n"


@dataclass(frozen=True)
class Contact:
    """The office's person for schools' questions (GEC_CONTACT_NAME, _PHONE, _EMAIL)."""

    name: str = ""
    phone: str = ""
    email: str = ""

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Contact:
        """Return the contact person the settings name (empty when not set)."""
        settings = settings or get_settings()
        return cls(settings.contact_name.strip(), settings.contact_phone.strip(),
                   settings.contact_email.strip())

    def line(self) -> str:
        """Return who to call or write to, in Vietnamese; the generic wording when nobody is set."""
        parts = [self.name] if self.name else []
        if self.phone:
            parts.append(vi.CONTACT_PHONE.format(phone=self.phone))
        if self.email:
            parts.append(vi.CONTACT_EMAIL.format(email=self.email))
        if not parts:
            return vi.CONTACT_NOBODY
        return vi.CONTACT_LINE.format(contact=", ".join(parts))


def greeting(body: Body, recipient: str | None) -> None:
    """Open a body with the Vietnamese salutation."""
    body.para(vi.GREETING.format(recipient=recipient or vi.DEFAULT_RECIPIENT))


def sign_off(body: Body, contact: Contact | None = None) -> None:
    """Close a body: the office's name, that the mail is automatic, and whom to contact."""
    body.para("\n".join(vi.SIGN_OFF))
    body.para(vi.AUTOMATIC_NOTE + " " + (contact or Contact()).line())


def when(moment: dt.datetime) -> str:
    """Show a moment as a Vietnamese clerk reads it: dd/mm/yyyy HH:MM, Asia/Ho_Chi_Minh."""
    return moment.astimezone(TIMEZONE).strftime("%d/%m/%Y %H:%M")


def day(value: dt.date) -> str:
    """Show a date as dd/mm/yyyy."""
    return value.strftime("%d/%m/%Y")


def address_of(sender: str | None) -> str:
    """Return the bare address of a sender such as `Cô Lan <lan@truong.vn>`."""
    return parseaddr(sender or "")[1].strip()


def megabytes(max_bytes: int) -> str:
    """Show a byte limit in MB the Vietnamese way (decimal comma)."""
    return f"{max_bytes / (1024 * 1024):g}".replace(".", ",")
