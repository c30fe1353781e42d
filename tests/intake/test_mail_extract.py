"""Attachment extraction from raw messages: real client shapes, hostile input and the mail corpus."""

from __future__ import annotations

import base64
import io
import time
import unicodedata
import zipfile
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest

from tasks.intake.mail_extract import (
    MAX_MESSAGE_KEPT_BYTES,
    MAX_ZIP_MEMBERS,
    Extraction,
    SkipReason,
    extract_workbooks,
    safe_filename,
)
from tasks.intake.sniff import stub_size
from tests.support.corpus import CORPUS, corpus_files, require_corpus

CORPUS_MAIL = CORPUS / "mail"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
NAME = "Báo cáo BĐG-TE HK1.xlsx"
MB = 1024 * 1024


def xlsx_bytes(marker: str = "x") -> bytes:
    """Return a small zip shaped like an OOXML workbook (the sniffer judges it later)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", f"<workbook>{marker}</workbook>")
    return buffer.getvalue()


XLS_BYTES = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def message(
    *attachments: tuple[bytes, str, str], sender: str = "Trường MN Họa Mi <HoaMi@Q8.edu.vn>"
) -> bytes:
    """Build a message the way a modern client does: text body, then (data, name, type) attachments."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "gec@q8.test"
    msg["Subject"] = "Báo cáo BĐG-TE học kỳ 1"
    msg["Message-ID"] = "<abc@q8.test>"
    msg.set_content("Kính gửi Phòng GD&ĐT, trường gửi báo cáo đính kèm.")
    for data, name, ctype in attachments:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes(policy=SMTP)


def raw_message(part_headers: str, body: str, *, top: str = "") -> bytes:
    """Build a message by hand, for header shapes the email package would never write."""
    text = (
        "From: =?UTF-8?B?VHLGsOG7nW5nIFRIIELDrG5oIMSQw7RuZw==?= <thcs.binhdong@q8.edu.vn>\r\n"
        "To: gec@q8.test\r\n"
        "Subject: =?UTF-8?Q?B=C3=A1o_c=C3=A1o?=\r\n"
        f"{top}"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="BOUNDARY"\r\n'
        "\r\n"
        "--BOUNDARY\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        "Xin gui bao cao.\r\n"
        "--BOUNDARY\r\n"
        f"{part_headers}"
        "\r\n"
        f"{body}\r\n"
        "--BOUNDARY--\r\n"
    )
    return text.encode("utf-8", "surrogateescape")


def b64(data: bytes) -> str:
    return base64.encodebytes(data).decode("ascii").replace("\n", "\r\n")


def only(extraction: Extraction) -> tuple[str, str, bytes, str]:
    assert len(extraction.attachments) == 1, extraction
    attachment = extraction.attachments[0]
    return attachment.original_name, attachment.safe_name, attachment.data, attachment.origin


# --- shapes real clients produce -------------------------------------------------------------


def test_outlook_rfc2231_vietnamese_name() -> None:
    data = xlsx_bytes()
    raw = message((data, NAME, XLSX_TYPE))
    assert b"filename*=utf-8''B%C3%A1o%20c%C3%A1o%20B%C4%90G-TE%20HK1.xlsx" in raw
    result = extract_workbooks(raw, max_bytes=MB)
    assert only(result) == (NAME, NAME, data, "attachment")
    assert result.sender == "hoami@q8.edu.vn"
    assert result.subject == "Báo cáo BĐG-TE học kỳ 1"
    assert result.message_id == "<abc@q8.test>"
    assert result.skipped == [] and result.problem is None


def test_outlook_exchange_headers_by_hand() -> None:
    """Exchange writes an RFC 2047 name= and an RFC 2231 filename*= side by side."""
    encoded_name = base64.b64encode(NAME.encode()).decode()
    headers = (
        f'Content-Type: {XLSX_TYPE};\r\n\tname="=?utf-8?B?{encoded_name}?="\r\n'
        "Content-Description: =?utf-8?B?" + encoded_name + "?=\r\n"
        "Content-Disposition: attachment;\r\n"
        "\tfilename*=utf-8''B%C3%A1o%20c%C3%A1o%20B%C4%90G-TE%20HK1.xlsx; size=8123;\r\n"
        '\tcreation-date="Tue, 02 May 2023 08:01:00 GMT"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
    )
    result = extract_workbooks(raw_message(headers, b64(xlsx_bytes())), max_bytes=MB)
    assert only(result)[:2] == (NAME, NAME)
    assert result.sender == "thcs.binhdong@q8.edu.vn"
    assert result.subject == "Báo cáo"


