"""Turn the office's own school list (xlsx/xls/ods/csv, Vietnamese headers) into `reference/schools.csv`.

`read_school_list(path, current)` finds the header row, maps the office's column labels and values
(`Mã trường`, `Cấp học` = "Mầm non", `Loại hình` = "Công lập", …) to the registry's columns and codes,
and checks each row as `load_reference` would. `diff_registry` says what an import would add, remove
and change; `write_registry` writes the new file. Nothing here touches the database.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from python_calamine import CalamineError, CalamineWorkbook

from schemas.contract import HEADER_SEARCH_ROWS, OWNERSHIPS, SCHOOL_LEVELS
from schemas.reference import (
    OPTIONAL_SCHOOL_COLUMNS,
    SCHOOL_COLUMNS,
    Reference,
    School,
    normalize_code,
    parse_school_row,
)
from schemas.text import match_key, nfc

# Header labels an office list may use for each registry column, compared after match_key().
HEADERS: Mapping[str, tuple[str, ...]] = {
    "code": ("Mã trường", "Mã số trường", "Mã", "Mã đơn vị", "Mã cơ sở", "Mã CSGD", "code"),
    "name": ("Tên trường", "Tên đơn vị", "Tên cơ sở", "Tên", "Tên cơ sở giáo dục", "name"),
    "level": ("Cấp học", "Cấp", "Bậc học", "Loại trường", "level"),
    "ownership": ("Loại hình", "Loại hình trường", "Loại hình đơn vị", "Công lập/Ngoài công lập",
                  "ownership"),
    "ward": ("Phường/Xã", "Phường", "Xã/Phường", "Phường xã", "Địa bàn", "ward"),
    "emails": ("Email", "E-mail", "Địa chỉ email", "Thư điện tử", "Email đăng ký", "emails"),
    "active": ("Đang hoạt động", "Hoạt động", "Trạng thái", "Tình trạng", "active"),
    "opened": ("Ngày thành lập", "Ngày mở", "opened"),
    "closed": ("Ngày ngừng hoạt động", "Ngày giải thể", "closed"),
}
REQUIRED = ("code", "name", "level", "ownership", "ward")

# Office wording beyond the contract's labels ("Mầm non", "Công lập" and the codes themselves).
LEVEL_WORDS: Mapping[str, str] = {
    "mn": "mam_non", "mau giao": "mam_non", "nha tre": "mam_non", "mam non": "mam_non",
    "truong mam non": "mam_non", "nhom tre": "mam_non", "lop mau giao": "mam_non",
    "th": "tieu_hoc", "truong tieu hoc": "tieu_hoc", "cap 1": "tieu_hoc",
    "thcs": "thcs", "truong thcs": "thcs", "cap 2": "thcs", "truong trung hoc co so": "thcs",
    "th-thcs": "lien_cap", "th - thcs": "lien_cap", "tieu hoc - thcs": "lien_cap",
    "nhieu cap hoc": "lien_cap",
}
OWNERSHIP_WORDS: Mapping[str, str] = {
    "cl": "cong_lap", "cong lap": "cong_lap",
    "ncl": "ngoai_cong_lap", "tu thuc": "ngoai_cong_lap", "dan lap": "ngoai_cong_lap",
    "tu thuc/dan lap": "ngoai_cong_lap", "ngoai cong lap": "ngoai_cong_lap",
    "tu thuc, dan lap": "ngoai_cong_lap",
}
ACTIVE_WORDS: Mapping[str, str] = {
    "dang hoat dong": "true", "hoat dong": "true", "co": "true", "x": "true", "true": "true", "1": "true",
    "ngung hoat dong": "false", "tam ngung": "false", "giai the": "false", "da giai the": "false",
    "khong": "false", "false": "false", "0": "false",
}


class RegistryImportError(ValueError):
    """The file cannot be used at all (unreadable, no header row, a required column missing)."""


@dataclass(frozen=True)
class ImportedList:
    """The schools read from an office list, and the rows that could not be used, with why."""

    schools: dict[str, School]
    problems: tuple[str, ...]  # "row <n>: <problem>" with the row number as the office sees it
    ignored_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class RegistryDiff:
    """What writing an imported list over the registry would do."""

    added: tuple[School, ...] = ()
    removed: tuple[School, ...] = ()
    changed: tuple[tuple[str, dict[str, tuple[str, str]]], ...] = field(default=())  # code, {col: (old, new)}

    @property
    def empty(self) -> bool:
        """Return whether the import changes nothing."""
        return not (self.added or self.removed or self.changed)


def read_school_list(path: Path, current: Reference | None = None) -> ImportedList:
    """Read an office school list; map headers and values; check every row like the registry loader."""
    rows = _read_rows(Path(path))
    header_at, columns, ignored = _find_header(rows)
    schools: dict[str, School] = {}
    lines: dict[str, int] = {}
    problems: list[str] = []
    for offset, record in enumerate(rows[header_at + 1:], start=header_at + 2):
        if not any(_cell_text(cell) for cell in record):
            continue
        row = _registry_row(record, columns, current)
        school, found = parse_school_row(row)
        problems.extend(f"row {offset}: {problem}" for problem in found)
        if school is None:
            continue
        if school.code in lines:
            problems.append(f"row {offset}: code '{school.code}' is already used on row {lines[school.code]}")
            continue
        lines[school.code] = offset
        schools[school.code] = _keep_optional(school, current)
    return ImportedList(schools, tuple(problems), tuple(ignored))


def diff_registry(current: Mapping[str, School], imported: Mapping[str, School]) -> RegistryDiff:
    """Return the schools an import adds, removes and changes (column by column), by code."""
    changed: list[tuple[str, dict[str, tuple[str, str]]]] = []
    for code in sorted(current.keys() & imported.keys()):
        old, new = school_row(current[code]), school_row(imported[code])
        delta = {name: (old[name], new[name]) for name in SCHOOL_COLUMNS if old[name] != new[name]}
        if delta:
            changed.append((code, delta))
    return RegistryDiff(
        added=tuple(imported[code] for code in sorted(imported.keys() - current.keys())),
        removed=tuple(current[code] for code in sorted(current.keys() - imported.keys())),
        changed=tuple(changed),
    )


def school_row(school: School) -> dict[str, str]:
    """Return a school as the text of its registry columns."""
    return {
        "code": school.code,
        "name": school.name,
        "level": school.level,
        "ownership": school.ownership,
        "ward": school.ward,
        "emails": ";".join(school.emails),
        "active": "true" if school.active else "false",
        "opened": school.opened.isoformat() if school.opened else "",
        "closed": school.closed.isoformat() if school.closed else "",
        "exempt_cycles": ";".join(sorted(school.exempt_cycles)),
    }


def write_registry(path: Path, schools: Mapping[str, School]) -> None:
    """Write `schools.csv` (UTF-8, by code) atomically, so a crash never leaves half a registry."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=SCHOOL_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for code in sorted(schools):
        writer.writerow(school_row(schools[code]))
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".schools-", suffix=".csv")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(buffer.getvalue())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------------------------------
# Reading


