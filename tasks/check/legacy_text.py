"""Text typed in the legacy Vietnamese encodings TCVN3 (ABC) and VNI, turned back into Unicode NFC.

Offices that still type with the .VnTime (TCVN3) or VNI-Times fonts store their 8-bit codes in the
workbook as Windows-1252 characters, so `Trường Mầm non` arrives as `Tr­êng MÇm non` (TCVN3) or
`Tröôøng Maàm non` (VNI). `fix_legacy_text` converts such a cell only when the result is certain:
text with any character outside Windows-1252, pure ASCII, or text whose words already are Vietnamese
syllables is never touched; a conversion is kept only if it turns every changed word from a
non-syllable into a Vietnamese syllable and exactly one of the two encodings does so.

The tables are the published ones: TCVN 5712:1993 VN3 (the "ABC" fonts, lower case with tones; capitals
with tones are typed with the .VnTimeH font on the same codes, so they come back in lower case) and
VNI for Windows (a base letter followed by a mark character).
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from schemas.contract import SHEETS, YES_NO, Sheet
from schemas.findings import Finding, make_finding

# --------------------------------------------------------------------------------------------------
# TCVN3 (ABC): one Windows-1252 character per Vietnamese letter.

_TCVN3_ROWS = (
    # base, then the letter with grave, hook, tilde, acute, dot below
    ("a", "µ¶·¸¹", "àảãáạ"),
    ("ă", "»¼½¾Æ", "ằẳẵắặ"),
    ("â", "ÇÈÉÊË", "ầẩẫấậ"),
    ("e", "ÌÎÏÐÑ", "èẻẽéẹ"),
    ("ê", "ÒÓÔÕÖ", "ềểễếệ"),
    ("i", "×ØÜÝÞ", "ìỉĩíị"),
    ("o", "ßáâãä", "òỏõóọ"),
    ("ô", "åæçèé", "ồổỗốộ"),
    ("ơ", "êëìíî", "ờởỡớợ"),
    ("u", "ïñòóô", "ùủũúụ"),
    ("ư", "õö÷øù", "ừửữứự"),
    ("y", "úûüýþ", "ỳỷỹýỵ"),
)
TCVN3_TO_UNICODE: dict[str, str] = {
    "¡": "Ă", "¢": "Â", "£": "Ê", "¤": "Ô", "¥": "Ơ", "¦": "Ư", "§": "Đ",
    "¨": "ă", "©": "â", "ª": "ê", "«": "ô", "¬": "ơ", "\u00ad": "ư", "®": "đ",
}
for _base, _codes, _letters in _TCVN3_ROWS:
    TCVN3_TO_UNICODE.update(zip(_codes, _letters, strict=True))
TCVN3_TO_UNICODE = {code: letter for code, letter in TCVN3_TO_UNICODE.items() if code != letter}

# --------------------------------------------------------------------------------------------------
# VNI for Windows: a base letter, then a mark character (tone, circumflex, breve); a few letters are
# one character of their own.

_VNI_TONES = "øûõùï"  # grave, hook, tilde, acute, dot below (after a, e, o, u, y, ô, ö)
_VNI_CIRCUMFLEX = "âàåãáä"  # plain, grave, hook, tilde, acute, dot below (â, ê, ô)
_VNI_BREVE = "êèúüéë"  # plain, grave, hook, tilde, acute, dot below (ă)
_TONE_MARKS = ("\u0300", "\u0309", "\u0303", "\u0301", "\u0323")  # grave, hook, tilde, acute, dot


def _toned(letter: str, tone: int) -> str:
    return unicodedata.normalize("NFC", letter + _TONE_MARKS[tone])


def _vni_table() -> dict[str, str]:
    table: dict[str, str] = {}
    singles = {"ô": "ơ", "ö": "ư", "ñ": "đ", "í": "í", "ì": "ì", "æ": "ỉ", "ó": "ĩ", "ò": "ị", "î": "ỵ"}
    for upper in (False, True):
        case = str.upper if upper else str.lower
        for code, letter in singles.items():
            table[case(code)] = case(letter)
        for base, letter in (("a", "a"), ("e", "e"), ("o", "o"), ("u", "u"), ("y", "y"), ("ô", "ơ"),
                             ("ö", "ư")):
            for tone, mark in enumerate(_VNI_TONES):
                if letter == "y" and tone == 4:
                    continue  # ỵ is the single character î
                table[case(base + mark)] = case(_toned(letter, tone))
        for base, letter in (("a", "â"), ("e", "ê"), ("o", "ô")):
            table[case(base + _VNI_CIRCUMFLEX[0])] = case(letter)
            for tone, mark in enumerate(_VNI_CIRCUMFLEX[1:]):
                table[case(base + mark)] = case(_toned(letter, tone))
        table[case("a" + _VNI_BREVE[0])] = case("ă")
        for tone, mark in enumerate(_VNI_BREVE[1:]):
            table[case("a" + mark)] = case(_toned("ă", tone))
    return table


VNI_TO_UNICODE: dict[str, str] = _vni_table()
UNICODE_TO_TCVN3 = {letter: code for code, letter in TCVN3_TO_UNICODE.items()}
UNICODE_TO_VNI = {letter: code for code, letter in VNI_TO_UNICODE.items()}


def decode_tcvn3(text: str) -> str:
    """Read text typed in TCVN3 (as Windows-1252 characters) as Unicode NFC."""
    return unicodedata.normalize("NFC", "".join(TCVN3_TO_UNICODE.get(ch, ch) for ch in text))


def decode_vni(text: str) -> str:
    """Read text typed in VNI (as Windows-1252 characters) as Unicode NFC."""
    out: list[str] = []
    index = 0
    while index < len(text):
        pair = text[index : index + 2]
        if len(pair) == 2 and pair in VNI_TO_UNICODE:
            out.append(VNI_TO_UNICODE[pair])
            index += 2
            continue
        out.append(VNI_TO_UNICODE.get(text[index], text[index]))
        index += 1
    return unicodedata.normalize("NFC", "".join(out))


def encode_tcvn3(text: str) -> str:
    """Write Unicode text as a TCVN3 font would store it (capitals with tones become lower case)."""
    out = []
    for ch in unicodedata.normalize("NFC", text):
        code = UNICODE_TO_TCVN3.get(ch) or UNICODE_TO_TCVN3.get(ch.lower())
        out.append(code or ch)
    return "".join(out)


def encode_vni(text: str) -> str:
    """Write Unicode text as a VNI font would store it."""
    return "".join(UNICODE_TO_VNI.get(ch, ch) for ch in unicodedata.normalize("NFC", text))


# --------------------------------------------------------------------------------------------------
# Vietnamese syllables: onset, vowel nucleus, final consonant, at most one tone on the right vowel.

_ONSETS = ("", "b", "c", "ch", "d", "đ", "g", "gh", "gi", "h", "k", "kh", "l", "m", "n", "ng", "ngh", "nh",
           "p", "ph", "qu", "r", "s", "t", "th", "tr", "v", "x")
_CODAS = ("", "c", "ch", "m", "n", "ng", "nh", "p", "t")
_STOPS = frozenset({"c", "ch", "p", "t"})  # after these only the acute and dot-below tones occur
_ANY = frozenset({0, 1})
# Nucleus -> (vowel positions that may carry the tone without a final consonant, and with one);
# None: the nucleus does not occur that way. Both old (hòa) and new (hoà) tone placement count.
_NUCLEI: dict[str, tuple[frozenset[int] | None, frozenset[int] | None]] = {
    **{v: (frozenset({0}), frozenset({0})) for v in ("a", "e", "ê", "i", "y", "o", "ô", "ơ", "u", "ư")},
    **{v: (None, frozenset({0})) for v in ("ă", "â")},
    **{v: (frozenset({0}), None) for v in ("ai", "ao", "au", "ay", "âu", "ây", "eo", "êu", "iu", "oi", "ôi",
                                            "ơi", "ui", "ưi", "ưu", "ia", "ua", "ưa")},
    **{v: (None, frozenset({1})) for v in ("iê", "yê", "uô", "ươ", "oă", "uâ")},
    **{v: (_ANY, frozenset({1})) for v in ("oa", "oe", "uy")},
    "uê": (frozenset({1}), frozenset({1})),
    "uơ": (frozenset({1}), None),
    **{v: (frozenset({1}), None) for v in ("iêu", "yêu", "uôi", "ươi", "ươu", "oai", "oay", "oao", "oeo",
                                            "uây", "uya", "uyu")},
    "uyê": (None, frozenset({2})),
}
_TONE_SET = frozenset(_TONE_MARKS)
_STOP_TONES = frozenset({"\u0301", "\u0323"})


# The longest syllable, `nghiêng`, has 7 letters; longer words are never cached (hostile cells).
_MAX_SYLLABLE = 8


def is_syllable(word: str) -> bool:
    """Return whether a word is one Vietnamese syllable (any case), its tone on an allowed vowel."""
    return len(word) <= _MAX_SYLLABLE and _is_syllable(word.lower())


@lru_cache(maxsize=65536)
def _is_syllable(word: str) -> bool:
    letters: list[str] = []
    tone: tuple[int, str] | None = None
    for ch in unicodedata.normalize("NFC", word):
        parts = unicodedata.normalize("NFD", ch)
        marks = [mark for mark in parts if mark in _TONE_SET]
        if len(marks) > 1 or (marks and tone is not None):
            return False
        if marks:
            tone = (len(letters), marks[0])
        letters.append(unicodedata.normalize("NFC", "".join(c for c in parts if c not in _TONE_SET)))
    base = "".join(letters)
    if len(base) != len(letters):
        return False  # a letter that does not recompose (e.g. a stray combining mark)
    for onset in _ONSETS:
        if not base.startswith(onset):
            continue
        for coda in _CODAS:
            if len(onset) + len(coda) >= len(base) or not base.endswith(coda):
                continue
            allowed = _NUCLEI.get(base[len(onset) : len(base) - len(coda)])
            places = allowed[1 if coda else 0] if allowed else None
            if places is None:
                continue
            if tone is None:
                return True
            if coda in _STOPS and tone[1] not in _STOP_TONES:
                continue
            if tone[0] - len(onset) in places:
                return True
    return False


def _is_separator(ch: str) -> bool:
    """ASCII non-letters and non-letters outside Latin-1 split words; Latin-1 symbols may be codes."""
    if ch.isascii():
        return not ch.isalpha()
    return ord(ch) > 0xFF and not unicodedata.category(ch).startswith("L")


def _words(text: str) -> list[str]:
    words, current = [], []
    for ch in text:
        if _is_separator(ch):
            if current:
                words.append("".join(current))
                current = []
        else:
            current.append(ch)
    if current:
        words.append("".join(current))
    return words


def _cp1252(text: str) -> bool:
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def _acceptable(text: str, converted: str) -> bool:
    """Whether a reading is plausible: every changed word becomes a syllable, mojibake outweighs luck.

    Correct Vietnamese has no changed word that was not already a syllable, so it is never converted;
    a stray symbol (`«`, `»`) that happens to read as a one-letter syllable does not count.
    """
    before, after = _words(text), _words(converted)
    if len(before) != len(after):
        return False
    changed = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
    if not changed or not all(is_syllable(new) for _, new in changed):
        return False
    repaired = sum(1 for old, new in changed if len(new) >= 2 and not is_syllable(old))
    already = sum(1 for old, _ in changed if is_syllable(old))
    return repaired >= 1 and repaired >= already


_DECODERS = (("TCVN3", decode_tcvn3), ("VNI", decode_vni))


def _readings(text: str) -> dict[str, tuple[int, str]]:
    """Return the plausible readings of a cell: encoding -> (words left that are no syllable, text)."""
    if text.isascii() or not _cp1252(text):
        return {}
    found = {}
    for name, decode in _DECODERS:
        converted = decode(text)
        if converted != text and _acceptable(text, converted):
            found[name] = (sum(not is_syllable(word) for word in _words(converted)), converted)
    return found


def _contract_labels() -> frozenset[str]:
    labels = {*YES_NO.labels}
    for sheet in SHEETS.values():
        labels.update((sheet.name, *sheet.aliases))
        for item in sheet.fields:
            labels.update((item.label, *item.aliases))
            for codes in (item.codes, sheet.rows if item.key == sheet.row_field else None):
                for choice in codes.choices if codes is not None else ():
                    labels.update((choice.label, choice.short_label, *choice.aliases))
    return frozenset(_folded(label) for label in labels if label and not label.isascii())


def _folded(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


# Sheet names, headers, keys and list entries of the contract, as typed (diacritics kept).
_LABELS = _contract_labels()


def _label_reading(text: str) -> str | None:
    """Return the one encoding whose reading is a contract label the text itself is not, if any."""
    if _folded(text) in _LABELS or text.isascii() or not _cp1252(text):
        return None
    hits = [name for name, decode in _DECODERS if _folded(decode(text)) in _LABELS]
    return hits[0] if len(hits) == 1 else None


def _best(readings: dict[str, tuple[int, str]], prefer: str | None = None) -> str | None:
    if prefer in readings:
        return prefer
    ranked = sorted(readings, key=lambda name: readings[name][0])
    if not ranked or (len(ranked) > 1 and readings[ranked[0]][0] == readings[ranked[1]][0]):
        return None  # none, or two equally good readings: leave the text as typed
    return ranked[0]


# Labels and names repeat across files; long free text (up to 32 767 characters a cell) is not cached.
_CACHED_CHARS = 300


def fix_legacy_text(text: str, prefer: str | None = None) -> tuple[str, str | None]:
    """Return (text, None) or, for TCVN3/VNI text, (its Unicode NFC reading, "TCVN3" or "VNI").

    `prefer` names the encoding the rest of the sheet was typed in: it settles a cell both encodings
    could explain.
    """
    if len(text) <= _CACHED_CHARS:
        return _fix_cached(text, prefer)
    return _fix(text, prefer)


@lru_cache(maxsize=8192)
def _fix_cached(text: str, prefer: str | None) -> tuple[str, str | None]:
    return _fix(text, prefer)


def _fix(text: str, prefer: str | None) -> tuple[str, str | None]:
    readings = _readings(text)
    name = _best(readings, prefer)
    if name is not None:
        return readings[name][1], name
    # Short labels such as `Cã` (Có) or `tham dù` (tham dự) are real-looking words in either
    # reading; a label of the contract is still recognised as one.
    name = _label_reading(text)
    if name is not None:
        return dict(_DECODERS)[name](text), name
    return text, None


# Characters of text examined per sheet, and per cell: labels, names and activity contents (at most
# 500 characters) fit many times over; a hostile sheet of long Latin-1 cells stays bounded in time
# (reading one costs about 10 us a character).
_SHEET_BUDGET = 30_000
_CELL_CHARS = 1_000


def fix_rows(rows: list[list[object]]) -> tuple[str, int, int] | None:
    """Convert TCVN3/VNI text cells in place; return (encoding, row, column) of the first, 0-based.

    A sheet is typed in one font: the encoding most cells are certain of settles the uncertain ones.
    """
    cells: list[tuple[int, int, str]] = []
    budget = _SHEET_BUDGET
    for row_index, row in enumerate(rows):
        for column, value in enumerate(row):
            if type(value) is str and not value.isascii() and len(value) <= min(budget, _CELL_CHARS):
                cells.append((row_index, column, value))
                budget -= len(value)
    votes: dict[str, int] = {}
    alone: dict[str, tuple[str, str | None]] = {}
    for _, _, value in cells:
        alone[value] = fix_legacy_text(value)
        encoding = alone[value][1]
        if encoding is not None:
            votes[encoding] = votes.get(encoding, 0) + 1
    if not votes:
        return None
    prefer = max(sorted(votes), key=lambda name: votes[name])
    first: tuple[str, int, int] | None = None
    for row_index, column, value in cells:
        # A cell certain on its own keeps its reading; only the uncertain ones follow the sheet.
        fixed, encoding = alone[value] if alone[value][1] else fix_legacy_text(value, prefer)
        if encoding is not None:
            rows[row_index][column] = fixed
            if first is None:
                first = (encoding, row_index, column)
    return first


def legacy_finding(sheet: Sheet, encoding: str, row: int, column: int) -> Finding:
    """Return the warning for a sheet whose text was converted, naming its first converted cell."""
    letters, index = "", column + 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return make_finding("legacy_encoding", sheet.key, row + 1, column_label=f"cột {letters}",
                        detail=encoding)
