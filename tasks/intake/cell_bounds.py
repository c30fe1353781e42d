"""Cell-span scanners (SPEC §3 hostile files): how many cells python-calamine would allocate for a sheet.

python-calamine allocates a sheet's whole span (first to last non-empty cell) as one dense array and
aborts the process, uncatchably, when that allocation fails; these scanners read the span from the raw
ODS XML, OOXML sheet XML and XLSB records before it sees the bytes (`tasks.intake.sniff` decides).
"""

from __future__ import annotations

import html
import re
import struct
from collections.abc import Iterator
from itertools import repeat

# Cells python-calamine may allocate for the sheets one parse loads (≈ 56 bytes each in calamine,
# a pointer in Python, and a coercion each where they hold data). A school's report is a few
# thousand cells; measured, a workbook of 250,000 filled cells parses in ~2 s and ~160 MB on the
# 2-core machine, 910,000 in 7 s and 380 MB: the SPEC's 5 s / 300 MB bound sets this budget.
MAX_CELLS = 250_000


# ODS as python-calamine reads it: literal `table:` prefixes, repeats parsed from the raw attribute.
_ODS_TAG = re.compile(
    rb"<(/?)table:(table-row|table-cell|covered-table-cell|table)"
    rb"((?>\s+[^\s=>/<]+\s*=\s*(?>\"[^\"]*\"|'[^']*'))*+)\s*+(/?)>"
)
_ODS_ROWS_REPEATED = re.compile(rb"table:number-rows-repeated\s*=\s*[\"']([^\"']*)")
_ODS_COLS_REPEATED = re.compile(rb"table:number-columns-repeated\s*=\s*[\"']([^\"']*)")
_ODS_VALUE = re.compile(
    rb"(?:office:(?:value-type|value|string-value|date-value|time-value|boolean-value)|table:formula)\s*="
)
_DIGITS = re.compile(rb"\+?([0-9]{1,18})")


def _count(raw: bytes) -> int:
    number = _DIGITS.fullmatch(raw)
    # An unparsable count makes python-calamine fail cleanly; 1 keeps the estimate honest.
    return int(number.group(1)) if number else 1


def _repeat(pattern: re.Pattern[bytes], attrs: bytes) -> int:
    found = pattern.search(attrs)
    return _count(found.group(1)) if found else 1


def _ods_quick_bound(content: bytes) -> int:
    """Bound an ODS with substring counts: every row element as wide as all cell elements together.

    Sound because a table never has more rows than row elements plus their extra repeats, nor a
    row wider than all cell elements plus theirs; tight enough for a template, whose repeats are few.
    """
    rows = content.count(b"<table:table-row") + sum(
        _count(raw) - 1 for raw in _ODS_ROWS_REPEATED.findall(content)
    )
    cells = content.count(b"<table:table-cell") + content.count(b"<table:covered-table-cell") + sum(
        _count(raw) - 1 for raw in _ODS_COLS_REPEATED.findall(content)
    )
    return rows * cells


def ods_cell_bound(content: bytes) -> int:
    """Return an upper bound of the cells python-calamine materialises for an ODS content.xml.

    Per table: rows from the first to the last non-empty row (repeats included) times the widest
    row up to its last non-empty cell. Trailing empty repeats (LibreOffice writes a million of them)
    cost nothing, as in calamine.
    """
    quick = _ods_quick_bound(content)
    if quick <= MAX_CELLS:
        return quick
    total = 0
    rows = pending = width = 0
    row_repeat = 1
    row_width = col = 0
    for closing, name, attrs, self_closing in _ODS_TAG.findall(content):
        if name == b"table":
            if closing or not self_closing:
                total += rows * width
                rows = pending = width = 0
            continue
        if name == b"table-row":
            if closing:
                if row_width:
                    rows += pending + row_repeat
                    pending = 0
                    width = max(width, row_width)
                else:
                    pending += row_repeat
                continue
            row_repeat = _repeat(_ODS_ROWS_REPEATED, attrs)
            row_width = col = 0
            if self_closing:
                pending += row_repeat
            continue
        if closing:
            continue
        repeat = _repeat(_ODS_COLS_REPEATED, attrs)
        col += repeat
        if _ODS_VALUE.search(attrs):
            row_width = col
        if rows * width + total > MAX_CELLS * 4:
            break  # already far over budget; stop scanning early
    total += rows * width
    return total


# --------------------------------------------------------------------------------------------------
# OOXML sheets: the cell span a sheet part would allocate


_XLSX_TAG = re.compile(
    rb"<(?:[A-Za-z_][\w.-]*:)?(row|c)((?>\s+[^\s=>/<]+\s*=\s*(?>\"[^\"]*\"|'[^']*'))*+)\s*+(/?)>"
)
_REF_ATTR = re.compile(rb"(?:^|\s)r\s*=\s*[\"']([^\"']*)[\"']")
_CELL_REF = re.compile(rb"\$?([A-Za-z]{0,4})\$?([0-9]{0,8})")


def _column_number(letters: bytes) -> int:
    number = 0
    for char in letters.upper():
        number = number * 26 + (char - 64)
    return number