def _read_rows(path: Path) -> list[list[object]]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RegistryImportError(f"{path}: cannot be read ({exc.strerror})") from exc
    if path.suffix.casefold() in (".csv", ".txt"):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise RegistryImportError(f"{path}: not UTF-8 text; save it as \"CSV UTF-8\"") from exc
        dialect = csv.excel_tab if text.count("\t") > text.count(",") else csv.excel
        return [list(record) for record in csv.reader(io.StringIO(nfc(text), newline=""), dialect)]
    try:
        book = CalamineWorkbook.from_filelike(io.BytesIO(data))
        return [list(record) for record in book.get_sheet_by_index(0).to_python()]
    except (CalamineError, ValueError, IndexError) as exc:
        raise RegistryImportError(f"{path}: not a readable spreadsheet ({exc})") from exc


def _cell_text(cell: object) -> str:
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if isinstance(cell, dt.datetime):
        return cell.date().isoformat()
    if isinstance(cell, dt.date):
        return cell.isoformat()
    return " ".join(nfc(str(cell)).split())


_HEADER_INDEX = {match_key(label): column for column, labels in HEADERS.items() for label in labels}


def _find_header(rows: Sequence[Sequence[object]]) -> tuple[int, dict[str, int], list[str]]:
    """Return the header row's index, registry column -> position, and the labels ignored."""
    best: tuple[int, dict[str, int], list[str]] | None = None
    for index, record in enumerate(rows[:HEADER_SEARCH_ROWS]):
        columns: dict[str, int] = {}
        ignored: list[str] = []
        for position, cell in enumerate(record):
            label = _cell_text(cell)
            column = _HEADER_INDEX.get(match_key(label))
            if column and column not in columns:
                columns[column] = position
            elif label:
                ignored.append(label)
        if best is None or len(columns) > len(best[1]):
            best = (index, columns, ignored)
    if best is None or "code" not in best[1]:
        raise RegistryImportError("no header row with a 'Mã trường' column in the first "
                                  f"{HEADER_SEARCH_ROWS} rows")
    missing = [HEADERS[column][0] for column in REQUIRED if column not in best[1]]
    if missing:
        raise RegistryImportError("missing column(s) " + ", ".join(repr(label) for label in missing))
    return best


