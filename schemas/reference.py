"""Reference data the office edits (SPEC §2): school registry, cycle calendar, indicator catalog.

`load_reference(directory)` reads `schools.csv`, `cycles.yaml` and `indicators.yaml`, checks every
entry and raises one `ReferenceDataError` listing every mistake with its file and 1-based line, so the
office can fix them all in one pass.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import itertools
import logging
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from config.settings import TIMEZONE
from schemas.contract import AUDIENCE_GROUPS, OWNERSHIPS, SCHOOL_LEVELS
from schemas.indicators import meets
from schemas.text import match_key, nfc

SCHOOLS_FILE = "schools.csv"
CYCLES_FILE = "cycles.yaml"
INDICATORS_FILE = "indicators.yaml"

# SPEC §2: the seven columns an office must give ...
REQUIRED_SCHOOL_COLUMNS = ("code", "name", "level", "ownership", "ward", "emails", "active")
# ... and the optional ones, each blank by default: `opened`/`closed` empty = open throughout,
# `exempt_cycles` empty = never excused.
OPTIONAL_SCHOOL_COLUMNS = ("opened", "closed", "exempt_cycles")
SCHOOL_COLUMNS = (*REQUIRED_SCHOOL_COLUMNS, *OPTIONAL_SCHOOL_COLUMNS)
SCHOOL_CODE_MAX = 20

log = logging.getLogger(__name__)
WARD_COUNT = 16  # District 8 had 16 wards in 2023 (REFERENCE-NOTES)
DIRECTIONS = (">=", "<=")

_CYCLE_ID = re.compile(r"^([12]\d{3})-H([12])$")
# Ministry codes are all digits (leading zeros matter); office codes mix letters, digits, - _ and .
_SCHOOL_CODE = re.compile(rf"^[A-Z0-9][A-Z0-9._-]{{0,{SCHOOL_CODE_MAX - 1}}}$")
_NUMBER_TEXT = re.compile(r"^(\d+)\.0+$")
_INDICATOR_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,15}$")
_WARD = re.compile(r"^(?:phuong|p\.?)\s*0*(\d{1,2})$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MONTH_DAY = re.compile(r"^(\d{2})-(\d{2})$")
_EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]{0,61}[A-Za-z0-9]$"
)
# Invisible characters that copy-paste from Word or Zalo leaves inside codes.
_CODE_NOISE = re.compile(r"[\s\u200b\ufeff]+")



def normalize_code(code: object) -> str:
    """Return a school code in its canonical form: no spaces, upper case; 79000701.0 -> "79000701"."""
    if code is None or isinstance(code, bool):
        return ""
    if isinstance(code, float) and math.isfinite(code) and code.is_integer():
        return str(int(code))
    if isinstance(code, int):
        return str(code)
    return _CODE_NOISE.sub("", nfc(str(code))).upper()


_TRUE = {"true", "1", "yes", "co", "x"}
_FALSE = {"false", "0", "no", "khong"}


class ReferenceDataError(ValueError):
    """Reference files hold mistakes; the message lists each as "<file> line <n>: <problem>"."""

    def __init__(self, errors: Iterable[str]) -> None:
        self.errors: tuple[str, ...] = tuple(errors)
        super().__init__("\n".join(self.errors))


# --------------------------------------------------------------------------------------------------
# Values


@dataclass(frozen=True)
class School:
    """One registry row. `closed` is the last day the school operated."""

    code: str
    name: str
    level: str
    ownership: str
    ward: str
    emails: tuple[str, ...]
    active: bool
    opened: dt.date | None
    closed: dt.date | None
    exempt_cycles: frozenset[str]

    def open_during(self, start: dt.date, end: dt.date) -> bool:
        """Return whether the school operated on at least one day of [start, end]."""
        opened_in_time = self.opened is None or self.opened <= end
        not_closed_before = self.closed is None or self.closed >= start
        return opened_in_time and not_closed_before


@dataclass(frozen=True)
class Cycle:
    """A half-year reporting cycle: the period it covers and its inclusive deadline day."""

    id: str
    period_start: dt.date
    period_end: dt.date
    deadline: dt.date
    timezone: ZoneInfo = TIMEZONE

    @property
    def deadline_end(self) -> dt.datetime:
        """Return the first instant after the deadline day; on time means received before it."""
        next_day = self.deadline + dt.timedelta(days=1)
        return dt.datetime.combine(next_day, dt.time(0), tzinfo=self.timezone)

    @property
    def label_vi(self) -> str:
        """Return the Vietnamese name of the cycle, e.g. "6 tháng đầu năm 2023"."""
        parsed = _parse_cycle_id(self.id)
        if parsed is None:
            return self.id
        year, half = parsed
        return f"6 tháng {'đầu' if half == 1 else 'cuối'} năm {year}"

    def contains(self, day: dt.date) -> bool:
        """Return whether a date falls in the cycle's period."""
        return self.period_start <= day <= self.period_end


