"""The drop-folder source of intake (SPEC §4): list the inbox, read files, archive them after commit.

A file's received time is its modification time (files saved from e-mail or Zalo keep the time they
were saved). Nothing here touches the database: `tasks.storage.raw` records what these functions read,
and only after the submissions are stored does `archive_stored` move a file out of the inbox, so a crash
at any point leaves every file either recorded and archived, recorded and still in the inbox
(archived next run), or not yet recorded and still in the inbox.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import logging
import os
import re
import shutil
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from config.settings import TIMEZONE
from tasks.intake.sniff import oversize_stub

if TYPE_CHECKING:  # storage imports this module: the outcome type only for annotations
    from tasks.storage.submissions import Outcome

log = logging.getLogger(__name__)

FOLDER = "folder"
MAILBOX = "mailbox"
# Files that are not (yet) submissions: Office owner/lock files, partial downloads, editor temp files.
_IGNORED_PREFIXES = (".", "~$", ".~lock.")
_IGNORED_SUFFIXES = (".part", ".crdownload", ".download", ".tmp", ".partial")
# ext4 and most file systems cap a name at 255 bytes; Vietnamese letters take 2-3 bytes in UTF-8,
# and the archive prefixes `<submission id>-`.
MAX_NAME_BYTES = 200
HASH_CHUNK = 1024 * 1024
_WINDOWS_FORBIDDEN = re.compile(r'[<>:"/\\|?*]')


@dataclass(frozen=True)
class IncomingFile:
    """One received file in memory: bytes, where it came from and when it arrived.

    The folder source fills `path`; the mailbox source fills `sender` and `message_id`. `source_ref`
    names the arrival so a re-run recognises it: the folder uses inbox path + mtime + sha256.
    """

    source: str  # "folder" | "mailbox"
    source_ref: str
    original_name: str
    received_at: dt.datetime  # timezone-aware
    content: bytes = field(repr=False)
    sha256: str
    sender: str | None = None
    message_id: str | None = None
    path: Path | None = None  # folder only: the inbox file to archive after commit
    # Set when `content` is an oversize stub (the file was refused for its size unread): its real size.
    declared_size: int | None = None

    @property
    def size(self) -> int:
        return self.declared_size if self.declared_size is not None else len(self.content)


def incoming_file(
    content: bytes,
    *,
    source: str,
    original_name: str,
    received_at: dt.datetime,
    source_ref: str | None = None,
    sender: str | None = None,
    message_id: str | None = None,
    path: Path | None = None,
) -> IncomingFile:
    """Wrap received bytes for the raw store (the mailbox source uses this too)."""
    if received_at.tzinfo is None or received_at.utcoffset() is None:
        raise ValueError(f"received_at {received_at!r} is naive: pass a timezone-aware datetime")
    if source not in (FOLDER, MAILBOX):
        raise ValueError(f"unknown intake source {source!r}; expected {FOLDER!r} or {MAILBOX!r}")
    sha = hashlib.sha256(content).hexdigest()
    ref = source_ref if source_ref is not None else f"{original_name}|{received_at.isoformat()}|{sha}"
    return IncomingFile(
        source=source,
        source_ref=ref,
        original_name=original_name,
        received_at=received_at,
        content=content,
        sha256=sha,
        sender=sender,
        message_id=message_id,
        path=path,
    )


# --------------------------------------------------------------------------------------------------
# The drop folder


def is_candidate(path: Path) -> bool:
    """Return whether an inbox entry is a file to collect (not a folder, lock file or partial download)."""
    name = path.name
    if name.startswith(_IGNORED_PREFIXES) or name.lower().endswith(_IGNORED_SUFFIXES):
        return False
    try:
        return path.is_file() and not path.is_symlink()
    except OSError:
        return False


def received_time(path: Path) -> dt.datetime:
    """Return a file's modification time as an aware Asia/Ho_Chi_Minh datetime."""
    return dt.datetime.fromtimestamp(path.stat().st_mtime, tz=TIMEZONE)


def list_inbox(inbox_dir: Path) -> list[Path]:
    """Return the inbox's files (not sub-folders), oldest first, so submission ids follow arrival order."""
    inbox_dir = Path(inbox_dir)
    if not inbox_dir.is_dir():
        raise FileNotFoundError(f"inbox folder {inbox_dir} does not exist (set GEC_INBOX_DIR or --inbox)")
    found = []
    for entry in inbox_dir.iterdir():
        if not is_candidate(entry):
            continue
        try:
            found.append((entry.stat().st_mtime_ns, entry.name, entry))
        except OSError:
            continue  # moved away by someone else since iterdir
    return [entry for _, _, entry in sorted(found)]


def batch_paths(paths: Sequence[Path], max_files: int, max_bytes: int) -> list[list[Path]]:
    """Split the inbox into batches of at most `max_files` files and `max_bytes` bytes, in order.

    A batch is held in memory whole (bytes, parsed frames), so a few large files make a batch of their
    own; a file larger than `max_bytes` is a batch alone (the raw store still records it).
    """
    if max_files < 1 or max_bytes < 1:
        raise ValueError("a batch must allow at least one file and one byte")
    batches: list[list[Path]] = []
    current: list[Path] = []
    current_bytes = 0
    for path in paths:
        try:
            size = path.stat().st_size
        except OSError:
            size = 0  # gone or unreadable: read_inbox_files logs it and leaves it
        if current and (len(current) >= max_files or current_bytes + size > max_bytes):
            batches.append(current)
            current, current_bytes = [], 0
        current.append(path)
        current_bytes += size
    if current:
        batches.append(current)
    return batches


