"""Header and charset decoding for mail intake: names and addresses as readable NFC text.

Mail clients encode names in RFC 2047 words, RFC 2231 parameters or raw 8-bit bytes, in charsets
Python only half knows; everything here decodes with fallbacks (UTF-8, then cp1258, then latin-1) and
never raises on hostile input.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email
import email.message
import email.utils
import re
import unicodedata
import zipfile

MAX_HEADER_CHARS = 32 * 1024
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
# Charset labels mail clients use that Python does not know, or knows as a narrower table.
_CHARSET_ALIASES = {
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "ks_c_5601_1987": "cp949",
    "euc-kr": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "shift_jis": "cp932",
    "x-sjis": "cp932",
    "windows-874": "cp874",
    "x-mac-vietnamese": "cp1258",
}
# Labels that say nothing about the bytes: go straight to the fallback chain.
_NO_CHARSET = frozenset({"", "us-ascii", "ascii", "unknown-8bit", "x-unknown", "unknown", "default"})


def raw_header(part: email.message.Message, name: str) -> str | None:
    """Return the first raw value of a header, before any of the email package's decoding."""
    for key, value in part.raw_items():
        if key.lower() == name:
            return value if isinstance(value, str) else str(value)
    return None


def header_text(part: email.message.Message, name: str, *, decode_words: bool = True) -> str:
    """Return a header as readable text: unfolded, 8-bit bytes decoded, RFC 2047 words decoded, NFC."""
    try:
        raw = raw_header(part, name)
    except Exception:
        return ""
    if raw is None:
        return ""
    # No real header is this long; the cap keeps decoding time bounded on hostile input.
    raw = raw[:MAX_HEADER_CHARS]
    text = to_text(_FOLD.sub("", raw)).replace("\r", "").replace("\n", "")
    if decode_words:
        text = decode_rfc2047(text)
    return nfc(text).strip()


def to_text(value: str) -> str:
    """Turn a header the parser read with surrogate escapes (raw 8-bit bytes) into real text."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    return decode_8bit(value.encode("utf-8", "surrogateescape"))


def sender_of(msg: email.message.Message) -> str | None:
    """Return the lower-case address of a message's From header, or None."""
    raw = header_text(msg, "from", decode_words=False)
    if not raw:
        return None
    try:
        pairs = email.utils.getaddresses([raw])
    except Exception:
        pairs = []
    for _, address in pairs:
        address = address.strip().strip("<>").strip()
        if "@" in address:
            return address.lower()
    match = re.search(r"[^\s<>\"',;:]+@[^\s<>\"',;:]+", raw)
    return match.group(0).lower() if match else None


def filename_of(part: email.message.Message) -> str | None:
    """Return the decoded attachment name: Content-Disposition filename, else Content-Type name."""
    name = None
    try:
        for header, param in (("content-disposition", "filename"), ("content-type", "name")):
            name = header_param(header_text(part, header, decode_words=False), param)
            if name:
                break
    except Exception:
        name = None
    if not name:
        try:  # the email package's own reading, for shapes the explicit one above missed
            name = part.get_filename()
        except Exception:
            name = None
    if not name:
        return None
    name = "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in name)
    return nfc(name).strip() or None


def header_param(header_value: str, param: str) -> str | None:
    """Read one parameter, handling RFC 2231 (charset, continuations) and RFC 2047 inside quotes."""
    if not header_value:
        return None
    holder = email.message.Message()  # compat32: tolerant parameter parsing with RFC 2231 support
    holder["X-Param"] = header_value
    value = holder.get_param(param, header="x-param")
    if value is None:
        return None
    if isinstance(value, tuple):
        charset, _language, text = value
        try:
            raw = text.encode("latin-1")  # each char stands for one percent-decoded octet
        except UnicodeEncodeError:
            decoded = text
        else:
            decoded = decode_charset(raw, charset or "")
    else:
        decoded = str(value)
    if "=?" in decoded:
        decoded = decode_rfc2047(decoded)
    return decoded.strip() or None


def decode_rfc2047(text: str) -> str:
    """Decode RFC 2047 encoded words, joining adjacent words first (clients split characters)."""
    if "=?" not in text:
        return text
    out: list[str] = []
    pending = b""
    pending_charset: str | None = None
    pos = 0

    def flush() -> None:
        nonlocal pending, pending_charset
        if pending_charset is not None:
            out.append(decode_charset(pending, pending_charset))
        pending, pending_charset = b"", None

    for match in _ENCODED_WORD.finditer(text):
        between = text[pos : match.start()]
        if not (pending_charset is not None and not between.strip()):
            flush()
            out.append(between)
        charset = match.group(1).split("*", 1)[0]
        data = _decode_word(match.group(2), match.group(3))
        if data is None:
            flush()
            out.append(match.group(0))
        else:
            if pending_charset is not None and charset.lower() != pending_charset.lower():
                flush()
            pending += data
            pending_charset = charset
        pos = match.end()
    flush()
    out.append(text[pos:])
    return "".join(out)


