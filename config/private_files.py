"""Files only the service account can read: a private umask, and 0600 files / 0700 folders.

Workbooks, the SQLite database, the archive and the restricted outputs hold confidential incident
counts and personal data; with the usual umask of 022 every local user could read them. Imports
nothing of this project, so any entry point can call it first.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

PRIVATE_UMASK = 0o077
FILE_MODE = 0o600
FOLDER_MODE = 0o700


def use_private_umask() -> int:
    """Make every file and folder this process creates private to its user; return the old umask."""
    return os.umask(PRIVATE_UMASK)


def private_folder(path: str | os.PathLike[str]) -> Path:
    """Create the folder (and missing parents) as 0700 if absent, tighten it if present; return it."""
    folder = Path(path)
    folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    folder.chmod(FOLDER_MODE)
    return folder


def private_file(path: str | os.PathLike[str]) -> Path:
    """Create an empty 0600 file if absent (never truncating one), tighten it if present; return it."""
    file = Path(path)
    descriptor = os.open(file, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(descriptor)
    file.chmod(FILE_MODE)
    return file


def tighten(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Make existing files 0600 and folders 0700, recursively; skip absent paths; return what changed.

    Symbolic links are left alone (chmod would follow them out of the tree).
    """
    changed: list[Path] = []
    for root in paths:
        top = Path(root)
        if top.is_symlink() or not top.exists():
            continue
        candidates = [top]
        if top.is_dir():
            for folder, folders, files in os.walk(top):
                base = Path(folder)
                candidates.extend(base / name for name in (*folders, *files))
        for path in candidates:
            if _tighten_one(path):
                changed.append(path)
    return changed


def _tighten_one(path: Path) -> bool:
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        return False
    wanted = FOLDER_MODE if stat.S_ISDIR(info.st_mode) else FILE_MODE
    if stat.S_IMODE(info.st_mode) == wanted:
        return False
    path.chmod(wanted)
    return True