@dataclass(frozen=True)
class HalfYearRule:
    """Default dates of one half-year as (month, day) pairs, applied to any year."""

    period_start: tuple[int, int]
    period_end: tuple[int, int]
    deadline: tuple[int, int]

    def cycle(self, year: int, half: int, timezone: ZoneInfo) -> Cycle:
        """Return the cycle this rule gives for a year."""
        return Cycle(
            id=f"{year}-H{half}",
            period_start=dt.date(year, *self.period_start),
            period_end=dt.date(year, *self.period_end),
            deadline=dt.date(year, *self.deadline),
            timezone=timezone,
        )


# SPEC §2: H1 = 1 Jan–30 Apr due 5 May; H2 = 1 May–31 Oct due 5 Nov.
DEFAULT_RULE: Mapping[int, HalfYearRule] = {
    1: HalfYearRule((1, 1), (4, 30), (5, 5)),
    2: HalfYearRule((5, 1), (10, 31), (11, 5)),
}


def _parse_cycle_id(cycle_id: object) -> tuple[int, int] | None:
    if not isinstance(cycle_id, str):
        return None
    found = _CYCLE_ID.match(cycle_id.strip().upper())
    return (int(found.group(1)), int(found.group(2))) if found else None


class CycleCalendar:
    """Cycles listed in the calendar file, and the default rule for every other year."""

    def __init__(
        self,
        cycles: Iterable[Cycle] = (),
        default_rule: Mapping[int, HalfYearRule] = DEFAULT_RULE,
        timezone: ZoneInfo = TIMEZONE,
        valid_years: tuple[int, int] | None = None,
    ) -> None:
        self._listed = {cycle.id: cycle for cycle in cycles}
        self._rule = dict(default_rule)
        self.timezone = timezone
        # First and last year the default rule applies to; None: every year (no range configured).
        self.valid_years = valid_years

    @property
    def listed(self) -> tuple[Cycle, ...]:
        """Return the cycles written in the calendar file, in order."""
        return tuple(sorted(self._listed.values(), key=lambda cycle: cycle.id))

    def get(self, cycle_id: str) -> Cycle | None:
        """Return the cycle for an id like `2023-H1`, listed or by the default rule within the valid
        years; None if malformed or outside the calendar."""
        parsed = _parse_cycle_id(cycle_id)
        if parsed is None:
            return None
        year, half = parsed
        listed = self._listed.get(f"{year}-H{half}")
        if listed is not None:
            return listed
        if self.valid_years is not None and not self.valid_years[0] <= year <= self.valid_years[1]:
            return None
        return self._rule[half].cycle(year, half, self.timezone)

    def open_at(self, moment: dt.datetime) -> Cycle:
        """Return the earliest cycle whose deadline has not passed at `moment` (naive = local time)."""
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.timezone)
        year = moment.astimezone(self.timezone).year
        # Listed cycles may move a deadline into another year, so all of them are candidates.
        candidates = {cycle.id: cycle for cycle in self._listed.values()}
        for offset in range(-1, 6):
            for half in (1, 2):
                cycle = self.get(f"{year + offset}-H{half}")
                if cycle is not None:
                    candidates[cycle.id] = cycle
            upcoming = [cycle for cycle in candidates.values() if cycle.deadline_end > moment]
            # From next year on, any cycle further out is due later than one already found.
            if upcoming and offset >= 1:
                return min(upcoming, key=lambda cycle: (cycle.deadline_end, cycle.id))
        raise LookupError(f"no reporting cycle is open at {moment.isoformat()}: list one in cycles.yaml "
                          "or extend its valid_years")

    def previous(self, cycle_id: str) -> str:
        """Return the id of the cycle before `cycle_id` (2023-H1 -> 2022-H2); ValueError if malformed."""
        parsed = _parse_cycle_id(cycle_id)
        if parsed is None:
            raise ValueError(f"malformed cycle id {cycle_id!r}; expected YYYY-H1 or YYYY-H2")
        year, half = parsed
        return f"{year}-H1" if half == 2 else f"{year - 1}-H2"


