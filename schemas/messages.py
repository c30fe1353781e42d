"""The Vietnamese wording of every e-mail a school or the office reads (SPEC §4, §6), as data.

`tasks.mail.feedback` fills these templates with `str.format` (the fields each one takes are named in it)
and lays them out as plain text and HTML. Sheet, column and rule wording is not repeated here: it
comes from `schemas.contract` (labels) and the findings' own messages.
"""

from __future__ import annotations

OFFICE_NAME = "Phòng Giáo dục và Đào tạo Quận 8"
# Shown as the author of the cell comments in an annotated workbook.
COMMENT_AUTHOR = "Phòng GD&ĐT Quận 8"
PROGRAM = "công tác Bình đẳng giới và Trẻ em"
SHORT_PROGRAM = "BĐG-TE"

GREETING = "Kính gửi {recipient},"
DEFAULT_RECIPIENT = "Quý đơn vị"
SIGN_OFF = ("Trân trọng,", OFFICE_NAME)
# A reply without a workbook is read by the system, not a person: name someone to call or write to.
AUTOMATIC_NOTE = "Thư này do hệ thống tiếp nhận báo cáo gửi tự động."
CONTACT_LINE = "Nếu cần hỗ trợ, vui lòng liên hệ {contact}."
CONTACT_PHONE = "điện thoại {phone}"
CONTACT_EMAIL = "email {email}"
CONTACT_NOBODY = "Nếu cần hỗ trợ, vui lòng liên hệ chuyên viên phụ trách của Phòng."
BLANK = "(trống)"
YES, NO = "Có", "Không"

# A submission's state as a school reads it.
STATE_LABELS: dict[str, str] = {
    "accepted": "Đã ghi nhận",
    "rejected": "Chưa ghi nhận, cần sửa lỗi",
    "held": "Đã nhận, đang chờ chuyên viên xem xét",
    "superseded": "Đã được thay bằng bản gửi sau",
}
# A school's completeness for a cycle, in reminders and the operator's summary.
COMPLETENESS_LABELS: dict[str, str] = {
    "on_time": "Đã nộp đúng hạn",
    "late": "Đã nộp trễ hạn",
    "received_invalid": "Đã nộp nhưng báo cáo còn lỗi",
    "held": "Đã nộp, chờ xem xét (địa chỉ gửi chưa đăng ký)",
    "missing": "Chưa nộp",
    "exempt": "Miễn báo cáo",
}

# --------------------------------------------------------------------------------------------------
# Feedback on a message that carried workbooks. Fields: cycle, school, count, file, received_at…