def test_rfc2231_continuations_long_vietnamese_name() -> None:
    name = (
        "Báo cáo kết quả thực hiện công tác bình đẳng giới và trẻ em 6 tháng đầu năm 2023"
        " của trường mầm non Họa Mi phường 4 quận 8 thành phố Hồ Chí Minh.xlsx"
    )
    raw = message((xlsx_bytes(), name, "application/octet-stream"))
    assert b"filename*0*=" in raw and b"filename*1*=" in raw
    original, safe, _, _ = only(extract_workbooks(raw, max_bytes=MB))
    assert original == name
    assert safe.endswith(".xlsx") and len(safe) <= 120 and len(safe.encode()) <= 240
    assert safe.startswith("Báo cáo kết quả")


def test_gmail_rfc2047_name_in_quotes() -> None:
    encoded = base64.b64encode(NAME.encode()).decode()
    headers = (
        f'Content-Type: {XLSX_TYPE}; \r\n\tname="=?UTF-8?B?{encoded}?="\r\n'
        f'Content-Disposition: attachment; \r\n\tfilename="=?UTF-8?B?{encoded}?="\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        "X-Attachment-Id: f_lh2k3j4k0\r\n"
    )
    assert only(extract_workbooks(raw_message(headers, b64(xlsx_bytes())), max_bytes=MB))[:2] == (NAME, NAME)


def test_rfc2047_name_split_mid_character_over_two_words() -> None:
    """Some clients cut an encoded word inside a UTF-8 sequence; adjacent words are joined first."""
    encoded = NAME.encode()
    cut = encoded.index("á".encode()) + 1  # between the two bytes of "á"
    first = base64.b64encode(encoded[:cut]).decode()
    second = base64.b64encode(encoded[cut:]).decode()
    headers = (
        f'Content-Type: application/octet-stream;\r\n name="=?utf-8?B?{first}?=\r\n =?utf-8?B?{second}?="\r\n'
        "Content-Transfer-Encoding: base64\r\n"
    )
    assert only(extract_workbooks(raw_message(headers, b64(xlsx_bytes())), max_bytes=MB))[0] == NAME


@pytest.mark.parametrize(
    ("charset", "name", "encoding"),
    [
        ("ks_c_5601-1987", "사진 보고서.xlsx", "cp949"),
        ("gb2312", "报告表.xlsx", "gb2312"),
        ("iso-2022-jp", "報告書.xlsx", "iso-2022-jp"),
        ("windows-1251", "Отчёт.xlsx", "cp1251"),
        ("windows-1258", "Báo cáo.xlsx", "cp1258"),
        ("x-no-such-charset", "Báo cáo.xlsx", "utf-8"),
    ],
)
def test_rfc2047_names_in_legacy_charsets(charset: str, name: str, encoding: str) -> None:
    encoded = base64.b64encode(
        unicodedata.normalize("NFD", name).encode(encoding) if encoding == "cp1258" else name.encode(encoding)
    ).decode()
    headers = (
        f'Content-Type: application/octet-stream; name="=?{charset}?B?{encoded}?="\r\n'
        "Content-Transfer-Encoding: base64\r\n"
    )
    assert only(extract_workbooks(raw_message(headers, b64(xlsx_bytes())), max_bytes=MB))[0] == name


def test_rfc2231_name_in_legacy_charset_with_bad_byte_falls_back() -> None:
    headers = (
        "Content-Type: application/octet-stream; name*=iso-2022-jp'ja'Bao%20cao%8a.xlsx\r\n"
        "Content-Transfer-Encoding: base64\r\n"
    )
    original, safe, _, _ = only(extract_workbooks(raw_message(headers, b64(xlsx_bytes())), max_bytes=MB))
    assert original.startswith("Bao cao") and original.endswith(".xlsx")
    assert safe.endswith(".xlsx")


@pytest.mark.parametrize("encoding", ["utf-8", "cp1258"])
def test_raw_8bit_names(encoding: str) -> None:
    """Zalo exports and old Outlook Express put unencoded bytes in the header."""
    name_bytes = unicodedata.normalize("NFD" if encoding == "cp1258" else "NFC", NAME).encode(encoding)
    headers = (
        b'Content-Type: application/octet-stream; name="' + name_bytes + b'"\r\n'
        b"Content-Transfer-Encoding: base64\r\n"
    ).decode("utf-8", "surrogateescape")
    raw = raw_message(headers, b64(xlsx_bytes()))
    assert only(extract_workbooks(raw, max_bytes=MB))[:2] == (NAME, NAME)


