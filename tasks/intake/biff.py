"""Compound (OLE) files and the BIFF5/8 workbook stream inside them: encrypted or not, and how many cells
python-calamine would allocate when it opens every sheet (it cannot be stopped once it starts)."""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator

from tasks.intake.sniff import MAX_CELLS, Identified
from tasks.intake.sniff import _too_many_cells as too_many_cells

_FILEPASS = 0x002F
_BOF = 0x0809
_EOF = 0x000A
# BIFF5/8 records that put a value in a cell: row at offset 0, column at offset 2.
_XLS_VALUE_CELLS = frozenset({0x0203, 0x027E, 0x00FD, 0x0204, 0x00D6, 0x0205, 0x0006})
_XLS_MULRK = 0x00BD


def identify_cfb(data: bytes) -> Identified:
    """Identify an OLE compound file: encrypted OOXML, or a BIFF workbook bounded before calamine reads it."""
    import olefile  # only compound files need it

    try:
        ole = olefile.OleFileIO(io.BytesIO(data))
    except Exception as exc:  # olefile raises several types on damaged directories
        return Identified("cfb", "unreadable_file", f"corrupt OLE compound file: {exc}")
    with ole:
        if ole.exists("EncryptionInfo") and ole.exists("EncryptedPackage"):
            return Identified("xlsx", "encrypted_file", "encrypted OOXML package (EncryptionInfo)")
        stream_name = next((name for name in ("Workbook", "Book") if ole.exists(name)), None)
        if stream_name is None:
            return Identified("cfb", "unreadable_file", "OLE compound file without a workbook stream")
        stream = ole.openstream(stream_name).read()
    return _check_biff(stream, stream_name)


def _biff_records(stream: bytes) -> Iterator[tuple[int, int, int]]:
    pos, end = 0, len(stream) - 4
    while pos <= end:
        rtype, size = struct.unpack_from("<HH", stream, pos)
        yield rtype, pos + 4, size
        pos += 4 + size


def _check_biff(stream: bytes, stream_name: str) -> Identified:
    records = _biff_records(stream)
    first = next(records, None)
    if first is None or first[0] != _BOF:
        return Identified("xls", "unreadable_file", f"{stream_name} stream does not start with BOF")
    # python-calamine reads every sheet of an xls when it opens it: bound them all now.
    total = 0
    in_globals = True
    max_row = max_col = -1
    for rtype, offset, size in records:
        if in_globals:
            if rtype == _FILEPASS:
                return Identified("xls", "encrypted_file", "BIFF FILEPASS record (password to open)")
            if rtype == _EOF:
                in_globals = False
            continue
        if rtype == _BOF:
            max_row = max_col = -1
        elif rtype == _EOF:
            if max_row >= 0:
                total += (max_row + 1) * (max_col + 1)
            max_row = max_col = -1
        elif size >= 4 and (rtype in _XLS_VALUE_CELLS or rtype == _XLS_MULRK):
            row, col = struct.unpack_from("<HH", stream, offset)
            if rtype == _XLS_MULRK and size >= 6:
                col = struct.unpack_from("<H", stream, offset + size - 2)[0]
            max_row = max(max_row, row)
            max_col = max(max_col, col)
    if max_row >= 0:  # a last sheet without its EOF
        total += (max_row + 1) * (max_col + 1)
    if total > MAX_CELLS:
        raise too_many_cells(total, stream_name, "xls")
    return Identified("xls", None, f"BIFF in stream {stream_name!r}", cells=total)
