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

import re
import unicodedata
from functools import lru_cache

from schemas.contract import Sheet
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
# Vietnamese syllables: onset, vowel nucleus, final consonant; at most one tone mark.

_ONSETS = "ngh|ng|gh|gi|kh|nh|ph|qu|th|tr|ch|b|c|d|đ|g|h|k|l|m|n|p|r|s|t|v|x"
_NUCLEI = (
    "a|ă|â|e|ê|i|y|o|ô|ơ|u|ư|ai|ao|au|ay|âu|ây|eo|êu|ia|iê|iu|oa|oă|oe|oi|ôi|ơi|oo|ua|uâ|uê|ui|uô|"
    "uơ|uy|ưa|ưi|ươ|ưu|yê|iêu|yêu|oai|oay|oao|oeo|uây|uôi|uya|uyê|uyu|ươi|ươu|oac|uơu"
)
_CODAS = "ch|ng|nh|c|m|n|p|t"
_SYLLABLE = re.compile(f"^(?:{_ONSETS})?(?:{_NUCLEI})(?:{_CODAS})?$")
_TONE_SET = frozenset(_TONE_MARKS)


@lru_cache(maxsize=65536)
def is_syllable(word: str) -> bool:
    """Return whether a word is one Vietnamese syllable (any case, at most one tone mark)."""
    decomposed = unicodedata.normalize("NFD", word.lower())
    tones = sum(1 for ch in decomposed if ch in _TONE_SET)
    if tones > 1:
        return False
    base = unicodedata.normalize("NFC", "".join(ch for ch in decomposed if ch not in _TONE_SET))
    return bool(_SYLLABLE.match(base))


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
    """Whether a reading is certain: every changed word becomes a syllable, and mostly mojibake changed.

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
    return repaired > already


@lru_cache(maxsize=8192)
def fix_legacy_text(text: str) -> tuple[str, str | None]:
    """Return (text, None) or, for TCVN3/VNI text, (its Unicode NFC reading, "TCVN3" or "VNI")."""
    if text.isascii() or not _cp1252(text):
        return text, None
    readings = [
        (name, converted)
        for name, decode in (("TCVN3", decode_tcvn3), ("VNI", decode_vni))
        if (converted := decode(text)) != text and _acceptable(text, converted)
    ]
    if len(readings) != 1:
        return text, None  # neither reading is certain, or both are: leave the text as typed
    name, converted = readings[0]
    return converted, name


def fix_rows(rows: list[list[object]]) -> tuple[str, int, int] | None:
    """Convert TCVN3/VNI text cells in place; return (encoding, row, column) of the first, 0-based."""
    first: tuple[str, int, int] | None = None
    for row_index, row in enumerate(rows):
        for column, value in enumerate(row):
            if type(value) is not str or value.isascii():
                continue
            fixed, encoding = fix_legacy_text(value)
            if encoding is not None:
                row[column] = fixed
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