def test_nfd_name_from_macos_becomes_nfc() -> None:
    raw = message((xlsx_bytes(), unicodedata.normalize("NFD", NAME), XLSX_TYPE))
    original, safe, _, _ = only(extract_workbooks(raw, max_bytes=MB))
    assert original == NAME == safe
    assert unicodedata.is_normalized("NFC", original)


def test_forwarded_message_with_workbook() -> None:
    data = xlsx_bytes()
    inner = EmailMessage()
    inner["From"] = "hieutruong@q8.edu.vn"
    inner["Subject"] = "Báo cáo"
    inner.set_content("Gửi chị báo cáo.")
    inner.add_attachment(data, maintype="application", subtype=XLSX_TYPE.split("/")[1], filename=NAME)
    outer = EmailMessage()
    outer["From"] = "van.thu@q8.edu.vn"
    outer["Subject"] = "Fwd: Báo cáo"
    outer.set_content("Chuyển tiếp.")
    outer.add_attachment(inner)
    raw = outer.as_bytes(policy=SMTP)
    assert b"message/rfc822" in raw
    result = extract_workbooks(raw, max_bytes=MB)
    assert only(result) == (NAME, NAME, data, "forwarded")
    assert result.sender == "van.thu@q8.edu.vn"


def test_forwarding_nested_too_deep_is_bounded() -> None:
    msg = EmailMessage()
    msg["From"] = "a@q8.test"
    msg.add_attachment(xlsx_bytes(), maintype="application", subtype="octet-stream", filename=NAME)
    for _ in range(6):
        outer = EmailMessage()
        outer["From"] = "a@q8.test"
        outer.set_content("fwd")
        outer.add_attachment(msg)
        msg = outer
    result = extract_workbooks(msg.as_bytes(), max_bytes=MB)
    assert result.attachments == []
    assert result.problem and "nested too deeply" in result.problem


def test_zip_with_two_workbooks() -> None:
    first, second = xlsx_bytes("1"), XLS_BYTES
    archive = zip_of(
        {
            "Báo cáo MN Họa Mi.xlsx": first,
            "thư mục/Báo cáo TH Bình Đông.XLS": second,
            "__MACOSX/._Báo cáo MN Họa Mi.xlsx": b"\0\5\26\7",
            "~$Báo cáo MN Họa Mi.xlsx": b"lock",
            "đọc tôi.txt": b"hi",
        }
    )
    result = extract_workbooks(message((archive, "bao-cao.zip", "application/zip")), max_bytes=MB)
    assert [(a.original_name, a.safe_name, a.data, a.origin, a.container) for a in result.attachments] == [
        ("Báo cáo MN Họa Mi.xlsx", "Báo cáo MN Họa Mi.xlsx", first, "zip", "bao-cao.zip"),
        ("thư mục/Báo cáo TH Bình Đông.XLS", "Báo cáo TH Bình Đông.XLS", second, "zip", "bao-cao.zip"),
    ]
    assert [(s.name, s.reason) for s in result.skipped] == [("đọc tôi.txt", "not_a_workbook")]


def test_zip_member_names_written_without_utf8_flag() -> None:
    """Windows' built-in zipper writes names in the OEM code page with no UTF-8 flag."""
    name = unicodedata.normalize("NFD", "Báo cáo.xlsx")
    placeholder = "X" * len(name.encode("cp1258"))
    archive = zip_of({placeholder: xlsx_bytes()}).replace(placeholder.encode(), name.encode("cp1258"))
    result = extract_workbooks(message((archive, "nen.zip", "application/x-zip-compressed")), max_bytes=MB)
    assert [a.original_name for a in result.attachments] == ["Báo cáo.xlsx"]


def test_zip_nested_one_level_is_opened_deeper_is_not() -> None:
    inner = zip_of({"trong.xlsx": xlsx_bytes("in")})
    middle = zip_of({"giua.zip": inner, "ngoai.xlsx": xlsx_bytes("mid")})
    outer = zip_of({"lop2.zip": middle})
    result = extract_workbooks(message((middle, "a.zip", "application/zip")), max_bytes=MB)
    assert sorted(a.safe_name for a in result.attachments) == ["ngoai.xlsx", "trong.xlsx"]
    result = extract_workbooks(message((outer, "b.zip", "application/zip")), max_bytes=MB)
    assert [a.safe_name for a in result.attachments] == ["ngoai.xlsx"]
    assert ("giua.zip", "not_a_workbook") in [(s.name, s.reason) for s in result.skipped]


