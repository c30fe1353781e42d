"""Text normalisation shared by every reader of the contract."""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")


def nfc(text: str) -> str:
    """Return text in Unicode NFC (files saved on macOS arrive in NFD)."""
    return unicodedata.normalize("NFC", text)


def match_key(text: object) -> str:
    """Fold a label for tolerant matching: NFC, case, whitespace, diacritics, đ → d.

    "Truyen thong", "TRUYỀN THÔNG" and the NFD spelling all give "truyen thong".
    """
    if text is None:
        return ""
    folded = nfc(str(text)).casefold().replace("đ", "d")
    stripped = "".join(
        ch for ch in unicodedata.normalize("NFD", folded) if not unicodedata.combining(ch)
    )
    # Non-breaking and zero-width spaces come from copy-paste out of Word and Zalo.
    stripped = stripped.replace("\u200b", "").replace("\ufeff", "")
    return _SPACES.sub(" ", stripped).strip()


# ANSI/VT escape and control sequences (CSI, OSC, two-byte ESC) first, then any C0/C1 control
# character left: a file name is typed by a stranger and must not drive the operator's terminal.
_TERMINAL_SEQUENCES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI … final byte (colours, cursor moves, screen clears)
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC … BEL/ST (window titles, hyperlinks)
    r"|\x1b[@-Z\\-_]"  # other two-byte escapes
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
)
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: object) -> str:
    """Return text safe to print on a terminal: escape sequences and control characters removed.

    Line breaks and tabs become spaces (one table cell stays one line); bidirectional overrides go
    too, so a name cannot display reversed.
    """
    if text is None:
        return ""
    cleaned = _TERMINAL_SEQUENCES.sub("", str(text))
    return _CONTROLS.sub(lambda found: " " if found.group() in "\t\n\r\u2028\u2029" else "", cleaned)


# Inside a table cell only these start markup (emphasis, code, links, images, headings, cells).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#!|~])")


def markdown_text(text: object) -> str:
    """Return text that a markdown renderer shows literally: no HTML, link, image or table break.

    HTML's `&`, `<`, `>` become entities (no `<img onerror>`, no `<javascript:…>` autolink), every
    markdown punctuation is backslash-escaped (no `[x](javascript:…)`, no `|` ending a table cell),
    and control characters and line breaks go (a newline would end the table row).
    """
    flat = printable(text)
    flat = flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", flat)
