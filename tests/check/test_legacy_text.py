"""Text typed in TCVN3 (.VnTime) or VNI fonts is read as Unicode; correct text and ASCII never change."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.contract import DATA_SHEETS, GENERAL, REACH, RULES, Severity
from schemas.reference import load_reference
from schemas.text import match_key
from tasks.check.legacy_text import (
    TCVN3_TO_UNICODE,
    VNI_TO_UNICODE,
    decode_tcvn3,
    decode_vni,
    encode_tcvn3,
    encode_vni,
    fix_legacy_text,
    fix_rows,
    is_syllable,
)
from tasks.check.parse import parse_workbook
from tasks.check.validate import resolve_identity, validate_workbook
from tasks.template.build import template_grid
from tasks.template.writer import write_workbook

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "reference"
MAX_BYTES = 20 * 1024 * 1024

# Every Vietnamese letter: 12 vowels x (no tone + 5 tones), and đ.
_VOWELS = "aăâeêioôơuưy"
_TONES = ("", "\u0300", "\u0309", "\u0303", "\u0301", "\u0323")
LETTERS = [unicodedata.normalize("NFC", v + t) for v in _VOWELS for t in _TONES] + ["đ"]


@pytest.fixture(scope="module")
def reference():
    return load_reference(REFERENCE_DIR)


# --------------------------------------------------------------------------------------------------
# The published tables


def test_tables_cover_every_vietnamese_letter_with_8_bit_codes():
    for letter in LETTERS:
        tcvn3 = encode_tcvn3(letter)
        assert len(tcvn3) == 1 and ord(tcvn3) <= 0xFF and decode_tcvn3(tcvn3) == letter, letter
        for shown in (letter, letter.upper()):
            vni = encode_vni(shown)
            assert 1 <= len(vni) <= 2 and all(ord(ch) <= 0xFF for ch in vni), shown
            assert decode_vni(vni) == shown, shown
    # Every code is a Windows-1252 character, as Excel stores text typed in these fonts.
    for code in (*TCVN3_TO_UNICODE, *VNI_TO_UNICODE):
        code.encode("cp1252")


@pytest.mark.parametrize(
    ("typed", "meant", "encoding"),
    [
        # The issue's own example, and the national motto as TCVN3 and VNI documents show it.
        ("Tr\u00adêng MÇm non", "Trường Mầm non", "TCVN3"),
        ("Céng hoµ x· héi chñ nghÜa ViÖt Nam", "Cộng hoà xã hội chủ nghĩa Việt Nam", "TCVN3"),
        ("§éc lËp - Tù do - H¹nh phóc", "Độc lập - Tự do - Hạnh phúc", "TCVN3"),
        ("Tröôøng Maàm non", "Trường Mầm non", "VNI"),
        ("COÄNG HOØA XAÕ HOÄI CHUÛ NGHÓA VIEÄT NAM", "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "VNI"),
        ("Ñoäc laäp - Töï do - Haïnh phuùc", "Độc lập - Tự do - Hạnh phúc", "VNI"),
    ],
)
def test_known_mojibake_is_read_back(typed, meant, encoding):
    assert fix_legacy_text(typed) == (meant, encoding)


# --------------------------------------------------------------------------------------------------
# Round trips over the contract's own labels and the registry's school names


def _known_texts(reference) -> list[str]:
    texts = {school.name for school in reference.schools.values()}
    for sheet in DATA_SHEETS:
        texts.add(sheet.name)
        for item in sheet.fields:
            texts.add(item.label)
            if item.codes is not None:
                texts.update(item.codes.labels)
    return sorted(text for text in texts if not text.isascii())


def test_known_texts_round_trip_through_both_tables(reference):
    texts = _known_texts(reference)
    assert len(texts) > 50
    for text in texts:
        assert decode_vni(encode_vni(text)) == text
        # TCVN3 has no capitals with tones: they come back in lower case, which matching ignores.
        assert match_key(decode_tcvn3(encode_tcvn3(text))) == match_key(text)


def test_known_texts_are_detected_when_typed_in_a_legacy_font(reference):
    texts = _known_texts(reference)
    for text in texts:
        assert fix_legacy_text(encode_vni(text)) == (text, "VNI"), text
        fixed, encoding = fix_legacy_text(encode_tcvn3(text))
        assert encoding == "TCVN3" and match_key(fixed) == match_key(text), text
    # The correct Unicode texts themselves are left alone, whatever the rest of the sheet was typed in.
    for text in texts:
        for prefer in (None, "TCVN3", "VNI"):
            assert fix_legacy_text(text, prefer) == (text, None), text


def test_a_word_both_fonts_explain_follows_the_rest_of_the_sheet():
    # `Tæng` reads as `Tổng` in TCVN3 and `Tỉng` in VNI; the sheet's other cells settle it.
    rows = [["Tæng", "Gi¸o viªn"], ["Tr\u00adêng MÇm non", 5]]
    assert fix_legacy_text("Tæng") == ("Tæng", None)
    assert fix_rows(rows) == ("TCVN3", 0, 0)
    assert rows == [["Tổng", "Giáo viên"], ["Trường Mầm non", 5]]
    vni = [["Toång", "Giaùo vieân"]]
    assert fix_rows(vni) == ("VNI", 0, 0) and vni == [["Tổng", "Giáo viên"]]


# --------------------------------------------------------------------------------------------------
# No guessing: correct Unicode and ASCII never change

def _real_words() -> list[str]:
    """Every Vietnamese word of the contract's labels and the registry's school names, plus common ones."""
    texts = _known_texts(load_reference(REFERENCE_DIR))
    texts.append("người khuya ngoằn thuở quốc giữa Nguyễn Thuỷ hoà hòa thuý oái ừ ơi gì quyển khuỷu "
                 "tuổi rượu chuyện luyện nghiêng xoè ngoái quẫy tối lửa tắt đèn có nhau")
    words = {word.strip(",;:()") for text in texts for word in text.split()}
    return sorted(word for word in words if word and not word.isascii() and word.isalpha())


WORDS = _real_words()


@st.composite
def syllables(draw: st.DrawFn) -> str:
    word = draw(st.sampled_from(WORDS))
    return draw(st.sampled_from([word, word.lower(), word.capitalize(), word.upper()]))


_ASCII_WORDS = st.sampled_from(["THCS", "Zalo", "email", "HIV", "online", "8", "2023", "111", "CB-GV-NV"])
_GAPS = st.sampled_from([" ", ", ", "; ", " - ", " – ", ": ", "\n", " (", ") ", "/", "“", "” ", "..."])

vietnamese_text = st.lists(
    st.tuples(st.one_of(syllables(), syllables(), _ASCII_WORDS), _GAPS), min_size=1, max_size=12
).map(lambda parts: "".join(word + gap for word, gap in parts).strip())


@settings(max_examples=400, deadline=None)
@given(vietnamese_text)
def test_vietnamese_unicode_text_is_never_changed(text):
    assert unicodedata.is_normalized("NFC", text)
    assert fix_legacy_text(text) == (text, None)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=60))
def test_ascii_is_never_changed(text):
    assert fix_legacy_text(text) == (text, None)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40), st.sampled_from("ạđươẫΩ漢"), st.text(max_size=40))
def test_text_beyond_windows_1252_is_never_changed(before, letter, after):
    text = before + letter + after
    assert fix_legacy_text(text) == (text, None)


@settings(max_examples=300, deadline=None)
@given(vietnamese_text)
def test_vni_round_trip_on_random_text(text):
    assert decode_vni(encode_vni(text)) == text


def test_syllable_check_accepts_real_words_and_refuses_mojibake():
    for word in ("Trường", "Mầm", "khuya", "ngoằn", "thuở", "quốc", "giữa", "Nguyễn", "Thuỷ", "Đuối", "gì"):
        assert is_syllable(word), word
    for word in ("Tr\u00adêng", "MÇm", "Tröôøng", "Maàm", "Gi¸o", "xyz", "hóà"):
        assert not is_syllable(word), word


# --------------------------------------------------------------------------------------------------
# A workbook typed in TCVN3 parses, matches and says so


def test_tcvn3_workbook_parses_and_matches(reference):
    cycle = reference.calendar.get("2023-H1")
    school = next(s for s in reference.expected_schools("2023-H1") if s.level == "mam_non")
    grid = template_grid(school, cycle)
    # Keys, headers, row labels and the school name typed in .VnTime; tab names stay as Excel shows them.
    grid.map_text(encode_tcvn3, sheet_names=False)
    general = grid.sheet(GENERAL.key)
    assert general.get(general.row_index["school_name"], 1) == encode_tcvn3(school.name) != school.name
    reach = grid.sheet(REACH.key)
    for row in reach.row_index.values():
        for column in range(1, 5):
            reach.set(row, column, 4)
    parsed = parse_workbook(write_workbook(grid, "xlsx"), max_bytes=MAX_BYTES)

    assert parsed.general_value("school_name") == school.name.lower() or \
        match_key(parsed.general_value("school_name")) == match_key(school.name)
    assert resolve_identity(parsed, reference) == (school.code, cycle.id)
    rules = {finding.rule for finding in parsed.findings}
    assert not rules & {"missing_sheet", "missing_column", "extra_column_dropped"}, parsed.findings
    assert set(parsed.tables[REACH.key]["group"]) == set(REACH.rows.codes)
    warnings = [finding for finding in parsed.findings if finding.rule == "legacy_encoding"]
    assert {finding.sheet for finding in warnings} == {sheet.name for sheet in DATA_SHEETS}
    assert all(finding.severity is Severity.WARNING for finding in warnings)
    first = next(finding for finding in warnings if finding.sheet == GENERAL.name)
    assert first.row == 1 and "TCVN3" in first.message and "Unicode" in first.message
    assert RULES["legacy_encoding"].severity is Severity.WARNING
    # Accepted with a warning: the converted workbook raises no error of its own.
    findings = validate_workbook(parsed, reference)
    assert not [f for f in findings if f.is_error and f.sheet == REACH.name], findings


def test_vni_school_name_reaches_storage_as_unicode(reference):
    cycle = reference.calendar.get("2023-H1")
    school = next(s for s in reference.expected_schools("2023-H1") if s.level == "mam_non")
    grid = template_grid(school, cycle)
    general = grid.sheet(GENERAL.key)
    general.set(general.row_index["school_name"], 1, encode_vni(school.name))
    parsed = parse_workbook(write_workbook(grid, "xlsx"), max_bytes=MAX_BYTES)
    assert parsed.general_value("school_name") == school.name
    assert [(f.rule, f.sheet, f.row) for f in parsed.findings] == [
        ("legacy_encoding", GENERAL.name, general.row_index["school_name"] + 1)
    ]


def test_unicode_workbook_has_no_legacy_warning(reference):
    cycle = reference.calendar.get("2023-H1")
    school = next(iter(reference.expected_schools("2023-H1")))
    parsed = parse_workbook(write_workbook(template_grid(school, cycle), "xlsx"), max_bytes=MAX_BYTES)
    assert "legacy_encoding" not in {finding.rule for finding in parsed.findings}


def test_examined_text_is_bounded_per_cell_and_per_sheet():
    # Hostile sheets of long Latin-1 text stay cheap: such cells are left as typed, labels still read.
    long_cell = ("Tr\u00adêng MÇm non " * 80)[:1200]
    rows = [["Gi¸o viªn", long_cell]] + [["Tr\u00adêng MÇm non " * 60] for _ in range(40)]
    assert fix_rows(rows) == ("TCVN3", 0, 0)
    assert rows[0] == ["Giáo viên", long_cell]
    converted = sum(1 for row in rows[1:] if row[0].startswith("Trường"))
    assert 0 < converted < 40  # the first cells up to the sheet's budget, not all of them
