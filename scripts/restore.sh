#!/usr/bin/env bash
# Restore a backup of scripts/backup.sh into an EMPTY database and archive folder (docs/operations.md §9).
#
#   scripts/restore.sh BACKUP_FOLDER
#
# Target: GEC_DATABASE_URL (PostgreSQL: an existing empty database, e.g. `createdb gec_restored`;
# SQLite: a file that does not exist yet) and GEC_ARCHIVE_DIR (empty or absent). Checks every file's
# sha256 before and every table's row count after; exits 1 with the reason on any difference. Stop
# the worker first: no collect may run against the target meanwhile.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
umask 077
if [ $# -ne 1 ]; then
  echo "usage: scripts/restore.sh BACKUP_FOLDER" >&2
  exit 2
fi
exec "${GEC_PYTHON:-$root/.venv/bin/python}" "$root/scripts/backup_restore.py" restore "$1"