def _registry_row(record: Sequence[object], columns: Mapping[str, int],
                  current: Reference | None) -> dict[str, str]:
    def cell(column: str) -> object:
        position = columns.get(column)
        return record[position] if position is not None and position < len(record) else None

    raw_code = cell("code")
    # A number cell loses a code's leading zeros; the registry in force knows the real code.
    known = current.school(raw_code) if current is not None and isinstance(raw_code, int | float) else None
    row = {
        "code": known.code if known else normalize_code(_cell_text(raw_code)),
        "name": _cell_text(cell("name")),
        "level": _coded(cell("level"), SCHOOL_LEVELS.lookup, LEVEL_WORDS),
        "ownership": _coded(cell("ownership"), OWNERSHIPS.lookup, OWNERSHIP_WORDS),
        "ward": _cell_text(cell("ward")),
        "emails": ";".join(part for part in _cell_text(cell("emails")).replace(",", ";").replace(" ", ";")
                           .split(";") if part),
        "active": ACTIVE_WORDS.get(match_key(cell("active")), _cell_text(cell("active")))
        if "active" in columns and _cell_text(cell("active")) else "true",
    }
    for column in ("opened", "closed"):
        row[column] = _day(cell(column))
    return row


def _coded(cell: object, lookup: Callable[[object], str | None], words: Mapping[str, str]) -> str:
    text = _cell_text(cell)
    return lookup(text) or words.get(match_key(text)) or text


def _day(cell: object) -> str:
    """Return a date cell as YYYY-MM-DD; text dd/mm/yyyy as the office writes it is converted too."""
    text = _cell_text(cell)
    parts = text.replace("-", "/").split("/")
    if len(parts) == 3 and len(parts[2]) == 4 and all(part.isdigit() for part in parts):
        try:
            return dt.date(int(parts[2]), int(parts[1]), int(parts[0])).isoformat()
        except ValueError:
            return text
    return text


def _keep_optional(school: School, current: Reference | None) -> School:
    """Keep the columns an office list has no say on (exemptions, dates it leaves blank) from the registry."""
    old = current.schools.get(school.code) if current is not None else None
    if old is None:
        return school
    kept = {name: getattr(old, name) for name in OPTIONAL_SCHOOL_COLUMNS if not getattr(school, name)}
    return replace(school, **kept)