def test_zip_too_many_members() -> None:
    archive = zip_of({f"f{i}.xlsx": b"x" for i in range(MAX_ZIP_MEMBERS + 1)})
    result = extract_workbooks(message((archive, "nhieu.zip", "application/zip")), max_bytes=MB)
    assert result.attachments == []
    assert [(s.name, s.reason) for s in result.skipped] == [("nhieu.zip", "zip_too_many")]


def test_zip_bomb_member_is_too_large_without_keeping_it() -> None:
    archive = zip_of({"bom.xlsx": b"\0" * (4 * MB), "nho.xlsx": xlsx_bytes()})
    assert len(archive) < 64 * 1024
    result = extract_workbooks(message((archive, "bom.zip", "application/zip")), max_bytes=MB)
    # The bomb is kept as an oversize stub (a too_large submission), never as 4 MB of zeros.
    assert [a.safe_name for a in result.attachments] == ["bom.xlsx", "nho.xlsx"]
    assert stub_size(result.attachments[0].data) == 4 * MB and len(result.attachments[0].data) < 200
    assert result.skipped == []


def test_zip_lying_about_member_size_is_caught_while_reading() -> None:
    archive = bytearray(zip_of({"gia.xlsx": b"\0" * (2 * MB)}))
    # Rewrite the declared uncompressed size (local header and central directory) to 10 bytes.
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = archive.index(signature)
        archive[at + offset : at + offset + 4] = (10).to_bytes(4, "little")
    result = extract_workbooks(message((bytes(archive), "gia.zip", "application/zip")), max_bytes=MB)
    assert result.attachments == []
    assert [s.reason for s in result.skipped] in (["too_large"], ["bad_zip"])


def test_bad_zip() -> None:
    result = extract_workbooks(message((b"PK\x03\x04 broken", "hong.zip", "application/zip")), max_bytes=MB)
    assert [(s.name, s.reason) for s in result.skipped] == [("hong.zip", "bad_zip")]


def test_zip_path_traversal_member() -> None:
    archive = zip_of({"../../../../etc/Báo cáo.xlsx": xlsx_bytes(), "/abs/x.xlsx": xlsx_bytes("2")})
    result = extract_workbooks(message((archive, "x.zip", "application/zip")), max_bytes=MB)
    assert sorted(a.safe_name for a in result.attachments) == ["Báo cáo.xlsx", "x.xlsx"]


def test_two_workbooks_in_one_message() -> None:
    first, second = xlsx_bytes("1"), XLS_BYTES
    result = extract_workbooks(
        message(
            (first, "MN Họa Mi.xlsx", XLSX_TYPE),
            (second, "MN Họa Mi.xls", "application/vnd.ms-excel"),
            (b"%PDF-1.4", "Công văn.pdf", "application/pdf"),
        ),
        max_bytes=MB,
    )
    assert [(a.safe_name, a.data) for a in result.attachments] == [
        ("MN Họa Mi.xlsx", first),
        ("MN Họa Mi.xls", second),
    ]
    assert [(s.name, s.reason) for s in result.skipped] == [("Công văn.pdf", "not_a_workbook")]


def test_same_name_twice_gets_distinct_safe_names() -> None:
    result = extract_workbooks(
        message((xlsx_bytes("1"), NAME, XLSX_TYPE), (xlsx_bytes("2"), NAME, XLSX_TYPE)), max_bytes=MB
    )
    assert [a.safe_name for a in result.attachments] == [NAME, "Báo cáo BĐG-TE HK1 (2).xlsx"]


def test_no_attachment() -> None:
    result = extract_workbooks(message(), max_bytes=MB)
    assert (result.attachments, result.skipped, result.problem) == ([], [], None)
    assert result.sender == "hoami@q8.edu.vn"


