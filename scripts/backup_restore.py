"""Back up and restore the application database and the archive folder (docs/operations.md §9).

    .venv/bin/python scripts/backup_restore.py backup [DEST]      # scripts/backup.sh
    .venv/bin/python scripts/backup_restore.py restore BACKUP    # scripts/restore.sh

The database and folder are the configured ones (GEC_DATABASE_URL, GEC_ARCHIVE_DIR, `.env`). A backup
is a folder `gec-backup-<UTC time>/` (0700; its files 0600: they hold incident counts) with
`database.dump` (PostgreSQL, `pg_dump --format=custom`) or `database.sqlite3` (SQLite's online backup,
safe while collect runs), `archive.tar` and `manifest.json`: each file's sha256, the schema revision
and the row count of every table. A restore goes only into an EMPTY database and an empty or absent
archive folder, checks every sha256 first and every row count after, and exits non-zero on any
difference. Passwords never reach a command line: pg_dump and pg_restore get them as PGPASSWORD.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib.util
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from config.private_files import private_file, private_folder, tighten, use_private_umask  # noqa: E402

FORMAT = 1
MANIFEST = "manifest.json"
ARCHIVE = "archive.tar"
PG_DUMP, SQLITE_COPY = "database.dump", "database.sqlite3"
ROLE_MIGRATION = PROJECT_ROOT / "db" / "migrations" / "versions" / "0003_reporting_role.py"


class BackupError(RuntimeError):
    """A backup or restore that must stop; the message says why and what to do."""


def _settings() -> tuple[Any, Path]:
    """Return the configured database URL (SQLAlchemy form) and the archive folder."""
    from sqlalchemy.engine import make_url

    from config.settings import get_settings

    settings = get_settings()
    return make_url(settings.effective_database_url), Path(settings.archive_dir)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pg_env(url: Any) -> dict[str, str]:
    """Return the libpq environment for a PostgreSQL URL (the password as PGPASSWORD, not an argument)."""
    env = {**os.environ, "PGHOST": url.host or "127.0.0.1", "PGPORT": str(url.port or 5432),
           "PGDATABASE": url.database or ""}
    if url.username:
        env["PGUSER"] = url.username
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return env


def _run(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"{command[0]} failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")


def _engine(url: Any) -> Any:
    from db.engine import new_engine

    return new_engine(url)


def table_counts(url: Any) -> tuple[str | None, dict[str, int]]:
    """Return the schema revision and the row count of every table of the database."""
    from sqlalchemy import inspect, text

    engine = _engine(url)
    try:
        with engine.connect() as conn:
            names = sorted(inspect(conn).get_table_names())
            counts = {name: int(conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one())
                      for name in names}
            revision = None
            if "alembic_version" in names:
                revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()
    return revision, counts


def backup(dest: Path) -> Path:
    """Write a backup folder under `dest`; return it."""
    url, archive_dir = _settings()
    backend = url.get_backend_name()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = private_folder(Path(dest) / f"gec-backup-{stamp}")
    if any(folder.iterdir()):
        raise BackupError(f"{folder} is not empty: wait a second and run again")
    revision, counts = table_counts(url)
    if backend == "postgresql":
        target = private_file(folder / PG_DUMP)
        _run(["pg_dump", "--format=custom", "--file", str(target)], _pg_env(url))
    elif backend == "sqlite":
        database = Path(url.database or "")
        if not database.is_file():
            raise BackupError(f"no SQLite database at {database}")
        source = sqlite3.connect(database)
        copy = sqlite3.connect(private_file(folder / SQLITE_COPY))
        try:
            source.backup(copy)  # SQLite's online backup: a consistent copy while others write
        finally:
            copy.close()
            source.close()
    else:
        raise BackupError(f"cannot back up a {backend} database")
    with tarfile.open(private_file(folder / ARCHIVE), "w") as tar:
        if archive_dir.is_dir():
            tar.add(archive_dir, arcname=".")
    # Counted again after the dump: a collect that ran meanwhile would make them differ.
    after_revision, after = table_counts(url)
    if (after_revision, after) != (revision, counts):
        raise BackupError("the database changed while it was backed up: stop collect runs and run again")
    files = {path.name: _sha256(path) for path in sorted(folder.iterdir())}
    manifest = {"format": FORMAT, "created_at": dt.datetime.now(dt.UTC).isoformat(), "backend": backend,
                "revision": revision, "tables": counts, "files": files}
    private_file(folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return folder


def _load_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise BackupError(f"{folder} is not a backup: no {MANIFEST}")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unknown backup format {manifest.get('format')!r}")
    for name, digest in manifest["files"].items():
        if not (folder / name).is_file() or _sha256(folder / name) != digest:
            raise BackupError(f"{name} in {folder} is missing or damaged (sha256 differs)")
    return manifest


def _ensure_reporting_role(url: Any) -> None:
    """Create the reporting role if this cluster lacks it (the dump grants to it; roles are not dumped)."""
    from sqlalchemy import text

    spec = importlib.util.spec_from_file_location("reporting_role_migration", ROLE_MIGRATION)
    if spec is None or spec.loader is None or not ROLE_MIGRATION.exists():
        return
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    engine = _engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(module.CREATE_ROLE))
    finally:
        engine.dispose()


def restore(folder: Path) -> dict[str, Any]:
    """Restore a backup into the configured empty database and archive folder; return its manifest."""
    url, archive_dir = _settings()
    backend = url.get_backend_name()
    manifest = _load_manifest(Path(folder))
    if manifest["backend"] != backend:
        raise BackupError(f"the backup is of a {manifest['backend']} database; GEC_DATABASE_URL is {backend}")
    if archive_dir.exists() and any(archive_dir.iterdir()):
        raise BackupError(f"the archive folder {archive_dir} is not empty: restore into a new folder")
    if backend == "postgresql":
        _, present = table_counts(url)
        if present:
            raise BackupError(f"database {url.database} has tables: restore into a new, empty database")
        _ensure_reporting_role(url)
        _run(["pg_restore", "--no-owner", "--exit-on-error", "--single-transaction",
              "--dbname", url.database or "", str(Path(folder) / PG_DUMP)], _pg_env(url))
    else:
        target = Path(url.database)
        if target.exists() and target.stat().st_size > 0:
            raise BackupError(f"{target} exists: restore into a new SQLite file")
        private_folder(target.parent)
        source = sqlite3.connect(Path(folder) / SQLITE_COPY)
        copy = sqlite3.connect(private_file(target))
        try:
            source.backup(copy)
        finally:
            copy.close()
            source.close()
    private_folder(archive_dir)
    with tarfile.open(Path(folder) / ARCHIVE) as tar:
        tar.extractall(archive_dir, filter="data")  # "data": no absolute paths, links or devices
    revision, counts = table_counts(url)
    if revision != manifest["revision"] or counts != manifest["tables"]:
        wrong = sorted(name for name in {*counts, *manifest["tables"]}
                       if counts.get(name) != manifest["tables"].get(name))
        raise BackupError(f"restored database differs from the backup (revision {revision}, tables {wrong})")
    tighten([archive_dir, *([Path(url.database)] if backend == "sqlite" else [])])
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    made = commands.add_parser("backup", help="write a backup folder")
    made.add_argument("dest", nargs="?", default=os.environ.get("GEC_BACKUP_DIR", str(PROJECT_ROOT / "data"
                                                                                       / "backups")))
    back = commands.add_parser("restore", help="restore a backup folder into an empty database")
    back.add_argument("backup")
    args = parser.parse_args(argv)
    use_private_umask()
    try:
        if args.command == "backup":
            folder = backup(Path(args.dest))
            manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
            print(f"backup written: {folder} ({sum(manifest['tables'].values())} rows, "
                  f"revision {manifest['revision']})", file=sys.stderr)
            print(folder)
        else:
            manifest = restore(Path(args.backup))
            url, archive_dir = _settings()
            target = url.render_as_string(hide_password=True)
            print(f"restored {args.backup} into {target} and {archive_dir}: "
                  f"{sum(manifest['tables'].values())} rows checked", file=sys.stderr)
    except BackupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
