"""The shared real-world corpus (`../shared/corpus` beside the checkout) and what a test does without it.

CI lays a copy of shared/ beside its clone, so there a missing corpus fails the run; a clone made
anywhere else (a laptop, /tmp) skips the corpus tests and names the folder it looked in.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"


def corpus_files(kind: str, pattern: str = "*") -> list[Path]:
    """Return the corpus files of one kind (`spreadsheets`, `mail`), sorted; [] when it is absent."""
    folder = CORPUS / kind
    return sorted(path for path in folder.glob(pattern) if path.is_file()) if folder.is_dir() else []


def require_corpus(files: Sequence[Path], kind: str) -> None:
    """Fail under CI, skip elsewhere, when the corpus of `kind` is not there."""
    if files:
        return
    message = f"the {kind} corpus is missing at {CORPUS / kind}"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI lays shared/ beside its clone")
    pytest.skip(message)
