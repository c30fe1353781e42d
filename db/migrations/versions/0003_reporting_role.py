"""a reporting role that cannot read incident rows, raw files or outbox bodies (PostgreSQL only)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 22:30:00.000000

The public report runs as `gec_reporting` (db.engine.reporting_engine: `SET ROLE`), so no bug in a
public output can read confidential incident counts (`incident_counts`), the submitted workbooks
(`received_files.content`) or the replies and their attachments (`outbox.body_text`/`body_html`,
`outbox_attachments.content`). Grants are deny-by-default: a table or column added later is not
readable by the role until a migration grants it.

The role is cluster-wide and NOLOGIN; the database user that runs the migrations becomes a member so
it can `SET ROLE`. A user without CREATEROLE needs an administrator to run, once per cluster:
`CREATE ROLE gec_reporting NOLOGIN; GRANT gec_reporting TO <app user>;` (docs/operations.md).
On SQLite (one file, one OS user) this migration does nothing.
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLE = "gec_reporting"
# Frozen as of this revision: what the reporting role may read, whole tables or some columns.
READABLE_TABLES = (
    "schools", "cycles", "registry_entries", "file_receipts", "submissions", "decisions", "findings",
    "general_infos", "reach_rows", "activities", "checklist_answers", "report_runs",
)
# Tables the role reads only in part: the columns it may read (raw bytes and mail bodies left out).
READABLE_COLUMNS = {
    "received_files": (
        "id", "sha256", "size", "source", "original_name", "safe_name", "sender", "received_at",
        "message_id", "stored_at",
    ),  # not: content
    "outbox": (
        "id", "kind", "dedupe_key", "submission_id", "to_address", "subject", "in_reply_to",
        "created_at", "sent_at", "attempts", "last_error",
    ),  # not: body_text, body_html
    "outbox_attachments": (
        "id", "message_id", "position", "filename", "mime_type", "received_file_id",
    ),  # not: content
}

# Idempotent and safe when two databases of one cluster migrate at once (test runs): the role is
# shared, so "already exists" from a concurrent CREATE is fine.
CREATE_ROLE = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
        IF NOT (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user) THEN
            RAISE EXCEPTION 'role {ROLE} is missing and % may not create it', current_user
                USING HINT = 'As an administrator run: CREATE ROLE {ROLE} NOLOGIN; '
                             'GRANT {ROLE} TO ' || current_user || ';';
        END IF;
        BEGIN
            CREATE ROLE {ROLE} NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    IF NOT pg_has_role(current_user, '{ROLE}', 'MEMBER') THEN
        BEGIN
            EXECUTE format('GRANT {ROLE} TO %I', current_user);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
END
$$
"""


def _column_grants() -> list[tuple[str, str]]:
    """Return (table, quoted column list) of the partly readable tables."""
    return [(table, ", ".join(f'"{name}"' for name in names)) for table, names in READABLE_COLUMNS.items()]


def upgrade() -> None:
    """Create the role and grant it read access to everything but the confidential data."""
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(CREATE_ROLE)
    op.execute(f"GRANT USAGE ON SCHEMA public TO {ROLE}")
    op.execute(f"GRANT SELECT ON {', '.join(READABLE_TABLES)} TO {ROLE}")
    for table, columns in _column_grants():
        op.execute(f"GRANT SELECT ({columns}) ON {table} TO {ROLE}")


def downgrade() -> None:
    """Revoke the grants of this database; the role itself stays (other databases may use it)."""
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(f"REVOKE ALL ON {', '.join((*READABLE_TABLES, *READABLE_COLUMNS))} FROM {ROLE}")
    for table, columns in _column_grants():
        op.execute(f"REVOKE SELECT ({columns}) ON {table} FROM {ROLE}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {ROLE}")