def folder_source_ref(path: Path, received_at: dt.datetime, sha256: str) -> str:
    """Name one arrival in the drop folder: the same file left in place is the same arrival."""
    return f"{path.resolve()}|{received_at.isoformat()}|{sha256}"


def stream_sha256(path: Path, chunk: int = HASH_CHUNK) -> str:
    """Return a file's sha256 read in chunks: a large file never sits in memory whole."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_inbox_file(path: Path, max_bytes: int | None = None) -> IncomingFile:
    """Read one inbox file into memory; its received time is its modification time.

    A file larger than `max_bytes` (by `stat`) is not read whole: it is hashed by streaming and
    stands for itself as an oversize stub (its size and sha256), which gets the `too_large` verdict.
    """
    path = Path(path)
    received_at = received_time(path)
    size = path.stat().st_size
    declared = None
    if max_bytes is not None and size > max_bytes:
        sha = stream_sha256(path)
        content = oversize_stub(size, sha)
        declared = size
    else:
        content = path.read_bytes()
        sha = hashlib.sha256(content).hexdigest()
    # A file still being written changes under us; the next run reads it whole.
    if received_time(path) != received_at:
        raise OSError(f"{path} changed while it was read")
    file = incoming_file(
        content,
        source=FOLDER,
        original_name=path.name,
        received_at=received_at,
        source_ref=folder_source_ref(path, received_at, sha),
        path=path,
    )
    # The stored record is keyed by the real file's hash, not the stub's.
    return replace(file, sha256=sha, declared_size=declared) if declared is not None else file


def read_inbox_files(paths: Iterable[Path], max_bytes: int | None = None) -> list[IncomingFile]:
    """Read inbox files, skipping (and logging) the ones that vanished or cannot be read right now."""
    files = []
    for path in paths:
        try:
            files.append(read_inbox_file(path, max_bytes))
        except OSError as error:
            # Left in place: the next run tries again.
            log.warning("cannot read inbox file %s: %s", path, error)
    return files


# --------------------------------------------------------------------------------------------------
# Archive


def safe_name(name: str) -> str:
    """Return a file name safe on any file system: the basename, no separators or control characters.

    Vietnamese letters are kept (NFC); characters Windows forbids become `_`; the name is cut to
    MAX_NAME_BYTES of UTF-8, keeping the extension.
    """
    base = unicodedata.normalize("NFC", str(name)).replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(" " if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") else char for char in base)
    base = _WINDOWS_FORBIDDEN.sub("_", base)
    base = " ".join(base.split()).strip(" .")
    stem, dot, ext = base.rpartition(".")
    if not dot or not stem or len(ext.encode()) > 16:
        stem, ext = base, ""
    suffix = f".{ext}" if ext else ""
    room = MAX_NAME_BYTES - len(suffix.encode())
    stem = stem.encode()[:room].decode("utf-8", "ignore").rstrip(" .")
    return f"{stem}{suffix}" if stem else f"file{suffix}"


def archive_path(archive_dir: Path, cycle_id: str, state: str, submission_id: int, name: str) -> Path:
    """Return where a collected file goes: `<archive>/<cycle>/<state>/<submission id>-<safe name>`."""
    return Path(archive_dir) / safe_name(cycle_id) / safe_name(state) / f"{submission_id}-{safe_name(name)}"


def _free(target: Path) -> Path:
    """Return `target`, or `stem (2).ext`, `stem (3).ext`… when taken (the same file sent twice)."""
    if not target.exists():
        return target
    for number in range(2, 10_000):
        candidate = target.with_name(f"{target.stem} ({number}){target.suffix}")
        if not candidate.exists():
            return candidate
    raise FileExistsError(f"no free archive name for {target}")


def archive_file(path: Path, target: Path) -> Path | None:
    """Move an inbox file to its archive path after the commit; return where it went, None if it stayed."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        destination = _free(target)
        try:
            os.replace(path, destination)  # atomic on one file system; keeps the mtime
        except OSError as error:
            if error.errno != errno.EXDEV:  # the archive may sit on another file system
                raise
            shutil.move(path, destination)
        return destination
    except OSError as error:
        # Stays in the inbox; the next run finds its submission and only archives it.
        log.warning("cannot archive %s to %s: %s", path, target, error)
        return None


def archive_files(moves: Sequence[tuple[Path, Path]]) -> list[Path | None]:
    """Move each (inbox file, archive path) pair; return the destinations (None where a move failed)."""
    return [archive_file(path, target) for path, target in moves]


def archive_stored(outcomes: Sequence[Outcome], archive_dir: Path) -> dict[Path, Path | None]:
    """Move a batch's inbox files that have a stored submission to the archive; return where each went.

    None: the move failed and the file is still in the inbox (the next run finds it stored).
    """
    moves = [
        (item.path,
         archive_path(archive_dir, item.cycle_id, item.state, item.submission_id, item.original_name))
        for item in outcomes
        if item.path is not None and item.submission_id is not None and item.cycle_id and item.state
    ]
    return dict(zip([source for source, _ in moves], archive_files(moves), strict=True))