def test_attachment_over_max_bytes_is_skipped_and_not_kept() -> None:
    result = extract_workbooks(
        message((b"PK\x03\x04" + b"\0" * 300_000, NAME, XLSX_TYPE), (xlsx_bytes(), "nho.xlsx", XLSX_TYPE)),
        max_bytes=100_000,
    )
    assert [a.safe_name for a in result.attachments] == [NAME, "nho.xlsx"]
    size = stub_size(result.attachments[0].data)  # estimated from the base64 length, never decoded
    assert size is not None and abs(size - 300_004) <= 3 and result.skipped == []


def test_size_limit_is_exact() -> None:
    data = b"PK\x03\x04" + b"\0" * 996
    assert len(only(extract_workbooks(message((data, "a.xlsx", XLSX_TYPE)), max_bytes=1000))[2]) == 1000
    result = extract_workbooks(message((data, "a.xlsx", XLSX_TYPE)), max_bytes=999)
    assert stub_size(only(result)[2]) == 1000


def test_one_message_stores_at_most_its_budget() -> None:
    # A 270 KB mail whose zip expands to ten 20 MB workbooks used to store 200 MB.
    members = {f"bao cao {n}.xlsx": b"PK\x03\x04" + bytes([n]) * (20 * MB - 4) for n in range(10)}
    archive = zip_of(members)
    assert len(archive) < 1 * MB
    result = extract_workbooks(message((archive, "nhieu.zip", "application/zip")), max_bytes=20 * MB)
    kept = [a for a in result.attachments if stub_size(a.data) is None]
    stubs = [a for a in result.attachments if stub_size(a.data) is not None]
    assert sum(len(a.data) for a in result.attachments) <= MAX_MESSAGE_KEPT_BYTES + 10 * 200
    assert len(kept) == MAX_MESSAGE_KEPT_BYTES // (20 * MB) and len(kept) + len(stubs) == 10
    assert len({a.data for a in stubs}) == len(stubs)  # each stub names its own file


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/Báo cáo.xlsx", "Báo cáo.xlsx"),
        ("..\\..\\Windows\\Báo cáo.xlsx", "Báo cáo.xlsx"),
        ("C:\\Users\\GV\\Desktop\\Báo cáo.xlsx", "Báo cáo.xlsx"),
        ("/etc/passwd.xlsx", "passwd.xlsx"),
        ("CON.xlsx", "_CON.xlsx"),
        ("..xlsx", "tep-dinh-kem-1.xlsx"),
        ("a\u202egpj.xlsx", "agpj.xlsx"),
    ],
)
def test_path_traversal_and_hostile_names(name: str, expected: str) -> None:
    result = extract_workbooks(message((xlsx_bytes(), name, XLSX_TYPE)), max_bytes=MB)
    original, safe, _, _ = only(result)
    assert safe == expected
    assert original == unicodedata.normalize("NFC", name).replace("\u202e", "")


def test_nul_and_control_characters_in_rfc2231_name() -> None:
    headers = (
        "Content-Type: application/octet-stream\r\n"
        "Content-Disposition: attachment; filename*=utf-8''..%2F..%2Fa%00b%0D%0Ac%1B.xlsx\r\n"
        "Content-Transfer-Encoding: base64\r\n"
    )
    original, safe, _, _ = only(extract_workbooks(raw_message(headers, b64(xlsx_bytes())), max_bytes=MB))
    assert safe == "abc.xlsx"
    assert "\0" not in original and "\r" not in original and "\n" not in original


def test_workbook_without_extension_kept_by_signature() -> None:
    result = extract_workbooks(
        message(
            (xlsx_bytes(), "baocao", "application/octet-stream"),
            (XLS_BYTES, "bao cao cu", "application/octet-stream"),
            (b"GIF89a", "hinh", "application/octet-stream"),
        ),
        max_bytes=MB,
    )
    assert [a.safe_name for a in result.attachments] == ["baocao", "bao cao cu"]
    assert [(s.name, s.reason) for s in result.skipped] == [("hinh", "not_a_workbook")]


def test_spreadsheet_content_type_without_name_gets_fallback_name() -> None:
    headers = "Content-Type: application/vnd.ms-excel\r\nContent-Transfer-Encoding: base64\r\n"
    original, safe, data, _ = only(extract_workbooks(raw_message(headers, b64(XLS_BYTES)), max_bytes=MB))
    assert safe == original == "tep-dinh-kem-1.xls"
    assert data == XLS_BYTES


def test_tnef_is_reported_not_unpacked() -> None:
    result = extract_workbooks(
        message((b"\x78\x9f\x3e\x22rest", "winmail.dat", "application/ms-tnef")), max_bytes=MB
    )
    assert [(s.name, s.reason) for s in result.skipped] == [("winmail.dat", SkipReason.TNEF_UNSUPPORTED)]


