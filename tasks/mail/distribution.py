"""Send a cycle's final report to its recipients (SPEC §5, issue 14 item 4), once per report version.

The report version is the sha256 of the run's `manifest.json`: the same data and `as_of` give the same
manifest, so a re-run queues nothing new, while a rebuild with later data is a new version and goes
out again. Each recipient's mail is one outbox row keyed `report:<cycle>:<version>:<address>`; the
restricted incident file is attached only for recipients marked `restricted: true`. What was queued is
written beside the manifest as `distribution.json`, so the files and the record stay together. The
cover mail names the files, never a figure: incident counts travel only inside the restricted file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from schemas.recipients import RESTRICTED, Recipient
from schemas.reference import Cycle
from tasks.mail.outbox import XLSX_TYPE, Mail, MailAttachment, queue_mail, queued_keys

log = logging.getLogger(__name__)

DISTRIBUTION_NAME = "distribution.json"
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
# File kind -> (path under the report folder, MIME type, what the cover mail calls it).
FILES: dict[str, tuple[str, str, str]] = {
    "html": ("tong-hop.html", "text/html", "báo cáo tổng hợp, mở bằng trình duyệt web"),
    "xlsx": ("tong-hop.xlsx", XLSX_TYPE, "các bảng số liệu và biểu đồ (Excel)"),
    "docx": ("bao-cao.docx", DOCX_TYPE, "văn bản báo cáo (Word)"),
    RESTRICTED: ("restricted/vu-viec.xlsx", XLSX_TYPE,
                 "số vụ việc theo từng trường — THÔNG TIN HẠN CHẾ, không chuyển tiếp, không công bố"),
}


@dataclass
class Distribution:
    """What one distribution did: the version, the rows queued, the recipients already served."""

    version: str
    queued: list[int] = field(default_factory=list)
    already_sent: list[str] = field(default_factory=list)  # addresses served for this version before
    missing_files: list[str] = field(default_factory=list)  # kinds named in recipients.yaml but not built

    def one_line(self) -> str:
        """Return the distribution in one log line (no figures, no file contents)."""
        line = (f"report version {self.version[:12]}: {len(self.queued)} mail(s) queued, "
                f"{len(self.already_sent)} recipient(s) already served")
        return line + (f"; not built: {', '.join(self.missing_files)}" if self.missing_files else "")


def report_version(manifest: Path) -> str:
    """Return the report version: the sha256 of its manifest.json."""
    return hashlib.sha256(manifest.read_bytes()).hexdigest()


def dedupe_key(cycle_id: str, version: str, recipient: Recipient) -> str:
    """Return the outbox key that makes one recipient get one report version once."""
    address = recipient.key
    if len(address) > 150:  # keys are at most 255 characters
        address = hashlib.sha256(address.encode()).hexdigest()
    return f"report:{cycle_id}:{version}:{address}"


def files_for(recipient: Recipient) -> tuple[str, ...]:
    """Return the file kinds a recipient gets; the restricted file only when it is cleared for it."""
    return tuple(kind for kind in recipient.files if kind != RESTRICTED or recipient.restricted)


def cover_mail(recipient: Recipient, cycle: Cycle, as_of: dt.datetime, kinds: Sequence[str],
               office: str) -> tuple[str, str]:
    """Return the Vietnamese subject and plain-text body of the cover mail."""
    subject = f"Báo cáo kết quả thực hiện Kế hoạch bình đẳng giới – trẻ em {cycle.label_vi}"
    listed = "\n".join(f"  - {FILES[kind][0].rpartition('/')[2]}: {FILES[kind][2]}" for kind in kinds)
    moment = as_of.astimezone(cycle.timezone).strftime("%H:%M ngày %d/%m/%Y")
    lines = [
        f"Kính gửi: {recipient.name},",
        "",
        f"{office} trân trọng gửi báo cáo tổng hợp kết quả thực hiện Kế hoạch bình đẳng giới và "
        f"bảo vệ, chăm sóc trẻ em của các cơ sở giáo dục trên địa bàn {cycle.label_vi} "
        f"(số liệu tính đến {moment}).",
        "",
        "Tệp đính kèm:",
        listed,
    ]
    if RESTRICTED in kinds:
        lines += ["", "Tệp vu-viec.xlsx chứa số liệu vụ việc theo từng trường: đề nghị chỉ sử dụng nội bộ, "
                  "không chuyển tiếp và không công bố."]
    lines += ["", "Trân trọng.", office]
    return subject, "\n".join(lines) + "\n"


def distribute_report(engine: Engine, directory: Path, manifest: Path, cycle: Cycle, as_of: dt.datetime,
                      recipients: Sequence[Recipient], *, office: str) -> Distribution:
    """Queue the files for each recipient not yet served this version; record them beside the manifest."""
    version = report_version(manifest)
    result = Distribution(version)
    keys = {recipient.key: dedupe_key(cycle.id, version, recipient) for recipient in recipients}
    done = queued_keys(engine, list(keys.values()))
    available = {kind for kind, (name, _, _) in FILES.items() if (directory / name).is_file()}
    result.missing_files = sorted({kind for r in recipients for kind in r.files} - available)
    mails: list[Mail] = []
    record: list[dict[str, object]] = []
    for recipient in recipients:
        kinds = tuple(kind for kind in files_for(recipient) if kind in available)
        if keys[recipient.key] in done:
            result.already_sent.append(recipient.address)
            continue
        if not kinds:
            log.warning("recipient %s: none of its files were built; nothing sent", recipient.address)
            continue
        subject, text = cover_mail(recipient, cycle, as_of, kinds, office)
        attachments = tuple(
            MailAttachment(FILES[kind][0].rpartition("/")[2], (directory / FILES[kind][0]).read_bytes(),
                           FILES[kind][1])
            for kind in kinds
        )
        mails.append(Mail(kind="report", dedupe_key=keys[recipient.key], to=(recipient.address,),
                          subject=subject, text=text, attachments=attachments))
        record.append({"name": recipient.name, "address": recipient.address, "files": list(kinds)})
    if mails:
        result.queued = queue_mail(engine, mails)
        _record(directory, cycle.id, version, record)
    return result


def _record(directory: Path, cycle_id: str, version: str, sent: list[dict[str, object]]) -> None:
    """Add this version's recipients to distribution.json beside the manifest."""
    path = directory / DISTRIBUTION_NAME
    try:
        history = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        history = {"cycle": cycle_id, "versions": {}}
    entry = history.setdefault("versions", {}).setdefault(version, {"recipients": []})
    entry["queued_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    entry["recipients"] = [*entry["recipients"], *sent]
    path.write_text(json.dumps(history, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