@dataclass(frozen=True)
class Indicator:
    """A catalog indicator: computed from reach groups (Σreached/Σtotal) or entered by the office."""

    code: str
    name: str
    program: str
    goal: str | None
    unit: str
    target: float | None
    groups: tuple[str, ...]  # audience-group codes; empty for manual indicators
    manual: bool
    direction: str  # ">=": met when value >= target; "<=": met when value <= target
    value: float | None = None  # legacy single figure for every cycle; prefer `values`
    # The office's figure per cycle id (`values: {2023-H1: 12}`), manual indicators only.
    values: Mapping[str, float] = field(default_factory=dict, hash=False)

    def value_for(self, cycle_id: str) -> float | None:
        """Return the office's figure for a cycle; None when not entered for it.

        A catalog with per-cycle `values` never lends one cycle's figure to another; the legacy single
        `value` (no cycle given) stands for every cycle, as it always did.
        """
        if self.values:
            parsed = _parse_cycle_id(cycle_id)
            return self.values.get(f"{parsed[0]}-H{parsed[1]}") if parsed else None
        return self.value

    def is_met(self, value: float | None) -> bool | None:
        """Return whether a value meets the target, or None when either is missing."""
        return meets(value, self.target, self.direction)


@dataclass(frozen=True)
class Reference:
    """All reference data, loaded and checked."""

    schools: dict[str, School]  # keyed by canonical code (see normalize_code)
    calendar: CycleCalendar
    indicators: tuple[Indicator, ...]
    warnings: tuple[str, ...] = ()  # things ignored while loading, e.g. unknown registry columns
    directory: Path | None = None

    def school(self, code: object) -> School | None:
        """Return the school for a code as typed (spaces, case, Unicode form, number cells), or None."""
        key = normalize_code(code)
        if not key:
            return None
        found = self.schools.get(key)
        if found is not None:
            return found
        # A code cell a spreadsheet stored as text "79000701.0" (a number turned to text).
        number = _NUMBER_TEXT.match(key)
        if number and number.group(1) in self.schools:
            return self.schools[number.group(1)]
        # A number cell lost the leading zeros of an all-digit code; match only when one code fits.
        digits = number.group(1) if number else key
        if isinstance(code, int | float) or number or (digits.isdigit() and not digits.startswith("0")):
            fits = self._by_digits.get(digits.lstrip("0"), ())
            if len(fits) == 1:
                return fits[0]
        return None

    @cached_property
    def _by_digits(self) -> dict[str, tuple[School, ...]]:
        index: dict[str, list[School]] = {}
        for code, school in sorted(self.schools.items()):
            if code.isdigit():
                index.setdefault(code.lstrip("0"), []).append(school)
        return {key: tuple(items) for key, items in index.items()}

    def fingerprint(self) -> dict[str, str]:
        """Return the sha256 of each reference file this data was loaded from, by file name."""
        if self.directory is None:
            return {}
        return fingerprint(self.directory)

    def expected_schools(self, cycle_id: str) -> list[School]:
        """Return the active schools open during the cycle's period, exempt ones included, by code."""
        cycle = self.calendar.get(cycle_id)
        if cycle is None:
            raise ValueError(f"malformed cycle id {cycle_id!r}; expected YYYY-H1 or YYYY-H2")
        return [
            school
            for code, school in sorted(self.schools.items())
            if school.active and school.open_during(cycle.period_start, cycle.period_end)
        ]

    def is_exempt(self, school: School, cycle_id: str) -> bool:
        """Return whether the school is excused from reporting for the cycle."""
        parsed = _parse_cycle_id(cycle_id)
        return parsed is not None and f"{parsed[0]}-H{parsed[1]}" in school.exempt_cycles

    def schools_for_email(self, address: str) -> list[School]:
        """Return the schools that registered a sender address (case-insensitive; "Name <a@b>" ok)."""
        return list(self._by_email.get(_email_key(address), ()))

    def indicator(self, code: str) -> Indicator | None:
        """Return the catalog indicator with a code, or None."""
        return next((item for item in self.indicators if item.code == code), None)

    @cached_property
    def _by_email(self) -> dict[str, tuple[School, ...]]:
        index: dict[str, list[School]] = {}
        for _, school in sorted(self.schools.items()):
            for email in school.emails:
                index.setdefault(email.casefold(), []).append(school)
        return {email: tuple(schools) for email, schools in index.items()}


def _email_key(address: object) -> str:
    text = nfc(str(address or "")).strip()
    return (parseaddr(text)[1] or text).strip().casefold()


# --------------------------------------------------------------------------------------------------
# Loading