FEEDBACK_SUBJECTS: dict[str, str] = {
    "accepted": "Đã ghi nhận báo cáo " + SHORT_PROGRAM + " {cycle} - {school}",
    "rejected": "Báo cáo " + SHORT_PROGRAM + " {cycle} cần sửa - {school}",
    "held": "Đã nhận báo cáo " + SHORT_PROGRAM + " {cycle}, đang chờ xem xét - {school}",
    "superseded": "Đã nhận báo cáo " + SHORT_PROGRAM + " {cycle} - {school}",
    "several": "Kết quả tiếp nhận {count} tệp báo cáo " + SHORT_PROGRAM,
}
FEEDBACK_INTRO = (
    "Phòng đã nhận thư của Quý đơn vị lúc {received_at} có {count} tệp báo cáo {program}. "
    "Kết quả kiểm tra như sau."
)
FILE_HEADING = "Tệp \u201c{file}\u201d"
FILE_IDENTITY = "Trường: {school}\nKỳ báo cáo: {cycle}"
# The deadline, and what a file after it means (SPEC §4: on time once accepted by the deadline).
DEADLINE_AHEAD = (
    "Hạn nộp báo cáo {cycle}: hết ngày {deadline}. Tệp gửi sau hạn vẫn được tiếp nhận nhưng trường "
    "bị tính là nộp trễ hạn, trừ khi trường đã có báo cáo được ghi nhận trước hạn."
)
DEADLINE_PASSED = (
    "Hạn nộp báo cáo {cycle} đã hết vào ngày {deadline}. Báo cáo gửi sau hạn vẫn được tiếp nhận và "
    "kiểm tra như thường, nhưng trường bị tính là nộp trễ hạn nếu chưa có báo cáo được ghi nhận trước "
    "hạn."
)
HELD_NOTE = (
    "Vì địa chỉ gửi chưa được đăng ký, thư này chỉ báo kết quả tiếp nhận. Nếu Quý đơn vị là người của "
    "trường, vui lòng đề nghị trường đăng ký địa chỉ email với Phòng."
)
UNKNOWN_SCHOOL = "chưa xác định được trường"
VERDICTS: dict[str, str] = {
    "accepted": "Kết quả: báo cáo đã được ghi nhận. Cảm ơn Quý đơn vị.",
    "rejected": (
        "Kết quả: báo cáo CHƯA được ghi nhận vì còn {errors} lỗi. Vui lòng sửa các lỗi dưới đây ngay "
        "trên tệp đã gửi rồi gửi lại toàn bộ tệp."
    ),
    "held": (
        "Kết quả: báo cáo không có lỗi nhưng được gửi từ địa chỉ {sender}, chưa được đăng ký cho trường. "
        "Chuyên viên của Phòng sẽ xem xét trước khi ghi nhận; Quý đơn vị không cần gửi lại."
    ),
    "superseded": "Kết quả: báo cáo hợp lệ; Phòng đã ghi nhận một bản gửi sau bản này.",
}
DUPLICATE = (
    "Tệp này giống hệt tệp Phòng đã nhận lúc {received_at} nên không được ghi nhận thêm lần nữa. "
    "Trạng thái của tệp: {state}."
)
INDICATORS_HEADING = "Chỉ tiêu của trường theo số liệu trang \u201c{sheet}\u201d:"
INDICATOR_LINE = "{code}: {value} số người được truyền thông (chỉ tiêu {target}) - {verdict}"
INDICATOR_NO_DATA = "chưa tính được"
INDICATOR_VERDICTS: dict[bool, str] = {True: "đạt", False: "chưa đạt"}
ERRORS_HEADING = "Lỗi cần sửa ({count}):"
WARNINGS_HEADING = "Lưu ý, không bắt buộc sửa ({count}):"
# After a finding's own message: the cell as Excel names it, and the column when the message omits it.
FINDING_CELL = " (ô {cell})"
FINDING_CELL_COLUMN = " (ô {cell}, cột \u201c{column}\u201d)"
MORE_FINDINGS = "… và {count} mục khác (xem các ô được đánh dấu trong tệp đính kèm)."
ANNOTATED_NOTE = (
    "Tệp đính kèm \u201c{file}\u201d là bản sao tệp của Quý đơn vị: các ô cần xem lại được tô màu "
    "(đỏ: lỗi, vàng: lưu ý) và có ghi chú giải thích. Trang \u201c{summary}\u201d trong tệp "
    "liệt kê tất cả, đọc được cả trên điện thoại."
)
# The file is too big to copy and mark within the time and memory a reply may take.
ANNOTATED_OMITTED = (
    "Tệp của Quý đơn vị quá lớn nên hệ thống không gửi kèm bản sao có tô màu các ô cần xem lại; "
    "vui lòng xem các lỗi và lưu ý liệt kê ở trên."
)
# A sheet left entirely blank: one line instead of one per empty cell.
SHEET_EMPTY = (
    "Trang \"{sheet}\" chưa điền ({count} ô bắt buộc còn trống). Vui lòng điền đủ số liệu "
    "cho các dòng của trang này."
)
# The annotated copy's summary sheet: every finding, readable without hovering over a cell.
SUMMARY_SHEET = "Danh sách lỗi"
SUMMARY_HEADERS = ("Trang", "Ô", "Dòng", "Mức độ", "Nội dung")
SEVERITY_LABELS: dict[str, str] = {"error": "Lỗi", "warning": "Lưu ý"}
SUMMARY_NOTE = "Các ô cần xem lại được tô màu trong từng trang; bấm vào tên ô để đến ô đó."
CHANGES_HEADING = "Thay đổi so với bản gửi trước (Phòng nhận lúc {received_at}):"
NO_CHANGES = "Số liệu không thay đổi so với bản gửi trước (Phòng nhận lúc {received_at})."
MORE_CHANGES = "… và {count} thay đổi khác."
CHANGE_CELL = "Trang \u201c{sheet}\u201d, {row}, cột \u201c{column}\u201d: {before} → {after}"
CHANGE_FIELD = "Trang \u201c{sheet}\u201d, mục \u201c{column}\u201d: {before} → {after}"
CHANGE_ROW = "dòng \u201c{label}\u201d"
ACTIVITY_COUNT = "Trang \u201c{sheet}\u201d: số hoạt động {before} → {after}"
ACTIVITY_ADDED = "Trang \u201c{sheet}\u201d, thêm hoạt động: {activity}"
ACTIVITY_REMOVED = "Trang \u201c{sheet}\u201d, bỏ hoạt động: {activity}"
INCIDENTS_CHANGED = (
    "Trang \u201c{sheet}\u201d: số liệu có thay đổi (không nêu chi tiết vì là thông tin bảo mật)."
)
OUTDATED_TEMPLATE = (
    "Tệp được lập theo biểu mẫu cũ (phiên bản {old}). Phòng gửi kèm biểu mẫu mới (phiên bản {new}) "
    "\u201c{file}\u201d đã điền sẵn thông tin của trường; từ nay vui lòng dùng biểu mẫu mới."
)
SKIPPED_HEADING = "Các tệp đính kèm sau không được tiếp nhận:"
SKIPPED_LINE = "\u201c{name}\u201d: {reason}"
# tasks.intake.mail_extract.SkipReason codes; `too_large` takes its wording from the contract's rule.
SKIPPED_REASONS: dict[str, str] = {
    "not_a_workbook": "không phải tệp bảng tính (.xlsx, .xls, .xlsm hoặc .ods)",
    "tnef_unsupported": (
        "tệp winmail.dat do Outlook tạo, hệ thống không đọc được; vui lòng gửi lại thư ở dạng HTML "
        "hoặc văn bản thường"
    ),
    "uuencode_unsupported": "tệp đính kèm theo kiểu cũ (uuencode); vui lòng đính kèm lại tệp như thường lệ",
    "bad_zip": "tệp nén bị hỏng hoặc có mật khẩu",
    "zip_too_many": "tệp nén chứa quá nhiều tệp",
}
TOO_LARGE_DETAIL = "vượt quá {max_mb} MB"

