"""The workbook contract (SPEC §3) as data: the one source of truth.

The template generator, the parser, the validator and the feedback messages all read this module.
Every Vietnamese label a school sees is written here once; code elsewhere refers to sheets, fields,
codes and rules by their English keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Literal

from schemas.text import match_key

TEMPLATE_VERSION = "2023.1"
# Bump when a sheet, field, code or rule changes meaning; recorded in every report manifest.
CONTRACT_VERSION = "1.0"


class Kind(StrEnum):
    """What a cell holds, which decides how the parser coerces it."""

    TEXT = "text"
    INT = "int"
    DATE = "date"
    CODE = "code"
    YES_NO = "yes_no"


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Choice:
    """One entry of a coded list: stable code, the label the template shows, optional short label."""

    code: str
    label: str
    short_label: str = ""
    aliases: tuple[str, ...] = ()

    def match_keys(self) -> set[str]:
        keys = {match_key(self.label), match_key(self.code)}
        if self.short_label:
            keys.add(match_key(self.short_label))
        keys.update(match_key(alias) for alias in self.aliases)
        return keys


@dataclass(frozen=True)
class CodeList:
    key: str
    choices: tuple[Choice, ...]

    @cached_property
    def _index(self) -> dict[str, str]:
        index: dict[str, str] = {}
        for choice in self.choices:
            for key in choice.match_keys():
                index.setdefault(key, choice.code)
        return index

    def lookup(self, text: object) -> str | None:
        """Return the code a label, short label, code or alias stands for, or None."""
        return self._index.get(match_key(text))

    def label(self, code: str) -> str:
        return next(choice.label for choice in self.choices if choice.code == code)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(choice.code for choice in self.choices)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(choice.label for choice in self.choices)


@dataclass(frozen=True)
class Field:
    """A column of a table sheet, or a key of a key-value sheet."""

    key: str
    label: str
    kind: Kind
    required: bool = False
    codes: CodeList | None = None
    # Rule raised when a CODE value is not in its list.
    invalid_rule: str = ""
    max_length: int | None = None
    aliases: tuple[str, ...] = ()
    width: int = 14
    note: str = ""  # Vietnamese hint shown in the template's instructions

    def match_keys(self) -> set[str]:
        return {match_key(self.label), *(match_key(alias) for alias in self.aliases)}


Layout = Literal["key_value", "table"]


@dataclass(frozen=True)
class Sheet:
    key: str
    name: str
    layout: Layout
    fields: tuple[Field, ...]
    # Pre-filled rows: the field whose cell names the row, and the list it names.
    row_field: str | None = None
    rows: CodeList | None = None
    confidential: bool = False
    blank_count_is_zero: bool = False
    hidden: bool = False
    aliases: tuple[str, ...] = ()

    def field(self, key: str) -> Field:
        return next(f for f in self.fields if f.key == key)

    @property
    def field_keys(self) -> tuple[str, ...]:
        return tuple(f.key for f in self.fields)

    def match_keys(self) -> set[str]:
        return {match_key(self.name), *(match_key(alias) for alias in self.aliases)}


@dataclass(frozen=True)
class NotGreater:
    """A relation `smaller <= larger` within one row; broken, it raises `rule` on `smaller`."""

    rule: str
    sheet: str
    smaller: str
    larger: str


@dataclass(frozen=True)
class Rule:
    code: str
    severity: Severity
    title: str  # short Vietnamese name, for lists and the report's data-quality section
    message: str  # Vietnamese; str.format fields: sheet, row, column, value and the extras named below


# --------------------------------------------------------------------------------------------------
# Coded lists

AUDIENCE_GROUPS = CodeList(
    "audience_group",
    (
        Choice("quan_ly", "Cán bộ quản lý"),
        Choice("giao_vien", "Giáo viên"),
        Choice("nhan_vien", "Nhân viên, người lao động"),
        Choice("hoc_sinh", "Học sinh, trẻ em"),
        Choice("phu_huynh", "Cha mẹ học sinh"),
        Choice("cong_tac_vien", "Cộng tác viên dân số, gia đình và trẻ em"),
    ),
)

ACTIVITY_TYPES = CodeList(
    "activity_type",
    (
        Choice("tuyen_truyen", "Tuyên truyền, phổ biến pháp luật"),
        Choice("tap_huan", "Tập huấn, bồi dưỡng"),
        Choice("thang_hd_tre_em", "Tháng hành động vì trẻ em"),
        Choice("thang_hd_bdg", "Tháng hành động vì bình đẳng giới"),
        Choice("trung_thu", "Tết Trung thu"),
        Choice("dien_dan_tre_em", "Diễn đàn trẻ em"),
        Choice("phong_chong_tntt", "Phòng, chống tai nạn thương tích, đuối nước"),
        Choice("phong_chong_bao_luc", "Phòng, chống bạo lực, xâm hại trẻ em"),
        Choice("suc_khoe_tam_than", "Chăm sóc sức khỏe tâm thần"),
        Choice("khac", "Khác"),
    ),
)

ACTIVITY_FORMATS = CodeList(
    "activity_format",
    (
        Choice("truc_tiep", "Trực tiếp"),
        Choice("truc_tuyen", "Trực tuyến"),
        Choice("ket_hop", "Kết hợp"),
    ),
)

CHECKLIST_ITEMS = CodeList(
    "checklist_item",
    (
        Choice(
            "ke_hoach_don_vi",
            "Đơn vị đã xây dựng kế hoạch thực hiện công tác bình đẳng giới và trẻ em năm học",
            "Kế hoạch đơn vị",
        ),
        Choice(
            "long_ghep_gioi",
            "Lồng ghép vấn đề giới trong các chương trình, kế hoạch hoạt động của đơn vị",
            "Lồng ghép giới",
        ),
        Choice("so_theo_doi_tre_em", "Cập nhật sổ theo dõi trẻ em tại đơn vị", "Sổ theo dõi trẻ em"),
        Choice(
            "du_lieu_tre_em",
            "Cập nhật dữ liệu trẻ em trên hệ thống thông tin của thành phố",
            "Dữ liệu trẻ em",
        ),
        Choice(
            "tong_dai_111",
            "Niêm yết, truyền thông Tổng đài 111 và các số điện thoại khẩn cấp",
            "Tổng đài 111",
        ),
        Choice(
            "tu_kiem_tra_an_toan",
            "Tự kiểm tra tiêu chuẩn, điều kiện hoạt động, bảo đảm an toàn, phòng ngừa bạo lực, xâm hại, "
            "tai nạn thương tích",
            "Tự kiểm tra an toàn",
        ),
        Choice(
            "ban_giao_he",
            "Phối hợp Ủy ban nhân dân phường bàn giao, quản lý trẻ em dịp hè",
            "Bàn giao hè",
        ),
        Choice(
            "tham_gia_le_phat_dong",
            "Cử học sinh, giáo viên tham gia Lễ phát động Tháng hành động vì trẻ em, Diễn đàn trẻ em",
            "Tham gia lễ phát động",
        ),
        Choice(
            "can_bo_phu_trach",
            "Có cán bộ phụ trách công tác bảo vệ trẻ em",
            "Cán bộ phụ trách",
        ),
    ),
)
# Required for preschools only (SPEC §3); blank is fine elsewhere.
PRESCHOOL_ONLY_ITEM = "tu_kiem_tra_an_toan"

INCIDENT_CATEGORIES = CodeList(
    "incident_category",
    (
        Choice("bao_luc", "Bạo lực"),
        Choice("xam_hai_tinh_duc", "Xâm hại tình dục"),
        Choice("boc_lot", "Bóc lột"),
        Choice("mua_ban", "Mua bán"),
        Choice("bo_roi_bo_mac", "Bỏ rơi, bỏ mặc"),
        Choice("bao_luc_hoc_duong", "Bạo lực học đường"),
        Choice("tai_nan_thuong_tich", "Tai nạn thương tích"),
        Choice("duoi_nuoc", "Đuối nước"),
    ),
)

YES_NO = CodeList(
    "yes_no",
    (
        Choice("yes", "Có", aliases=("x", "yes", "1", "Đã", "Y")),
        Choice("no", "Không", aliases=("chưa", "no", "0", "N")),
    ),
)

SCHOOL_LEVELS = CodeList(
    "school_level",
    (
        Choice("mam_non", "Mầm non"),
        Choice("tieu_hoc", "Tiểu học"),
        Choice("thcs", "Trung học cơ sở"),
        Choice("lien_cap", "Liên cấp"),
        Choice("khac", "Khác"),
    ),
)

OWNERSHIPS = CodeList(
    "ownership",
    (Choice("cong_lap", "Công lập"), Choice("ngoai_cong_lap", "Ngoài công lập")),
)

# Cycle labels a clerk may type instead of `2023-H1`; matched after match_key().
CYCLE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(\d{4})\s*-?\s*h([12])$"), "{0}-H{1}"),
    (re.compile(r"^h([12])\s*[-/]?\s*(\d{4})$"), "{1}-H{0}"),
    (re.compile(r"^(?:6|06|sau) thang dau nam (\d{4})$"), "{0}-H1"),
    (re.compile(r"^(?:6|06|sau) thang cuoi nam (\d{4})$"), "{0}-H2"),
)

# Labels that name a period but not which half-year: a school-year semester ("Học kỳ 1 năm 2023",
# "HK1 2023-2024": semester 1 runs September to January, across both halves) or a whole year
# ("Năm 2023"; SPEC §3 once read it as H2, but a year report covers both halves). They are not
# guessed: the workbook gets `unknown_cycle`, whose message asks for 2023-H1 or 2023-H2.
AMBIGUOUS_CYCLE_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"^(?:hoc ky|hk)\s*(?:[12]|i{1,2})\b.*\d{4}"),
    re.compile(r"^(?:nam|nam hoc)\s+\d{4}(?:\s*-\s*\d{4})?$"),
)


def resolve_cycle(text: object) -> str | None:
    """Return the cycle id (`2023-H1`) a typed cycle label stands for, or None (unreadable or ambiguous)."""
    key = match_key(text)
    for pattern, template in CYCLE_PATTERNS:
        found = pattern.match(key)
        if found:
            return template.format(*found.groups())
    return None


def is_ambiguous_cycle(text: object) -> bool:
    """Return whether a cycle label names a semester or a whole year instead of a half-year."""
    key = match_key(text)
    return any(pattern.match(key) for pattern in AMBIGUOUS_CYCLE_PATTERNS)


# --------------------------------------------------------------------------------------------------
# Sheets

def _count(key: str, label: str, width: int = 14, note: str = "", aliases: tuple[str, ...] = ()) -> Field:
    return Field(key, label, Kind.INT, required=True, width=width, note=note, aliases=aliases)


GENERAL = Sheet(
    key="general",
    name="Thông tin chung",
    layout="key_value",
    fields=(
        Field("school_code", "Mã trường", Kind.TEXT, required=True, note="Mã trường do Phòng cấp"),
        Field("school_name", "Tên trường", Kind.TEXT),
        Field("cycle", "Kỳ báo cáo", Kind.TEXT, required=True, note="Ví dụ: 2023-H1"),
        Field("reporter", "Người báo cáo", Kind.TEXT),
        Field("position", "Chức vụ", Kind.TEXT),
        Field("phone", "Điện thoại", Kind.TEXT),
        Field("email", "Email", Kind.TEXT),
        Field("report_date", "Ngày báo cáo", Kind.DATE, note="Định dạng ngày/tháng/năm"),
        Field("child_protection_staff", "Số cán bộ làm công tác bảo vệ trẻ em", Kind.INT),
        Field("trained_staff", "Trong đó được tập huấn", Kind.INT),
    ),
)

REACH = Sheet(
    key="reach",
    name="Truyền thông",
    layout="table",
    row_field="group",
    rows=AUDIENCE_GROUPS,
    fields=(
        Field("group", "Đối tượng", Kind.CODE, required=True, codes=AUDIENCE_GROUPS, width=42),
        _count("total", "Tổng số"),
        _count("female", "Trong đó nữ"),
        _count("reached", "Số được truyền thông", width=16),
        _count("reached_female", "Trong đó nữ được truyền thông", width=18),
    ),
)

ACTIVITIES = Sheet(
    key="activities",
    name="Hoạt động",
    layout="table",
    blank_count_is_zero=True,
    fields=(
        Field("seq", "STT", Kind.INT, width=6),
        Field("start_date", "Ngày bắt đầu", Kind.DATE, required=True, width=13),
        Field("end_date", "Ngày kết thúc", Kind.DATE, width=13),
        Field(
            "activity_type",
            "Loại hoạt động",
            Kind.CODE,
            required=True,
            codes=ACTIVITY_TYPES,
            invalid_rule="bad_activity_type",
            width=36,
        ),
        Field("content", "Nội dung", Kind.TEXT, required=True, max_length=500, width=50),
        Field(
            "documents",
            "Văn bản được phổ biến",
            Kind.TEXT,
            width=30,
            note="Nhiều văn bản cách nhau bằng dấu chấm phẩy (;)",
        ),
        Field(
            "format", "Hình thức", Kind.CODE, codes=ACTIVITY_FORMATS, invalid_rule="bad_format", width=14
        ),
        Field("staff", "CB-GV-NV tham dự", Kind.INT, width=12),
        Field("staff_female", "Trong đó nữ (CB-GV-NV)", Kind.INT, width=12),
        Field("students", "Học sinh tham dự", Kind.INT, width=12),
        Field("students_female", "Trong đó nữ (HS)", Kind.INT, width=12),
        Field("parents", "Phụ huynh tham dự", Kind.INT, width=12),
        Field("parents_female", "Trong đó nữ (PH)", Kind.INT, width=12),
    ),
)

CHECKLIST = Sheet(
    key="checklist",
    name="Tự đánh giá",
    layout="table",
    row_field="item",
    rows=CHECKLIST_ITEMS,
    fields=(
        Field("item", "Nội dung", Kind.CODE, required=True, codes=CHECKLIST_ITEMS, width=70),
        Field("answer", "Kết quả", Kind.YES_NO, required=True, codes=YES_NO, width=12),
        Field("evidence", "Minh chứng", Kind.TEXT, width=40),
    ),
)

INCIDENTS = Sheet(
    key="incidents",
    name="Vụ việc",
    layout="table",
    row_field="category",
    rows=INCIDENT_CATEGORIES,
    confidential=True,
    blank_count_is_zero=True,
    fields=(
        Field("category", "Loại vụ việc", Kind.CODE, required=True, codes=INCIDENT_CATEGORIES, width=24),
        Field("cases", "Số vụ việc", Kind.INT, width=12),
        Field("children", "Số trẻ bị ảnh hưởng", Kind.INT, width=14),
        Field("children_female", "Trong đó nữ", Kind.INT, width=12),
        Field("reported", "Số vụ đã báo cáo cơ quan chức năng", Kind.INT, width=18),
        Field("supported", "Số vụ đã được hỗ trợ, can thiệp", Kind.INT, width=18),
    ),
)

META = Sheet(
    key="meta",
    name="_meta",
    layout="key_value",
    hidden=True,
    fields=(
        Field("template_version", "template_version", Kind.TEXT),
        Field("cycle", "cycle", Kind.TEXT),
        Field("school_code", "school_code", Kind.TEXT),
    ),
)

# Sheets a school fills in, in template order. `_meta` is optional and hidden.
DATA_SHEETS: tuple[Sheet, ...] = (GENERAL, REACH, ACTIVITIES, CHECKLIST, INCIDENTS)
SHEETS: dict[str, Sheet] = {sheet.key: sheet for sheet in (*DATA_SHEETS, META)}

INSTRUCTIONS_SHEET_NAME = "Hướng dẫn"

# The "of which" relations of SPEC §3, one row at a time.
NOT_GREATER: tuple[NotGreater, ...] = (
    NotGreater("trained_gt_staff", "general", "trained_staff", "child_protection_staff"),
    NotGreater("female_gt_total", "reach", "female", "total"),
    NotGreater("reached_gt_total", "reach", "reached", "total"),
    NotGreater("reached_female_gt_reached", "reach", "reached_female", "reached"),
    NotGreater("reached_female_gt_female", "reach", "reached_female", "female"),
    NotGreater("female_gt_total", "activities", "staff_female", "staff"),
    NotGreater("female_gt_total", "activities", "students_female", "students"),
    NotGreater("female_gt_total", "activities", "parents_female", "parents"),
    NotGreater("female_gt_total", "incidents", "children_female", "children"),
    NotGreater("reported_gt_cases", "incidents", "reported", "cases"),
    NotGreater("supported_gt_cases", "incidents", "supported", "cases"),
)

# Communication-reach thresholds (SPEC §3 warnings).
REACH_EXTREME_MIN_GROUP = 10
TOTAL_JUMP_RATIO = 0.30
MAX_DECOMPRESSED_BYTES = 200 * 1024 * 1024
HEADER_SEARCH_ROWS = 10
# Upper bounds of a count (rule `count_too_large`): far above any real school's figure for six months,
# far below what the database's INTEGER columns hold (2,147,483,647 on PostgreSQL), so a typo such
# as 3000000007 or 1e20 goes back to the school instead of stopping the run. Incidents: per category.
MAX_COUNT = 1_000_000
MAX_COUNTS: dict[str, int] = {"incidents": 10_000}


def count_limit(sheet_key: str) -> int:
    """Return the largest count a cell of the sheet may hold."""
    return MAX_COUNTS.get(sheet_key, MAX_COUNT)



# --------------------------------------------------------------------------------------------------
# Rules: stable codes, severity and the Vietnamese message a clerk reads.
# Message fields: {sheet} {row} {column} {value}, plus {other} (the column compared against) and
# {detail} where a rule names them; {other_value} is the number compared with (omitted when unknown).

E, W = Severity.ERROR, Severity.WARNING

RULES: dict[str, Rule] = {
    rule.code: rule
    for rule in (
        Rule("unreadable_file", E, "Tệp không đọc được",
             "Không đọc được tệp này như một bảng tính Excel. Vui lòng mở lại biểu mẫu, lưu dưới dạng "
             ".xlsx (Excel Workbook) và gửi lại."),
        Rule("encrypted_file", E, "Tệp có mật khẩu",
             "Tệp được bảo vệ bằng mật khẩu nên hệ thống không mở được. Vui lòng gỡ mật khẩu "
             "(Tệp → Thông tin → Bảo vệ sổ làm việc), lưu lại và gửi lại."),
        Rule("too_large", E, "Tệp quá lớn",
             "Tệp quá lớn ({detail}). Vui lòng chỉ gửi biểu mẫu báo cáo, xóa hình ảnh và trang tính "
             "không cần thiết rồi gửi lại."),
        Rule("duplicate_sheet", E, "Trang tính bị trùng",
             "Tệp có hai trang tính cùng là trang \"{sheet}\" ({detail}). Hệ thống không biết trang "
             "nào đúng. Vui lòng xóa trang thừa, chỉ giữ một trang \"{sheet}\" rồi gửi lại."),
        # The file was read and judged, but storing it failed (a fault of the system, not the school):
        # the operator sees the error class in {detail}; the school is asked to wait, not to resend.
        Rule("storage_error", E, "Không lưu được số liệu",
             "Hệ thống đã nhận tệp nhưng chưa lưu được số liệu do lỗi kỹ thuật. Phòng sẽ kiểm tra "
             "và liên hệ Quý đơn vị nếu cần gửi lại."),
        Rule("missing_sheet", E, "Thiếu trang tính",
             "Không tìm thấy trang tính \"{sheet}\". Vui lòng dùng đúng biểu mẫu của Phòng, không đổi "
             "tên hoặc xóa trang tính này."),
        Rule("missing_column", E, "Thiếu cột",
             "Trang \"{sheet}\" thiếu cột \"{column}\". Vui lòng khôi phục tiêu đề cột đúng như "
             "biểu mẫu."),
        Rule("unknown_school", E, "Mã trường không đúng",
             "Mã trường \"{value}\" không có trong danh sách trường của Quận 8. Vui lòng ghi đúng mã "
             "trường do Phòng cấp (trang \"{sheet}\", ô {column} dòng {row})."),
        Rule("unknown_cycle", E, "Kỳ báo cáo không đúng",
             "Kỳ báo cáo \"{value}\" không hợp lệ. Vui lòng ghi theo dạng 2023-H1 (6 tháng đầu năm) "
             "hoặc 2023-H2 (6 tháng cuối năm)."),
        Rule("missing_value", E, "Thiếu số liệu",
             "Trang \"{sheet}\", dòng {row}, cột \"{column}\" còn trống. Vui lòng điền {detail}."),
        Rule("not_integer", E, "Không phải số nguyên không âm",
             "Trang \"{sheet}\", dòng {row}, cột \"{column}\": \"{value}\" không phải số nguyên "
             "không âm. Vui lòng chỉ ghi số (ví dụ 25), không ghi chữ, số thập phân hay số âm."),
        Rule("count_too_large", E, "Số quá lớn",
             "Trang \"{sheet}\", dòng {row}, cột \"{column}\": số quá lớn, vượt mức tối đa {detail}. "
             "Vui lòng kiểm tra lại, có thể đã gõ thừa chữ số."),
        Rule("female_gt_total", E, "Số nữ lớn hơn tổng số",
             "Trang \"{sheet}\", dòng {row}: số nữ ở cột \"{column}\" ({value}) lớn hơn tổng số ở cột "
             "\"{other}\" ({other_value}). Vui lòng kiểm tra lại."),
        Rule("reached_gt_total", E, "Số được truyền thông lớn hơn tổng số",
             "Trang \"{sheet}\", dòng {row}: số được truyền thông ({value}) lớn hơn tổng số ở cột "
             "\"{other}\" ({other_value}). Vui lòng kiểm tra lại."),
        Rule("reached_female_gt_reached", E, "Số nữ được truyền thông lớn hơn số được truyền thông",
             "Trang \"{sheet}\", dòng {row}: số nữ được truyền thông ({value}) lớn hơn số được truyền "
             "thông ở cột \"{other}\" ({other_value}). Vui lòng kiểm tra lại."),
        Rule("reached_female_gt_female", E, "Số nữ được truyền thông lớn hơn tổng số nữ",
             "Trang \"{sheet}\", dòng {row}: số nữ được truyền thông ({value}) lớn hơn tổng số nữ ở cột "
             "\"{other}\" ({other_value}). Vui lòng kiểm tra lại."),
        Rule("trained_gt_staff", E, "Số được tập huấn lớn hơn số cán bộ",
             "Trang \"{sheet}\", dòng {row}: số cán bộ được tập huấn ({value}) lớn hơn số cán bộ làm "
             "công tác bảo vệ trẻ em ({other_value}). Vui lòng kiểm tra lại."),
        Rule("bad_activity_type", E, "Loại hoạt động không đúng",
             "Trang \"{sheet}\", dòng {row}: loại hoạt động \"{value}\" không có trong danh sách. "
             "Vui lòng chọn một loại trong danh sách thả xuống."),
        Rule("bad_format", E, "Hình thức không đúng",
             "Trang \"{sheet}\", dòng {row}: hình thức \"{value}\" không hợp lệ. Vui lòng chọn "
             "Trực tiếp, Trực tuyến hoặc Kết hợp."),
        Rule("missing_start_date", E, "Thiếu ngày bắt đầu",
             "Trang \"{sheet}\", dòng {row}: hoạt động chưa có ngày bắt đầu. Vui lòng ghi ngày theo "
             "dạng ngày/tháng/năm (ví dụ 15/03/2023)."),
        Rule("missing_content", E, "Thiếu nội dung hoạt động",
             "Trang \"{sheet}\", dòng {row}: hoạt động chưa có nội dung. Vui lòng mô tả ngắn gọn "
             "hoạt động đã tổ chức."),
        Rule("content_too_long", E, "Nội dung quá dài",
             "Trang \"{sheet}\", dòng {row}: nội dung dài {detail} ký tự, vượt quá 500 ký tự. Vui lòng "
             "rút gọn."),
        Rule("end_before_start", E, "Ngày kết thúc trước ngày bắt đầu",
             "Trang \"{sheet}\", dòng {row}: ngày kết thúc ({value}) trước ngày bắt đầu. Vui lòng "
             "kiểm tra lại."),
        Rule("bad_date", E, "Ngày không hợp lệ",
             "Trang \"{sheet}\", dòng {row}, cột \"{column}\": \"{value}\" không phải ngày hợp lệ. "
             "Vui lòng ghi theo dạng ngày/tháng/năm (ví dụ 15/03/2023)."),
        Rule("bad_yes_no", E, "Câu trả lời không phải Có/Không",
             "Trang \"{sheet}\", dòng {row}: câu trả lời \"{value}\" không hợp lệ. Vui lòng chọn "
             "\"Có\" hoặc \"Không\"."),
        Rule("self_inspection_required", E, "Thiếu kết quả tự kiểm tra an toàn",
             "Trang \"{sheet}\", dòng {row}: trường mầm non phải trả lời mục tự kiểm tra an toàn "
             "(Có hoặc Không)."),
        Rule("reported_gt_cases", E, "Số vụ đã báo cáo lớn hơn số vụ việc",
             "Trang \"{sheet}\", dòng {row}: số vụ đã báo cáo cơ quan chức năng ({value}) lớn hơn số vụ việc "
             "({other_value}). "
             "Vui lòng kiểm tra lại."),
        Rule("supported_gt_cases", E, "Số vụ được hỗ trợ lớn hơn số vụ việc",
             "Trang \"{sheet}\", dòng {row}: số vụ đã được hỗ trợ, can thiệp ({value}) lớn hơn số vụ "
             "việc ({other_value}). "
             "Vui lòng kiểm tra lại."),
        Rule("children_cases_mismatch", E, "Số vụ và số trẻ không khớp",
             "Trang \"{sheet}\", dòng {row}: có vụ việc thì phải có số trẻ bị ảnh hưởng và ngược lại. "
             "Vui lòng kiểm tra lại."),
        Rule("date_outside_period", W, "Ngày ngoài kỳ báo cáo",
             "Trang \"{sheet}\", dòng {row}: ngày {value} nằm ngoài kỳ báo cáo ({detail}). Vui lòng "
             "kiểm tra lại nếu ghi nhầm."),
        Rule("reach_extreme", W, "Tỷ lệ truyền thông bất thường",
             "Trang \"{sheet}\", dòng {row}: tỷ lệ được truyền thông là {detail}. Vui lòng kiểm tra "
             "lại nếu ghi nhầm."),
        Rule("total_jump", W, "Tổng số thay đổi nhiều",
             "Trang \"{sheet}\", dòng {row}: tổng số thay đổi hơn 30% so với kỳ trước ({detail}). "
             "Vui lòng kiểm tra lại nếu ghi nhầm."),
        Rule("late", W, "Nộp trễ hạn",
             "Báo cáo được nhận lúc {value}, sau hạn nộp {detail}."),
        Rule("unregistered_sender", W, "Địa chỉ gửi chưa đăng ký",
             "Địa chỉ gửi {value} chưa được đăng ký cho trường này. Báo cáo sẽ được chuyên viên "
             "của Phòng xem xét trước khi ghi nhận."),
        Rule("extra_column_dropped", W, "Cột hoặc nội dung thừa bị bỏ qua",
             "Trang \"{sheet}\": \"{column}\" không thuộc biểu mẫu nên đã được bỏ qua."),
        Rule("legacy_encoding", W, "Chữ gõ bằng bảng mã cũ",
             "Trang \"{sheet}\", dòng {row}, {column}: chữ được gõ bằng bảng mã cũ {detail} (phông "
             ".VnTime hoặc VNI) nên hệ thống đã tự chuyển sang chữ Unicode. Vui lòng kiểm tra lại chữ "
             "trên trang này; lần sau hãy gõ bằng bảng mã Unicode (phông Times New Roman)."),
    )
}

ERROR_RULES = tuple(code for code, rule in RULES.items() if rule.severity is Severity.ERROR)
WARNING_RULES = tuple(code for code, rule in RULES.items() if rule.severity is Severity.WARNING)


@dataclass(frozen=True)
class Contract:
    """Everything above, bundled for readers that take the contract as a value."""

    template_version: str = TEMPLATE_VERSION
    version: str = CONTRACT_VERSION
    sheets: dict[str, Sheet] = field(default_factory=lambda: dict(SHEETS))
    rules: dict[str, Rule] = field(default_factory=lambda: dict(RULES))


CONTRACT = Contract()