class _Errors:
    """Collects mistakes across the three files, each tagged with file and line."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, source: str, line: int | None, problem: str) -> None:
        where = f"{source} line {line}" if line is not None else source
        self.items.append(f"{where}: {problem}")


def _display(path: Path) -> str:
    """Show a path relative to the working directory when it is under it (as the office sees it)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_reference(directory: Path) -> Reference:
    """Load and check the three reference files; raise ReferenceDataError listing every mistake."""
    directory = Path(directory)
    errors = _Errors()
    warnings: list[str] = []
    schools = _load_schools(directory / SCHOOLS_FILE, errors, warnings)
    calendar = _load_calendar(directory / CYCLES_FILE, errors)
    indicators = _load_indicators(directory / INDICATORS_FILE, errors)
    if errors.items or calendar is None:
        raise ReferenceDataError(errors.items or [f"{_display(directory / CYCLES_FILE)}: unusable"])
    for warning in warnings:
        log.warning("%s", warning)
    return Reference(schools=schools, calendar=calendar, indicators=indicators,
                     warnings=tuple(warnings), directory=directory)


def fingerprint(directory: Path) -> dict[str, str]:
    """Return {file name: sha256 hex} of the reference files in `directory` (the manifest's record)."""
    directory = Path(directory)
    result: dict[str, str] = {}
    for name in (SCHOOLS_FILE, CYCLES_FILE, INDICATORS_FILE):
        path = directory / name
        if path.is_file():
            result[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return result


def _read_text(path: Path, source: str, errors: _Errors) -> str | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        errors.add(source, None, "file not found")
        return None
    except OSError as exc:
        errors.add(source, None, f"cannot be read ({exc.strerror})")
        return None
    try:
        return nfc(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        errors.add(source, line, "not UTF-8 text; save the file as UTF-8 (Excel: \"CSV UTF-8\")")
        return None


# ---- schools.csv


def _load_schools(path: Path, errors: _Errors, warnings: list[str]) -> dict[str, School]:
    source = _display(path)
    text = _read_text(path, source, errors)
    if text is None:
        return {}
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    schools: dict[str, School] = {}
    code_lines: dict[str, int] = {}
    last_line = 0
    try:
        for record in reader:
            # A record starts on the line after the previous one ended (quoted fields may span lines).
            line, last_line = last_line + 1, reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if header is None:
                header = [cell.strip().casefold() for cell in record]
                if not _check_header(header, source, line, errors, warnings):
                    return {}
                continue
            if len(record) != len(header):
                errors.add(source, line, f"{len(record)} fields where the header has {len(header)}")
                continue
            row = {column: "" for column in OPTIONAL_SCHOOL_COLUMNS}
            row.update((column, cell) for column, cell in zip(header, record, strict=True)
                       if column in SCHOOL_COLUMNS)
            school = _parse_school(row, lambda problem, line=line: errors.add(source, line, problem))
            if school is None:
                continue
            if school.code in code_lines:
                errors.add(source, line, f"code '{school.code}' is already used on line "
                                         f"{code_lines[school.code]}")
                continue
            code_lines[school.code] = line
            schools[school.code] = school
    except csv.Error as exc:
        errors.add(source, reader.line_num, f"not valid CSV ({exc})")
    if header is None:
        errors.add(source, None, "empty file; expected a header line: " + ",".join(REQUIRED_SCHOOL_COLUMNS))
    return schools


def _check_header(header: list[str], source: str, line: int, errors: _Errors,
                  warnings: list[str]) -> bool:
    missing = [column for column in REQUIRED_SCHOOL_COLUMNS if column not in header]
    unknown = [column for column in header if column not in SCHOOL_COLUMNS]
    duplicated = sorted({c for c in header if header.count(c) > 1 and c in SCHOOL_COLUMNS})
    if missing:
        errors.add(source, line, "missing column(s) " + ", ".join(missing))
    if unknown:
        # SPEC §2: an office may keep its own columns (a phone number, a note); they are not ours.
        warnings.append(f"{source} line {line}: ignored unknown column(s) "
                        + ", ".join(repr(c) for c in unknown) + "; known: " + ", ".join(SCHOOL_COLUMNS))
    if duplicated:
        errors.add(source, line, "repeated column(s) " + ", ".join(duplicated))
    return not (missing or duplicated)


def parse_school_row(row: Mapping[str, str]) -> tuple[School | None, list[str]]:
    """Check one registry row (column -> text; optional columns may be absent); return it and problems."""
    problems: list[str] = []
    school = _parse_school({**dict.fromkeys(OPTIONAL_SCHOOL_COLUMNS, ""), **row}, problems.append)
    return (None if problems else school), problems


def _parse_school(row: Mapping[str, str], fail: Callable[[str], None]) -> School | None:
    problems = 0

    def failed(problem: str) -> None:
        nonlocal problems
        problems += 1
        fail(problem)

    code = normalize_code(row["code"])
    if not _SCHOOL_CODE.match(code):
        failed(f"code '{row['code'].strip()}' must be 1–{SCHOOL_CODE_MAX} letters, digits, '-', '_' or '.', "
             "starting with a letter or digit (e.g. 79000701 or MN-01)")
    name = " ".join(row["name"].split())
    if not name:
        failed("name is empty")
    level = row["level"].strip()
    if level not in SCHOOL_LEVELS.codes:
        failed(f"level '{level}' is not one of " + ", ".join(SCHOOL_LEVELS.codes))
    ownership = row["ownership"].strip()
    if ownership not in OWNERSHIPS.codes:
        failed(f"ownership '{ownership}' is not one of " + ", ".join(OWNERSHIPS.codes))
    ward = _parse_ward(row["ward"])
    if ward is None:
        failed(f"ward '{row['ward'].strip()}' is not one of Phường 1 … Phường {WARD_COUNT}")
    emails: list[str] = []
    for address in row["emails"].split(";"):
        address = address.strip()
        if not address:
            continue
        if not _EMAIL.match(address):
            failed(f"e-mail '{address}' is not a valid address (several are separated by ';')")
        elif address.casefold() not in {known.casefold() for known in emails}:
            emails.append(address)
    active = _parse_bool(row["active"])
    if active is None:
        failed(f"active '{row['active'].strip()}' is not true or false")
    opened = _parse_csv_date(row["opened"], "opened", failed)
    closed = _parse_csv_date(row["closed"], "closed", failed)
    if opened and closed and opened > closed:
        failed(f"opened {opened.isoformat()} is after closed {closed.isoformat()}")
    exempt: set[str] = set()
    for item in row["exempt_cycles"].split(";"):
        item = item.strip()
        if not item:
            continue
        if _CYCLE_ID.match(item):
            exempt.add(item)
        else:
            failed(f"exempt cycle '{item}' is not a cycle id like 2023-H1 (several are separated by ';')")
    if problems:
        return None
    assert ward is not None and active is not None
    return School(code, name, level, ownership, ward, tuple(emails), active, opened, closed,
                  frozenset(exempt))


def _parse_ward(text: str) -> str | None:
    found = _WARD.match(match_key(text))
    if not found or not 1 <= int(found.group(1)) <= WARD_COUNT:
        return None
    return f"Phường {int(found.group(1))}"


def _parse_bool(text: str) -> bool | None:
    key = match_key(text)
    return True if key in _TRUE else False if key in _FALSE else None


def _parse_csv_date(text: str, column: str, fail: Callable[[str], None]) -> dt.date | None:
    text = text.strip()
    if not text:
        return None
    if _ISO_DATE.match(text):
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            pass
    fail(f"{column} '{text}' is not a date written YYYY-MM-DD")
    return None


# ---- YAML with line numbers


@dataclass
class _Node:
    """A YAML value with the 1-based line it starts on; mappings and sequences hold _Node children."""

    value: Any
    line: int
    children: dict[str, _Node] | list[_Node] | None = field(default=None, repr=False)


def _read_yaml(path: Path, errors: _Errors) -> tuple[str, _Node | None]:
    source = _display(path)
    text = _read_text(path, source, errors)
    if text is None:
        return source, None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        errors.add(source, mark.line + 1 if mark else None, f"not valid YAML ({exc.problem})")
        return source, None
    except yaml.YAMLError as exc:
        errors.add(source, None, f"not valid YAML ({exc})")
        return source, None
    if root is None:
        errors.add(source, None, "empty file")
        return source, None
    return source, _build(root, yaml.constructor.SafeConstructor(), source, errors)


def _build(node: yaml.Node, constructor: yaml.constructor.SafeConstructor, source: str,
           errors: _Errors) -> _Node:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        children: dict[str, _Node] = {}
        for key_node, value_node in node.value:
            key = str(_build(key_node, constructor, source, errors).value)
            if key in children:
                # PyYAML silently keeps the last one; a repeated key is almost always a paste mistake.
                errors.add(source, key_node.start_mark.line + 1, f"key '{key}' is repeated")
            children[key] = _build(value_node, constructor, source, errors)
        return _Node(None, line, children)
    if isinstance(node, yaml.SequenceNode):
        return _Node(None, line, [_build(item, constructor, source, errors) for item in node.value])
    try:
        value = constructor.construct_object(node, deep=True)
    except (ValueError, yaml.YAMLError):
        # e.g. 2023-02-30 looks like a date to YAML but is none; the field check reports it.
        value = node.value
    return _Node(value, line)


def _mapping(node: _Node, what: str, source: str, errors: _Errors, required: tuple[str, ...],
             optional: tuple[str, ...] = ()) -> dict[str, _Node] | None:
    """Return a mapping's children after checking its keys, or None when it is not a mapping."""
    if not isinstance(node.children, dict):
        errors.add(source, node.line, f"{what} must be a mapping of keys to values")
        return None
    items = node.children
    missing = [key for key in required if key not in items]
    if missing:
        errors.add(source, node.line, f"{what} lacks " + ", ".join(missing))
    for key, child in items.items():
        if key not in required and key not in optional:
            errors.add(source, child.line, f"{what}: unknown key '{key}'; expected "
                       + ", ".join((*required, *optional)))
    return items


def _sequence(node: _Node | None, what: str, source: str, errors: _Errors) -> list[_Node]:
    if node is None or (node.children is None and node.value is None):
        return []
    if not isinstance(node.children, list):
        errors.add(source, node.line, f"{what} must be a list")
        return []
    return node.children


def _text(node: _Node | None, what: str, source: str, errors: _Errors, *, required: bool = True) -> str:
    if node is None or (node.value is None and node.children is None):
        if required:
            errors.add(source, node.line if node else None, f"{what} is empty")
        return ""
    if node.children is not None or isinstance(node.value, bool | dt.date):
        errors.add(source, node.line, f"{what} must be text")
        return ""
    text = " ".join(nfc(str(node.value)).split())
    if required and not text:
        errors.add(source, node.line, f"{what} is empty")
    return text


def _number(node: _Node | None, what: str, source: str, errors: _Errors) -> float | None:
    if node is None or (node.value is None and node.children is None):
        return None
    value = node.value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        errors.add(source, node.line, f"{what} '{value}' is not a number (or null)")
        return None
    return float(value)


def _yaml_date(node: _Node, what: str, source: str, errors: _Errors) -> dt.date | None:
    value = node.value
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.match(value.strip()):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    errors.add(source, node.line, f"{what} '{value}' is not a date written YYYY-MM-DD")
    return None


# ---- cycles.yaml

_CYCLE_KEYS = ("period_start", "period_end", "deadline")


def _load_calendar(path: Path, errors: _Errors) -> CycleCalendar | None:
    before = len(errors.items)
    source, root = _read_yaml(path, errors)
    if root is None:
        return None
    top = _mapping(root, "the calendar", source, errors, ("timezone", "default_rule", "cycles"),
                   ("valid_years",))
    if top is None:
        return None
    timezone = _timezone(top.get("timezone"), source, errors)
    rule = _default_rule(top.get("default_rule"), source, errors)
    valid_years = _valid_years(top.get("valid_years"), source, errors)
    cycles: list[Cycle] = []
    lines: dict[str, int] = {}
    for item in _sequence(top.get("cycles"), "cycles", source, errors):
        cycle = _cycle(item, timezone or TIMEZONE, source, errors)
        if cycle is None:
            continue
        if cycle.id in lines:
            errors.add(source, item.line, f"cycle {cycle.id} is already listed on line {lines[cycle.id]}")
            continue
        lines[cycle.id] = item.line
        cycles.append(cycle)
    # Consecutive listed cycles must not overlap, or "the cycle open at a moment" is ambiguous.
    ordered = sorted(cycles, key=lambda cycle: cycle.id)
    for earlier, later in itertools.pairwise(ordered):
        if _parse_cycle_id(later.id) != _next_half(earlier.id):
            continue
        if later.period_start <= earlier.period_end:
            errors.add(source, lines[later.id], f"cycle {later.id} starts on or before the end of "
                       f"{earlier.id} ({earlier.period_end.isoformat()})")
        if later.deadline <= earlier.deadline:
            errors.add(source, lines[later.id], f"cycle {later.id} is due on or before {earlier.id} "
                       f"({earlier.deadline.isoformat()})")
    if len(errors.items) > before or timezone is None or rule is None:
        return None
    return CycleCalendar(cycles, rule, timezone, valid_years)


def _valid_years(node: _Node | None, source: str, errors: _Errors) -> tuple[int, int] | None:
    """Read `valid_years: [first, last]`, the years the default rule makes cycles for."""
    if node is None or (node.value is None and node.children is None):
        return None
    items = node.children if isinstance(node.children, list) else None
    years = [item.value for item in items] if items is not None else []
    if (len(years) != 2 or not all(isinstance(y, int) and not isinstance(y, bool) for y in years)
            or not 2000 <= years[0] <= years[1] <= 2999):
        errors.add(source, node.line, "valid_years must be [first year, last year], e.g. [2023, 2030]")
        return None
    return years[0], years[1]


def _next_half(cycle_id: str) -> tuple[int, int] | None:
    parsed = _parse_cycle_id(cycle_id)
    if parsed is None:
        return None
    year, half = parsed
    return (year, 2) if half == 1 else (year + 1, 1)


def _timezone(node: _Node | None, source: str, errors: _Errors) -> ZoneInfo | None:
    if node is None:
        return None
    name = _text(node, "timezone", source, errors)
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        errors.add(source, node.line, f"timezone '{name}' is not a known time zone (e.g. Asia/Ho_Chi_Minh)")
        return None


def _default_rule(node: _Node | None, source: str, errors: _Errors) -> dict[int, HalfYearRule] | None:
    if node is None:
        return None
    halves = _mapping(node, "default_rule", source, errors, ("H1", "H2"))
    if halves is None or set(halves) != {"H1", "H2"}:
        return None
    rule: dict[int, HalfYearRule] = {}
    for half in (1, 2):
        item = halves[f"H{half}"]
        keys = _mapping(item, f"default_rule H{half}", source, errors, _CYCLE_KEYS)
        if keys is None or any(key not in keys for key in _CYCLE_KEYS):
            continue
        days = [_month_day(keys[key], f"default_rule H{half} {key}", source, errors) for key in _CYCLE_KEYS]
        if None in days:
            continue
        start, end, deadline = days
        assert start and end and deadline
        if not start <= end <= deadline:
            errors.add(source, item.line, f"default_rule H{half}: period_start <= period_end <= deadline "
                       "does not hold")
            continue
        rule[half] = HalfYearRule(start, end, deadline)
    if len(rule) < 2:
        return None
    if not (rule[1].period_end < rule[2].period_start and rule[1].deadline < rule[2].deadline):
        errors.add(source, halves["H2"].line, "default_rule H2 must start after H1's period and be due "
                   "after H1")
        return None
    return rule


def _month_day(node: _Node, what: str, source: str, errors: _Errors) -> tuple[int, int] | None:
    found = _MONTH_DAY.match(str(node.value).strip()) if node.value is not None else None
    if found:
        month, day = int(found.group(1)), int(found.group(2))
        try:
            dt.date(2023, month, day)  # a non-leap year: 02-29 would vanish three years in four
            return month, day
        except ValueError:
            pass
    errors.add(source, node.line, f"{what} '{node.value}' is not a month-day written \"MM-DD\"")
    return None


def _cycle(node: _Node, timezone: ZoneInfo, source: str, errors: _Errors) -> Cycle | None:
    before = len(errors.items)
    keys = _mapping(node, "a cycle", source, errors, ("id", *_CYCLE_KEYS))
    if keys is None or any(key not in keys for key in ("id", *_CYCLE_KEYS)):
        return None
    cycle_id = str(keys["id"].value).strip()
    if not _CYCLE_ID.match(cycle_id):
        errors.add(source, keys["id"].line, f"cycle id '{cycle_id}' is not written like 2023-H1 or 2023-H2")
    start, end, deadline = (_yaml_date(keys[key], key, source, errors) for key in _CYCLE_KEYS)
    if start and end and start > end:
        errors.add(source, keys["period_end"].line, f"cycle {cycle_id}: period_end {end.isoformat()} is "
                   f"before period_start {start.isoformat()}")
    if end and deadline and end > deadline:
        errors.add(source, keys["deadline"].line, f"cycle {cycle_id}: deadline {deadline.isoformat()} is "
                   f"before period_end {end.isoformat()}")
    if len(errors.items) > before:
        return None
    assert start and end and deadline
    return Cycle(cycle_id, start, end, deadline, timezone)


# ---- indicators.yaml

_INDICATOR_REQUIRED = ("code", "name", "program", "unit")
_INDICATOR_OPTIONAL = ("goal", "target", "direction", "formula", "manual", "value", "values", "note")


def _load_indicators(path: Path, errors: _Errors) -> tuple[Indicator, ...]:
    source, root = _read_yaml(path, errors)
    if root is None:
        return ()
    top = _mapping(root, "the catalog", source, errors, ("indicators",))
    if top is None or "indicators" not in top:
        return ()
    indicators: list[Indicator] = []
    lines: dict[str, int] = {}
    for item in _sequence(top["indicators"], "indicators", source, errors):
        indicator = _indicator(item, source, errors)
        if indicator is None:
            continue
        if indicator.code in lines:
            errors.add(source, item.line, f"indicator code '{indicator.code}' is already used on line "
                       f"{lines[indicator.code]}")
            continue
        lines[indicator.code] = item.line
        indicators.append(indicator)
    return tuple(indicators)


def _indicator(node: _Node, source: str, errors: _Errors) -> Indicator | None:
    before = len(errors.items)
    keys = _mapping(node, "an indicator", source, errors, _INDICATOR_REQUIRED, _INDICATOR_OPTIONAL)
    if keys is None:
        return None
    code = _text(keys.get("code"), "code", source, errors) if "code" in keys else ""
    if code and not _INDICATOR_CODE.match(code):
        errors.add(source, keys["code"].line, f"indicator code '{code}' must be upper-case ASCII letters, "
                   "digits or _ (e.g. CT1)")
    what = f"indicator {code or '?'}"
    name = _text(keys.get("name"), f"{what}: name", source, errors) if "name" in keys else ""
    program = _text(keys.get("program"), f"{what}: program", source, errors) if "program" in keys else ""
    unit = _text(keys.get("unit"), f"{what}: unit", source, errors, required=False)
    goal_node = keys.get("goal")
    goal = _text(goal_node, f"{what}: goal", source, errors, required=False) or None
    target = _number(keys.get("target"), f"{what}: target", source, errors)
    direction = ">="
    if keys.get("direction") is not None and keys["direction"].value is not None:
        direction = str(keys["direction"].value).strip()
        if direction not in DIRECTIONS:
            errors.add(source, keys["direction"].line, f"{what}: direction '{direction}' is not "
                       + " or ".join(repr(d) for d in DIRECTIONS))
    manual_node = keys.get("manual")
    manual = False
    if manual_node is not None and manual_node.value is not None:
        if not isinstance(manual_node.value, bool):
            errors.add(source, manual_node.line, f"{what}: manual '{manual_node.value}' is not true or false")
        manual = manual_node.value is True
    groups = _groups(keys.get("formula"), what, source, errors)
    value = _number(keys.get("value"), f"{what}: value", source, errors)
    values = _cycle_values(keys.get("values"), what, source, errors)
    if value is not None and values:
        errors.add(source, keys["value"].line, f"{what}: has both value and values; keep only the "
                   "per-cycle values (e.g. values: {2023-H1: 12})")
    if not manual and values:
        errors.add(source, keys["values"].line, f"{what}: values are only for manual indicators")
    if manual and "formula" in keys:
        errors.add(source, keys["formula"].line, f"{what}: has both a formula and manual: true; keep one")
    if not manual and "formula" not in keys:
        errors.add(source, node.line, f"{what}: needs a formula (groups) or manual: true")
    if not manual and value is not None:
        errors.add(source, keys["value"].line, f"{what}: value is only for manual indicators; computed "
                   "ones are calculated from the submissions")
    if len(errors.items) > before:
        return None
    return Indicator(code, name, program, goal, unit, target, groups, manual, direction, value, values)


def _cycle_values(node: _Node | None, what: str, source: str, errors: _Errors) -> dict[str, float]:
    """Read `values: {2023-H1: 12, 2023-H2: null}`; a null means not entered yet."""
    if node is None or (node.value is None and node.children is None):
        return {}
    if not isinstance(node.children, dict):
        errors.add(source, node.line, f"{what}: values must map cycle ids to numbers, e.g. "
                   "values: {2023-H1: 12}")
        return {}
    values: dict[str, float] = {}
    for key, child in node.children.items():
        parsed = _parse_cycle_id(key)
        if parsed is None:
            errors.add(source, child.line, f"{what}: values key '{key}' is not a cycle id like 2023-H1")
            continue
        number = _number(child, f"{what}: value for {key}", source, errors)
        if number is not None:
            values[f"{parsed[0]}-H{parsed[1]}"] = number
    return values


def _groups(node: _Node | None, what: str, source: str, errors: _Errors) -> tuple[str, ...]:
    if node is None:
        return ()
    formula = _mapping(node, f"{what}: formula", source, errors, ("groups",))
    if formula is None or "groups" not in formula:
        return ()
    items = _sequence(formula["groups"], f"{what}: formula groups", source, errors)
    if not items:
        errors.add(source, formula["groups"].line, f"{what}: formula groups is empty")
    groups: list[str] = []
    for item in items:
        code = str(item.value).strip()
        if code not in AUDIENCE_GROUPS.codes:
            errors.add(source, item.line, f"{what}: group '{code}' is not one of "
                       + ", ".join(AUDIENCE_GROUPS.codes))
        elif code in groups:
            errors.add(source, item.line, f"{what}: group '{code}' is listed twice")
        else:
            groups.append(code)
    return tuple(groups)