def _decode_word(encoding: str, payload: str) -> bytes | None:
    try:
        if encoding in "bB":
            payload = payload.strip()
            if len(payload) % 4 == 1:
                payload = payload[:-1]  # a stray character cannot be part of valid base64
            return base64.b64decode(payload + "=" * (-len(payload) % 4))
        return binascii.a2b_qp(payload.encode("utf-8"), header=True)
    except (binascii.Error, ValueError):
        return None


def decode_charset(data: bytes, charset: str) -> str:
    """Decode bytes in a declared charset, falling back to UTF-8, then cp1258/latin-1."""
    label = charset.strip().strip('"').lower()
    label = _CHARSET_ALIASES.get(label, label)
    codec = None
    if label not in _NO_CHARSET:
        try:
            codec = codecs.lookup(label).name
        except LookupError:
            codec = None
    if codec:
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if codec:
        return data.decode(codec, errors="replace")
    return decode_8bit(data)


def decode_8bit(data: bytes) -> str:
    """Decode bytes of unknown charset: UTF-8, then cp1258 (Vietnamese Windows), then latin-1."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    lenient = data.decode("utf-8", errors="replace")
    bad = lenient.count("\ufffd")
    good = sum(1 for ch in lenient if ord(ch) > 0x7F and ch != "\ufffd")
    if good >= 4 * bad:
        return lenient  # UTF-8 with a truncated or damaged character (Yahoo cut names mid-character)
    try:
        return data.decode("cp1258")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def zip_member_name(info: zipfile.ZipInfo) -> str:
    """Decode a member name: UTF-8 when flagged, else re-read the raw bytes with our fallbacks."""
    name = info.filename
    if info.flag_bits & 0x800:
        return nfc(name)
    try:
        raw = name.encode("cp437")  # zipfile decoded the unflagged bytes as cp437
    except UnicodeEncodeError:
        return nfc(name)
    return nfc(decode_8bit(raw))


def printable(text: str) -> str:
    """Drop control characters so a name cannot break a log line or an e-mail."""
    return "".join(ch for ch in text if unicodedata.category(ch) not in {"Cc", "Cf", "Cs"})


def nfc(text: str) -> str:
    """Return text in Unicode NFC (Vietnamese letters as one code point each)."""
    return unicodedata.normalize("NFC", text)


def repair_leading_lines(data: bytes) -> tuple[bytes, str | None]:
    """Drop blank lines before the headers and un-indent a first header line (Yahoo, broken relays)."""
    stripped = data
    while True:
        line_end = stripped.find(b"\n")
        line = stripped[: line_end + 1] if line_end >= 0 else stripped
        if line and not line.strip() and line_end >= 0 and len(stripped) > line_end + 1:
            stripped = stripped[line_end + 1 :]
            continue
        break
    if stripped[:1] in {b" ", b"\t"}:
        # " From: x" would otherwise be read as a continuation and the header lost.
        return stripped.lstrip(b" \t"), "broken headers: first header line began with whitespace (repaired)"
    return stripped, None


def part_content_type(part: email.message.Message) -> str:
    """Return a part's content type, lower case; a type the parser cannot read is octet-stream."""
    try:
        return part.get_content_type().lower()
    except Exception:
        return "application/octet-stream"


def part_disposition(part: email.message.Message) -> str | None:
    """Return a part's disposition (`attachment`, `inline`) or None."""
    value = header_text(part, "content-disposition", decode_words=False)
    return value.split(";", 1)[0].strip().lower() or None


def peek(part: email.message.Message) -> bytes:
    """Return the first bytes of a part without decoding all of it."""
    encoded = part.get_payload()
    if not isinstance(encoded, str):
        return b""
    cte = header_text(part, "content-transfer-encoding", decode_words=False).strip().lower()
    if cte == "base64":
        head = "".join(encoded[:200].split())[:16]
        try:
            return base64.b64decode(head[: len(head) - len(head) % 4])
        except (binascii.Error, ValueError):
            return b""
    if cte == "quoted-printable":
        return binascii.a2b_qp(encoded[:200].encode("utf-8", "surrogateescape"))[:16]
    return encoded[:16].encode("utf-8", "surrogateescape")
