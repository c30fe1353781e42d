"""Identify a submitted file by its first bytes and bound what parsing it may cost.

Nothing here trusts the extension or the parser: the format comes from the magic bytes and the
container's own table of contents, and every check that guards memory (declared zip sizes,
compression ratio, ODS repeat counts, the cell span a sheet would allocate) runs before
python-calamine sees the bytes. python-calamine allocates a sheet's whole span (first to last
non-empty cell) as one dense array and aborts the process, uncatchably, when that allocation fails,
so the span is checked here from the raw XML/BIFF records.
"""

from __future__ import annotations

import io
import logging
import re
import struct
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from schemas.contract import MAX_DECOMPRESSED_BYTES
from tasks.intake.cell_bounds import (
    MAX_CELLS,
    XLSB_BUNDLE_SHEET,
    biff12_records,
    ods_cell_bound,
    xlsb_cell_bound,
    xlsx_cell_bound,
    xml_text,
)

log = logging.getLogger(__name__)

# No single part of a submitted package needs to expand past this; larger is an attack or not a report.
MAX_PART_BYTES = 64 * 1024 * 1024
# python-calamine parses an OOXML package's shared strings, styles and workbook parts when it opens
# it, whatever sheets are read later: 63 MB of tiny shared strings cost it 200 MB and 2.4 s.
MAX_OPEN_PART_BYTES = 16 * 1024 * 1024
# Deflate tops out near 1030:1; legitimate sheets stay below ~150:1 (the corpus maximum is 121:1).
MAX_RATIO = 500
RATIO_MIN_BYTES = 8 * 1024 * 1024
MAX_ZIP_MEMBERS = 5_000

ZIP_MAGIC = b"PK\x03\x04"
CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# BOF record ids of BIFF2, BIFF3, BIFF4 and BIFF5/8 (a bare stream starts with one of them).
_BIFF_BOF = {0x0009, 0x0209, 0x0409, 0x0809}