def test_uuencode_transfer_encoding_and_inline_uuencode() -> None:
    headers = (
        'Content-Type: application/vnd.ms-excel; name="bao cao.xls"\r\n'
        "Content-Transfer-Encoding: x-uuencode\r\n"
    )
    result = extract_workbooks(raw_message(headers, "begin 644 bao cao.xls\r\n`\r\nend"), max_bytes=MB)
    assert [(s.name, s.reason) for s in result.skipped] == [("bao cao.xls", "uuencode_unsupported")]

    body = "Xin gui.\r\n\r\nbegin 644 Bao cao HK1.xls\r\nM9&%T80``\r\n`\r\nend\r\n"
    raw = f"From: a@q8.test\r\nSubject: uu\r\nContent-Type: text/plain\r\n\r\n{body}".encode()
    result = extract_workbooks(raw, max_bytes=MB)
    assert [(s.name, s.reason) for s in result.skipped] == [("Bao cao HK1.xls", "uuencode_unsupported")]


def test_broken_base64_still_gives_a_verdict() -> None:
    headers = f'Content-Type: {XLSX_TYPE}; name="a.xlsx"\r\nContent-Transfer-Encoding: base64\r\n'
    result = extract_workbooks(raw_message(headers, "UEsDBB*Q!!AAgAI\r\nAHOy=Q"), max_bytes=MB)
    assert [a.safe_name for a in result.attachments] == ["a.xlsx"]  # the sniffer rejects the bytes
    assert result.problem and "base64" in result.problem


def test_missing_boundary_and_truncated_message() -> None:
    raw = raw_message(
        f'Content-Type: {XLSX_TYPE}; name="a.xlsx"\r\nContent-Transfer-Encoding: base64\r\n', ""
    )
    truncated = raw[: raw.index(b"--BOUNDARY--")] + b"UEsDBA"
    result = extract_workbooks(truncated, max_bytes=MB)
    assert result.problem and "boundary" in result.problem
    no_boundary = b"From: a@q8.test\r\nContent-Type: multipart/mixed\r\n\r\n--x\r\nhello\r\n"
    result = extract_workbooks(no_boundary, max_bytes=MB)
    assert result.problem and "boundary" in result.problem


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\0\0\0\0",
        b"\xff\xfe garbage \x00\x01" * 100,
        b"Content-Type: multipart/mixed; boundary=a\r\n\r\n" + b"--a\r\nContent-Type: multipart/mixed; "
        b"boundary=a\r\n\r\n" * 200,
        b"From: \xff\xfe@\xc0\r\nSubject: =?utf-8?B?####?= =?bogus?Q?=ZZ?=\r\n\r\nbody",
        b"Content-Type: application/octet-stream; name*0*=x''%ZZ; name*1=\"\r\n\r\nPK",
        "not bytes at all",
        None,
        12345,
    ],
)
def test_never_raises(raw: object) -> None:
    result = extract_workbooks(raw, max_bytes=MB)  # type: ignore[arg-type]
    assert isinstance(result, Extraction)


def test_first_header_line_indented_is_repaired() -> None:
    raw = b" From: Truong <a@q8.test>\r\nSubject: x\r\n\r\nbody\r\n"
    result = extract_workbooks(raw, max_bytes=MB)
    assert result.sender == "a@q8.test"
    assert result.problem and "header" in result.problem


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (None, "tep-dinh-kem-3.xlsx"),
        ("", "tep-dinh-kem-3.xlsx"),
        ("   ", "tep-dinh-kem-3.xlsx"),
        ("...", "tep-dinh-kem-3.xlsx"),
        ("a/b/../..", "tep-dinh-kem-3.xlsx"),
        ("Báo   cáo..xlsx", "Báo cáo.xlsx"),
        ("bao?cao*<1>.xlsx", "bao_cao__1_.xlsx"),
        ("nul.tar.xlsx", "_nul.tar.xlsx"),
        ("trailing dot. ", "trailing dot"),
    ],
)
def test_safe_filename(name: str | None, expected: str) -> None:
    assert safe_filename(name, 3) == expected


def test_safe_filename_length_limits_keep_extension() -> None:
    long = "Đ" * 300 + ".xlsm"
    safe = safe_filename(long, 1)
    assert safe.endswith(".xlsm") and len(safe) <= 120 and len(safe.encode()) <= 240


