"""Write a cycle report's files and its provenance (manifest.json, report_runs)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert

from config.settings import PROJECT_ROOT, TIMEZONE, get_settings
from db import models
from schemas.contract import CONTRACT_VERSION, TEMPLATE_VERSION
from tasks.report.build import build_report
from tasks.report.cycle_data import CycleData
from tasks.report.docx_render import DOCX_NAME, render_docx
from tasks.report.render_html import render_html
from tasks.report.render_xlsx import render_restricted_xlsx, render_xlsx

HTML_NAME = "tong-hop.html"
XLSX_NAME = "tong-hop.xlsx"
RESTRICTED_NAME = "restricted/vu-viec.xlsx"
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class ReportFiles:
    directory: Path
    html: Path
    xlsx: Path
    restricted: Path
    manifest: Path
    submissions: list[dict[str, Any]]  # [{id, school_code, sha256}] the report used
    docx: Path

    def paths(self) -> list[Path]:
        return [self.html, self.xlsx, self.docx, self.restricted, self.manifest]


@lru_cache(maxsize=1)
def code_version() -> str:
    """Return the git commit of the running code (with `+dirty` for local edits), or the package version."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import version

        return version("gec-reports")


def report_directory(output_dir: Path, cycle_id: str, as_of: dt.datetime) -> Path:
    """Return `outputs/<cycle>/<YYYY-MM-DD>/`, dated by the as-of day in Asia/Ho_Chi_Minh."""
    return output_dir / cycle_id / as_of.astimezone(TIMEZONE).strftime("%Y-%m-%d")


def used_submissions(data: CycleData) -> list[dict[str, Any]]:
    """Return the current submissions the report is computed from, with their sha256."""
    sha = dict(zip(data.submissions["id"], data.submissions["sha256"], strict=True))
    used = data.schools.dropna(subset=["submission_id"]).sort_values("code")
    return [
        {"id": int(row.submission_id), "school_code": row.code, "sha256": sha.get(int(row.submission_id))}
        for row in used.itertuples()
    ]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_report_files(data: CycleData, output_dir: Path, number: str | None = None) -> ReportFiles:
    """Build the report; write the HTML, both workbooks, the Word file and the manifest; return their paths.

    `number` is the Word report's number before "/BC-GDĐT" (default: the GEC_REPORT_NUMBER setting).
    """
    report = build_report(data)
    directory = report_directory(output_dir, data.cycle.id, data.as_of)
    restricted_dir = directory / Path(RESTRICTED_NAME).parent
    restricted_dir.mkdir(parents=True, exist_ok=True)
    restricted_dir.chmod(0o700)
    html = directory / HTML_NAME
    xlsx = directory / XLSX_NAME
    restricted = directory / RESTRICTED_NAME
    html.write_text(render_html(report), encoding="utf-8", newline="\n")
    xlsx.write_bytes(render_xlsx(report))
    docx = directory / DOCX_NAME
    docx.write_bytes(render_docx(report, get_settings().report_number if number is None else number))
    # Create the restricted file 0600 before any byte is written into it.
    fd = os.open(restricted, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(render_restricted_xlsx(report))
    restricted.chmod(0o600)

    submissions = used_submissions(data)
    manifest = {
        "cycle": data.cycle.id,
        "as_of": data.as_of.astimezone(TIMEZONE).isoformat(),
        "code_version": code_version(),
        "contract_version": CONTRACT_VERSION,
        "template_version": TEMPLATE_VERSION,
        "reference_files": dict(sorted(data.reference_files.items())),
        "submissions": submissions,
        "files": {
            name: _sha256(directory / name) for name in (HTML_NAME, XLSX_NAME, DOCX_NAME, RESTRICTED_NAME)
        },
    }
    manifest_path = directory / MANIFEST_NAME
    manifest_path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return ReportFiles(directory, html, xlsx, restricted, manifest_path, submissions, docx)


def record_report_run(
    engine: Engine, data: CycleData, files: ReportFiles, started_at: dt.datetime
) -> int:
    """Record the run and its provenance in report_runs; return its id."""
    manifest = json.loads(files.manifest.read_text(encoding="utf-8"))
    with engine.begin() as conn:
        return conn.execute(
            insert(models.ReportRun.__table__)
            .values(
                cycle_id=data.cycle.id,
                as_of=data.as_of,
                started_at=started_at,
                finished_at=dt.datetime.now(dt.UTC),
                output_dir=str(files.directory),
                code_version=manifest["code_version"],
                contract_version=CONTRACT_VERSION,
                manifest=manifest,
                submission_versions=files.submissions,
            )
            .returning(models.ReportRun.__table__.c.id)
        ).scalar_one()
