"""Who receives a cycle's final report (SPEC §2 `reference/recipients.yaml`, the plan's "Nơi nhận").

Each recipient has a name, one address and the files it gets: `html` (tong-hop.html), `xlsx`
(tong-hop.xlsx), `docx` (bao-cao.docx) and `restricted` (restricted/vu-viec.xlsx, the per-school
incident counts). Only a recipient marked `restricted: true` may list `restricted`. `load_recipients`
checks every entry and raises one ReferenceDataError listing each mistake with its file and line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# One loader style for every reference file: the line-aware YAML helpers of schemas.reference.
from schemas.reference import (
    _EMAIL,
    ReferenceDataError,
    _Errors,
    _mapping,
    _Node,
    _read_yaml,
    _sequence,
    _text,
)

RECIPIENTS_FILE = "recipients.yaml"
FILE_KINDS = ("html", "xlsx", "docx", "restricted")
RESTRICTED = "restricted"
_REQUIRED = ("name", "address", "files")
_OPTIONAL = ("restricted", "note")


@dataclass(frozen=True)
class Recipient:
    """One receiver of the final report and the files it gets."""

    name: str
    address: str
    files: tuple[str, ...]  # a subset of FILE_KINDS, in FILE_KINDS order
    restricted: bool = False  # cleared for the per-school incident file

    @property
    def key(self) -> str:
        """Return the address in the form dedupe keys use (case-insensitive)."""
        return self.address.casefold()


def load_recipients(directory: Path) -> tuple[Recipient, ...]:
    """Load and check recipients.yaml; raise ReferenceDataError listing every mistake."""
    errors = _Errors()
    source, root = _read_yaml(Path(directory) / RECIPIENTS_FILE, errors)
    recipients: list[Recipient] = []
    if root is not None:
        top = _mapping(root, "the recipients file", source, errors, ("recipients",))
        lines: dict[str, int] = {}
        for item in _sequence((top or {}).get("recipients"), "recipients", source, errors):
            recipient = _recipient(item, source, errors)
            if recipient is None:
                continue
            if recipient.key in lines:
                errors.add(source, item.line, f"address '{recipient.address}' is already listed on line "
                           f"{lines[recipient.key]}")
                continue
            lines[recipient.key] = item.line
            recipients.append(recipient)
    if errors.items:
        raise ReferenceDataError(errors.items)
    return tuple(recipients)


def _recipient(node: _Node, source: str, errors: _Errors) -> Recipient | None:
    before = len(errors.items)
    keys = _mapping(node, "a recipient", source, errors, _REQUIRED, _OPTIONAL)
    if keys is None:
        return None
    name = _text(keys.get("name"), "name", source, errors) if "name" in keys else ""
    what = f"recipient '{name or '?'}'"
    address = _text(keys.get("address"), f"{what}: address", source, errors) if "address" in keys else ""
    if address and not _EMAIL.match(address):
        errors.add(source, keys["address"].line, f"{what}: '{address}' is not an e-mail address")
    restricted_node = keys.get("restricted")
    restricted = False
    if restricted_node is not None and restricted_node.value is not None:
        if not isinstance(restricted_node.value, bool):
            errors.add(source, restricted_node.line, f"{what}: restricted '{restricted_node.value}' is not "
                       "true or false")
        restricted = restricted_node.value is True
    files: set[str] = set()
    files_node = keys.get("files")
    for item in _sequence(files_node, f"{what}: files", source, errors):
        kind = str(item.value).strip().casefold()
        if kind not in FILE_KINDS:
            errors.add(source, item.line, f"{what}: file '{item.value}' is not one of "
                       + ", ".join(FILE_KINDS))
        elif kind == RESTRICTED and not restricted:
            errors.add(source, item.line, f"{what}: only a recipient marked 'restricted: true' may receive "
                       "the restricted incident file")
        else:
            files.add(kind)
    if files_node is not None and not files and len(errors.items) == before:
        errors.add(source, files_node.line, f"{what}: files is empty; list some of " + ", ".join(FILE_KINDS))
    if len(errors.items) > before:
        return None
    return Recipient(name, address, tuple(kind for kind in FILE_KINDS if kind in files), restricted)