# --------------------------------------------------------------------------------------------------
# Reply to a message without any workbook. Fields: received_at, subject, max_mb.

NO_WORKBOOK_SUBJECT = "Chưa nhận được tệp báo cáo " + SHORT_PROGRAM
NO_WORKBOOK_LINES = (
    "Phòng đã nhận thư của Quý đơn vị lúc {received_at} (tiêu đề \u201c{subject}\u201d) nhưng trong thư "
    "không có tệp báo cáo nào đọc được.",
    "Vui lòng gửi lại thư, đính kèm tệp biểu mẫu báo cáo " + PROGRAM + " do Phòng gửi (tệp Excel .xlsx; "
    "hệ thống cũng nhận .xls, .xlsm, .ods hoặc tệp nén .zip chứa các tệp này), mỗi tệp không quá "
    "{max_mb} MB.",
    "Nếu chưa có biểu mẫu, vui lòng trả lời thư này để Phòng gửi biểu mẫu đã điền sẵn thông tin của trường.",
)
NO_SUBJECT = "không có tiêu đề"

# --------------------------------------------------------------------------------------------------
# Reminders and overdue notices. Fields: school, cycle_label, cycle, deadline, as_of, file, office…

REMINDER_SUBJECTS: dict[str, str] = {
    "reminder": "Nhắc nộp báo cáo " + SHORT_PROGRAM + " {cycle_label} (hạn {deadline}) - {school}",
    "overdue": "Quá hạn nộp báo cáo " + SHORT_PROGRAM + " {cycle_label} - {school}",
}
REMINDER_INTROS: dict[str, str] = {
    "reminder": (
        "Theo kế hoạch, các đơn vị gửi báo cáo kết quả " + PROGRAM + " {cycle_label} về Phòng trước khi "
        "hết ngày {deadline}. Đến {as_of}, Phòng chưa ghi nhận báo cáo của {school}."
    ),
    "overdue": (
        "Hạn nộp báo cáo kết quả " + PROGRAM + " {cycle_label} đã hết vào ngày {deadline}. Đến {as_of}, "
        "Phòng vẫn chưa ghi nhận báo cáo của {school}. Đề nghị đơn vị khẩn trương gửi báo cáo."
    ),
}
# Extra sentence by the school's completeness state (missing needs none).
REMINDER_STATE_NOTES: dict[str, str] = {
    "received_invalid": (
        "Phòng đã nhận báo cáo của đơn vị nhưng báo cáo còn lỗi. Vui lòng sửa theo thư phản hồi của hệ "
        "thống rồi gửi lại toàn bộ tệp."
    ),
    "held": (
        "Phòng đã nhận một báo cáo gửi từ địa chỉ email chưa đăng ký cho trường; chuyên viên đang xem "
        "xét. Để được ghi nhận ngay, vui lòng gửi lại từ địa chỉ đã đăng ký ({emails})."
    ),
}
REMINDER_ATTACHMENT = (
    "Phòng gửi kèm biểu mẫu \u201c{file}\u201d đã điền sẵn mã trường, tên trường và kỳ báo cáo. Vui lòng "
    "điền số liệu và gửi lại qua email {office}."
)
REMINDER_IGNORE = "Nếu đơn vị đã gửi báo cáo trong hôm nay, xin bỏ qua thư này."

