#!/usr/bin/env bash
# Back up the application database and the archive folder (docs/operations.md §9).
#
#   scripts/backup.sh [DEST]     DEST default: $GEC_BACKUP_DIR, else data/backups in the checkout
#
# Writes DEST/gec-backup-<UTC time>/ (0700): database.dump (PostgreSQL, pg_dump custom format) or
# database.sqlite3 (SQLite online backup), archive.tar, manifest.json (sha256 of each file, schema
# revision, row count of every table). Prints the folder on stdout. The database and folder are the
# configured ones (GEC_DATABASE_URL, GEC_ARCHIVE_DIR, .env). Keep backups off this machine: they hold
# confidential incident counts and every submitted workbook.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
umask 077
exec "${GEC_PYTHON:-$root/.venv/bin/python}" "$root/scripts/backup_restore.py" backup "$@"