# --- the real-world corpus -------------------------------------------------------------------

CORPUS_FILES = corpus_files("mail", "*.eml")


def test_corpus_is_present() -> None:
    require_corpus(CORPUS_FILES, "mail")
    assert len(CORPUS_FILES) >= 20, f"mail corpus incomplete at {CORPUS_MAIL}"


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_corpus_message_gets_a_verdict(path: Path) -> None:
    started = time.perf_counter()
    result = extract_workbooks(path.read_bytes(), max_bytes=20 * MB)
    assert time.perf_counter() - started < 2.0
    assert result.attachments or result.skipped or result.problem
    for attachment in result.attachments:
        assert "/" not in attachment.safe_name and "\\" not in attachment.safe_name
        assert ".." not in attachment.safe_name and "\0" not in attachment.safe_name
        assert 0 < len(attachment.safe_name) <= 120
        assert unicodedata.is_normalized("NFC", attachment.original_name)


def corpus(name: str) -> Extraction:
    return extract_workbooks((CORPUS_MAIL / name).read_bytes(), max_bytes=20 * MB)


def reasons(result: Extraction) -> list[tuple[str, str]]:
    return [(s.name, s.reason) for s in result.skipped]


def test_corpus_notable_messages() -> None:
    require_corpus(CORPUS_FILES, "mail")
    result = corpus("path-traversal-attachment-filenames.eml")
    assert reasons(result) == [
        ("../../example/MyFile.txt", "not_a_workbook"),
        ("php://foo", "not_a_workbook"),
    ]

    assert reasons(corpus("outlook365-winmail-dat-tnef.eml")) == [("winmail.dat", "tnef_unsupported")]
    assert reasons(corpus("x-uuencode-doc-attachment.eml")) == [
        ("PGP_Cmts_on_12-14-01_Pkg.doc", "uuencode_unsupported")
    ]

    result = corpus("outlook-style-328-attachments.eml")
    assert result.attachments == [] and len(result.skipped) == 328
    assert {s.reason for s in result.skipped} == {"not_a_workbook"}

    result = corpus("forwarded-rfc822-with-xlsx-no-disposition.eml")
    assert [(a.safe_name, a.origin) for a in result.attachments] == [
        ("file1.xlsx", "forwarded"),
        ("file2.xlsx", "forwarded"),
        ("file3.xlsx", "attachment"),
    ]
    assert reasons(result) == [("file.jpg", "not_a_workbook"), ("file4.zip", "bad_zip")]

    result = corpus("apple-mail-rfc2231-continuation-japanese-filename.eml")
    assert reasons(result) == [("かきくけこ" * 5 + ".txt", "not_a_workbook")]

    result = corpus("xls-attachment-rfc2047-czech-filename.eml")
    assert [a.safe_name for a in result.attachments] == ["Prostřeno_2014_poslední volné termíny.xls"]
    assert result.problem and "boundary" in result.problem

    assert [a.safe_name for a in corpus("xlsx-attachment-latin1-rfc2047-name-not-a-zip.eml").attachments] == [
        "2021_Mängelliste_0819306.xlsx"
    ]
    assert reasons(corpus("exchange2010-korean-ks_c_5601-filename.eml"))[0] == ("사진.JPG", "not_a_workbook")
    result = corpus("xlsx-octet-stream-truncated-cp1251-headers.eml")
    assert [a.safe_name for a in result.attachments] == ["Price4VladDaKar.xlsx"]
    assert result.subject == "Свежий прайс-лист"
    assert reasons(corpus("apple-mail-rfc2231-estonian-filename.eml")) == [
        ("Eelanalüüsi päring.jpg", "not_a_workbook")
    ]
    assert reasons(corpus("thunderbird-forward-as-attachment.eml")) == [("thanks.eml", "not_a_workbook")]
    name, reason = reasons(corpus("yahoo-raw-utf8-cyrillic-filename-truncated.eml"))[0]
    assert name.startswith("Картинка с очень") and reason == "not_a_workbook"
    assert reasons(corpus("gmail-2013-attachment-no-extension.eml")) == [("attach01", "not_a_workbook")]
    assert corpus("first-header-line-starts-with-space.eml").sender == "james@makita.skynet"
    assert "boundary" in (corpus("missing-final-boundary.eml").problem or "")
    assert "boundary" in (corpus("multipart-report-without-boundary-param.eml").problem or "")