# A cell tag as Excel, LibreOffice and xlsxwriter write it: no prefix, `r="A1"` first. The literal
# start lets the regex engine skip ahead with a substring search.
_PLAIN_CELL = re.compile(
    rb"<c r=\"([A-Z]{1,3})([0-9]{1,7})\"((?:[^>\"'/]++|/(?!>)|\"[^\"]*+\"|'[^']*+')*+)(/?)>"
)
# Any other spelling of a cell start tag sends the sheet down the slow path.
# (A prefixed tag always contains `:c`, which sheet XML rarely does otherwise.)
_UNUSUAL_CELL_STARTS = (b"<c\t", b"<c\n", b"<c\r", b":c")
_R_ATTRIBUTE = re.compile(rb"r\s*=")


def _has_r_attribute(attributes: bytes) -> bool:
    """Tell whether space-separated attributes hold an `r=` (a second reference on a cell)."""
    return any(
        found.start() == 0 or attributes[found.start() - 1] in b" \t\r\n"
        for found in _R_ATTRIBUTE.finditer(attributes)
    )


def xlsx_cell_bound(sheet_xml: bytes) -> int:
    """Return the cells python-calamine allocates for a worksheet part, counted from A1.

    Follows calamine's positioning (explicit `r` refs, else the next row/column); cells that are
    self-closing carry no value and are skipped by calamine, so a `<dimension>` or styled blank
    cell at XFD1048576 costs nothing.
    """
    # Fast path, all in C: every cell start tag (counted by substring, so comments and attribute
    # values can only over-count) is a plain tag whose first attribute is its own reference.
    if not any(start in sheet_xml for start in _UNUSUAL_CELL_STARTS):
        tags = sheet_xml.count(b"<c ") + sheet_xml.count(b"<c>") + sheet_xml.count(b"<c/")
        cells = _PLAIN_CELL.findall(sheet_xml)
        if len(cells) == tags and not _has_r_attribute(b" ".join(cell[2] for cell in cells)):
            valued = [(letters, digits) for letters, digits, _, self_closing in cells if not self_closing]
            if not valued:
                return 0
            letters, digits = zip(*valued, strict=True)
            widest = max(map(bytes.rjust, letters, repeat(3))).lstrip()
            return max(map(int, digits)) * _column_number(widest)
    return _simulated_cell_bound(sheet_xml)


def _simulated_cell_bound(sheet_xml: bytes) -> int:
    """Bound a sheet whose cells omit `r`, replaying calamine's next-row/next-column rule."""
    row = -1
    next_col = 0
    max_row = max_col = -1
    for name, attrs, self_closing in _XLSX_TAG.findall(sheet_xml):
        ref = _REF_ATTR.search(attrs)
        if name == b"row":
            if ref and ref.group(1).isdigit():
                row = int(ref.group(1)) - 1
            else:
                row += 1
            next_col = 0
            continue
        cell_row, cell_col = row, next_col
        if ref:
            parts = _CELL_REF.fullmatch(ref.group(1)) or _CELL_REF.fullmatch(
                xml_text(ref.group(1)).encode("ascii", "replace")
            )
            if parts is None:
                # A reference we cannot read might still place the cell anywhere: assume the worst.
                return 1 << 34
            if parts.group(1):
                cell_col = _column_number(parts.group(1)) - 1
            if parts.group(2):
                cell_row = int(parts.group(2)) - 1
        next_col = cell_col + 1
        if not self_closing:
            max_row = max(max_row, cell_row)
            max_col = max(max_col, cell_col)
    if max_row < 0 or max_col < 0:
        return 0
    return (max_row + 1) * (max_col + 1)


# BIFF12 (xlsb) records: row header and the value-carrying cell records (blank cells are skipped).
_XLSB_ROW_HDR = 0x0000
_XLSB_VALUE_CELLS = frozenset(range(0x0002, 0x000C))
XLSB_BUNDLE_SHEET = 0x009C


def biff12_records(buf: bytes) -> Iterator[tuple[int, int, int]]:
    """Yield (record type, data offset, data length) of a BIFF12 stream."""
    pos, end = 0, len(buf)
    while pos < end:
        rtype = buf[pos]
        pos += 1
        if rtype & 0x80:
            if pos >= end:
                return
            rtype = (rtype & 0x7F) | ((buf[pos] & 0x7F) << 7)
            pos += 1
        size = shift = 0
        for _ in range(4):
            if pos >= end:
                return
            byte = buf[pos]
            pos += 1
            size |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        yield rtype, pos, size
        pos += size


def xlsb_cell_bound(sheet_bin: bytes) -> int:
    """Return the cells python-calamine allocates for an xlsb worksheet part, counted from A1."""
    row = 0
    max_row = max_col = -1
    for rtype, offset, size in biff12_records(sheet_bin):
        if rtype == _XLSB_ROW_HDR and size >= 4:
            row = struct.unpack_from("<I", sheet_bin, offset)[0]
        elif rtype in _XLSB_VALUE_CELLS and size >= 4 and offset + 4 <= len(sheet_bin):
            col = struct.unpack_from("<I", sheet_bin, offset)[0]
            max_row = max(max_row, row)
            max_col = max(max_col, col)
    if max_row < 0:
        return 0
    return (max_row + 1) * (max_col + 1)


def xml_text(raw: bytes) -> str:
    """Decode an attribute value with the five XML entities and numeric references."""
    text = raw.decode("utf-8", "replace")
    return html.unescape(text) if "&" in text else text
