"""Demo submissions: deterministic, realistic, and each file raising exactly the rules truth.json lists."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from demo.data import EXCLUDED_RULES, generate_demo_data, safe_file_stem, truth_path_for
from schemas.contract import CHECKLIST, INCIDENTS, REACH, RULES, Severity
from schemas.reference import load_reference
from tasks.storage.states import Decision, SubmissionFacts, derive_states, school_status

ROOT = Path(__file__).resolve().parents[2]
REFERENCE_DIR = ROOT / "reference"
LIBREOFFICE_DIR = ROOT / "tests" / "fixtures" / "libreoffice"
CYCLE = "2023-H1"
SEED = 2023
MAX_BYTES = 20 * 1024 * 1024
MAGIC = {"xlsx": b"PK\x03\x04", "ods": b"PK\x03\x04", "xls": b"\xd0\xcf\x11\xe0"}


@pytest.fixture(scope="module")
def reference():
    return load_reference(REFERENCE_DIR)


@pytest.fixture(scope="module")
def demo(reference, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("demo") / "inbox"
    truth_path = generate_demo_data(reference, CYCLE, out, seed=SEED)
    # Beside the folder it fills, never inside it: collect must not store the answers.
    assert truth_path == out.parent / "inbox.truth.json" == truth_path_for(out)
    return out, json.loads(truth_path.read_text(encoding="utf-8"))


def _digests(folder: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir())}


def test_deterministic_for_a_seed_and_rerun_replaces_files(reference, demo, tmp_path):
    folder, truth = demo
    inbox = tmp_path / "inbox"
    first = generate_demo_data(reference, CYCLE, inbox, seed=SEED)
    assert _digests(inbox) == _digests(folder)
    assert first.read_bytes() == truth_path_for(folder).read_bytes()

    # Another cycle and seed into the same folder: the earlier run's files are gone.
    other = json.loads(generate_demo_data(reference, "2023-H2", inbox, seed=SEED + 1).read_text("utf-8"))
    assert other["cycle"] == "2023-H2" and other["files"] != truth["files"]
    assert {p.name for p in inbox.iterdir()} == {f["file"] for f in other["files"]}
    assert len({code for item in other["files"] for code in item["expect_rules"]}) >= 11
    cycle = reference.calendar.get("2023-H2")
    window_opens = dt.datetime.combine(
        cycle.period_end - dt.timedelta(days=7), dt.time(), tzinfo=cycle.deadline_end.tzinfo
    )
    assert all(dt.datetime.fromisoformat(item["received_at"]) >= window_opens for item in other["files"])


def test_truth_shape(demo):
    _, truth = demo
    assert truth["cycle"] == CYCLE and truth["seed"] == SEED
    for item in truth["files"]:
        assert set(item) == {"file", "school_code", "received_at", "expect_rules", "expect_late",
                             "expect_state"}
        assert item["expect_state"] in {"accepted", "rejected", "superseded"}
        assert item["expect_rules"] == sorted(set(item["expect_rules"]))
    for item in truth["schools"]:
        assert set(item) == {"code", "expect_state", "expect_on_time"}
        assert item["expect_state"] in {"on_time", "late", "received_invalid", "missing", "exempt"}


def test_files_exist_with_received_time_as_mtime(demo):
    folder, truth = demo
    assert {p.name for p in folder.iterdir()} == {f["file"] for f in truth["files"]}
    assert len({f["file"].casefold() for f in truth["files"]}) == len(truth["files"])
    # No two files are byte-identical: intake stores a file received twice only once.
    digests = _digests(folder)
    assert len({digests[f["file"]] for f in truth["files"]}) == len(truth["files"])
    for item in truth["files"]:
        received = dt.datetime.fromisoformat(item["received_at"])
        assert item["received_at"].endswith("+07:00")
        assert (folder / item["file"]).stat().st_mtime == received.timestamp()


def test_late_flags_follow_the_deadline(reference, demo):
    _, truth = demo
    deadline_end = reference.calendar.get(CYCLE).deadline_end
    for item in truth["files"]:
        late = dt.datetime.fromisoformat(item["received_at"]) >= deadline_end
        assert item["expect_late"] is late
    assert any(item["expect_late"] for item in truth["files"])


def test_rule_coverage(demo):
    _, truth = demo
    codes = {code for item in truth["files"] for code in item["expect_rules"]}
    assert codes <= set(RULES)
    assert not codes & EXCLUDED_RULES
    assert len(codes) >= 11
    assert any(RULES[code].severity is Severity.WARNING for code in codes)
    # A realistic share of the schools that sent something made mistakes (about a fifth).
    sent = {item["school_code"] for item in truth["files"]}
    with_mistakes = [item for item in truth["files"] if item["expect_rules"]]
    assert 0.12 <= len(with_mistakes) / len(sent) <= 0.3


def test_some_files_are_xls_or_ods(demo):
    folder, truth = demo
    formats = Counter(Path(item["file"]).suffix.lstrip(".") for item in truth["files"])
    assert formats["ods"] >= 2 and formats["xls"] >= 2
    assert 0.05 <= (formats["ods"] + formats["xls"]) / len(truth["files"]) <= 0.10
    for item in truth["files"]:
        extension = Path(item["file"]).suffix.lstrip(".")
        assert (folder / item["file"]).read_bytes()[:4] == MAGIC[extension]


def test_school_shares_and_resubmissions(reference, demo):
    _, truth = demo
    states = Counter(item["expect_state"] for item in truth["schools"])
    expected = reference.expected_schools(CYCLE)
    assert len(truth["schools"]) == len(expected)
    assert 0.07 <= states["missing"] / len(expected) <= 0.13
    assert states["late"] and states["received_invalid"] and states["exempt"]
    by_school = defaultdict(list)
    for item in truth["files"]:
        if item["school_code"]:
            by_school[item["school_code"]].append(item)
    # A rejected file corrected later, and an on-time file corrected after the deadline.
    assert any([f["expect_state"] for f in files] == ["rejected", "accepted"] for files in by_school.values())
    assert any(
        [(f["expect_state"], f["expect_late"]) for f in files] == [("superseded", False), ("accepted", True)]
        for files in by_school.values()
    )
    assert any(item["school_code"] is None for item in truth["files"])  # a mistyped school code


def test_states_agree_with_the_state_rules(reference, demo):
    _, truth = demo
    cycle = reference.calendar.get(CYCLE)
    facts = [
        SubmissionFacts(
            id=index,
            school_code=item["school_code"],
            received_at=dt.datetime.fromisoformat(item["received_at"]),
            decision=Decision.REJECTED if item["expect_state"] == "rejected" else Decision.ACCEPTED,
        )
        for index, item in enumerate(truth["files"])
    ]
    derived = derive_states(facts)
    assert [str(derived[fact.id]) for fact in facts] == [item["expect_state"] for item in truth["files"]]
    for school in truth["schools"]:
        mine = [fact for fact in facts if fact.school_code == school["code"]]
        found = reference.school(school["code"])
        status = school_status(mine, cycle.deadline_end, exempt=reference.is_exempt(found, CYCLE))
        assert (str(status.state), status.on_time) == (school["expect_state"], school["expect_on_time"])


def test_each_file_raises_exactly_its_expected_rules(reference, demo):
    from tasks.check.parse import parse_workbook
    from tasks.check.validate import validate_batch

    folder, truth = demo
    items = [
        (item["file"], parse_workbook((folder / item["file"]).read_bytes(), max_bytes=MAX_BYTES))
        for item in truth["files"]
    ]
    findings = validate_batch(items, reference)
    wrong = {}
    for item in truth["files"]:
        found = sorted({f.rule for f in findings[item["file"]]} - EXCLUDED_RULES)
        if found != item["expect_rules"]:
            wrong[item["file"]] = (item["expect_rules"], found)
    assert not wrong


def test_unknown_cycle_rejected(reference, tmp_path):
    with pytest.raises(ValueError):
        generate_demo_data(reference, "2023-H3", tmp_path)


# --------------------------------------------------------------------------------------------------
# Files LibreOffice resaved


def _plain(value: object) -> object:
    """Turn a parsed cell into what expected.json holds: int, bool, str, ISO date or None."""
    if value is None or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _by_row(frame: pd.DataFrame, row_field: str) -> dict[str, dict[str, object]]:
    return {
        record[row_field]: {key: _plain(value) for key, value in record.items() if key != row_field}
        for record in frame.to_dict("records")
    }


def _libreoffice_files() -> list[str]:
    return json.loads((LIBREOFFICE_DIR / "expected.json").read_text("utf-8"))["files"]


@pytest.mark.parametrize("name", _libreoffice_files())
def test_libreoffice_resaves_parse_to_the_same_values(name):
    from tasks.check.parse import parse_workbook

    expected = json.loads((LIBREOFFICE_DIR / "expected.json").read_text("utf-8"))
    parsed = parse_workbook((LIBREOFFICE_DIR / name).read_bytes(), max_bytes=MAX_BYTES)
    assert parsed.file_format == Path(name).suffix.lstrip(".")
    assert not parsed.findings

    assert {key: _plain(cell.value) for key, cell in parsed.general.items()} == expected["general"]
    assert {key: _plain(cell.value) for key, cell in parsed.meta.items()} == expected["meta"]
    for sheet, row_field in ((REACH.key, "group"), (CHECKLIST.key, "item"), (INCIDENTS.key, "category")):
        got = _by_row(parsed.tables[sheet], row_field)
        for code, values in expected[sheet].items():
            assert {key: got[code][key] for key in values} == values, (sheet, code)
    activities = parsed.tables["activities"].to_dict("records")
    assert len(activities) == len(expected["activities"])
    for got, want in zip(activities, expected["activities"], strict=True):
        assert {key: _plain(got[key]) for key in want} == want

    # The total typed as =SUM(...) is read from its cached value.
    formula = expected["formula"]
    reach = _by_row(parsed.tables[formula["sheet"]], "group")
    assert reach[formula["row"]][formula["field"]] == formula["value"]


# --------------------------------------------------------------------------------------------------
# Real school names, and where the truth file goes


ODD_NAMES = {
    "MN001": "Trường Mầm non 1/6",
    "MN002": 'Trường Mầm non "Sao Mai" \\ cơ sở 2: Phường 7?',
    "MN003": "Trường Mầm non " + "Hoa Hướng Dương Rực Rỡ Trong Nắng Mai " * 12,
    "TH001": "Trường Tiểu học Lê Văn Tám/ Phân hiệu <Bình Đông> | *",
}


def _odd_reference(tmp_path: Path) -> Path:
    import csv
    import shutil

    target = tmp_path / "reference"
    shutil.copytree(REFERENCE_DIR, target)
    path = target / "schools.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    for row in rows[1:]:
        row[1] = ODD_NAMES.get(row[0], row[1])
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)
    return target


def test_any_school_name_gives_a_valid_file_name(tmp_path):
    reference = load_reference(_odd_reference(tmp_path))
    inbox = tmp_path / "inbox"
    truth = json.loads(generate_demo_data(reference, CYCLE, inbox, seed=SEED).read_text("utf-8"))
    names = [item["file"] for item in truth["files"]]
    assert {p.name for p in inbox.iterdir()} == set(names)  # every file is directly in the folder
    for name in names:
        assert "/" not in name and "\\" not in name and not set(name) & set(':*?"<>|')
        assert len(name.encode("utf-8")) <= 200
    # Every odd-named school that sent a file still has it, under its own code.
    sent = {item["school_code"] for item in truth["files"]}
    assert sent & set(ODD_NAMES)


@pytest.mark.parametrize(
    ("stem", "expected"),
    [
        ("Báo cáo MN 1/6", "Báo cáo MN 1-6"),
        ('BC "Sao Mai": 2023?', "BC -Sao Mai- 2023"),
        ("  ../..  ", "bao cao"),
        ("a\x00b\tc", "a-b-c"),
    ],
)
def test_safe_file_stem(stem, expected):
    assert safe_file_stem(stem) == expected


def test_safe_file_stem_bounds_utf8_bytes():
    stem = safe_file_stem("Trường Mầm non Hướng Dương " * 30)
    assert len(stem.encode("utf-8")) <= 180 and stem.startswith("Trường Mầm non Hướng Dương")


def test_truth_file_may_go_elsewhere_but_never_inside_the_folder(reference, tmp_path):
    truth = generate_demo_data(reference, CYCLE, tmp_path / "inbox", seed=SEED,
                               truth_path=tmp_path / "t.json")
    assert truth == (tmp_path / "t.json").resolve() and truth.is_file()
    with pytest.raises(ValueError, match="must not be inside"):
        generate_demo_data(reference, CYCLE, tmp_path / "inbox", truth_path=tmp_path / "inbox" / "t.json")


def test_an_old_truth_json_inside_the_folder_is_cleared(reference, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "stale.xlsx").write_bytes(b"old")
    (inbox / "truth.json").write_text(json.dumps({"files": [{"file": "stale.xlsx"}]}), encoding="utf-8")
    generate_demo_data(reference, CYCLE, inbox, seed=SEED)
    assert not (inbox / "truth.json").exists() and not (inbox / "stale.xlsx").exists()