# --------------------------------------------------------------------------------------------------
# The operator's summaries (GEC_OPS_EMAIL).

OPS_KIND_LABELS: dict[str, str] = {"reminder": "Nhắc nộp báo cáo", "overdue": "Thông báo quá hạn"}
OPS_REMINDER_SUBJECT = "[" + SHORT_PROGRAM + "] {kind_label} {cycle}: {count} trường"
OPS_REMINDER_INTRO = (
    "{kind_label} kỳ {cycle_label} (hạn {deadline}), tính đến {as_of}: {count} trường chưa có báo cáo "
    "được ghi nhận."
)
OPS_SENT_HEADING = "Đã gửi cho các trường ({count}):"
OPS_NO_ADDRESS_HEADING = "Không gửi được vì trường chưa đăng ký địa chỉ email ({count}):"
OPS_SCHOOL_LINE = "{code} - {name}: {state} ({emails})"
OPS_HELD_SUBJECT = "[" + SHORT_PROGRAM + "] {count} báo cáo chờ xem xét (địa chỉ gửi chưa đăng ký)"
OPS_HELD_HEADING = "Báo cáo chờ xem xét vì gửi từ địa chỉ chưa đăng ký ({count}):"
OPS_HELD_LINE = "Mã {id}: {school} - tệp \u201c{file}\u201d từ {sender}, nhận lúc {received_at}"
OPS_HELD_HOWTO = "Xem xét bằng lệnh: gec review <mã> --accept hoặc gec review <mã> --reject --note \"lý do\"."
OPS_NOTHING_HELD = "Không có báo cáo nào đang chờ xem xét."