_CT_FORMATS = (
    (b"application/vnd.ms-excel.sheet.binary.macroenabled.main", "xlsb"),
    (b"application/vnd.ms-excel.sheet.macroenabled.main+xml", "xlsm"),
    (b"application/vnd.ms-excel.template.macroenabled.main+xml", "xlsm"),
    (b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml", "xlsx"),
    (b"application/vnd.openxmlformats-officedocument.spreadsheetml.template.main+xml", "xlsx"),
)
ODS_MIMETYPES = (
    b"application/vnd.oasis.opendocument.spreadsheet",
    b"application/vnd.oasis.opendocument.spreadsheet-template",
)
# Formats python-calamine reads one sheet at a time (the span check runs per sheet before loading).
LAZY_FORMATS = frozenset({"xlsx", "xlsm", "xlsb"})


class _Reject(Exception):
    """A verdict reached while looking inside the container."""

    def __init__(self, rule: str, detail: str, detail_vi: str = "", fmt: str = "") -> None:
        super().__init__(detail)
        self.rule = rule
        self.detail = detail
        self.detail_vi = detail_vi
        self.fmt = fmt


@dataclass(frozen=True)
class Identified:
    """What a file is, and whether it may be handed to python-calamine."""

    format: str  # xlsx | xlsm | xlsb | xls | ods | numbers | zip | cfb | biff | text | empty
    rule: str | None = None  # unreadable_file | encrypted_file | too_large; None: go ahead and parse
    detail: str = ""  # English, for logs and operators
    detail_vi: str = ""  # Vietnamese, fills the too_large message's {detail}
    # Cells python-calamine allocates when it opens an ODS or xls (it loads every sheet at once);
    # xlsx-like packages load lazily and are charged per sheet by check_sheets().
    cells: int = 0
    # The opened zip and its bytes, reused by the per-sheet span check (not part of the verdict).
    archive: zipfile.ZipFile | None = field(default=None, compare=False, repr=False)
    payload: bytes = field(default=b"", compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return self.rule is None


def _mb(size: float) -> str:
    """Format a byte count in MB the Vietnamese way (decimal comma)."""
    return f"{size / 1024 / 1024:.1f}".replace(".", ",")


def _cells_vi(count: int) -> str:
    return f"{count:,}".replace(",", ".")


def _too_many_cells(count: int, where: str, fmt: str) -> _Reject:
    return _Reject(
        "too_large",
        f"{where}: a sheet span of {count} cells exceeds the {MAX_CELLS}-cell budget",
        f"vùng dữ liệu của trang tính lên tới {_cells_vi(count)} ô, vượt giới hạn {_cells_vi(MAX_CELLS)} ô",
        fmt,
    )


# A file refused for its size before it was read whole is stored as this stub (issue 11 #7): the raw
# store keeps a record (size, sha256 of the real bytes) instead of megabytes nobody may parse, and
# every later reading of it (re-validation, a reply) reaches the same `too_large` verdict.
OVERSIZE_MAGIC = b"GEC-OVERSIZE-STUB/1 "
_OVERSIZE = re.compile(rb"GEC-OVERSIZE-STUB/1 size=(\d{1,15}) sha256=([0-9a-f]{64})\n")


def oversize_stub(size: int, sha256: str) -> bytes:
    """Return the bytes stored in place of a file too large to read: its size and real sha256."""
    return OVERSIZE_MAGIC + f"size={size} sha256={sha256}\n".encode()


def stub_size(data: bytes) -> int | None:
    """Return the real size an oversize stub records, or None when `data` is not a stub."""
    found = _OVERSIZE.fullmatch(data[:200]) if data.startswith(OVERSIZE_MAGIC) else None
    return int(found.group(1)) if found else None


def identify(data: bytes, *, max_bytes: int) -> Identified:
    """Identify a file by its first bytes and pre-check it; never raises."""
    try:
        return _identify(data, max_bytes)
    except _Reject as verdict:
        return Identified(verdict.fmt or _guess_format(data), verdict.rule, verdict.detail, verdict.detail_vi)
    except Exception as exc:  # a hostile container must still get a verdict
        log.warning("identify failed: %s: %s", type(exc).__name__, exc)
        return Identified(_guess_format(data), "unreadable_file", f"container error: {exc!r}")


def _guess_format(data: bytes) -> str:
    if data.startswith(ZIP_MAGIC):
        return "zip"
    if data.startswith(CFB_MAGIC):
        return "cfb"
    return "unknown"


def _identify(data: bytes, max_bytes: int) -> Identified:
    size = len(data)
    if size == 0:
        return Identified("empty", "unreadable_file", "empty file")
    recorded = stub_size(data)
    if recorded is not None:
        return Identified(
            "unknown",
            "too_large",
            f"{recorded} bytes, refused before reading (stored as a stub)",
            f"{_mb(recorded)} MB, vượt giới hạn {_mb(max_bytes)} MB",
        )
    if size > max_bytes:
        return Identified(
            _guess_format(data),
            "too_large",
            f"{size} bytes on disk, limit {max_bytes}",
            f"{_mb(size)} MB, vượt giới hạn {_mb(max_bytes)} MB",
        )
    if data.startswith(ZIP_MAGIC):
        return _identify_zip(data)
    if data.startswith(CFB_MAGIC):
        from tasks.intake.biff import identify_cfb  # here: biff reads this module's verdict types

        return identify_cfb(data)
    if size >= 8:
        record, length = struct.unpack_from("<HH", data)
        if record in _BIFF_BOF and 4 <= length <= 20:
            return Identified("biff", "unreadable_file", "bare BIFF2-5 stream without an OLE container")
    return Identified("text" if _looks_like_text(data) else "unknown", "unreadable_file", _describe(data))


def _looks_like_text(data: bytes) -> bool:
    head = data[:512]
    return all(32 <= b < 127 or b in b"\t\r\n" for b in head) or head.startswith(b"\xef\xbb\xbf")


def _describe(data: bytes) -> str:
    head = data[:256].lstrip().lower()
    if head.startswith((b"<html", b"<!doctype html", b"<table", b"<meta")):
        return "HTML page saved under a spreadsheet name"
    if b"urn:schemas-microsoft-com:office:spreadsheet" in data[:4096]:
        return "XML Spreadsheet 2003, not a workbook package"
    if _looks_like_text(data):
        return f"text, not a workbook: {data[:60]!r}"
    return f"unknown format, starts with {data[:8].hex()}"


# --------------------------------------------------------------------------------------------------
# Zip packages: xlsx / xlsm / xlsb / ods / numbers


def _norm(name: str) -> str:
    """Normalise a zip member name the way lenient readers do (backslashes, leading slash)."""
    return name.replace("\\", "/").lstrip("/")


class _Package:
    """A zip archive's members by normalised, case-folded name."""

    def __init__(self, archive: zipfile.ZipFile, data: bytes = b"") -> None:
        self.archive = archive
        self.data = data
        self.members = {_norm(info.filename).casefold(): info for info in archive.infolist()}

    def get(self, name: str) -> zipfile.ZipInfo | None:
        return self.members.get(_norm(name).casefold())

    def read(self, info: zipfile.ZipInfo, limit: int = MAX_PART_BYTES) -> bytes:
        """Read one member, never more than its declared size or `limit`."""
        cap = min(info.file_size, limit)
        payload = self._inflate(info, cap + 1)
        if payload is None:
            with self.archive.open(info) as handle:
                payload = handle.read(cap + 1)
        if len(payload) > cap:
            raise _Reject("too_large", f"{info.filename} expands past its declared size",
                          "dữ liệu nén bất thường")
        return payload

    def _inflate(self, info: zipfile.ZipInfo, size: int) -> bytes | None:
        """Inflate a stored or deflated member straight from the buffer, at most `size` bytes.

        zipfile's reader costs ~20 µs a member in set-up; a template has seven sheets to check.
        CRCs are left to python-calamine, which reads the same bytes afterwards.
        """
        data = self.data
        offset = info.header_offset
        if not data or info.flag_bits & 0x1 or data[offset:offset + 4] != b"PK\x03\x04":
            return None
        name_length, extra_length = struct.unpack_from("<HH", data, offset + 26)
        start = offset + 30 + name_length + extra_length
        raw = memoryview(data)[start:start + info.compress_size]
        if info.compress_type == zipfile.ZIP_STORED:
            return bytes(raw[:size])
        if info.compress_type == zipfile.ZIP_DEFLATED:
            return zlib.decompressobj(-zlib.MAX_WBITS).decompress(raw, size)
        return None


def _identify_zip(data: bytes) -> Identified:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, struct.error) as exc:
        return Identified("zip", "unreadable_file", f"corrupt or truncated zip: {exc}")
    if len(infos) > MAX_ZIP_MEMBERS:
        raise _Reject("too_large", f"{len(infos)} zip members",
                      f"tệp có quá nhiều thành phần ({_cells_vi(len(infos))})")
    total = 0
    for info in infos:
        total += info.file_size
        if info.file_size > MAX_PART_BYTES:
            raise _Reject("too_large", f"member {info.filename} declares {info.file_size} bytes",
                          f"một thành phần của tệp giải nén ra {_mb(info.file_size)} MB")
        if info.file_size >= RATIO_MIN_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise _Reject("too_large",
                          f"member {info.filename} ratio {info.file_size}/{info.compress_size}",
                          f"tệp nén bất thường: một thành phần giải nén ra {_mb(info.file_size)} MB")
    if total > MAX_DECOMPRESSED_BYTES:
        raise _Reject("too_large", f"{total} bytes once decompressed",
                      f"{_mb(total)} MB sau khi giải nén, vượt giới hạn {_mb(MAX_DECOMPRESSED_BYTES)} MB")
    package = _Package(archive, data)
    if len(package.members) != len(infos):
        # Readers disagree on which of two same-named members counts: the one checked here might
        # not be the one python-calamine parses.
        return Identified("zip", "unreadable_file", "duplicate member names in the zip")

    mimetype = package.get("mimetype")
    if mimetype is not None:
        kind = package.read(mimetype, 1024).strip()
        if kind in ODS_MIMETYPES:
            return _identify_ods(package)
        if kind.startswith(b"application/vnd.oasis.opendocument"):
            return Identified("zip", "unreadable_file", f"OpenDocument but not a spreadsheet: {kind!r}")
    if any(name.startswith("index/") and name.endswith(".iwa") for name in package.members):
        return Identified("numbers", "unreadable_file", "Apple Numbers package (IWA), not readable")

    fmt = ""
    content_types = package.get("[Content_Types].xml")
    if content_types is not None:
        declared = package.read(content_types, 1024 * 1024).lower()
        fmt = next((name for marker, name in _CT_FORMATS if marker in declared), "")
    if not fmt:
        # Lenient writers omit or garble [Content_Types].xml; the workbook part still says what it is.
        if any(name.endswith("workbook.xml") for name in package.members):
            fmt = "xlsx"
        elif any(name.endswith("workbook.bin") for name in package.members):
            fmt = "xlsb"
    if not fmt:
        return Identified("zip", "unreadable_file", "zip without a workbook part (not a spreadsheet)")
    for name, info in package.members.items():
        loaded_on_open = name.endswith((".xml", ".bin", ".rels")) and "sheet" not in name.rpartition("/")[2]
        if loaded_on_open and info.file_size > MAX_OPEN_PART_BYTES:
            raise _Reject("too_large", f"part {info.filename} declares {info.file_size} bytes",
                          f"một thành phần của tệp giải nén ra {_mb(info.file_size)} MB", fmt)
    return Identified(fmt, None, archive=archive, payload=data)


_MANIFEST_ENCRYPTED = re.compile(rb"<(?:[\w.-]+:)?encryption-data\b")


def _identify_ods(package: _Package) -> Identified:
    manifest = package.get("META-INF/manifest.xml")
    if manifest is not None and _MANIFEST_ENCRYPTED.search(package.read(manifest, 4 * 1024 * 1024)):
        return Identified("ods", "encrypted_file", "ODS with manifest:encryption-data")
    content = package.get("content.xml")
    if content is None:
        return Identified("ods", "unreadable_file", "ODS without content.xml")
    # python-calamine loads every table of an ODS when it opens it: bound them all now.
    cells = ods_cell_bound(package.read(content))
    if cells > MAX_CELLS:
        raise _too_many_cells(cells, "content.xml", "ods")
    return Identified("ods", None, cells=cells, archive=package.archive)


_REL = re.compile(rb"<(?:[\w.-]+:)?Relationship\b([^>]*)>")
_ATTR = re.compile(rb"([\w.:-]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
_SHEET = re.compile(rb"<(?:[\w.-]+:)?sheet\b([^>]*)>")


def _attrs(raw: bytes) -> dict[bytes, bytes]:
    return {key: a if a else b for key, a, b in _ATTR.findall(raw)}


def _resolve(base_dir: str, target: str) -> str:
    if target.startswith("/"):
        return _norm(target)
    parts = [p for p in base_dir.split("/") if p]
    for piece in _norm(target).split("/"):
        if piece == "..":
            if parts:
                parts.pop()
        elif piece and piece != ".":
            parts.append(piece)
    return "/".join(parts)


def _relationships(package: _Package, part: str) -> dict[str, str]:
    """Map relationship ids of a part to the member names they point at."""
    directory, _, filename = part.rpartition("/")
    rels = package.get(f"{directory}/_rels/{filename}.rels" if directory else f"_rels/{filename}.rels")
    if rels is None:
        return {}
    found: dict[str, str] = {}
    for raw in _REL.findall(package.read(rels, 4 * 1024 * 1024)):
        attrs = _attrs(raw)
        if b"Id" in attrs and b"Target" in attrs:
            found[xml_text(attrs[b"Id"])] = _resolve(directory, xml_text(attrs[b"Target"]))
    return found


def _workbook_part(package: _Package, fmt: str) -> str | None:
    for target in _relationships(package, "").values():
        if target.casefold().endswith(("workbook.xml", "workbook.bin")) and package.get(target):
            return target
    default = "xl/workbook.bin" if fmt == "xlsb" else "xl/workbook.xml"
    return default if package.get(default) else None


def _xlsx_sheet_parts(package: _Package, workbook: str) -> dict[str, str]:
    rels = _relationships(package, workbook)
    info = package.get(workbook)
    parts: dict[str, str] = {}
    if info is None:
        return parts
    for raw in _SHEET.findall(package.read(info)):
        attrs = _attrs(raw)
        rel_id = next((value for key, value in attrs.items() if key.endswith(b":id")), None)
        if b"name" in attrs and rel_id is not None:
            target = rels.get(xml_text(rel_id))
            if target:
                parts.setdefault(xml_text(attrs[b"name"]), target)
    return parts


def _wide_string(buf: bytes, offset: int) -> tuple[str, int]:
    length = struct.unpack_from("<I", buf, offset)[0]
    start = offset + 4
    end = start + 2 * length
    if end > len(buf):
        raise ValueError("XLWideString past record end")
    return buf[start:end].decode("utf-16-le", "replace"), end


def _xlsb_sheet_parts(package: _Package, workbook: str) -> dict[str, str]:
    rels = _relationships(package, workbook)
    info = package.get(workbook)
    parts: dict[str, str] = {}
    if info is None:
        return parts
    buf = package.read(info)
    for rtype, offset, size in biff12_records(buf):
        if rtype != XLSB_BUNDLE_SHEET or size < 12:
            continue
        record = buf[offset:offset + size]
        try:
            rel_id, after = _wide_string(record, 8)
            name, _ = _wide_string(record, after)
        except (ValueError, struct.error):
            continue
        if rel_id in rels:
            parts.setdefault(name, rels[rel_id])
    return parts


def sheet_cell_bounds(identified: Identified, sheet_names: Sequence[str]) -> dict[str, int]:
    """Return the cells loading each named sheet of an xlsx/xlsm/xlsb would allocate.

    A sheet whose part cannot be located the way python-calamine would is charged with every
    worksheet part of the package: over-estimating only costs a false `too_large` on a malformed
    package, under-estimating could cost the process.
    """
    if identified.format not in LAZY_FORMATS or identified.archive is None:
        return dict.fromkeys(sheet_names, 0)
    package = _Package(identified.archive, identified.payload)
    binary = identified.format == "xlsb"
    workbook = _workbook_part(package, identified.format)
    parts = {}
    if workbook:
        parts = (_xlsb_sheet_parts if binary else _xlsx_sheet_parts)(package, workbook)
    bound = xlsb_cell_bound if binary else xlsx_cell_bound
    bounds: dict[str, int] = {}
    for name in sheet_names:
        target = parts.get(name)
        info = package.get(target) if target else None
        if info is not None:
            bounds[name] = bound(package.read(info))
            continue
        bounds[name] = sum(bound(package.read(member)) for member in _worksheet_members(package, binary))
    return bounds


def _worksheet_members(package: _Package, binary: bool) -> list[zipfile.ZipInfo]:
    suffix = ".bin" if binary else ".xml"
    return [member for name, member in package.members.items()
            if "sheet" in name.rpartition("/")[2] and name.endswith(suffix) and "/_rels/" not in name]


def check_workbook(identified: Identified, max_cells: int = MAX_CELLS) -> Identified | None:
    """Check that loading every sheet of the package stays within `max_cells`; return a rejection or None.

    Whoever reads all of a file (the annotated copy) is bounded here like the parser is for the
    sheets it reads: every worksheet part is charged, named in the workbook or not.
    """
    fmt = identified.format
    if not identified.ok:
        return identified
    try:
        if fmt in LAZY_FORMATS and identified.archive is not None:
            package = _Package(identified.archive, identified.payload)
            binary = fmt == "xlsb"
            bound = xlsb_cell_bound if binary else xlsx_cell_bound
            total = sum(bound(package.read(member)) for member in _worksheet_members(package, binary))
        else:
            total = identified.cells  # ODS and xls were bounded whole by identify()
    except _Reject as verdict:
        return Identified(fmt, verdict.rule, verdict.detail, verdict.detail_vi)
    except Exception as exc:  # a damaged member (bad CRC, truncated deflate) is an unreadable file
        return Identified(fmt, "unreadable_file", f"sheet parts unreadable: {exc!r}")
    if total > max_cells:
        verdict = _too_many_cells(total, "all sheets", fmt)
        return Identified(fmt, verdict.rule, verdict.detail, verdict.detail_vi, cells=total)
    return None


def check_sheets(identified: Identified, sheet_names: Sequence[str]) -> Identified | None:
    """Check that loading the named sheets stays within MAX_CELLS; return a rejection or None."""
    fmt = identified.format
    try:
        bounds = sheet_cell_bounds(identified, sheet_names)
    except _Reject as verdict:
        return Identified(fmt, verdict.rule, verdict.detail, verdict.detail_vi)
    except Exception as exc:  # a damaged member (bad CRC, truncated deflate) is an unreadable file
        return Identified(fmt, "unreadable_file", f"sheet parts unreadable: {exc!r}")
    total = sum(bounds.values())
    if total > MAX_CELLS:
        worst = max(bounds, key=bounds.__getitem__)
        verdict = _too_many_cells(total, f"sheets {list(bounds)} (largest {worst!r})", fmt)
        return Identified(fmt, verdict.rule, verdict.detail, verdict.detail_vi)
    return None


# --------------------------------------------------------------------------------------------------
# OLE compound files: xls (BIFF5/8), encrypted OOXML, encrypted xls
