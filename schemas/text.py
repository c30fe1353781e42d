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
