"""Apply the operator automations in ops/automations/ to the Prefect server (create or update by name).

    .venv/bin/python scripts/apply_automations.py [FILE ...]   # default: ops/automations/*.yaml

The server is the one PREFECT_API_URL names (with PREFECT_API_AUTH_STRING when it uses basic auth).
Each `send-notification` action's `{{ operator_notification_block }}` is replaced by the id of the
notification block GEC_OPS_NOTIFY_BLOCK names (`<block-type-slug>/<name>`, default
`custom-webhook/gec-operator`). When GEC_OPS_WEBHOOK_URL is set, that custom-webhook block is created
or updated to POST `{"subject": …, "body": …}` there; otherwise the block may exist already (the
operator creates it in the UI: Blocks → Slack / Microsoft Teams / Custom Webhook …). With neither, the
server still starts: the script prints a warning, applies no alert, and exits 0; run it again (or
`scripts/serve.sh apply`) once a channel is configured. Re-running is safe: an automation of the same
name is updated in place, never duplicated.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FILES = sorted((PROJECT_ROOT / "ops" / "automations").glob("*.y*ml"))
BLOCK_PLACEHOLDER = "{{ operator_notification_block }}"
DEFAULT_BLOCK = "custom-webhook/gec-operator"
WEBHOOK_SLUG = "custom-webhook"


class SetupError(RuntimeError):
    """The automations cannot be applied as configured (missing block, bad file)."""


class NoAlertChannel(SetupError):
    """No notification block to send alerts through: the server runs, without alerts."""


def load_automations(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Read automation definitions from YAML files (`automations:` list, a list, or one mapping)."""
    found: list[dict[str, Any]] = []
    for path in paths:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        items = data["automations"] if isinstance(data, dict) and "automations" in data else data
        items = items if isinstance(items, list) else [items]
        for item in items:
            if not isinstance(item, dict) or not item.get("name"):
                raise SetupError(f"{path}: every automation needs a name")
            found.append(item)
    names = [item["name"] for item in found]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise SetupError(f"automation names must be unique: {', '.join(duplicates)}")
    return found


def with_block(automation: dict[str, Any], block_id: UUID) -> dict[str, Any]:
    """Return the automation with the notification-block placeholder replaced by `block_id`."""
    resolved = dict(automation)
    for key in ("actions", "actions_on_trigger", "actions_on_resolve"):
        resolved[key] = [
            {**action, "block_document_id": str(block_id)}
            if action.get("block_document_id") == BLOCK_PLACEHOLDER else action
            for action in automation.get(key) or []
        ]
    return resolved


def notification_block_id(client: Any, slug: str, webhook_url: str | None) -> UUID:
    """Return the id of the block `slug` names, saving the webhook block first when a URL is given."""
    block_type, _, name = slug.partition("/")
    if not block_type or not name:
        raise SetupError(f"GEC_OPS_NOTIFY_BLOCK={slug!r}: use <block-type-slug>/<name>")
    if webhook_url:
        if block_type != WEBHOOK_SLUG:
            raise SetupError(f"GEC_OPS_WEBHOOK_URL only creates {WEBHOOK_SLUG} blocks, not {block_type!r}")
        from prefect.blocks.notifications import CustomWebhookNotificationBlock

        block = CustomWebhookNotificationBlock(
            name=name, url=webhook_url, json_data={"subject": "{{subject}}", "body": "{{body}}"}
        )
        return block.save(name, overwrite=True)
    from prefect.exceptions import ObjectNotFound

    try:
        return client.read_block_document_by_name(name, block_type).id
    except ObjectNotFound as error:
        raise NoAlertChannel(
            f"no alert channel: no notification block {slug!r} on the server and GEC_OPS_WEBHOOK_URL is "
            f"not set; operator alerts are OFF. Set GEC_OPS_WEBHOOK_URL (in .env) or create the block in "
            f"the UI (Blocks → +, e.g. Slack Webhook named {name!r}, and GEC_OPS_NOTIFY_BLOCK), then run "
            "scripts/serve.sh apply again"
        ) from error


def apply_automations(
    paths: Sequence[Path], block_slug: str = DEFAULT_BLOCK, webhook_url: str | None = None
) -> list[tuple[str, UUID, str]]:
    """Create or update every automation in `paths`; return (name, id, 'created' | 'updated')."""
    from prefect.client.orchestration import get_client
    from prefect.events.schemas.automations import AutomationCore

    definitions = load_automations(paths)
    applied: list[tuple[str, UUID, str]] = []
    with get_client(sync_client=True) as client:
        block_id = notification_block_id(client, block_slug, webhook_url)
        for definition in definitions:
            automation = AutomationCore.model_validate(with_block(definition, block_id))
            existing = client.read_automations_by_name(automation.name)
            if existing:
                client.update_automation(existing[0].id, automation)
                for extra in existing[1:]:  # left by hand-made copies: one definition, one automation
                    client.delete_automation(extra.id)
                applied.append((automation.name, existing[0].id, "updated"))
            else:
                applied.append((automation.name, client.create_automation(automation), "created"))
    return applied


def main(argv: Sequence[str] | None = None) -> int:
    """Apply the automation files; exit 0 (warning) with no alert channel, 1 on a bad setup, 2 on usage."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, default=DEFAULT_FILES)
    parser.add_argument("--block", default=os.environ.get("GEC_OPS_NOTIFY_BLOCK") or DEFAULT_BLOCK,
                        help="notification block, <type-slug>/<name> (default: %(default)s)")
    args = parser.parse_args(argv)
    missing = [str(path) for path in args.files if not path.is_file()]
    if missing or not args.files:
        print(f"error: no automation file at {', '.join(missing) or 'ops/automations/'}", file=sys.stderr)
        return 2
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        # Without it Prefect would start a throwaway in-process server and apply everything there.
        print("error: set PREFECT_API_URL to the Prefect server (serve.sh apply does)", file=sys.stderr)
        return 2
    try:
        applied = apply_automations(args.files, args.block, os.environ.get("GEC_OPS_WEBHOOK_URL") or None)
    except NoAlertChannel as error:
        # The office's runs matter more than the alerts about them: serve without, and say so.
        print(f"warning: {error}", file=sys.stderr)
        return 0
    except SetupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for name, automation_id, how in applied:
        print(f"{how} automation {name} ({automation_id})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
